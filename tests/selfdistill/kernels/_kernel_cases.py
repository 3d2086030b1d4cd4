"""Shared helpers for the kernel tests: random cases, fp64 comparisons, the Triton interpreter switch.

On a machine without CUDA the Triton kernels can only run under the interpreter, and triton reads
TRITON_INTERPRET when kernels are decorated and when some of its modules load, so it must be set for the whole
process before the kernels are imported; that is harmless there (nothing else can run Triton on CPU). On a CUDA
machine it is left alone and the "triton" cases run on the GPU.
"""

from __future__ import annotations

import os

import torch

ON_GPU = torch.cuda.is_available()
if not ON_GPU:
    os.environ.setdefault("TRITON_INTERPRET", "1")

DEVICE = torch.device("cuda" if ON_GPU else "cpu")
import importlib.util  # noqa: E402

import pytest  # noqa: E402

HAS_TRITON = importlib.util.find_spec("triton") is not None
# Without triton the Triton cases are skipped with the reason, never silently dropped (the test extra installs it).
IMPLS = (
    "torch",
    pytest.param("triton", marks=pytest.mark.skipif(not HAS_TRITON, reason="triton not installed")),
)
RTOL = 1e-5  # fp32 against the fp64 reference, relative (norm-wise for tensors)


def rel_err(got: torch.Tensor, ref: torch.Tensor) -> float:
    """Norm-wise relative error of `got` against `ref`, with the absolute error when `ref` is zero."""
    diff = (got.detach().double().cpu() - ref.detach().double().cpu()).norm().item()
    scale = ref.detach().double().norm().item()
    return diff / scale if scale > 0 else diff


def leaves(*tensors: torch.Tensor, dtype: torch.dtype, device=DEVICE) -> list[torch.Tensor]:
    """Fresh leaf copies that require grad."""
    return [t.detach().to(device=device, dtype=dtype).requires_grad_(True) for t in tensors]


def random_labels(n: int, vocab: int, ignore_frac: float, gen: torch.Generator, ignore_index: int = -100):
    labels = torch.randint(0, vocab, (n,), generator=gen)  # [N]
    labels[torch.rand(n, generator=gen) < ignore_frac] = ignore_index
    return labels


def random_inputs(n: int, h: int, vocab: int, seed: int = 0, scale: float = 1.0):
    """hidden [N, H] and weight [V, H] in fp64, never zeros; `scale` spreads the logits."""
    gen = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, h, generator=gen, dtype=torch.float64)
    weight = torch.randn(vocab, h, generator=gen, dtype=torch.float64) * (scale / h**0.5)
    return hidden, weight, gen
