"""Tiny models for stage tests (built locally; one CPU thread: tiny models stall with more)."""

import pytest
import torch

from selfdistill.config import TinyModelConfig

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tokenizer():
    from selfdistill.models.tokenizer import build_char_tokenizer

    return build_char_tokenizer()


@pytest.fixture
def tiny_moe(tokenizer):
    from selfdistill.models.tiny import build_tiny

    return build_tiny(TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=32,
                                      num_experts=4, experts_per_token=2), tokenizer, seed=0)


@pytest.fixture
def tiny_dense(tokenizer):
    from selfdistill.models.tiny import build_tiny

    return build_tiny(TinyModelConfig(arch="qwen2", hidden_size=32, num_layers=1, num_heads=2, intermediate_size=48),
                      tokenizer, seed=1)
