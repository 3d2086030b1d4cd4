"""Plain-torch references for the fused LM-head losses: materialise the full `[N, V]` logits, let autograd do the rest.

These are the definitions the fused kernels are tested against (call them on fp64 leaves for an fp64 reference) and
the "eager" baseline of `scripts/bench_kernels.py`. They are written from the textbook formulas, independently of
`divergences.py`, so a shared mistake cannot hide.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _valid_count(labels: torch.Tensor, ignore_index: int) -> torch.Tensor:
    return (labels != ignore_index).sum().clamp_min(1)


def reference_linear_cross_entropy(
    hidden: torch.Tensor,  # [N, H]
    weight: torch.Tensor,  # [V, H]
    labels: torch.Tensor,  # [N]
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
    temperature: float = 1.0,
    upcast: bool = True,
) -> torch.Tensor:
    """Cross-entropy of `hidden @ weight.T / temperature`; mean over non-ignored tokens (0 when all are ignored)."""
    logits = hidden @ weight.t()  # [N, V]
    if upcast:
        logits = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    rows = F.cross_entropy(logits / temperature, labels, ignore_index=ignore_index, reduction="none")  # [N]
    if reduction == "none":
        return rows
    if reduction == "sum":
        return rows.sum()
    return rows.sum() / _valid_count(labels, ignore_index)


def _divergence_rows(ls: torch.Tensor, lt: torch.Tensor, divergence: str, beta: float) -> torch.Tensor:
    ps, pt = ls.exp(), lt.exp()  # [N, V]
    if divergence == "forward_kl" or (divergence == "jsd" and beta == 0.0):
        return (pt * (lt - ls)).sum(-1)
    if divergence == "reverse_kl" or (divergence == "jsd" and beta == 1.0):
        return (ps * (ls - lt)).sum(-1)
    if divergence == "jsd":
        m = (1.0 - beta) * ps + beta * pt
        return beta * (pt * (lt - m.log())).sum(-1) + (1.0 - beta) * (ps * (ls - m.log())).sum(-1)
    raise ValueError(f"unknown divergence {divergence!r}; choose one of: forward_kl, reverse_kl, jsd")


def reference_linear_distillation(
    student_hidden: torch.Tensor,  # [N, Hs]
    student_weight: torch.Tensor,  # [V, Hs]
    teacher_hidden: torch.Tensor,  # [N, Ht]
    teacher_weight: torch.Tensor,  # [V, Ht]
    labels: torch.Tensor,  # [N]
    *,
    divergence: str = "forward_kl",
    beta: float = 0.5,
    temperature: float = 1.0,
    hard_weight: float = 0.0,
    ignore_index: int = -100,
) -> torch.Tensor:
    """hard_weight * CE(student, labels) + (1 - hard_weight) * divergence at `temperature`, mean over valid tokens.

    The hard cross-entropy is taken at temperature 1 (the model's own distribution); no T^2 factor is applied.
    """
    s_logits = student_hidden @ student_weight.t()  # [N, V]
    with torch.no_grad():
        t_logits = teacher_hidden @ teacher_weight.t()  # [N, V]
    return reference_distillation_from_logits(
        s_logits, t_logits, labels, divergence=divergence, beta=beta, temperature=temperature,
        hard_weight=hard_weight, ignore_index=ignore_index,
    )  # fmt: skip


def reference_distillation_from_logits(
    s_logits: torch.Tensor,  # [N, V]
    t_logits: torch.Tensor,  # [N, V]
    labels: torch.Tensor,  # [N]
    *,
    divergence: str = "forward_kl",
    beta: float = 0.5,
    temperature: float = 1.0,
    hard_weight: float = 0.0,
    ignore_index: int = -100,
) -> torch.Tensor:
    """`reference_linear_distillation` on already materialised logits (the eager training path)."""
    t_logits = t_logits.detach()
    s_logits = s_logits.float() if s_logits.dtype in (torch.float16, torch.bfloat16) else s_logits
    t_logits = t_logits.to(s_logits.dtype)
    ls = torch.log_softmax(s_logits / temperature, -1)
    lt = torch.log_softmax(t_logits / temperature, -1)
    valid = labels != ignore_index  # [N]
    rows = (1.0 - hard_weight) * _divergence_rows(ls, lt, divergence, beta)
    if hard_weight:
        hard = F.cross_entropy(s_logits, labels, ignore_index=ignore_index, reduction="none")
        rows = rows + hard_weight * hard
    return torch.where(valid, rows, 0.0).sum() / _valid_count(labels, ignore_index)
