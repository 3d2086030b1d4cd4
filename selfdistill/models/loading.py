"""Load and save policies and students: local directories or hub ids, with clear errors."""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from selfdistill.configio import ConfigError


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device_type(device) == "cuda" and not torch.cuda.is_available():
        raise ConfigError("run.device: cuda was asked for but torch sees no CUDA device")
    return device


def device_type(device) -> str:
    """``cuda`` for ``"cuda"``, ``"cuda:3"`` or ``torch.device("cuda", 3)``; ``cpu`` for CPU: compare this, not strings
    (under `accelerate launch`/`torchrun` every rank's device is ``cuda:<local_rank>``)."""
    import torch

    return torch.device(device).type


def resolve_dtype(dtype: str, device):
    """The weights' torch dtype: ``auto`` is bfloat16 on any CUDA device, float32 elsewhere."""
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device_type(device) == "cuda" else torch.float32
    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if dtype not in dtypes:
        raise ConfigError(f"unknown dtype {dtype!r}; choose one of: auto, {', '.join(dtypes)}")
    return dtypes[dtype]


def precision_args(device, dtype) -> dict[str, bool]:
    """The Trainer's device and mixed-precision flags for a model of torch ``dtype`` on ``device``.

    CUDA (any index): bf16 autocast (TRL/HF Trainer's ``bf16``), except for float16 weights, which the
    Trainer's fp16 grad scaler refuses to unscale, so they train without autocast. CPU: neither.
    """
    import torch

    cuda = device_type(device) == "cuda"
    return {"use_cpu": device_type(device) == "cpu", "bf16": cuda and dtype != torch.float16}


# transformers' implementations of a MoE block's experts (`config._experts_implementation`), and the fastest
# per device type as measured on an upcycled SmolLM2 (4 experts, top-2) by scripts/bench_moe_experts.py
# (docs/benchmarks.md, "MoE experts implementations"). `auto` picks from this table; one place.
EXPERTS_IMPLEMENTATIONS = ("eager", "batched_mm", "grouped_mm")
FASTEST_EXPERTS = {"cpu": "grouped_mm", "cuda": "grouped_mm"}


def resolve_experts_implementation(name: str, device) -> str:
    """``name`` itself, or for ``auto`` the fastest implementation measured on ``device``'s type."""
    if name == "auto":
        return FASTEST_EXPERTS.get(device_type(device), "grouped_mm")
    if name not in EXPERTS_IMPLEMENTATIONS:
        raise ConfigError(
            f"unknown experts implementation {name!r}; choose one of: auto, {', '.join(EXPERTS_IMPLEMENTATIONS)}"
        )
    return name


def set_experts_implementation(model, name: str, device) -> str | None:
    """Run ``model``'s MoE experts with ``name`` (`resolve_experts_implementation`); returns the one set, or None
    for a dense model or an architecture whose experts have no switchable implementation."""
    if not is_moe(model) or not model._can_set_experts_implementation():
        return None
    chosen = resolve_experts_implementation(name, device)
    try:
        model.set_experts_implementation(chosen)
    # e.g. grouped_mm on a torch without its kernel: auto falls back to eager, an explicit request fails
    except (ValueError, ImportError):
        if name != "auto":
            raise
        chosen = "eager"
        model.set_experts_implementation(chosen)
    return chosen


def is_moe(model) -> bool:
    """Whether ``model`` is a Mixture-of-Experts (the config names its experts)."""
    cfg = model.config
    return any(getattr(cfg, k, None) for k in ("num_experts", "num_local_experts", "n_routed_experts"))


@dataclass(frozen=True)
class Placement:
    """Where `load_model` puts the weights, decided by `placement`."""

    device: str | None  # the device to move the loaded model to; None = stay on CPU (or meta) for the trainer
    engine: str  # "fsdp" | "deepspeed" | "" (no sharding engine)


def placement(device: str, train: bool) -> Placement:
    """Loading for training under FSDP/ZeRO-3 leaves placement to the trainer (``device=None``).

    Every rank moving the whole model to its GPU before the engine shards it needs the full model's memory
    on each card (a 30B bf16 policy: 60 GB before any activation or optimizer state). Instead the model
    stays where transformers loads it (CPU, initialised on the meta device and filled in place, no second
    copy): under FSDP2 with ``fsdp_cpu_ram_efficient_loading`` (our ``configs/accelerate/fsdp2.yml``)
    accelerate moves it to meta, shards it and loads rank 0's state dict into the GPU shards (transformers
    versions that load real weights on rank 0 only are handled the same way); under ZeRO-3 ``zero.Init``
    partitions the weights as they load. Sampling (collect/eval, ``train=False``) needs the whole model on
    this rank's device, as does every load outside a sharding engine.
    """
    from selfdistill import distributed as dist

    if not dist.is_sharded():
        return Placement(device, "")
    engine = "deepspeed" if _env_true("ACCELERATE_USE_DEEPSPEED") else "fsdp"
    return Placement(None if train else device, engine)


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


@contextmanager
def _loading_context(where: Placement):
    """The engine's loading mode while ``from_pretrained`` runs (see `placement`).

    Training under ZeRO-3: register accelerate's DeepSpeed config with transformers (what TRL's
    TrainingArguments does, only earlier) so the weights are partitioned by ``zero.Init`` while loading.
    Sampling under an engine: full weights on every rank, so FSDP's rank-0-only loading is switched off and
    a ZeRO-3 config left registered by the previous stage's trainer is cleared for the load.
    """
    if not where.engine:
        yield
        return
    if where.device is None:  # training
        plugin = None
        if where.engine == "deepspeed":
            from accelerate.utils import DeepSpeedPlugin

            plugin = DeepSpeedPlugin()  # reads accelerate launch's environment (zero_stage, zero3_init_flag)
            plugin.set_deepspeed_weakref()
        try:
            yield
        finally:
            del plugin
        return
    saved = os.environ.get("FSDP_CPU_RAM_EFFICIENT_LOADING")
    os.environ["FSDP_CPU_RAM_EFFICIENT_LOADING"] = "false"
    if where.engine == "deepspeed":
        from transformers.integrations import unset_hf_deepspeed_config

        unset_hf_deepspeed_config()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("FSDP_CPU_RAM_EFFICIENT_LOADING", None)
        else:
            os.environ["FSDP_CPU_RAM_EFFICIENT_LOADING"] = saved


def load_model(
    path: str | Path, device: str = "cpu", dtype: str = "auto", train: bool = False, experts: str = "auto"
):
    """``AutoModelForCausalLM`` + tokenizer from a local directory or hub id, in ``dtype`` (`resolve_dtype`).

    ``experts``: a MoE's experts implementation (`set_experts_implementation`; ``auto``: the fastest on ``device``).

    ``train``: the model is about to be trained; under FSDP/ZeRO-3 it is then not moved to ``device`` (the
    trainer shards and places it, see `placement`). Otherwise it ends on ``device``.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = str(path)
    looks_local = path.startswith((".", "/", "~")) or Path(path).exists()
    if looks_local and not Path(path).expanduser().is_dir():
        raise ConfigError(f"model path not found: {path} (expected a directory with config.json)")
    where = placement(device, train)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        with _loading_context(where):
            model = AutoModelForCausalLM.from_pretrained(path, dtype=resolve_dtype(dtype, device))
    except OSError as exc:
        raise ConfigError(
            f"cannot load model {path!r}: {exc}. Offline? Use a local directory or set HF_HUB_OFFLINE=0 with network."
        ) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    if where.device is not None:
        model.to(where.device)
    set_experts_implementation(model, experts, device)
    torch.set_grad_enabled(True)
    return generation_safe(model), tokenizer


def generation_safe(model):
    """TRL's trainers may save ``output_router_logits=True`` in an MoE config; generate crashes with it."""
    from selfdistill.models.moe import generation_safe as _safe

    return _safe(model)


def save_model(model, tokenizer, path: str | Path) -> Path:
    """Save atomically: write to ``<path>.tmp`` and rename, so a kill never leaves half a model."""
    import shutil

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)
    return path
