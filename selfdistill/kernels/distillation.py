"""Fused linear distillation: student/teacher logit divergence (+ optional hard CE) without `[N, V]` logits.

    loss = fused_linear_distillation(s_hidden, s_weight, t_hidden, t_weight, labels, divergence="jsd", beta=0.5)

The scalar is, averaged over tokens whose label is not `ignore_index` (0 when none is, never NaN),
`hard_weight * CE(student logits at T=1, labels) + (1 - hard_weight) * D(teacher, student at temperature T)`,
with `D` from the registry in `divergences.py` (`forward_kl`, `reverse_kl`, `jsd` with `beta`). No T^2 factor.
The teacher's logits are made chunk by chunk inside the forward and never receive a gradient. Gradients to the
student are computed in the forward pass (see `_chunking.py`) and rescaled by the upstream scalar in the backward.
The plain-torch definition lives in `reference.py`.
"""

from __future__ import annotations

import torch

from ._chunking import pick_chunk_rows, release_grads, run_chunks
from .cross_entropy import _check_inputs
from .divergences import resolve_divergence
from .impls import resolve_impl


class _FusedLinearDistillation(torch.autograd.Function):
    @staticmethod
    def forward(ctx, s_hidden, s_weight, t_hidden, t_weight, labels, div, beta, inv_t, hard_weight, ignore_index,
                impl, need_dx, need_dw):  # fmt: skip
        n, vocab = s_hidden.shape[0], s_weight.shape[0]
        want_grad = need_dx or need_dw
        bytes_per_logit = (
            s_hidden.element_size() + t_hidden.element_size() + impl.module.DISTILL_BYTES_PER_LOGIT
        )
        chunk = pick_chunk_rows(n, vocab, bytes_per_logit, s_hidden.device)
        t_buf = torch.empty((min(chunk, n), vocab), device=t_hidden.device, dtype=t_hidden.dtype)  # [c, V]

        def row_fn(start: int, end: int, s_logits: torch.Tensor):
            t_logits = torch.mm(t_hidden[start:end], t_weight.t(), out=t_buf[: end - start])  # [c, V]
            return impl.module.distill_rows(
                s_logits, t_logits, labels[start:end], divergence=div, beta=beta, inv_t=inv_t,
                hard_weight=hard_weight, ignore_index=ignore_index, want_grad=want_grad,
            )  # fmt: skip

        losses, dx, dw = run_chunks(s_hidden, s_weight, row_fn, chunk=chunk, need_dx=need_dx, need_dw=need_dw)
        # [] device scalar: no host sync
        norm = 1.0 / (labels != ignore_index).sum().clamp_min(1).to(losses.dtype)
        ctx.weight_dtype = s_weight.dtype
        ctx.save_for_backward(dx, dw, norm)
        return losses.sum() * norm  # fp32 (fp64 for fp64 inputs)

    @staticmethod
    def backward(ctx, grad_out):
        dx, dw = release_grads(ctx, grad_out)
        return dx, dw, *([None] * 11)


def fused_linear_distillation(
    student_hidden: torch.Tensor,  # [N, Hs]
    student_weight: torch.Tensor,  # [V, Hs]
    teacher_hidden: torch.Tensor,  # [N, Ht]
    teacher_weight: torch.Tensor,  # [V, Ht]
    labels: torch.Tensor,  # [N] int64; ignore_index marks tokens left out of both terms
    *,
    divergence: str = "forward_kl",
    beta: float = 0.5,
    temperature: float = 1.0,
    hard_weight: float = 0.0,
    ignore_index: int = -100,
    impl: str = "auto",
) -> torch.Tensor:
    """Scalar distillation loss (see module docstring); gradients reach the student's hidden and weight only."""
    div = resolve_divergence(divergence, beta)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not 0.0 <= hard_weight <= 1.0:
        raise ValueError(f"hard_weight must be in [0, 1], got {hard_weight}")
    _check_inputs(student_hidden, student_weight, labels, prefix="student_")
    _check_inputs(teacher_hidden, teacher_weight, labels, prefix="teacher_")
    if teacher_weight.shape[0] != student_weight.shape[0]:
        raise ValueError(
            f"student and teacher vocabularies differ: {student_weight.shape[0]} vs {teacher_weight.shape[0]}"
        )
    backend = resolve_impl(impl, student_hidden.device)
    grad_on = torch.is_grad_enabled()
    need_dx, need_dw = grad_on and student_hidden.requires_grad, grad_on and student_weight.requires_grad
    return _FusedLinearDistillation.apply(
        student_hidden.contiguous(), student_weight.contiguous(),
        teacher_hidden.detach().contiguous(), teacher_weight.detach().contiguous(), labels.long().contiguous(),
        div, float(beta), 1.0 / temperature, float(hard_weight), ignore_index, backend, need_dx, need_dw,
    )  # fmt: skip
