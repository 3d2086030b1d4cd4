"""Row ops as Triton kernels: same signatures and semantics as `_torch_rows.py`, but in place and in one launch.

One program per token row streams the row's logits in `BLOCK_V` tiles: pass 1 keeps an online max / sum-exp in fp32
registers (for the student at T, at T=1 when a hard loss is mixed in, and for the teacher), pass 2 (divergences
whose gradient needs the row's divergence) reduces it, and the last pass writes the logits gradient over the logits
in the inputs' dtype (over the logits, or for distillation's fp32 logits into a separate half-precision buffer).
Nothing of size `[c, V]` is allocated here: the chunk's transients are the chunk loop's buffers.
The GEMMs around these kernels stay in cuBLAS (`_chunking.py`), which reaches the matmul roofline that a hand-written
`tl.dot` kernel would have to match; these kernels are memory-bound and read each row two or three times.

Offsets are int64 (rows x V passes 2^31 at 16K tokens of a 151936 vocabulary). Runs on CPU under
`TRITON_INTERPRET=1` in fp32 (the interpreter has no bf16 arithmetic; we only load/store bf16 and upcast).
This module imports triton; import it lazily (see `impls.py`).
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ._chunking import scaled_cast as _torch_scaled_cast
from .divergences import Divergence

CE_BYTES_PER_LOGIT = 0  # in place: nothing beyond the logits buffer
DISTILL_BYTES_PER_LOGIT = 0
WRITES_GRAD_OUT = True  # distill_rows writes the gradient into a caller's buffer (`grad_out`)


def _launch_config(vocab: int, device: torch.device) -> dict:
    if device.type != "cuda":  # interpreter: small tiles keep numpy fast on tiny test shapes
        return {"BLOCK_V": min(triton.next_power_of_2(vocab), 128), "num_warps": 1}
    block = min(triton.next_power_of_2(vocab), 8192)
    return {"BLOCK_V": block, "num_warps": 16 if block >= 8192 else 8 if block >= 2048 else 4}


@triton.jit
def _online_lse_step(m, s, z):
    m_new = tl.maximum(m, tl.max(z, 0))
    return m_new, s * tl.exp(m - m_new) + tl.sum(tl.exp(z - m_new), 0)


@triton.jit
def _ce_rows_kernel(
    logits_ptr, stride, labels_ptr, loss_ptr, scale_ptr, V, ignore_index, inv_t,
    HAS_SCALE: tl.constexpr, WANT_GRAD: tl.constexpr, BLOCK_V: tl.constexpr,
):  # fmt: skip
    row = tl.program_id(0).to(tl.int64)
    base = logits_ptr + row * stride
    label = tl.load(labels_ptr + row)
    valid = label != ignore_index
    m = -float("inf")
    s = 0.0
    for start in range(0, V, BLOCK_V):
        cols = start + tl.arange(0, BLOCK_V)
        z = tl.load(base + cols, mask=cols < V, other=-float("inf")).to(tl.float32) * inv_t
        m, s = _online_lse_step(m, s, z)
    lse = m + tl.log(s)
    safe = tl.where(valid, label, 0)
    z_label = tl.load(base + safe).to(tl.float32) * inv_t
    tl.store(loss_ptr + row, tl.where(valid, lse - z_label, 0.0))
    if WANT_GRAD:
        scale = tl.where(valid, inv_t, 0.0)
        if HAS_SCALE:
            scale = scale * tl.load(scale_ptr + row)
        for start in range(0, V, BLOCK_V):
            cols = start + tl.arange(0, BLOCK_V)
            mask = cols < V
            z = tl.load(base + cols, mask=mask, other=0.0).to(tl.float32) * inv_t
            grad = (tl.exp(z - lse) - tl.where(cols == safe, 1.0, 0.0)) * scale
            tl.store(base + cols, grad.to(logits_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _divergence_terms(ls, lt, beta, log_beta, log_1m_beta, DIV: tl.constexpr):
    """(divergence term, student-side term) of one tile; see divergences.py for the formulas."""
    ps = tl.exp(ls)
    if DIV == 0:
        term = tl.exp(lt) * (lt - ls)
        student = term
    elif DIV == 1:
        term = ps * (ls - lt)
        student = term
    else:
        a = ls + log_1m_beta
        b = lt + log_beta
        hi = tl.maximum(a, b)
        lm = hi + tl.log(1.0 + tl.exp(tl.minimum(a, b) - hi))
        student = (1.0 - beta) * ps * (ls - lm)
        term = beta * tl.exp(lt) * (lt - lm) + student
    return term, student


# long function: one fused Triton kernel (online softmax of both models, loss and gradient in one pass over the
# vocabulary); split into helpers it would need extra loads of the same rows or extra launches.
@triton.jit
def _distill_rows_kernel(
    s_ptr, s_stride, t_ptr, t_stride, g_ptr, g_stride, labels_ptr, loss_ptr, V, ignore_index, inv_t,
    beta, log_beta, log_1m_beta, hard_weight,
    DIV: tl.constexpr, HAS_HARD: tl.constexpr, WANT_GRAD: tl.constexpr, BLOCK_V: tl.constexpr,
):  # fmt: skip
    row = tl.program_id(0).to(tl.int64)
    s_base = s_ptr + row * s_stride
    t_base = t_ptr + row * t_stride
    g_base = g_ptr + row * g_stride
    label = tl.load(labels_ptr + row)
    valid = label != ignore_index
    safe = tl.where(valid, label, 0)
    ms = -float("inf")  # running max / sum-exp: student at T, teacher at T, student at T=1 (hard loss)
    ss = 0.0
    mt = -float("inf")
    st = 0.0
    m1 = -float("inf")
    s1 = 0.0
    for start in range(0, V, BLOCK_V):  # pass 1: log-sum-exps
        cols = start + tl.arange(0, BLOCK_V)
        mask = cols < V
        zs = tl.load(s_base + cols, mask=mask, other=-float("inf")).to(tl.float32)
        zt = tl.load(t_base + cols, mask=mask, other=-float("inf")).to(tl.float32)
        ms, ss = _online_lse_step(ms, ss, zs * inv_t)
        mt, st = _online_lse_step(mt, st, zt * inv_t)
        if HAS_HARD:
            m1, s1 = _online_lse_step(m1, s1, zs)
    lse_s = ms + tl.log(ss)
    lse_t = mt + tl.log(st)
    div = 0.0
    student = 0.0
    for start in range(0, V, BLOCK_V):  # pass 2: the divergence and its student-side sum
        cols = start + tl.arange(0, BLOCK_V)
        mask = cols < V
        ls = tl.load(s_base + cols, mask=mask, other=0.0).to(tl.float32) * inv_t - lse_s
        lt = tl.load(t_base + cols, mask=mask, other=0.0).to(tl.float32) * inv_t - lse_t
        term, stud = _divergence_terms(ls, lt, beta, log_beta, log_1m_beta, DIV)
        div += tl.sum(tl.where(mask, term, 0.0), 0)
        student += tl.sum(tl.where(mask, stud, 0.0), 0)
    loss = (1.0 - hard_weight) * div
    lse_1 = 0.0  # student log-sum-exp at T=1, only with a hard loss
    if HAS_HARD:
        lse_1 = m1 + tl.log(s1)
        loss += hard_weight * (lse_1 - tl.load(s_base + safe).to(tl.float32))
    tl.store(loss_ptr + row, tl.where(valid, loss, 0.0))
    if WANT_GRAD:
        soft_scale = tl.where(valid, (1.0 - hard_weight) * inv_t, 0.0)
        hard_scale = tl.where(valid, hard_weight, 0.0)
        for start in range(0, V, BLOCK_V):  # pass 3: the student's logits gradient, in place
            cols = start + tl.arange(0, BLOCK_V)
            mask = cols < V
            zs = tl.load(s_base + cols, mask=mask, other=0.0).to(tl.float32)
            ls = zs * inv_t - lse_s
            lt = tl.load(t_base + cols, mask=mask, other=0.0).to(tl.float32) * inv_t - lse_t
            ps = tl.exp(ls)
            if DIV == 0:
                grad = ps - tl.exp(lt)
            elif DIV == 1:
                grad = ps * (ls - lt - student)
            else:
                a = ls + log_1m_beta
                b = lt + log_beta
                hi = tl.maximum(a, b)
                lm = hi + tl.log(1.0 + tl.exp(tl.minimum(a, b) - hi))
                grad = ps * ((1.0 - beta) * (ls - lm) - student)
            grad = grad * soft_scale
            if HAS_HARD:
                grad += (tl.exp(zs - lse_1) - tl.where(cols == safe, 1.0, 0.0)) * hard_scale
            tl.store(g_base + cols, grad.to(g_ptr.dtype.element_ty), mask=mask)


# Whether the kernels were decorated under TRITON_INTERPRET=1 (read by triton at decoration, i.e. at import here).
INTERPRETED = not isinstance(_ce_rows_kernel, triton.runtime.JITFunction)


def ce_rows(logits, labels, *, ignore_index, inv_t, grad_scale, want_grad):
    """See `_torch_rows.ce_rows`; writes the gradient over `logits` and returns it."""
    n, vocab = logits.shape
    loss = torch.empty(n, device=logits.device, dtype=torch.float32)
    if n:
        _ce_rows_kernel[(n,)](
            logits, logits.stride(0), labels, loss, grad_scale if grad_scale is not None else loss,
            vocab, ignore_index, inv_t,
            HAS_SCALE=grad_scale is not None, WANT_GRAD=want_grad, **_launch_config(vocab, logits.device),
        )  # fmt: skip
    return loss, (logits if want_grad else None)


def distill_rows(
    s_logits, t_logits, labels, *, divergence: Divergence, beta, inv_t, hard_weight, ignore_index, want_grad,
    grad_out=None,
):  # fmt: skip
    """See `_torch_rows.distill_rows`; writes the student gradient into `grad_out` `[c, V]` (a separate buffer,
    e.g. bf16 for fp32 logits; default: over `s_logits`, in place) and returns it."""
    grad_out = s_logits if grad_out is None else grad_out
    n, vocab = s_logits.shape
    loss = torch.empty(n, device=s_logits.device, dtype=torch.float32)
    if n:
        log_beta = math.log(beta) if beta > 0 else -float("inf")
        log_1m_beta = math.log1p(-beta) if beta < 1 else -float("inf")
        _distill_rows_kernel[(n,)](
            s_logits, s_logits.stride(0), t_logits, t_logits.stride(0), grad_out, grad_out.stride(0), labels, loss,
            vocab, ignore_index, inv_t,
            beta, log_beta, log_1m_beta, hard_weight,
            DIV=divergence.triton_id, HAS_HARD=hard_weight != 0.0, WANT_GRAD=want_grad,
            **_launch_config(vocab, s_logits.device),
        )  # fmt: skip
    return loss, (grad_out if want_grad else None)


@triton.jit
def _scaled_cast_kernel(src_ptr, dst_ptr, scale_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(src_ptr + offs, mask=mask).to(tl.float32) * tl.load(scale_ptr)
    tl.store(dst_ptr + offs, x.to(dst_ptr.dtype.element_ty), mask=mask)


def scaled_cast(
    acc: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype, out: torch.Tensor | None = None
) -> torch.Tensor:
    """`(acc * scale).to(dtype)` in one pass, fp32 arithmetic (e.g. the fp32 dW accumulator into the weight's
    dtype), into `out` if given (`acc` itself for in place: each element is read and written by one thread).
    torch's half * fp32-scalar-tensor runs a generic, unvectorised kernel at about half the bandwidth."""
    if (
        acc.device.type != "cuda"
        or acc.dtype == torch.float64  # fp64 runs check formulas: keep the scale in fp64 (torch path)
        or not acc.is_contiguous()
        or (out is not None and not out.is_contiguous())
    ):
        return _torch_scaled_cast(acc, scale, dtype, out=out)
    out = torch.empty(acc.shape, device=acc.device, dtype=dtype) if out is None else out
    n = acc.numel()
    block = 4096
    _scaled_cast_kernel[(triton.cdiv(n, block),)](
        acc, out, scale.float().reshape(1), n, BLOCK=block, num_warps=8
    )
    return out
