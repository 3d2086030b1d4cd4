"""The RL algorithm registry: an entry's TRL settings reach GRPOConfig and its loss hook is the loss trained."""

from __future__ import annotations

import torch
from test_stages import math_tasks, snapshot

from selfdistill.config import RewardConfig, RLConfig
from selfdistill.registries import ALGORITHMS, RLAlgorithm
from selfdistill.stages.rl import grpo_args, train_rl
from selfdistill.tracking import NullStage


class ZeroLoss:
    """A loss hook: TRL's GRPO loss times zero (gradients all zero), counting its calls."""

    calls = 0

    def compute_loss(self, model, inputs, *args, **kwargs):
        ZeroLoss.calls += 1
        assert "advantages" in inputs  # the hook sees TRL's batch
        return 0.0 * super().compute_loss(model, inputs, *args, **kwargs)


def test_every_algorithm_sets_a_trl_loss_type_and_its_settings_reach_grpo_config(tmp_path):
    for name in ALGORITHMS.names():
        algo = ALGORITHMS.get(name)
        assert "loss_type" in algo.trl or algo.loss is not None, name
        args = grpo_args(
            RLConfig(algorithm=name),
            tmp_path,
            seed=0,
            report_to="none",
            device="cpu",
            run_name="t",
            weights=[1.0],
        )
        assert all(getattr(args, k) == v for k, v in algo.trl.items()), name


def test_a_loss_hook_is_the_loss_the_policy_is_trained_on(tiny_moe, tokenizer, tmp_path):
    ALGORITHMS.register("zero_test", RLAlgorithm({"loss_type": "grpo"}, loss=ZeroLoss))
    try:
        before = snapshot(tiny_moe)
        rl = RLConfig(
            max_steps=2,
            num_generations=4,
            prompts_per_step=2,
            max_completion_length=8,
            learning_rate=1e-2,
            logging_steps=1,
            algorithm="zero_test",
        )
        out = train_rl(
            tiny_moe,
            tokenizer,
            [t.to_row() for t in math_tasks()],
            rl,
            RewardConfig(weights={"digit_share": 1.0}),
            tmp_path,
            seed=0,
            stage=NullStage(),
            device="cpu",
            run_name="t",
        )
    finally:
        ALGORITHMS.unregister("zero_test")
    assert out["steps"] == 2 and ZeroLoss.calls >= 2
    assert all(torch.equal(v, before[k]) for k, v in tiny_moe.named_parameters()), (
        "a zero loss moved the policy"
    )
    assert any(k.startswith("moe/") for h in out["history"] for k in h)  # the MoE mixin still wraps the hook
