"""The token-chunk loop shared by every fused LM-head loss and every implementation.

Design (gradient computed in the forward pass, as Liger does, rather than recomputed in the backward as CCE does):
for each chunk of `c` tokens, one GEMM makes the `[c, V]` logits in the inputs' dtype (cuBLAS accumulates in fp32),
a row op (`impls.py`: Triton kernel or torch) turns them into per-row losses and, in place, into the logits gradient
with fp32 softmax statistics, then two GEMMs give `dX[c] = dlogits @ W` and `dW += dlogits.T @ X[c]` into an fp32
accumulator. Why gradient-in-forward: a training step always runs both passes, and it costs 6·N·H·V FLOPs against
8·N·H·V for recompute, a 25% saving on the dominant term. Its costs are kept small deliberately:

- the dW accumulator is read and written once per chunk, so chunks are as large as the memory budget allows
  (`CHUNK_BUDGET_BYTES`, 500 MiB on CUDA: N=8192 at V=32000 is one chunk, so dW comes out of a single GEMM
  exactly as plain PyTorch computes it), leaving 12 MiB of the issue's "dX + dW + 512 MiB" goal for row stats;
- `dw_accumulation="fp32"` (default) sums the chunks' dW in an fp32 accumulator: exact summation, 4·V·H extra
  bytes. The first chunk writes it (beta=0: no zero-fill pass) and the backward casts it with the upstream scale
  in one pass. Because that backward holds the accumulator and the cast dW together, chunk transients up to dW's
  own size add nothing to the peak, so in this mode chunks grow to that size (fewer accumulator passes);
- `dw_accumulation="weight"` accumulates in the weight's dtype through cuBLAS's beta=1 epilogue (fp32 arithmetic,
  one rounding per chunk, as Liger does): peak memory at the floor dX + dW + one chunk, a little faster;
- per-token upstream gradients (`reduction="none"`) cannot be folded in after the fact, so that one mode recomputes
  in the backward (the fix Liger needed in #1298), reusing this same loop with a per-row scale.

There is no host synchronisation: the mean's normaliser is a device tensor and no boolean indexing is done.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

# Bytes a chunk's transient buffers may take, per device type; the row ops declare their bytes per logit.
CHUNK_BUDGET_BYTES: dict[str, int] = {"cuda": 500 << 20, "cpu": 64 << 20}
DW_ACCUMULATIONS = ("fp32", "weight")
MAX_CHUNK_ROWS = 8192
_GEMM_ROW_MULTIPLE = 128

RowFn = Callable[[int, int, torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]]


def pick_chunk_rows(
    n_rows: int, vocab: int, bytes_per_logit: int, device: torch.device, budget: int | None = None
) -> int:
    """Rows per chunk so that `[rows, vocab]` transients fit the budget (default: the device's); a multiple of 128."""
    if budget is None:
        budget = CHUNK_BUDGET_BYTES.get(device.type, CHUNK_BUDGET_BYTES["cpu"])
    rows = min(max(n_rows, 1), MAX_CHUNK_ROWS, max(1, budget // max(1, vocab * bytes_per_logit)))
    if rows >= n_rows or rows < _GEMM_ROW_MULTIPLE:
        return rows
    # Same number of chunks, balanced (no small last GEMM), rounded up to a multiple of 128 within the budget.
    n_chunks = -(-n_rows // rows)
    balanced = -(-n_rows // n_chunks)
    balanced += -balanced % _GEMM_ROW_MULTIPLE
    return min(balanced, rows - rows % _GEMM_ROW_MULTIPLE) if balanced > rows else balanced


def plan_chunk_rows(
    n_rows: int, weight: torch.Tensor, bytes_per_logit: int, *, need_dw: bool, dw_accumulation: str
) -> int:
    """`pick_chunk_rows`, grown to dW's size when an fp32 accumulator will be held anyway (see the module doc)."""
    vocab, device = weight.shape[0], weight.device
    rows = pick_chunk_rows(n_rows, vocab, bytes_per_logit, device)
    if rows < n_rows and need_dw and dw_accumulation == "fp32" and weight.element_size() < 4:
        base = CHUNK_BUDGET_BYTES.get(device.type, CHUNK_BUDGET_BYTES["cpu"])
        dw_bytes = weight.numel() * weight.element_size()
        rows = pick_chunk_rows(n_rows, vocab, bytes_per_logit, device, budget=max(base, dw_bytes))
    return rows


_MM_OUT_DTYPE = {"ok": True}  # flipped off once if this torch/GPU lacks addmm(out_dtype=)


def mm_into(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *, accumulate: bool) -> None:
    """`out = a @ b` (or `out += a @ b`), in `out`'s dtype, without rounding the product to a lower precision first.

    Same dtypes: one cuBLAS call (beta=1 when accumulating: fp32 arithmetic, one rounding into `out`). fp32 `out`
    with half-precision operands: cuBLAS reads them and accumulates in fp32 (`out_dtype=`); elsewhere, or if this
    torch lacks that overload, the operands are upcast, which is exact but slower.
    """
    if out.dtype == a.dtype:
        out.addmm_(a, b) if accumulate else torch.mm(a, b, out=out)
        return
    if out.device.type == "cuda" and _MM_OUT_DTYPE["ok"]:
        try:
            if accumulate:
                torch.addmm(out, a, b, out_dtype=out.dtype, out=out)
            else:
                torch.mm(a, b, out_dtype=out.dtype, out=out)
            return
        except (RuntimeError, TypeError, NotImplementedError):
            _MM_OUT_DTYPE["ok"] = False
    a, b = a.to(out.dtype), b.to(out.dtype)
    out.addmm_(a, b) if accumulate else torch.mm(a, b, out=out)


def run_chunks(
    hidden: torch.Tensor,  # [N, H], contiguous
    weight: torch.Tensor,  # [V, H], contiguous
    row_fn: RowFn,  # (start, end, logits [c, V]) -> (loss rows [c] fp32, dlogits [c, V] | None)
    *,
    chunk: int,
    need_dx: bool,
    need_dw: bool,
    dw_accumulation: str = "fp32",
    logits_dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Per-row losses `[N]` fp32, and when asked `dX [N, H]` (hidden's dtype) and `dW [V, H]`.

    The logits are made in `logits_dtype` (default: hidden's); fp32 from half-precision operands is read straight
    from the GEMM's fp32 accumulator, unrounded. The row op's gradient is cast to hidden's dtype for the two
    gradient GEMMs (the Triton distillation rows already write it so).

    dW is an fp32 accumulator when several chunks are summed with `dw_accumulation="fp32"`, else in the weight's
    dtype (a single chunk's GEMM already accumulates in fp32). fp64 inputs keep fp64 losses and dW, so fp64 runs
    check the formulas to rounding error.
    """
    n, v = hidden.shape[0], weight.shape[0]
    acc_dtype = torch.promote_types(hidden.dtype, torch.float32)
    losses = torch.empty(n, device=hidden.device, dtype=acc_dtype)  # [N]
    dx = torch.empty_like(hidden) if need_dx else None  # [N, H]
    dw = None
    if need_dw:
        summed_in_fp32 = chunk < n and dw_accumulation == "fp32"
        dw = torch.empty(
            weight.shape, device=weight.device, dtype=acc_dtype if summed_in_fp32 else weight.dtype
        )
        if n == 0:
            dw.zero_()  # [V, H]
    buf = torch.empty((min(chunk, n), v), device=hidden.device, dtype=logits_dtype or hidden.dtype)  # [c, V]
    for start in range(0, n, chunk):
        end = min(start + chunk, n)
        x = hidden[start:end]  # [c, H]
        logits = buf[: end - start]  # [c, V]
        mm_into(logits, x, weight.t(), accumulate=False)
        losses[start:end], grad = row_fn(start, end, logits)
        if grad is None:
            continue
        grad = grad.to(hidden.dtype)  # [c, V]; a no-op for the Triton paths
        if dx is not None:
            torch.mm(grad, weight, out=dx[start:end])
        if dw is not None:
            mm_into(dw, grad.t(), x, accumulate=start > 0)
    return losses, dx, dw


def scaled_cast(
    acc: torch.Tensor,
    scale: torch.Tensor,
    dtype: torch.dtype,
    out: torch.Tensor | None = None,
    rows: int = 4096,
) -> torch.Tensor:
    """`(acc * scale).to(dtype)` block by block (no full-size fp32 temporary; `acc` intact), or into `out`,
    which may be `acc` itself when the dtypes match (then in place)."""
    if out is acc:
        return acc.mul_(scale)
    out = torch.empty(acc.shape, device=acc.device, dtype=dtype) if out is None else out
    for start in range(0, acc.shape[0], rows):
        torch.mul(acc[start : start + rows], scale, out=out[start : start + rows])
    return out


def release_grads(ctx, scale: torch.Tensor):
    """The forward-computed (dX, dW) saved on `ctx`, times the upstream scalar, for its backward.

    In place on the saved buffers where the dtype allows (no second dX-sized buffer at the peak); the fp32 dW
    accumulator is cast block by block. A second backward through the same graph would see scaled buffers, so it
    is refused with a clear error (checked before autograd's own saved-tensor version check).
    """
    if getattr(ctx, "grads_released", False):
        raise RuntimeError(
            "backward ran twice through a fused LM-head loss (retain_graph=True): its gradients were computed in "
            "the forward and are consumed by the first backward; recompute the loss instead"
        )
    ctx.grads_released = True
    dx, dw, norm = ctx.saved_tensors
    scale = scale.to(norm.dtype) * norm  # [] fp32 (fp64 for fp64 inputs)
    # the impl's own one-pass kernel where it has one: torch's bf16 * fp32-scalar-tensor is a slow generic kernel
    cast = getattr(ctx.impl.module, "scaled_cast", scaled_cast)
    dx = None if dx is None else cast(dx, scale, dx.dtype, out=dx)
    if dw is not None:
        dw = cast(dw, scale, ctx.weight_dtype, out=dw if dw.dtype == ctx.weight_dtype else None)
    return dx, dw
