"""Fused linear + cross-entropy: the loss of `hidden @ weight.T` on `labels` without the `[N, V]` logits.

    loss = fused_linear_cross_entropy(hidden, weight, labels)        # [N, H], [V, H], [N] -> scalar
    loss.backward()                                                   # grads to hidden and weight

`reduction="mean"` averages over non-ignored tokens and is 0 (with zero gradients, never NaN) when all are ignored;
`"sum"` sums; `"none"` returns `[N]` with 0 on ignored rows. `temperature` divides the logits. The loss is fp32
whatever the inputs' dtype (fp64 for fp64 inputs), like a bf16 model's loss computed on upcast logits.
For "mean"/"sum" the gradient is computed in the forward pass chunk by chunk (see `_chunking.py` for why) and only
rescaled by the upstream scalar in the backward; `"none"` saves nothing big and recomputes in the backward, because
per-row upstream gradients cannot be folded into an already accumulated dW.
The plain-torch definition lives in `reference.py`.
"""

from __future__ import annotations

import torch

from ._chunking import DW_ACCUMULATIONS, plan_chunk_rows, release_grads, run_chunks
from .impls import Impl, resolve_impl

REDUCTIONS = ("mean", "sum", "none")


def _check_inputs(hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, prefix: str = "") -> None:
    if hidden.dim() != 2 or weight.dim() != 2 or hidden.shape[1] != weight.shape[1]:
        raise ValueError(
            f"{prefix}hidden must be [N, H] and weight [V, H]; got {tuple(hidden.shape)} and {tuple(weight.shape)}"
        )
    if labels.shape != hidden.shape[:1]:
        raise ValueError(f"labels must be [N] = [{hidden.shape[0]}]; got {tuple(labels.shape)}")
    if hidden.dtype != weight.dtype:
        raise ValueError(f"{prefix}hidden and weight dtypes differ: {hidden.dtype} vs {weight.dtype}")


def _check_dw_accumulation(dw_accumulation: str) -> None:
    if dw_accumulation not in DW_ACCUMULATIONS:
        raise ValueError(
            f"unknown dw_accumulation {dw_accumulation!r}; choose one of: {', '.join(DW_ACCUMULATIONS)}"
        )


def _ce_chunks(impl: Impl, hidden, weight, labels, ignore_index, inv_t, grad_scale, need_dx, need_dw, dw_acc):
    """Run the chunk loop with the CE row op; `grad_scale` is an optional per-row upstream gradient `[N]`."""
    want_grad = need_dx or need_dw
    rows_op = impl.module.ce_rows

    def row_fn(start: int, end: int, logits: torch.Tensor):
        scale = None if grad_scale is None else grad_scale[start:end]
        return rows_op(
            logits,
            labels[start:end],
            ignore_index=ignore_index,
            inv_t=inv_t,
            grad_scale=scale,
            want_grad=want_grad,
        )

    bytes_per_logit = hidden.element_size() + impl.module.CE_BYTES_PER_LOGIT
    chunk = plan_chunk_rows(hidden.shape[0], weight, bytes_per_logit, need_dw=need_dw, dw_accumulation=dw_acc)
    return run_chunks(
        hidden, weight, row_fn, chunk=chunk, need_dx=need_dx, need_dw=need_dw, dw_accumulation=dw_acc
    )


class _FusedLinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, labels, ignore_index, reduction, inv_t, impl, need_dx, need_dw, dw_acc):
        ctx.meta = (ignore_index, reduction, inv_t, impl, need_dx, need_dw, dw_acc)
        ctx.weight_dtype, ctx.impl = weight.dtype, impl
        in_forward = reduction != "none" and (need_dx or need_dw)  # gradient computed now
        dx_now, dw_now = need_dx and in_forward, need_dw and in_forward
        losses, dx, dw = _ce_chunks(
            impl, hidden, weight, labels, ignore_index, inv_t, None, dx_now, dw_now, dw_acc
        )
        if reduction == "none":
            ctx.save_for_backward(hidden, weight, labels)
            return losses
        norm = torch.ones((), device=hidden.device, dtype=losses.dtype)  # [] device scalar: no host sync
        if reduction == "mean":
            norm = norm / (labels != ignore_index).sum().clamp_min(1)
        ctx.save_for_backward(dx, dw, norm)
        return losses.sum() * norm

    @staticmethod
    def backward(ctx, grad_out):
        ignore_index, reduction, inv_t, impl, need_dx, need_dw, dw_acc = ctx.meta
        if reduction == "none":
            hidden, weight, labels = ctx.saved_tensors
            # [N]; contiguous because `loss.sum().backward()` hands an expanded (stride-0) gradient
            rows_grad = grad_out.to(torch.promote_types(grad_out.dtype, torch.float32)).contiguous()
            _, dx, dw = _ce_chunks(
                impl, hidden, weight, labels, ignore_index, inv_t, rows_grad, need_dx, need_dw, dw_acc
            )
            return dx, None if dw is None else dw.to(weight.dtype), *([None] * 8)
        dx, dw = release_grads(ctx, grad_out)
        return dx, dw, *([None] * 8)


def fused_linear_cross_entropy(
    hidden: torch.Tensor,  # [N, H]
    weight: torch.Tensor,  # [V, H]
    labels: torch.Tensor,  # [N] int64, ignore_index for ignored tokens
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
    temperature: float = 1.0,
    impl: str = "auto",
    dw_accumulation: str = "fp32",
) -> torch.Tensor:
    """Cross-entropy of `hidden @ weight.T / temperature` against `labels`; scalar, or `[N]` for "none".

    `dw_accumulation`: "fp32" sums the weight gradient over token chunks in fp32 (exact; 4·V·H extra bytes),
    "weight" in the weight's dtype (one rounding per chunk, peak memory at the floor); see `_chunking.py`.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; choose one of: {', '.join(REDUCTIONS)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    _check_dw_accumulation(dw_accumulation)
    _check_inputs(hidden, weight, labels)
    backend = resolve_impl(impl, hidden.device)
    grad_on = torch.is_grad_enabled()
    need_dx, need_dw = grad_on and hidden.requires_grad, grad_on and weight.requires_grad
    return _FusedLinearCrossEntropy.apply(
        hidden.contiguous(), weight.contiguous(), labels.long().contiguous(),
        ignore_index, reduction, 1.0 / temperature, backend, need_dx, need_dw, dw_accumulation,
    )  # fmt: skip
