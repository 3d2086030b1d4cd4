"""Shared pytest set-up: no network, no W&B uploads, deterministic threads."""

import os

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Triton reads TRITON_INTERPRET when its modules load and when kernels are decorated, and any test module that
# imports a transformers model may load triton during collection; so on a machine without CUDA (where Triton can
# only run interpreted) it is set here, before any test module is imported, not in the kernel tests' helpers.
# (A CUDA machine, with a visible GPU, leaves it alone: the "triton" kernel cases run on the GPU.)
_gpu_visible = os.path.exists("/dev/nvidiactl") and os.environ.get("CUDA_VISIBLE_DEVICES") != ""
if not _gpu_visible:
    os.environ.setdefault("TRITON_INTERPRET", "1")
