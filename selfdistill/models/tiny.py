"""Tiny random-init models for the embedded default: an MoE policy and dense students.

The configs are real transformers architectures (Qwen3-MoE for the policy; Qwen2 or Llama for
students), only small. `build_tiny(cfg.tiny, tokenizer, seed)` returns a model whose vocabulary
matches the tokenizer; everything downstream treats it like any hub model.
"""

from __future__ import annotations


def _common(t, tokenizer) -> dict:
    return {
        "vocab_size": len(tokenizer),
        "hidden_size": t.hidden_size,
        "num_hidden_layers": t.num_layers,
        "num_attention_heads": t.num_heads,
        "num_key_value_heads": max(1, t.num_heads // 2),
        "head_dim": t.hidden_size // t.num_heads,
        "max_position_embeddings": 512,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "tie_word_embeddings": False,
    }


def qwen3_moe_config(t, tokenizer):
    from transformers import Qwen3MoeConfig

    return Qwen3MoeConfig(
        **_common(t, tokenizer),
        intermediate_size=t.intermediate_size,
        moe_intermediate_size=t.intermediate_size,
        num_experts=t.num_experts,
        num_experts_per_tok=t.experts_per_token,
        norm_topk_prob=True,
        decoder_sparse_step=1,
        output_router_logits=False,  # True crashes generation in transformers 5.23 (see notes)
        router_aux_loss_coef=0.0,
    )


def qwen2_config(t, tokenizer):
    from transformers import Qwen2Config

    return Qwen2Config(**_common(t, tokenizer), intermediate_size=t.intermediate_size)


def llama_config(t, tokenizer):
    from transformers import LlamaConfig

    return LlamaConfig(**_common(t, tokenizer), intermediate_size=t.intermediate_size)


def build_tiny(t, tokenizer, seed: int):
    """Random-init model of architecture ``t.arch`` (a `TinyModelConfig`)."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    from selfdistill.registries import TINY_ARCHS

    config = TINY_ARCHS.get(t.arch, "tiny.arch")(t, tokenizer)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config = GenerationConfig(
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    return model


def count_params(model) -> int:
    """Parameters of ``model``, also when ZeRO-3 partitioned them at load (a local shard's ``numel`` is 0 then;
    DeepSpeed keeps the full count in ``ds_numel``)."""
    return sum(getattr(p, "ds_numel", p.numel()) for p in model.parameters())
