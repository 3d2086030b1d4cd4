"""The two dW accumulation modes and the chunk plan that depends on them (torch path; bf16 runs on CPU too)."""

from __future__ import annotations

import pytest
import torch
from _kernel_cases import DEVICE, leaves, random_inputs, random_labels, rel_err

from selfdistill.kernels import _chunking, fused_linear_cross_entropy, fused_linear_distillation
from selfdistill.kernels.reference import reference_linear_cross_entropy


def _dw_errors(dw_accumulation: str, n=200, h=32, vocab=301, chunk_rows=16):
    """rel error of bf16 dW (fused, `chunk_rows`-row chunks) and of plain bf16 PyTorch, both against fp64."""
    hidden, weight, gen = random_inputs(n, h, vocab, scale=4.0)
    labels = random_labels(n, vocab, 0.2, gen).to(DEVICE)
    x64, w64 = leaves(hidden, weight, dtype=torch.float64)
    reference_linear_cross_entropy(x64, w64, labels).backward()
    x, w = leaves(hidden, weight, dtype=torch.bfloat16)
    old = _chunking.MAX_CHUNK_ROWS
    _chunking.MAX_CHUNK_ROWS = chunk_rows
    try:
        fused_linear_cross_entropy(x, w, labels, impl="torch", dw_accumulation=dw_accumulation).backward()
    finally:
        _chunking.MAX_CHUNK_ROWS = old
    xp, wp = leaves(hidden, weight, dtype=torch.bfloat16)
    reference_linear_cross_entropy(xp, wp, labels).backward()
    assert w.grad.dtype == torch.bfloat16 and x.grad.dtype == torch.bfloat16
    return rel_err(w.grad, w64.grad), rel_err(wp.grad, w64.grad), rel_err(x.grad, x64.grad)


def test_fp32_accumulation_is_as_exact_as_plain_bf16_across_13_chunks():
    fused, plain, dx = _dw_errors("fp32")
    assert fused <= plain * 1.05 + 1e-4, (fused, plain)
    assert dx < 1e-2


def test_weight_dtype_accumulation_rounds_per_chunk_but_stays_close():
    fp32, _, _ = _dw_errors("fp32")
    weight, plain, _ = _dw_errors("weight")
    # 13 bf16 roundings of a running sum: measurably worse than fp32 summation, still within plain + 1e-2
    assert fp32 < weight <= plain + 1e-2, (fp32, weight, plain)


def test_modes_agree_exactly_in_fp32():
    """With fp32 weights there is nothing to round: both modes are the same computation."""
    hidden, weight, gen = random_inputs(40, 8, 37, scale=3.0)
    labels = random_labels(40, 37, 0.2, gen).to(DEVICE)
    grads = []
    for mode in ("fp32", "weight"):
        x, w = leaves(hidden, weight, dtype=torch.float32)
        fused_linear_cross_entropy(x, w, labels, impl="torch", dw_accumulation=mode).backward()
        grads.append(w.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=0)


def test_unknown_mode_is_rejected_by_name():
    x, w = torch.randn(3, 4), torch.randn(5, 4)
    y = torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match="dw_accumulation 'fp16'.*fp32, weight"):
        fused_linear_cross_entropy(x, w, y, dw_accumulation="fp16")
    with pytest.raises(ValueError, match="dw_accumulation"):
        fused_linear_distillation(x, w, x, w, y, dw_accumulation="bf16")


def test_chunks_grow_to_dw_size_only_when_an_fp32_accumulator_is_held():
    budget = _chunking.CHUNK_BUDGET_BYTES["cpu"]
    vocab, h = 32000, 2048  # bf16 dW = 125 MiB, above the 64 MiB CPU budget
    w = torch.empty(vocab, h, dtype=torch.bfloat16, device="meta")
    base = _chunking.pick_chunk_rows(8192, vocab, 2, w.device)
    assert base * vocab * 2 <= budget
    grown = _chunking.plan_chunk_rows(8192, w, 2, need_dw=True, dw_accumulation="fp32")
    assert base < grown and grown * vocab * 2 <= vocab * h * 2
    assert _chunking.plan_chunk_rows(8192, w, 2, need_dw=True, dw_accumulation="weight") == base
    assert _chunking.plan_chunk_rows(8192, w, 2, need_dw=False, dw_accumulation="fp32") == base
    w32 = torch.empty(vocab, h, dtype=torch.float32, device="meta")  # fp32 weights: dW is the accumulator
    assert _chunking.plan_chunk_rows(8192, w32, 4, need_dw=True, dw_accumulation="fp32") == (
        _chunking.pick_chunk_rows(8192, vocab, 4, w32.device)
    )


def test_zero_rows_give_zero_gradients():
    x = torch.randn(0, 8, requires_grad=True)
    w = torch.randn(11, 8, requires_grad=True)
    loss = fused_linear_cross_entropy(x, w, torch.zeros(0, dtype=torch.long), impl="torch")
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(w.grad, torch.zeros_like(w))


@pytest.mark.parametrize("impl", ["torch", "triton"])
def test_fp32_logits_make_bf16_distillation_gradients_several_times_more_exact(impl):
    """JSD's gradient is a difference of near-equal distributions: bf16-rounded logits cancel catastrophically."""
    if impl == "triton":
        pytest.importorskip("triton")
    n, h, vocab = 64, 32, 257
    hidden, weight, gen = random_inputs(n, h, vocab, scale=4.0)
    t_hidden, t_weight, _ = random_inputs(n, h, vocab, seed=1, scale=4.0)
    t_hidden = 0.9 * t_hidden + 0.1 * hidden  # a teacher close to the student, as after some distillation
    t_weight = 0.9 * weight + 0.1 * t_weight
    labels = random_labels(n, vocab, 0.2, gen).to(DEVICE)
    kw = dict(divergence="jsd", beta=0.5, temperature=1.0)
    hidden, weight, t_hidden, t_weight = (
        t.to(torch.bfloat16).double() for t in (hidden, weight, t_hidden, t_weight)
    )
    x64, w64 = leaves(hidden, weight, dtype=torch.float64)  # fp64 on the bf16 values: only the kernel's error
    fused_linear_distillation(
        x64, w64, t_hidden.to(DEVICE), t_weight.to(DEVICE), labels, impl="torch", **kw
    ).backward()
    errors = {}
    for fp32_logits in (True, False):
        x, w = leaves(hidden, weight, dtype=torch.bfloat16)
        tx, tw = (t.to(DEVICE, torch.bfloat16) for t in (t_hidden, t_weight))
        fused_linear_distillation(x, w, tx, tw, labels, impl=impl, fp32_logits=fp32_logits, **kw).backward()
        assert x.grad.dtype == w.grad.dtype == torch.bfloat16
        errors[fp32_logits] = rel_err(x.grad, x64.grad)
    print(errors)
    assert errors[True] * 3 < errors[False], errors
