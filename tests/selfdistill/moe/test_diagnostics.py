"""Router metrics as pure functions, and the recorder on a real tiny MoE (padding excluded)."""

import math

import pytest
import torch

from selfdistill.models.moe.diagnostics import (
    RouterRecorder,
    expert_load,
    load_imbalance,
    router_entropy,
    routing_change_rate,
    routing_change_rates,
)
from selfdistill.models.moe.tiny import build_tiny_moe


def test_expert_load_is_a_distribution_and_skips_padding():
    idx = torch.tensor([[0, 1], [0, 2], [3, 3]])  # (N=3, k=2)
    load = expert_load(idx, num_experts=4)
    assert torch.allclose(load, torch.tensor([2, 1, 1, 2]) / 6)
    keep = torch.tensor([True, True, False])
    assert torch.allclose(expert_load(idx, 4, keep), torch.tensor([2, 1, 1, 0]) / 4)


def test_load_imbalance_bounds():
    assert load_imbalance(torch.full((8,), 1 / 8)) == pytest.approx(1.0)
    one_hot = torch.zeros(8)
    one_hot[3] = 1.0
    assert load_imbalance(one_hot) == pytest.approx(8.0)


def test_router_entropy_uniform_and_peaked():
    uniform = torch.full((5, 8), 1 / 8)
    assert router_entropy(uniform) == pytest.approx(math.log(8), rel=1e-6)
    peaked = torch.zeros(5, 8)
    peaked[:, 0] = 1.0
    assert router_entropy(peaked) == pytest.approx(0.0, abs=1e-6)
    keep = torch.tensor([True, False, False, False, False])
    mixed = torch.cat([uniform[:1], peaked[1:]])
    assert router_entropy(mixed, keep) == pytest.approx(math.log(8), rel=1e-6)


def test_routing_change_rate_is_order_insensitive_and_counts_choices():
    a = torch.tensor([[0, 1], [2, 3], [4, 5]])
    assert routing_change_rate(a, a, 8) == 0.0
    assert routing_change_rate(a, a.flip(-1), 8) == 0.0  # same set, other order
    b = torch.tensor([[0, 7], [2, 3], [6, 7]])  # 1 + 0 + 2 of 6 choices changed
    assert routing_change_rate(a, b, 8) == pytest.approx(3 / 6)
    keep = torch.tensor([False, True, True])
    assert routing_change_rate(a, b, 8, keep) == pytest.approx(2 / 4)
    rates = routing_change_rates({0: a, 1: a}, {0: a, 1: b}, 8)
    assert rates == {0: 0.0, 1: pytest.approx(0.5)}


def test_recorder_excludes_padding_and_resets():
    model = build_tiny_moe("qwen3_moe")
    rec = RouterRecorder(model)
    ids = torch.randint(3, 64, (2, 6))
    mask = torch.ones_like(ids)
    mask[0, :4] = 0  # left padding
    with rec.capture():
        model(input_ids=ids, attention_mask=mask)
    # 8 real tokens x top-2 = 16 slots per layer
    assert all(float(c.sum()) == 16 for c in rec.counts.values())
    out = rec.summary()
    assert set(out) >= {"moe/load_imbalance", "moe/router_entropy", "moe/load_imbalance/layer_0"}
    assert 1.0 <= out["moe/load_imbalance"] <= 8.0
    assert 0.0 < out["moe/router_entropy"] < math.log(8)
    assert rec.summary() == {}  # window reset
    model(input_ids=ids, attention_mask=mask)  # inactive: not counted
    assert rec.summary() == {}


def test_recorder_registered_after_replay_counts_the_forced_experts():
    from selfdistill.models.moe.diagnostics import expert_counts
    from selfdistill.models.moe.replay import RoutingReplay

    model = build_tiny_moe("qwen3_moe")
    rr = RoutingReplay(model)
    rec = RouterRecorder(model)  # same order as the trainer mixin
    ids = torch.randint(3, 64, (2, 8))
    with torch.no_grad(), rr.recording():
        model(input_ids=ids)
    routing = rr.take_record()
    with torch.no_grad():
        for router in rr.routers.values():
            router.weight.add_(torch.randn_like(router.weight) * 2)
        with rr.replaying(routing), rec.capture():
            model(input_ids=ids)
    assert torch.equal(rec.counts[0], expert_counts(routing[:, 0].reshape(-1, 2), 8))
