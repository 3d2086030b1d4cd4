"""fused_linear_cross_entropy against the fp64 reference, for both impls (Triton via the CPU interpreter)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from _kernel_cases import DEVICE, IMPLS, RTOL, leaves, random_inputs, random_labels, rel_err

from selfdistill.kernels import _chunking, fused_linear_cross_entropy
from selfdistill.kernels.reference import reference_linear_cross_entropy


@pytest.fixture
def small_chunks(monkeypatch):
    """Force 16-row chunks so the small shapes cross chunk boundaries and end on a partial chunk."""
    monkeypatch.setattr(_chunking, "MAX_CHUNK_ROWS", 16)


def _check(impl, n, h, vocab, *, reduction="mean", temperature=1.0, ignore_frac=0.3, seed=0, scale=3.0):
    hidden, weight, gen = random_inputs(n, h, vocab, seed=seed, scale=scale)
    labels = random_labels(n, vocab, ignore_frac, gen)
    x, w = leaves(hidden, weight, dtype=torch.float32)
    xr, wr = leaves(hidden, weight, dtype=torch.float64)
    kw = dict(reduction=reduction, temperature=temperature)
    got = fused_linear_cross_entropy(x, w, labels.to(DEVICE), impl=impl, **kw)
    ref = reference_linear_cross_entropy(xr, wr, labels.to(DEVICE), **kw)
    assert got.shape == ref.shape and got.dtype == torch.float32
    upstream = torch.rand(ref.shape, generator=gen, dtype=torch.float64).to(DEVICE) + 0.5  # non-uniform
    got_grads = torch.autograd.grad(got, (x, w), upstream.float())
    ref_grads = torch.autograd.grad(ref, (xr, wr), upstream)
    assert rel_err(got, ref) <= RTOL, (got, ref)
    for name, g, r in zip(("dX", "dW"), got_grads, ref_grads):
        assert rel_err(g, r) <= RTOL, name
    return got, got_grads


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_matches_reference_across_chunks(impl, reduction, temperature, small_chunks):
    _check(impl, 37, 16, 53, reduction=reduction, temperature=temperature)  # 37 = 2 x 16 + 5, V prime


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("n", "h", "vocab"), [(1, 8, 11), (20, 8, 1), (9, 5, 131), (33, 12, 2)])
def test_odd_shapes(impl, n, h, vocab, small_chunks):
    _check(impl, n, h, vocab, reduction="none" if n > 1 else "mean", ignore_frac=0.2)


@pytest.mark.parametrize("impl", IMPLS)
def test_one_chunk_default_budget(impl):
    _check(impl, 45, 16, 97, temperature=2.0, ignore_frac=0.5)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_all_ignored_gives_zero_loss_and_grads(impl, reduction):
    hidden, weight, _ = random_inputs(12, 8, 29)
    x, w = leaves(hidden, weight, dtype=torch.float32)
    labels = torch.full((12,), -100, device=DEVICE)
    loss = fused_linear_cross_entropy(x, w, labels, reduction=reduction, impl=impl)
    loss.sum().backward()
    assert torch.equal(loss, torch.zeros_like(loss))
    assert torch.equal(x.grad, torch.zeros_like(x)) and torch.equal(w.grad, torch.zeros_like(w))


@pytest.mark.parametrize("impl", IMPLS)
def test_none_reduction_under_sum_backward_and_int32_labels(impl):
    """`.sum().backward()` hands the "none" backward an expanded stride-0 gradient; labels may be int32."""
    hidden, weight, gen = random_inputs(19, 8, 37)
    labels = random_labels(19, 37, 0.2, gen).to(DEVICE)
    x, w = leaves(hidden, weight, dtype=torch.float32)
    xr, wr = leaves(hidden, weight, dtype=torch.float64)
    fused_linear_cross_entropy(x, w, labels.int(), reduction="none", impl=impl).sum().backward()
    reference_linear_cross_entropy(xr, wr, labels, reduction="none").sum().backward()
    assert rel_err(x.grad, xr.grad) <= RTOL and rel_err(w.grad, wr.grad) <= RTOL


@pytest.mark.parametrize("impl", IMPLS)
def test_custom_ignore_index_and_frozen_weight(impl):
    hidden, weight, gen = random_inputs(21, 8, 31)
    labels = random_labels(21, 31, 0.3, gen, ignore_index=7)  # 7 is also a real class id here
    x = leaves(hidden, dtype=torch.float32)[0]
    w = weight.float().to(DEVICE)  # frozen head: no dW work, dX still right
    xr = leaves(hidden, dtype=torch.float64)[0]
    got = fused_linear_cross_entropy(x, w, labels.to(DEVICE), ignore_index=7, impl=impl)
    ref = reference_linear_cross_entropy(xr, weight.to(DEVICE), labels.to(DEVICE), ignore_index=7)
    got.backward()
    ref.backward()
    assert rel_err(got, ref) <= RTOL and rel_err(x.grad, xr.grad) <= RTOL


def test_fp64_torch_path_is_exact(small_chunks):
    hidden, weight, gen = random_inputs(40, 8, 23, scale=5.0)
    labels = random_labels(40, 23, 0.25, gen)
    x, w = leaves(hidden, weight, dtype=torch.float64)
    xr, wr = leaves(hidden, weight, dtype=torch.float64)
    got = fused_linear_cross_entropy(x, w, labels.to(DEVICE), temperature=0.5, impl="torch")
    ref = reference_linear_cross_entropy(xr, wr, labels.to(DEVICE), temperature=0.5)
    got.backward()
    ref.backward()
    assert rel_err(got, ref) < 1e-12 and rel_err(w.grad, wr.grad) < 1e-12 and rel_err(x.grad, xr.grad) < 1e-12


def test_no_grad_forward_matches():
    hidden, weight, gen = random_inputs(10, 8, 17)
    labels = random_labels(10, 17, 0.0, gen)
    with torch.no_grad():
        got = fused_linear_cross_entropy(hidden.float(), weight.float(), labels, impl="torch")
    assert rel_err(got, reference_linear_cross_entropy(hidden, weight, labels)) <= RTOL


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reduction": "avg"}, "choose one of: mean, sum, none"),
        ({"impl": "cuda"}, "choose one of: auto, torch, triton"),
        ({"temperature": 0.0}, "temperature must be > 0"),
    ],
)
def test_bad_arguments_name_the_choices(kwargs, message):
    hidden, weight, _ = random_inputs(4, 8, 5)
    with pytest.raises(ValueError, match=message):
        fused_linear_cross_entropy(hidden, weight, torch.zeros(4, dtype=torch.long), **kwargs)


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match=r"hidden must be \[N, H\]"):
        fused_linear_cross_entropy(torch.randn(4, 8), torch.randn(5, 7), torch.zeros(4, dtype=torch.long))


def test_package_import_does_not_import_triton():
    code = "import sys, selfdistill.kernels; assert 'triton' not in sys.modules, 'triton imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_second_backward_through_the_same_graph_is_refused():
    hidden, weight, gen = random_inputs(6, 4, 9)
    x, w = leaves(hidden, weight, dtype=torch.float32)
    loss = fused_linear_cross_entropy(x, w, random_labels(6, 9, 0.0, gen).to(DEVICE), impl="torch")
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="backward ran twice"):
        loss.backward()
