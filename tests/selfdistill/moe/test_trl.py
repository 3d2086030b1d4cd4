"""Routing replay and diagnostics inside TRL's GRPOTrainer; aux-loss control and router freezing.

The probe subclass below only observes: it copies what TRL hands to the loss (the recorded routing and the
old-policy log-probs) and what the training forward computes, so the assertions check the real trainer path.
"""

import pytest
import torch
from _moe_helpers import grpo_config, prompt_dataset, reward_digits, snapshot, tiny_model_and_tokenizer

from selfdistill.models.moe.control import freeze_router, generation_safe, rl_aux_loss_coef, sft_aux_loss_coef
from selfdistill.models.moe.routers import find_routers
from selfdistill.models.moe.trl import ROUTING_KEY, make_grpo_trainer_class, moe_trainer_class


def _clone(x):
    return None if x is None else x.clone()


def probe_class(replay: bool, base: type | None = None):
    base = base or make_grpo_trainer_class(replay=replay)

    class Probe(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.captured, self._probe, self.experts_seen = [], None, {}
            for layer, router in find_routers(self.model).items():
                parent = next(m for m in self.model.modules() if any(c is router for c in m.children()))
                parent.experts.register_forward_pre_hook(self._experts_hook(layer))

        def _experts_hook(self, layer):
            def hook(module, args):
                if torch.is_grad_enabled() and self._probe is not None:
                    self._probe["experts"][layer] = args[1].clone()

            return hook

        def compute_loss(self, model, inputs, *args, **kwargs):
            self._probe = {
                "routing": _clone(inputs.get(ROUTING_KEY)),
                "old": _clone(inputs.get("old_per_token_logps")),
                "mask": inputs["completion_mask"].clone(),
                "experts": {},
            }
            loss = super().compute_loss(model, inputs, *args, **kwargs)
            self.captured.append(self._probe)
            self._probe = None
            return loss

        def _get_per_token_logps_and_entropies(self, *args, **kwargs):
            result = super()._get_per_token_logps_and_entropies(*args, **kwargs)
            if self._probe is not None and torch.is_grad_enabled():
                self._probe["new"] = result[0].detach().clone()
            return result

    return Probe


def run_probe(tmp_path, replay: bool, lr: float, base: type | None = None, **geometry):
    model, tok = tiny_model_and_tokenizer("qwen3_moe")
    # default geometry: one generation of 8 completions feeds 2 optimizer steps of 4 (steps_per_generation=2),
    # so the 2nd step is off-policy and TRL runs its own old-policy pass, whose routing the mixin records; with
    # steps_per_generation=1 TRL skips that pass (on-policy) and so does the mixin
    geometry = {"steps_per_generation": 2, "max_steps": 2, **geometry}
    args = grpo_config(tmp_path, learning_rate=lr, num_generations=4, **geometry)
    trainer = probe_class(replay, base)(
        model=model,
        reward_funcs=[reward_digits],
        args=args,
        train_dataset=prompt_dataset(16),
        processing_class=tok,
    )
    trainer.train()
    return trainer


def assert_forced(trainer, probe):
    k = probe["routing"].shape[-1]
    for pos, layer in enumerate(find_routers(trainer.model)):
        forced = probe["routing"][:, pos].reshape(-1, k).long()
        assert torch.equal(probe["experts"][layer].long(), forced), f"layer {layer}"


# off-policy geometries: a generation batch outlives an optimizer step, so TRL runs the old-policy pass
GEOMETRIES = [
    pytest.param({}, id="spg2"),
    pytest.param({"gradient_checkpointing": True}, id="grad-ckpt", marks=pytest.mark.slow),
    pytest.param({"num_iterations": 2, "steps_per_generation": 1}, id="num-iter2", marks=pytest.mark.slow),
    pytest.param(
        {"gradient_accumulation_steps": 2, "per_device_train_batch_size": 2, "steps_per_generation": 4},
        id="ga2-spg4",
        marks=pytest.mark.slow,
    ),
]


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_replay_unchanged_policy_logprobs_match_sampling_ones(tmp_path, geometry):
    trainer = run_probe(tmp_path, replay=True, lr=0.0, **geometry)
    assert trainer.captured
    for probe in trainer.captured:
        mask = probe["mask"].bool()
        diff = (probe["new"] - probe["old"])[mask].abs().max()
        assert diff <= 1e-6, diff
        assert_forced(trainer, probe)
    changes = [
        h["moe/routing_change_rate"] for h in trainer.state.log_history if "moe/routing_change_rate" in h
    ]
    assert changes and all(c == 0.0 for c in changes)


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_replay_forces_recorded_experts_after_large_update(tmp_path, geometry):
    trainer = run_probe(tmp_path, replay=True, lr=1.0, **geometry)
    for probe in trainer.captured:
        assert_forced(trainer, probe)
    rates = [
        h["moe/routing_change_rate"] for h in trainer.state.log_history if "moe/routing_change_rate" in h
    ]
    if len(trainer.captured) > 1:  # after one big optimizer step the router wants other experts
        assert rates[-1] > 0.0


# on-policy geometries: every forward on a generation batch runs at the weights that sampled it
ON_POLICY = [
    pytest.param({"steps_per_generation": 1}, id="spg1"),
    pytest.param(
        {"gradient_accumulation_steps": 2, "per_device_train_batch_size": 2, "steps_per_generation": 2},
        id="ga2-spg2",
        marks=pytest.mark.slow,
    ),
]


@pytest.mark.parametrize("geometry", ON_POLICY)
@pytest.mark.parametrize("replay", [False, True], ids=["measure", "replay"])
def test_on_policy_routing_adds_no_scoring_pass_and_logs_zero_change(tmp_path, monkeypatch, geometry, replay):
    """On-policy, the training forward is the old-policy forward: no extra no-grad scoring pass (TRL runs none;
    one used to cost ~18% of the demo's RL step), the loss sees TRL's own inputs, and the change rate is 0."""
    from trl import GRPOTrainer

    scoring_passes = []
    original = GRPOTrainer._get_per_token_logps_and_entropies

    def counting(self, *args, **kwargs):
        if not torch.is_grad_enabled():
            scoring_passes[-1] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(GRPOTrainer, "_get_per_token_logps_and_entropies", counting)
    runs = {}
    for name, base in [("trl", GRPOTrainer), ("ours", None)]:
        scoring_passes.append(0)
        runs[name] = run_probe(tmp_path / name, replay=replay, lr=1.0, base=base, **geometry)
    assert scoring_passes[1] == scoring_passes[0] == 0
    ours = runs["ours"]
    assert len(ours.captured) == len(runs["trl"].captured) >= 2
    for probe in ours.captured:  # TRL's on-policy batch: no record, old log-probs = the forward's own
        assert probe["routing"] is None and probe["old"] is None
    rates = [h["moe/routing_change_rate"] for h in ours.state.log_history if "moe/routing_change_rate" in h]
    assert len(rates) == 2 and all(r == 0.0 for r in rates)  # 2 steps at lr 1.0: off-policy would change


def test_measure_mode_change_rate_zero_then_positive_after_large_lr_step(tmp_path):
    trainer = run_probe(tmp_path, replay=False, lr=1.0)
    assert len(trainer.captured) == 2
    rates = [
        h["moe/routing_change_rate"] for h in trainer.state.log_history if "moe/routing_change_rate" in h
    ]
    assert rates[0] == 0.0 and rates[1] > 0.0
    probe = trainer.captured[1]
    k = probe["routing"].shape[-1]
    layer0 = next(iter(find_routers(trainer.model)))
    assert not torch.equal(probe["experts"][layer0].long(), probe["routing"][:, 0].reshape(-1, k).long())
    assert any(f"moe/routing_change_rate/layer_{layer0}" in h for h in trainer.state.log_history)


def test_rl_aux_loss_off_by_default_and_config_stays_generation_safe(tmp_path):
    assert rl_aux_loss_coef() == 0.0 and sft_aux_loss_coef() is None
    model, tok = tiny_model_and_tokenizer("qwen3_moe")
    trainer = make_grpo_trainer_class(replay=False)(
        model=model,
        reward_funcs=[reward_digits],
        args=grpo_config(tmp_path),
        train_dataset=prompt_dataset(),
        processing_class=tok,
    )
    assert trainer.aux_loss_enabled is False
    assert model.config.output_router_logits is False
    # TRL's own default (None) would use the architecture's 0.001: on
    model2, _ = tiny_model_and_tokenizer("qwen3_moe")
    trainer2 = make_grpo_trainer_class(replay=False)(
        model=model2,
        reward_funcs=[reward_digits],
        args=grpo_config(tmp_path, router_aux_loss_coef=None),
        train_dataset=prompt_dataset(),
        processing_class=tok,
    )
    assert trainer2.aux_loss_enabled is True and trainer2.router_aux_loss_coef == pytest.approx(0.001)


def test_generation_safe_fixes_the_output_router_logits_crash():
    model, tok = tiny_model_and_tokenizer("qwen3_moe")
    enc = tok(["1+1=", "12+30="], return_tensors="pt", padding=True)
    model.config.output_router_logits = True
    with pytest.raises(RuntimeError, match="size of tensor"):
        model.generate(**enc, max_new_tokens=4, do_sample=True)
    generation_safe(model)
    assert model.generate(**enc, max_new_tokens=4, do_sample=True).shape[0] == 2


def test_freeze_router_keeps_routing_weights_while_experts_train(tmp_path):
    model, tok = tiny_model_and_tokenizer("qwen3_moe")
    assert freeze_router(model) == len(find_routers(model))
    before = snapshot(model)
    routers = {n for n, p in model.named_parameters() if ".gate." in n}
    assert routers and not routers & set(before)  # frozen params are not trainable
    router_before = {n: p.detach().clone() for n, p in model.named_parameters() if n in routers}
    trainer = make_grpo_trainer_class(replay=False)(
        model=model,
        reward_funcs=[reward_digits],
        args=grpo_config(tmp_path, num_generations=4),
        train_dataset=prompt_dataset(),
        processing_class=tok,
    )
    trainer.train()
    params = dict(model.named_parameters())
    assert all(torch.equal(router_before[n], params[n]) for n in routers)
    assert not torch.equal(
        before["model.layers.0.mlp.experts.gate_up_proj"], params["model.layers.0.mlp.experts.gate_up_proj"]
    )


def test_unknown_routing_mode_is_rejected():
    from trl import GRPOTrainer, SFTTrainer

    with pytest.raises(ValueError, match="choose one of: off, measure, replay"):
        moe_trainer_class(GRPOTrainer, routing="r3")
    with pytest.raises(ValueError, match="needs a GRPO-style trainer, not SFTTrainer"):
        moe_trainer_class(SFTTrainer, routing="replay")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("algorithm", "routing"), [("gspo", "measure"), ("grpo", "measure"), ("grpo", "replay")]
)
def test_rl_algorithms_build_and_train_one_step(algorithm, routing, tmp_path):
    from selfdistill.config import RLConfig
    from selfdistill.registries import ALGORITHMS
    from selfdistill.stages.rl import rl_trainer_class

    cls = rl_trainer_class(algorithm, moe=True, routing=routing)
    assert RLConfig().router_aux_loss_coef == 0.0 and RLConfig().algorithm == "gspo"
    model, tok = tiny_model_and_tokenizer("qwen3_moe")
    args = grpo_config(
        tmp_path, num_generations=4, steps_per_generation=2, max_steps=2, **ALGORITHMS.get(algorithm).trl
    )
    trainer = cls(
        model=model,
        reward_funcs=[reward_digits],
        args=args,
        train_dataset=prompt_dataset(8),
        processing_class=tok,
    )
    trainer.train()
    assert trainer.moe_routing == routing
    assert trainer.args.importance_sampling_level == ("sequence" if algorithm == "gspo" else "token")
    assert sum("moe/routing_change_rate" in h for h in trainer.state.log_history) == 2


def test_rl_algorithm_error_lists_names():
    from selfdistill.configio import ConfigError
    from selfdistill.stages.rl import rl_trainer_class

    with pytest.raises(
        ConfigError, match="unknown RL algorithm 'ppo'; choose one of: dapo, dr_grpo, grpo, gspo"
    ):
        rl_trainer_class("ppo", moe=True, routing="measure")
