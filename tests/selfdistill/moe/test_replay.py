"""Routing replay at model level, on every registered architecture (each test runs in well under a second)."""

import pytest
import torch

from selfdistill.models.moe.archs import ARCHS
from selfdistill.models.moe.replay import RoutingReplay
from selfdistill.models.moe.routers import find_routers
from selfdistill.models.moe.tiny import build_tiny_moe

# One representative architecture in the default run; the rest of the matrix with `-m slow`.
ARCH_PARAMS = [a if a == "qwen3_moe" else pytest.param(a, marks=pytest.mark.slow) for a in ARCHS]


def batch(b=4, t=10, seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 64, (b, t), generator=g)
    mask = torch.ones_like(ids)
    mask[0, :3] = 0
    return ids, mask


def experts_inputs(model):
    """Hook every experts module and collect the top-k indices it actually receives, per layer."""
    seen, handles = {}, []
    for layer, router in find_routers(model).items():
        parent = next(m for m in model.modules() if any(c is router for c in m.children()))
        handles.append(
            parent.experts.register_forward_pre_hook(
                lambda mod, args, layer=layer: seen.setdefault(layer, []).append(args[1].clone())
            )
        )
    return seen, handles


def record(model, rr, ids, mask, chunk=2):
    with torch.no_grad(), rr.recording():
        logits = torch.cat(
            [
                model(input_ids=ids[i : i + chunk], attention_mask=mask[i : i + chunk]).logits
                for i in range(0, ids.shape[0], chunk)
            ]
        )
    return logits, rr.take_record()


@pytest.mark.parametrize("arch", ARCH_PARAMS)
def test_replay_of_unchanged_policy_is_exact(arch):
    model = build_tiny_moe(arch)
    rr = RoutingReplay(model)
    ids, mask = batch()
    old_logits, routing = record(model, rr, ids, mask)
    assert routing.shape == (4, len(rr.layers), 10, rr.top_k)
    perm = torch.tensor([2, 0, 3, 1])  # replay rows in another order and batch size, as TRL shuffles them
    with rr.replaying(routing[perm]):
        new_logits = model(input_ids=ids[perm], attention_mask=mask[perm]).logits
    old_logp = old_logits[perm].log_softmax(-1)
    assert torch.allclose(new_logp := new_logits.log_softmax(-1), old_logp, atol=1e-6), (
        (new_logp - old_logp).abs().max()
    )
    assert rr.change_metrics()["moe/routing_change_rate"] == 0.0


@pytest.mark.parametrize("arch", ARCH_PARAMS)
def test_replay_forces_recorded_experts_and_router_still_learns(arch):
    model = build_tiny_moe(arch)
    rr = RoutingReplay(model)
    ids, mask = batch()
    _, routing = record(model, rr, ids, mask)
    with torch.no_grad():  # a big update: the router would now choose other experts
        for router in rr.routers.values():
            router.weight.add_(torch.randn_like(router.weight) * 2)
    seen, handles = experts_inputs(model)
    with rr.replaying(routing):
        out = model(input_ids=ids, attention_mask=mask, labels=ids)
    for layer_pos, layer in enumerate(rr.layers):
        forced = routing[:, layer_pos].reshape(-1, rr.top_k).long()
        assert torch.equal(seen[layer][0].long(), forced), f"layer {layer} did not get the recorded experts"
    assert rr.change_metrics()["moe/routing_change_rate"] > 0.1
    out.loss.backward()
    for router in rr.routers.values():
        assert router.weight.grad is not None and router.weight.grad.abs().sum() > 0
    for h in handles:
        h.remove()


def test_compare_mode_measures_without_forcing():
    model = build_tiny_moe("qwen3_moe")
    rr = RoutingReplay(model)
    ids, mask = batch()
    old_logits, routing = record(model, rr, ids, mask)
    with torch.no_grad(), rr.comparing(routing):
        same = model(input_ids=ids, attention_mask=mask).logits
    assert rr.change_metrics()["moe/routing_change_rate"] == 0.0
    assert torch.allclose(same, old_logits, atol=1e-6)
    with torch.no_grad():
        for router in rr.routers.values():
            router.weight.add_(torch.randn_like(router.weight) * 2)
        free = model(input_ids=ids, attention_mask=mask).logits
        with rr.comparing(routing):
            compared = model(input_ids=ids, attention_mask=mask).logits
    assert torch.equal(free, compared)  # compare never changes the computation
    assert rr.change_metrics()["moe/routing_change_rate"] > 0.1


def test_routing_change_zero_without_step_positive_after_large_lr_step():
    model = build_tiny_moe("qwen3_moe")
    rr = RoutingReplay(model)
    ids, mask = batch()
    _, before = record(model, rr, ids, mask)
    _, again = record(model, rr, ids, mask)
    with torch.no_grad(), rr.comparing(before):
        model(input_ids=ids, attention_mask=mask)
    assert torch.equal(before, again)
    assert rr.change_metrics()["moe/routing_change_rate"] == 0.0
    opt = torch.optim.SGD(model.parameters(), lr=50.0)
    model(input_ids=ids, attention_mask=mask, labels=ids).loss.backward()
    opt.step()
    with torch.no_grad(), rr.comparing(before):
        model(input_ids=ids, attention_mask=mask)
    metrics = rr.change_metrics()
    assert metrics["moe/routing_change_rate"] > 0.0
    assert set(metrics) == {
        "moe/routing_change_rate",
        "moe/routing_change_rate/layer_0",
        "moe/routing_change_rate/layer_1",
    }


def test_replay_survives_gradient_checkpointing_recompute():
    model = build_tiny_moe("qwen3_moe")
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    rr = RoutingReplay(model)
    ids, mask = batch()
    _, routing = record(model, rr, ids, mask)
    with torch.no_grad():
        for router in rr.routers.values():
            router.weight.add_(torch.randn_like(router.weight) * 2)
    seen, handles = experts_inputs(model)
    with rr.replaying(routing):
        loss = model(input_ids=ids, attention_mask=mask, labels=ids).loss
    loss.backward()  # recomputes each layer outside the `replaying` body
    for pos, layer in enumerate(rr.layers):
        assert len(seen[layer]) == 2  # forward + recompute
        forced = routing[:, pos].reshape(-1, rr.top_k).long()
        assert all(torch.equal(s.long(), forced) for s in seen[layer])
    assert rr.change_metrics()["moe/routing_change_rate"] > 0  # counted once, not twice
    for h in handles:
        h.remove()


def test_replay_errors_name_the_mismatch():
    model = build_tiny_moe("qwen3_moe")
    rr = RoutingReplay(model)
    ids, mask = batch()
    _, routing = record(model, rr, ids, mask)
    with pytest.raises(RuntimeError, match="does not match the recorded rows"), rr.replaying(routing):
        model(input_ids=ids[:, :5], attention_mask=mask[:, :5])
    with pytest.raises(RuntimeError, match="2 of the 4 recorded rows"), rr.replaying(routing):
        model(input_ids=ids[:2], attention_mask=mask[:2])
    with pytest.raises(ValueError, match="routing must be"):
        with rr.replaying(routing[:, :1]):
            pass
    with pytest.raises(RuntimeError, match="nothing was recorded"):
        rr.take_record()
