"""SFT of an MoE under both LM-head losses: router metrics and the configured load-balancing loss are never lost."""

from __future__ import annotations

import random

import pytest
import torch

from selfdistill.config import SFTConfig
from selfdistill.kernels.hf import KernelSpec
from selfdistill.stages.sft import sft_args, tokenize_rows
from selfdistill.stages.sft_trainer import sft_trainer_class
from selfdistill.tasks import math_gen


def _rows(n: int = 8):
    from types import SimpleNamespace

    rng = random.Random(0)
    tasks = math_gen.generate_math_tasks(SimpleNamespace(n=n, difficulty=1), 0)
    return [{"prompt": t.prompt, "completion": math_gen.worked_solution(t, rng)} for t in tasks]


def _trainer(model, tokenizer, tmp_path, kernels, coef, max_steps=2):
    sft = SFTConfig(
        max_steps=max_steps,
        batch_size=4,
        max_length=96,
        router_aux_loss_coef=coef,
        gradient_checkpointing=False,
    )
    rows = _rows()
    args = sft_args(sft, tmp_path, 0, "none", "cpu", len(rows), "t", model_dtype=torch.float32)
    cls = sft_trainer_class(kernels, moe=True)
    return cls(
        model=model,
        args=args,
        train_dataset=tokenize_rows(tokenizer, rows, sft.max_length),
        processing_class=tokenizer,
    )


@pytest.mark.parametrize("kernels", ["eager", KernelSpec("fused")])
def test_moe_sft_logs_router_metrics_under_either_loss(tiny_moe, tokenizer, tmp_path, kernels):
    """Every logged step has router metrics (the fused loss calls the decoder, not the causal-LM wrapper: the
    recorder must see those forwards too, every one of them)."""
    tiny_moe(
        input_ids=torch.ones(1, 3, dtype=torch.long)
    )  # an earlier forward of another shape (e.g. sampling)
    trainer = _trainer(tiny_moe, tokenizer, tmp_path, kernels, coef=0.01, max_steps=3)
    trainer.train()
    steps = [h for h in trainer.state.log_history if "loss" in h]
    assert len(steps) == 3
    for h in steps:
        assert h.get("moe/load_imbalance", 0) > 0, f"no router metrics in {sorted(h)}"


def test_fused_and_eager_sft_losses_both_add_the_configured_aux_loss(tiny_moe, tokenizer, tmp_path):
    """``sft.router_aux_loss_coef`` weights the load-balancing loss in both losses (the fused kernels read the
    coefficient TRL writes into the config, not the one the model copied at construction)."""
    batch = None
    losses = {}
    for coef in (0.0, 0.5):
        for kernels in ("eager", KernelSpec("fused")):
            trainer = _trainer(tiny_moe, tokenizer, tmp_path / f"{coef}-{kernels}", kernels, coef)
            if batch is None:
                batch = next(iter(trainer.get_train_dataloader()))
            tiny_moe.train()
            with torch.no_grad():
                losses[coef, str(kernels)] = trainer.compute_loss(tiny_moe, dict(batch)).item()
    eager, fused = "eager", str(KernelSpec("fused"))
    assert losses[0.0, fused] == pytest.approx(losses[0.0, eager], rel=1e-5)
    assert losses[0.5, fused] == pytest.approx(losses[0.5, eager], rel=1e-5)
    assert losses[0.5, eager] - losses[0.0, eager] > 1e-3  # the aux loss is there, and weighted


def test_the_sft_aux_coefficient_is_a_documented_config_field():
    from selfdistill.config import load_config
    from selfdistill.configio import ConfigError, describe

    docs = {key: doc for key, _, _, doc in describe(type(load_config()))}
    assert "load-balancing" in docs["sft.router_aux_loss_coef"]
    assert load_config(None, ["sft.router_aux_loss_coef=0.02"]).sft.router_aux_loss_coef == 0.02
    with pytest.raises(ConfigError, match="sft.router_aux_loss_coef"):
        load_config(None, ["sft.router_aux_loss_coef=-1"])
