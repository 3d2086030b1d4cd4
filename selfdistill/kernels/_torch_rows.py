"""Row ops in plain torch: one `[c, V]` logits chunk in, per-row losses and the logits gradient out.

These run anywhere (CPU, CUDA without Triton). All statistics are fp32 whatever the logits' dtype. They allocate a
few fp32 `[c, V]` temporaries, declared in `CE_BYTES_PER_LOGIT` / `DISTILL_BYTES_PER_LOGIT` so the chunk loop sizes
chunks to its memory budget. The Triton row ops (`_triton_rows.py`) have the same signatures and semantics.
"""

from __future__ import annotations

import torch

from .divergences import Divergence

CE_BYTES_PER_LOGIT = 4 * 3
DISTILL_BYTES_PER_LOGIT = 4 * 8
WRITES_GRAD_OUT = False  # returns a fresh fp32 gradient; the chunk loop casts it


def _stats(x: torch.Tensor) -> torch.Tensor:
    """x in the statistics dtype: fp32, or fp64 for fp64 inputs (so the fp64 path checks the formulas exactly)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _onehot_sub_(
    grad: torch.Tensor, labels: torch.Tensor, weight: float | torch.Tensor = 1.0
) -> torch.Tensor:
    """grad[i, labels[i]] -= weight, in place; labels must already be safe (in range)."""
    src = torch.full_like(labels[:, None], 1.0, dtype=grad.dtype) * weight
    return grad.scatter_add_(1, labels[:, None], -src)


def ce_rows(
    logits: torch.Tensor,  # [c, V]
    labels: torch.Tensor,  # [c]
    *,
    ignore_index: int,
    inv_t: float,
    grad_scale: torch.Tensor | None,  # [c] fp32 per-row upstream gradient, or None for 1
    want_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-row CE of `logits * inv_t` `[c]` (0 on ignored rows) and `d loss_i / d logits` `[c, V]` fp32."""
    z = _stats(logits) * inv_t  # [c, V] fp32, a fresh tensor
    lse = torch.logsumexp(z, -1)  # [c]
    valid = labels != ignore_index
    safe = torch.where(valid, labels, 0)
    loss = torch.where(valid, lse - z.gather(1, safe[:, None]).squeeze(1), 0.0)  # [c]
    if not want_grad:
        return loss, None
    scale = valid.to(z.dtype) * inv_t  # [c]
    if grad_scale is not None:
        scale = scale * grad_scale
    grad = _onehot_sub_(z.sub_(lse[:, None]).exp_(), safe)  # softmax - onehot, [c, V]
    return loss, grad.mul_(scale[:, None])


def distill_rows(
    s_logits: torch.Tensor,  # [c, V] student
    t_logits: torch.Tensor,  # [c, V] teacher
    labels: torch.Tensor,  # [c]
    *,
    divergence: Divergence,
    beta: float,
    inv_t: float,
    hard_weight: float,
    ignore_index: int,
    want_grad: bool,
    grad_out: torch.Tensor | None = None,  # unused here: the chunk loop casts the fp32 gradient itself
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-row (1 - hw) * divergence at T + hw * CE at T=1 `[c]` (0 on ignored rows) and its student gradient."""
    ls = torch.log_softmax(_stats(s_logits) * inv_t, -1)  # [c, V]
    lt = torch.log_softmax(_stats(t_logits).to(ls.dtype) * inv_t, -1)  # [c, V]
    div, grad = divergence.torch_fn(ls, lt, beta, want_grad)  # [c], [c, V] wrt z = logits * inv_t
    del ls, lt
    valid = labels != ignore_index
    rows = (1.0 - hard_weight) * div
    if grad is not None:
        grad.mul_((1.0 - hard_weight) * inv_t)
    if hard_weight:
        hard, hard_grad = ce_rows(
            s_logits, labels, ignore_index=ignore_index, inv_t=1.0, grad_scale=None, want_grad=want_grad
        )
        rows = rows + hard_weight * hard
        if grad is not None:
            grad.add_(hard_grad, alpha=hard_weight)
    if grad is not None:
        grad.mul_(valid[:, None])
    return torch.where(valid, rows, 0.0), grad
