"""LoRA training of the policy/students: adapters train in RL and SFT and merge into a plain saved model."""

from __future__ import annotations

import pytest

from selfdistill.config import ModelConfig, RewardConfig, RLConfig, SFTConfig
from selfdistill.configio import ConfigError
from selfdistill.stages.steps import merged, with_lora
from selfdistill.tracking import NullStage


def test_lora_off_is_identity(tiny_dense):
    assert with_lora(tiny_dense, ModelConfig()) is tiny_dense
    assert merged(tiny_dense) is tiny_dense


def test_bad_lora_settings_name_the_key():
    with pytest.raises(ConfigError, match="model.lora_r: must be >= 0"):
        ModelConfig(lora_r=-1)
    with pytest.raises(ConfigError, match="model.lora_target_modules"):
        ModelConfig(lora_r=4, lora_target_modules=[])


@pytest.mark.slow  # ~15 s: TRL import and two trainers
def test_lora_rl_then_sft_trains_adapters_only_and_merges(tiny_moe, tokenizer, tmp_path):
    from selfdistill.stages.rl import train_rl
    from selfdistill.stages.sft import train_sft

    base = {n: p.detach().clone() for n, p in tiny_moe.named_parameters()}
    model = with_lora(tiny_moe, ModelConfig(lora_r=4, lora_alpha=8, lora_target_modules=["q_proj", "v_proj"]))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    rows = [{"prompt": "1+1=", "kind": "math", "answer": "2", "tests": None}] * 8
    rl = RLConfig(
        max_steps=2,
        num_generations=4,
        prompts_per_step=2,
        max_completion_length=8,
        learning_rate=0.1,
        gradient_checkpointing=False,
    )
    train_rl(
        model,
        tokenizer,
        rows,
        rl,
        RewardConfig(weights={"math": 1.0}),
        tmp_path / "rl",
        seed=0,
        stage=NullStage(),
        device="cpu",
        run_name="t",
    )
    sft = SFTConfig(epochs=1, batch_size=2, max_steps=2, learning_rate=0.1, gradient_checkpointing=False)
    train_sft(
        model,
        tokenizer,
        [{"prompt": "1+1=", "completion": "2"}] * 4,
        sft,
        tmp_path / "sft",
        seed=0,
        stage=NullStage(),
        device="cpu",
        run_name="t",
    )
    plain = merged(model)
    names = dict(plain.named_parameters())
    assert set(names) == set(base), "merged model must have exactly the base model's parameters"
    changed = [n for n in base if not (names[n] == base[n]).all()]
    assert changed and all(("q_proj" in n or "v_proj" in n) for n in changed)  # only adapted weights moved
