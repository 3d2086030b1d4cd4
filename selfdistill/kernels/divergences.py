"""Divergences for logit distillation, one small pure function each, picked by name from a registry.

Every divergence is written on one chunk of rows, from the student's and the teacher's log-probabilities at the
distillation temperature (`ls`, `lt`, fp32 `[c, V]`), and returns the per-row divergence `[c]` and its gradient with
respect to the student's *tempered* logits `z = logits / T` (`[c, V]`; the caller applies the `1 / T` chain factor).

Convention (the same as TRL's `generalized_jsd_loss` and Liger's `fused_linear_jsd`, so numbers are comparable):

- `forward_kl`: KL(p_t || p_s) = sum p_t (log p_t - log p_s); gradient p_s - p_t.
- `reverse_kl`: KL(p_s || p_t) = sum p_s (log p_s - log p_t); gradient p_s (log p_s - log p_t - KL).
- `jsd`: generalised Jensen-Shannon with mixture m = (1 - beta) p_s + beta p_t,
  beta KL(p_t || m) + (1 - beta) KL(p_s || m); gradient p_s (g - sum p_s g) with g = (1 - beta)(log p_s - log m).
  `beta = 0` is `forward_kl` and `beta = 1` is `reverse_kl` (the end points, where the mixture formula degenerates).

The Triton kernel implements the same formulas; `Divergence.triton_id` names its branch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

ChunkFn = Callable[[torch.Tensor, torch.Tensor, float, bool], tuple[torch.Tensor, torch.Tensor | None]]


@dataclass(frozen=True)
class Divergence:
    name: str
    torch_fn: ChunkFn  # (ls [c,V], lt [c,V], beta, want_grad) -> (div [c], grad wrt z_s [c,V] | None)
    triton_id: int  # constexpr branch in _triton_rows._distill_rows_kernel


def _forward_kl(ls: torch.Tensor, lt: torch.Tensor, beta: float, want_grad: bool):
    pt = lt.exp()  # [c, V]
    div = (pt * (lt - ls)).sum(-1)  # [c]
    return div, (ls.exp().sub_(pt) if want_grad else None)


def _reverse_kl(ls: torch.Tensor, lt: torch.Tensor, beta: float, want_grad: bool):
    ps = ls.exp()  # [c, V]
    gap = ls - lt  # [c, V]
    div = (ps * gap).sum(-1)  # [c]
    return div, (gap.sub_(div[:, None]).mul_(ps) if want_grad else None)


def _jsd(ls: torch.Tensor, lt: torch.Tensor, beta: float, want_grad: bool):
    # log m, [c, V]: stable where the probabilities underflow
    lm = torch.logaddexp(ls + math.log1p(-beta), lt + math.log(beta))
    student_gap = (1.0 - beta) * (ls - lm)  # g, [c, V]
    ps = ls.exp()
    student_term = (ps * student_gap).sum(-1)  # (1 - beta) KL(p_s || m), [c]
    div = beta * (lt.exp() * (lt - lm)).sum(-1) + student_term
    return div, (student_gap.sub_(student_term[:, None]).mul_(ps) if want_grad else None)


DIVERGENCES: dict[str, Divergence] = {
    "forward_kl": Divergence("forward_kl", _forward_kl, 0),
    "reverse_kl": Divergence("reverse_kl", _reverse_kl, 1),
    "jsd": Divergence("jsd", _jsd, 2),
}


def resolve_divergence(name: str, beta: float) -> Divergence:
    """The divergence registered as `name`; `jsd` at beta 0 or 1 is forward / reverse KL (see module docstring)."""
    if name not in DIVERGENCES:
        raise ValueError(f"unknown divergence {name!r}; choose one of: {', '.join(DIVERGENCES)}")
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    if name == "jsd" and beta == 0.0:
        return DIVERGENCES["forward_kl"]
    if name == "jsd" and beta == 1.0:
        return DIVERGENCES["reverse_kl"]
    return DIVERGENCES[name]
