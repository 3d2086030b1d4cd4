"""fused_linear_distillation against the fp64 reference, for both impls (Triton via the CPU interpreter)."""

from __future__ import annotations

import pytest
import torch
from _kernel_cases import DEVICE, IMPLS, RTOL, leaves, random_inputs, random_labels, rel_err

from selfdistill.kernels import _chunking, fused_linear_distillation
from selfdistill.kernels.reference import reference_linear_distillation

DIVERGENCES = ("forward_kl", "reverse_kl", "jsd")


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(_chunking, "MAX_CHUNK_ROWS", 16)


def _case(n, hs, ht, vocab, ignore_frac=0.3, seed=0):
    s_hidden, s_weight, gen = random_inputs(n, hs, vocab, seed=seed, scale=3.0)
    t_hidden, t_weight, _ = random_inputs(n, ht, vocab, seed=seed + 1, scale=4.0)
    return s_hidden, s_weight, t_hidden, t_weight, random_labels(n, vocab, ignore_frac, gen)


def _check(impl, case, **kw):
    s_hidden, s_weight, t_hidden, t_weight, labels = case
    labels = labels.to(DEVICE)
    x, w = leaves(s_hidden, s_weight, dtype=torch.float32)
    tx, tw = leaves(t_hidden, t_weight, dtype=torch.float32)  # requires grad: must still get none
    xr, wr = leaves(s_hidden, s_weight, dtype=torch.float64)
    got = fused_linear_distillation(x, w, tx, tw, labels, impl=impl, **kw)
    ref = reference_linear_distillation(xr, wr, t_hidden.to(DEVICE), t_weight.to(DEVICE), labels, **kw)
    (got * 1.7).backward()
    (ref * 1.7).backward()
    assert got.dim() == 0 and torch.isfinite(got)
    assert rel_err(got, ref) <= RTOL, (got.item(), ref.item())
    assert rel_err(x.grad, xr.grad) <= RTOL and rel_err(w.grad, wr.grad) <= RTOL
    assert tx.grad is None and tw.grad is None
    return got


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("divergence", DIVERGENCES)
@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0])
def test_every_divergence_and_beta(impl, divergence, beta, small_chunks):
    if impl == "triton" and divergence != "jsd" and beta != 0.5:
        pytest.skip(
            "beta only matters to jsd: the same kernel branch as beta=0.5 (keeps the interpreter time down)"
        )
    _check(impl, _case(37, 16, 24, 53), divergence=divergence, beta=beta, temperature=2.0)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    ("divergence", "hard_weight"), [("forward_kl", 0.5), ("reverse_kl", 0.25), ("jsd", 1.0)]
)
def test_hard_weight_mixing(impl, divergence, hard_weight, small_chunks):
    _check(
        impl, _case(29, 8, 12, 41), divergence=divergence, beta=0.3, temperature=0.8, hard_weight=hard_weight
    )


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("n", "vocab"), [(1, 13), (19, 1), (17, 127)])
def test_odd_shapes(impl, n, vocab, small_chunks):
    _check(impl, _case(n, 8, 6, vocab, ignore_frac=0.0), divergence="jsd", beta=0.5, hard_weight=0.2)


@pytest.mark.parametrize("impl", IMPLS)
def test_all_ignored_gives_zero_loss_and_grads(impl):
    s_hidden, s_weight, t_hidden, t_weight, labels = _case(9, 8, 8, 23)
    x, w = leaves(s_hidden, s_weight, dtype=torch.float32)
    labels = torch.full_like(labels, -100).to(DEVICE)
    tx, tw = t_hidden.float().to(DEVICE), t_weight.float().to(DEVICE)
    loss = fused_linear_distillation(
        x, w, tx, tw, labels, divergence="reverse_kl", hard_weight=0.5, impl=impl
    )
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(x.grad, torch.zeros_like(x)) and torch.equal(w.grad, torch.zeros_like(w))


def test_identical_models_have_zero_divergence():
    s_hidden, s_weight, _, _, labels = _case(11, 8, 8, 19)
    for divergence in DIVERGENCES:
        loss = fused_linear_distillation(
            s_hidden, s_weight, s_hidden, s_weight, labels, divergence=divergence
        )
        assert abs(loss.item()) < 1e-12


def test_jsd_end_points_are_the_kls():
    case = _case(13, 8, 8, 19)
    kl = fused_linear_distillation(*case, divergence="forward_kl", impl="torch")
    assert fused_linear_distillation(*case, divergence="jsd", beta=0.0, impl="torch").item() == kl.item()
    mid = fused_linear_distillation(*case, divergence="jsd", beta=0.5, impl="torch")
    assert mid.item() != kl.item()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"divergence": "kl"}, "choose one of: forward_kl, reverse_kl, jsd"),
        ({"beta": 1.5}, r"beta must be in \[0, 1\]"),
        ({"hard_weight": -0.1}, r"hard_weight must be in \[0, 1\]"),
        ({"impl": "liger"}, "choose one of: auto, torch, triton"),
    ],
)
def test_bad_arguments_name_the_choices(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fused_linear_distillation(*_case(4, 8, 8, 5), **kwargs)


def test_vocab_mismatch_is_refused():
    s_hidden, s_weight, t_hidden, t_weight, labels = _case(4, 8, 8, 5)
    with pytest.raises(ValueError, match="vocabularies differ: 5 vs 6"):
        fused_linear_distillation(
            s_hidden, s_weight, t_hidden, torch.randn(6, 8, dtype=torch.float64), labels
        )
