"""The token-chunk loop shared by every fused LM-head loss and every implementation.

Design (gradient computed in the forward pass, as Liger does, rather than recomputed in the backward as CCE does):
for each chunk of `c` tokens, one GEMM makes the `[c, V]` logits in the inputs' dtype (cuBLAS accumulates in fp32),
a row op (`impls.py`: Triton kernel or torch) turns them into per-row losses and, in place, into the logits gradient
with fp32 softmax statistics, then two GEMMs give `dX[c] = dlogits @ W` and `dW += dlogits.T @ X[c]` into an fp32
accumulator. Why gradient-in-forward: a training step always runs both passes, and it costs 6·N·H·V FLOPs against
8·N·H·V for recompute, a 25% saving on the dominant term. Its costs are kept small deliberately:

- the dW accumulator is read and written once per chunk, so chunks are as large as the memory budget allows
  (`CHUNK_BUDGET_BYTES`, 448 MiB on CUDA: one chunk at V=32000 and N=8192, 1536 tokens at V=151936 in
  bf16), leaving 64 MiB of the issue's "dX + dW + 512 MiB" peak-memory goal for cuBLAS workspaces and row stats;
- per-token upstream gradients (`reduction="none"`) cannot be folded in after the fact, so that one mode recomputes
  in the backward (the fix Liger needed in #1298), reusing this same loop with a per-row scale.

There is no host synchronisation: the mean's normaliser is a device tensor and no boolean indexing is done.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

# Bytes a chunk's transient buffers may take, per device type; the row ops declare their bytes per logit.
CHUNK_BUDGET_BYTES: dict[str, int] = {"cuda": 448 << 20, "cpu": 64 << 20}
MAX_CHUNK_ROWS = 8192
_GEMM_ROW_MULTIPLE = 128

RowFn = Callable[[int, int, torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]]


def pick_chunk_rows(n_rows: int, vocab: int, bytes_per_logit: int, device: torch.device) -> int:
    """Rows per chunk so that `[rows, vocab]` transients fit the device's budget; a GEMM-friendly multiple."""
    budget = CHUNK_BUDGET_BYTES.get(device.type, CHUNK_BUDGET_BYTES["cpu"])
    rows = min(max(n_rows, 1), MAX_CHUNK_ROWS, max(1, budget // max(1, vocab * bytes_per_logit)))
    if rows >= n_rows or rows < _GEMM_ROW_MULTIPLE:
        return rows
    # Same number of chunks, balanced (no small last GEMM), rounded up to a multiple of 128 within the budget.
    n_chunks = -(-n_rows // rows)
    balanced = -(-n_rows // n_chunks)
    balanced += -balanced % _GEMM_ROW_MULTIPLE
    return min(balanced, rows - rows % _GEMM_ROW_MULTIPLE) if balanced > rows else balanced


_MM_OUT_DTYPE = {"ok": True}  # flipped off once if this torch/GPU lacks addmm(out_dtype=)


def addmm_fp32(acc: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
    """`acc += a @ b` into an fp32 `acc` without rounding the product to bf16/fp16 first.

    On CUDA, cuBLAS reads half-precision operands and accumulates into fp32 in one call; elsewhere (or if that
    overload is missing) the operands are upcast, which is exact but slower.
    """
    if acc.device.type == "cuda" and a.dtype in (torch.float16, torch.bfloat16) and _MM_OUT_DTYPE["ok"]:
        try:
            torch.addmm(acc, a, b, out_dtype=torch.float32, out=acc)
            return
        except (RuntimeError, TypeError, NotImplementedError):
            _MM_OUT_DTYPE["ok"] = False
    if a.dtype == acc.dtype:
        acc.addmm_(a, b)
    else:
        acc.addmm_(a.to(acc.dtype), b.to(acc.dtype))


def run_chunks(
    hidden: torch.Tensor,  # [N, H], contiguous
    weight: torch.Tensor,  # [V, H], contiguous
    row_fn: RowFn,  # (start, end, logits [c, V]) -> (loss rows [c] fp32, dlogits [c, V] | None)
    *,
    chunk: int,
    need_dx: bool,
    need_dw: bool,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Per-row losses `[N]` fp32, and when asked `dX [N, H]` (hidden's dtype) and `dW [V, H]` (fp32 accumulator).

    fp64 inputs keep fp64 losses and accumulator, so fp64 runs check the formulas to rounding error.
    """
    n, v = hidden.shape[0], weight.shape[0]
    acc_dtype = torch.promote_types(hidden.dtype, torch.float32)
    losses = torch.empty(n, device=hidden.device, dtype=acc_dtype)  # [N]
    dx = torch.empty_like(hidden) if need_dx else None  # [N, H]
    dw = torch.zeros(weight.shape, device=weight.device, dtype=acc_dtype) if need_dw else None  # [V, H]
    buf = torch.empty((min(chunk, n), v), device=hidden.device, dtype=hidden.dtype)  # [c, V], reused
    for start in range(0, n, chunk):
        end = min(start + chunk, n)
        x = hidden[start:end]  # [c, H]
        logits = torch.mm(x, weight.t(), out=buf[: end - start])  # [c, V]
        losses[start:end], grad = row_fn(start, end, logits)
        if grad is None:
            continue
        grad = grad.to(hidden.dtype)  # [c, V]; a no-op for the in-place Triton path
        if dx is not None:
            torch.mm(grad, weight, out=dx[start:end])
        if dw is not None:
            addmm_fp32(dw, grad.t(), x)
    return losses, dx, dw


def scaled_cast(acc: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype, rows: int = 4096) -> torch.Tensor:
    """`(acc * scale).to(dtype)` block by block: no full-size fp32 temporary, and `acc` is left intact."""
    out = torch.empty(acc.shape, device=acc.device, dtype=dtype)
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
    dx = None if dx is None else dx.mul_(scale)
    if dw is not None:
        dw = dw.mul_(scale) if dw.dtype == ctx.weight_dtype else scaled_cast(dw, scale, ctx.weight_dtype)
    return dx, dw
