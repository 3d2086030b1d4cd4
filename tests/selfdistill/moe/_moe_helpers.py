"""Shared builders for the MoE tests: tiny model + char tokenizer + tiny datasets + trainer configs."""

from __future__ import annotations

import torch
from datasets import Dataset

from selfdistill.models.moe.control import rl_aux_loss_coef
from selfdistill.models.moe.tiny import build_tiny_moe
from selfdistill.models.tokenizer import build_char_tokenizer

PROMPTS = ["1+1=", "2+3=", "4+4=", "5+2="]


def tiny_model_and_tokenizer(arch: str, seed: int = 0):
    tok = build_char_tokenizer()
    model = build_tiny_moe(arch, vocab_size=len(tok), seed=seed)
    return model, tok


def reward_digits(completions, **kwargs) -> list[float]:
    """Trivial reward with spread: the number of digits in the completion."""
    return [float(sum(c.isdigit() for c in text)) for text in completions]


def grpo_config(tmp_path, **overrides):
    from trl import GRPOConfig

    kwargs = dict(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=8,
        max_steps=1,
        learning_rate=1e-2,
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        router_aux_loss_coef=rl_aux_loss_coef(),
        seed=0,
        temperature=1.0,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    kwargs.update(overrides)
    return GRPOConfig(**kwargs)


def sft_config(tmp_path, **overrides):
    from trl import SFTConfig

    kwargs = dict(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        max_steps=1,
        learning_rate=1e-2,
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        max_length=32,
        seed=0,
        disable_tqdm=True,
    )
    kwargs.update(overrides)
    return SFTConfig(**kwargs)


def prompt_dataset(n: int = 4) -> Dataset:
    return Dataset.from_dict({"prompt": [PROMPTS[i % len(PROMPTS)] for i in range(n)]})


def sft_dataset(n: int = 4) -> Dataset:
    rows = [("1+1=", "2"), ("2+3=", "5"), ("4+4=", "8"), ("5+2=", "7")]
    return Dataset.from_dict(
        {"prompt": [rows[i % 4][0] for i in range(n)], "completion": [rows[i % 4][1] for i in range(n)]}
    )


def snapshot(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def changed(before: dict[str, torch.Tensor], model) -> dict[str, bool]:
    params = dict(model.named_parameters())
    return {name: not torch.equal(before[name], params[name].detach()) for name in before}
