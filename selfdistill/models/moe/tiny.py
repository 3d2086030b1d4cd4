"""Tiny random-init MoE models of every registered architecture (hidden 64, 2 layers, 8 experts, top-2).

They build, train and generate on a CPU in well under a second: the test and benchmark stand-ins.

    from selfdistill.models.moe.tiny import build_tiny_moe
    model = build_tiny_moe("qwen3_moe", vocab_size=64)
"""

from __future__ import annotations

import torch

from .archs import get_arch
from .routers import find_routers

COMMON = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
    num_experts_per_tok=2,
    tie_word_embeddings=False,
    pad_token_id=0,
    bos_token_id=1,
    eos_token_id=2,
    output_router_logits=False,  # never True in a config: it crashes `generate` (see docs/moe.md)
)


def tiny_config(name: str, vocab_size: int = 64, **overrides):
    """A tiny random-init config of architecture `name` (see COMMON for the shared sizes)."""
    import transformers

    arch = get_arch(name)
    kwargs = {**COMMON, **arch.tiny_overrides, "vocab_size": vocab_size, **overrides}
    return getattr(transformers, arch.config_class)(**kwargs)


def build_tiny_moe(
    name: str, vocab_size: int = 64, seed: int = 0, dtype: torch.dtype = torch.float32, **overrides
):
    """Build a tiny random-init causal LM of architecture `name` (a few hundred thousand parameters)."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    config = tiny_config(name, vocab_size=vocab_size, **overrides)
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    # Random-init routers start at zero weight in some families (all logits tie): give them a spread so
    # routing is non-trivial, as it is in a trained model.
    with torch.no_grad():
        for router in find_routers(model).values():
            torch.nn.init.normal_(router.weight, std=0.5)
    return model
