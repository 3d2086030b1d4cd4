"""Shared tiny fixtures of the distillation tests: a Qwen3-MoE teacher (width 64) and a Qwen2 student (width 32)."""

from __future__ import annotations

import torch

from selfdistill.config import TinyModelConfig
from selfdistill.models.tiny import build_tiny
from selfdistill.models.tokenizer import build_char_tokenizer

TEACHER = TinyModelConfig(
    arch="qwen3_moe",
    hidden_size=64,
    num_layers=3,
    num_heads=4,
    intermediate_size=64,
    num_experts=4,
    experts_per_token=2,
)
STUDENT = TinyModelConfig(arch="qwen2", hidden_size=32, num_layers=3, num_heads=4, intermediate_size=64)

ROWS = [
    {"prompt": f"What is {a}+{b}? ", "completion": f"<think>{a}+{b}={a + b}</think> \\boxed{{{a + b}}}"}
    for a, b in [(1, 2), (3, 4), (5, 6), (7, 8), (2, 9), (4, 4), (6, 1), (8, 3)]
]


def tiny_pair(seed: int = 0):
    """(tokenizer, teacher, student) with the same char tokenizer and different widths."""
    torch.set_num_threads(1)
    tok = build_char_tokenizer()
    teacher = build_tiny(TEACHER, tok, seed)
    student = build_tiny(STUDENT, tok, seed + 1)
    return tok, teacher, student


def state_copy(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def changed(before: dict[str, torch.Tensor], model) -> list[str]:
    return [k for k, v in model.state_dict().items() if not torch.equal(before[k], v)]
