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

from ._chunking import mm_into, plan_chunk_rows, release_grads, run_chunks
from .cross_entropy import _check_dw_accumulation, _check_inputs
from .divergences import resolve_divergence
from .impls import resolve_impl


class _FusedLinearDistillation(torch.autograd.Function):
    @staticmethod
    def forward(ctx, s_hidden, s_weight, t_hidden, t_weight, labels, div, beta, inv_t, hard_weight, ignore_index,
                impl, need_dx, need_dw, dw_acc, fp32_logits):  # fmt: skip
        n, vocab = s_hidden.shape[0], s_weight.shape[0]
        want_grad = need_dx or need_dw
        half = s_hidden.dtype in (torch.float16, torch.bfloat16)
        logits_dtype = torch.float32 if fp32_logits and half else s_hidden.dtype
        # a separate half-precision gradient buffer when the logits are fp32, for row ops that write into one
        separate_grad = want_grad and logits_dtype != s_hidden.dtype and impl.module.WRITES_GRAD_OUT
        logit_bytes = torch.finfo(logits_dtype).bits // 8
        bytes_per_logit = (
            2 * logit_bytes
            + (s_hidden.element_size() if separate_grad else 0)
            + impl.module.DISTILL_BYTES_PER_LOGIT
        )
        chunk = plan_chunk_rows(n, s_weight, bytes_per_logit, need_dw=need_dw, dw_accumulation=dw_acc)
        rows = min(chunk, n)
        t_buf = torch.empty((rows, vocab), device=t_hidden.device, dtype=logits_dtype)  # [c, V]
        g_buf = (
            torch.empty((rows, vocab), device=s_hidden.device, dtype=s_hidden.dtype)
            if separate_grad
            else None
        )

        def row_fn(start: int, end: int, s_logits: torch.Tensor):
            t_logits = t_buf[: end - start]  # [c, V]
            mm_into(t_logits, t_hidden[start:end], t_weight.t(), accumulate=False)
            return impl.module.distill_rows(
                s_logits, t_logits, labels[start:end], divergence=div, beta=beta, inv_t=inv_t,
                hard_weight=hard_weight, ignore_index=ignore_index, want_grad=want_grad,
                grad_out=None if g_buf is None else g_buf[: end - start],
            )  # fmt: skip

        losses, dx, dw = run_chunks(
            s_hidden, s_weight, row_fn, chunk=chunk, need_dx=need_dx, need_dw=need_dw, dw_accumulation=dw_acc,
            logits_dtype=logits_dtype,
        )  # fmt: skip
        # [] device scalar: no host sync
        norm = 1.0 / (labels != ignore_index).sum().clamp_min(1).to(losses.dtype)
        ctx.weight_dtype, ctx.impl = s_weight.dtype, impl
        ctx.save_for_backward(dx, dw, norm)
        return losses.sum() * norm  # fp32 (fp64 for fp64 inputs)

    @staticmethod
    def backward(ctx, grad_out):
        dx, dw = release_grads(ctx, grad_out)
        return dx, dw, *([None] * 13)


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
    dw_accumulation: str = "fp32",
    fp32_logits: bool = True,
) -> torch.Tensor:
    """Scalar distillation loss (see module docstring); gradients reach the student's hidden and weight only.

    `dw_accumulation` as in `fused_linear_cross_entropy`. `fp32_logits` (half-precision inputs only) keeps both
    models' logits in fp32, straight from the GEMM's accumulator: a divergence's gradient is a difference of two
    nearly equal distributions, and logits rounded to bf16 first (|z|·2⁻⁹ each) make its error several times
    plain bf16's (measured in docs/benchmarks.md). It costs 4 more bytes per logit of chunk buffer.
    """
    div = resolve_divergence(divergence, beta)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not 0.0 <= hard_weight <= 1.0:
        raise ValueError(f"hard_weight must be in [0, 1], got {hard_weight}")
    _check_dw_accumulation(dw_accumulation)
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
        dw_accumulation, bool(fp32_logits),
    )  # fmt: skip
