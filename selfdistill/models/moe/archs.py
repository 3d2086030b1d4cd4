"""Registry of the Mixture-of-Experts architectures selfdistill supports, with a tiny random-init config each.

Every entry says how to build a tiny model of that family (hidden 64, 2 layers, 8 experts, top-2, small vocab:
it builds, trains and generates on a CPU in well under a second) and how its router turns router logits into
the routing weights of the chosen experts. That second part is what routing replay needs: to force recorded
experts it recomputes their weights from the *current* router logits, exactly as the architecture would have,
so gradients still reach the router (see `replay.py`).

transformers 5 gives every one of these families the same router contract, which is why one hook serves all:
    router(hidden (N, H) or (B, T, H)) -> (router_logits (N, E), weights (N, k), indices (N, k))
and stores the experts fused as 3-D parameters `experts.gate_up_proj` (E, 2I, H) / `experts.down_proj` (E, H, I).

    from selfdistill.models.moe.archs import ARCHS, get_arch
    arch = get_arch("qwen3_moe")   # tiny models of each family: `selfdistill.models.moe.tiny`
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

WeightsFn = Callable[[torch.Tensor, torch.Tensor, torch.nn.Module], torch.Tensor]
ProbsFn = Callable[[torch.Tensor], torch.Tensor]


# ---------------------------------------------------------------- routing-weight rules (one per router family)
def softmax_topk_weights(
    logits: torch.Tensor, indices: torch.Tensor, router: torch.nn.Module
) -> torch.Tensor:
    """Qwen2/Qwen3-MoE, OLMoE: softmax over all experts, gather the chosen, renormalise if `norm_topk_prob`.

    logits (N, E), indices (N, k) -> weights (N, k) in the logits' dtype, as the router returns them.
    """
    probs = F.softmax(logits, dtype=torch.float, dim=-1)  # (N, E)
    weights = probs.gather(-1, indices)  # (N, k)
    if getattr(router, "norm_topk_prob", False):
        weights = weights / weights.sum(dim=-1, keepdim=True)
    return weights.to(logits.dtype)


def mixtral_weights(logits: torch.Tensor, indices: torch.Tensor, router: torch.nn.Module) -> torch.Tensor:
    """Mixtral: softmax in float32 over all experts, gather the chosen, always renormalise (kept in float32)."""
    probs = F.softmax(logits.float(), dim=-1)  # (N, E)
    weights = probs.gather(-1, indices)  # (N, k)
    return weights / weights.sum(dim=-1, keepdim=True)


def sigmoid_group_weights(
    logits: torch.Tensor, indices: torch.Tensor, router: torch.nn.Module
) -> torch.Tensor:
    """DeepSeek-V3: sigmoid scores of the chosen experts (the selection bias is not part of the weight),
    renormalised if `norm_topk_prob`, times `routed_scaling_factor`."""
    weights = logits.sigmoid().gather(-1, indices)  # (N, k)
    if router.norm_topk_prob:
        weights = weights / (weights.sum(dim=-1, keepdim=True) + 1e-20)
    return weights * router.routed_scaling_factor


def topk_softmax_weights(
    logits: torch.Tensor, indices: torch.Tensor, router: torch.nn.Module
) -> torch.Tensor:
    """GPT-OSS: softmax over the chosen experts' logits only."""
    top = logits.gather(-1, indices)  # (N, k)
    return F.softmax(top, dim=1, dtype=top.dtype)


def softmax_probs(logits: torch.Tensor) -> torch.Tensor:
    """Router distribution over experts for softmax routers: logits (N, E) -> probs (N, E)."""
    return F.softmax(logits.float(), dim=-1)


def sigmoid_probs(logits: torch.Tensor) -> torch.Tensor:
    """Router distribution for sigmoid routers (DeepSeek-V3): scores normalised to sum to 1, (N, E) -> (N, E)."""
    scores = logits.float().sigmoid()
    return scores / scores.sum(dim=-1, keepdim=True)


# ---------------------------------------------------------------- the registry


@dataclass(frozen=True)
class MoEArch:
    """One MoE family: how to build a tiny one and how its router computes weights and probabilities."""

    name: str  # registry key, equal to the transformers `model_type`
    config_class: str  # attribute of `transformers`
    router_class: str  # class name of the router module in the modeling file
    weights_fn: WeightsFn
    probs_fn: ProbsFn = softmax_probs
    tiny_overrides: dict = field(default_factory=dict)
    has_aux_loss: bool = True  # False: balances experts with a bias instead (DeepSeek-V3)
    notes: str = ""


ARCHS: dict[str, MoEArch] = {}


def register_arch(arch: MoEArch) -> MoEArch:
    if arch.name in ARCHS:
        raise ValueError(f"MoE architecture {arch.name!r} is already registered")
    ARCHS[arch.name] = arch
    return arch


register_arch(
    MoEArch(
        "qwen3_moe",
        "Qwen3MoeConfig",
        "Qwen3MoeTopKRouter",
        softmax_topk_weights,
        tiny_overrides=dict(num_experts=8, moe_intermediate_size=32, head_dim=16, norm_topk_prob=True),
    )
)
register_arch(
    MoEArch(
        "qwen2_moe",
        "Qwen2MoeConfig",
        "Qwen2MoeTopKRouter",
        softmax_topk_weights,
        tiny_overrides=dict(num_experts=8, moe_intermediate_size=32, shared_expert_intermediate_size=64),
        notes="shared expert with a sigmoid gate next to the routed experts",
    )
)
register_arch(
    MoEArch(
        "olmoe",
        "OlmoeConfig",
        "OlmoeTopKRouter",
        softmax_topk_weights,
        tiny_overrides=dict(num_experts=8, intermediate_size=32),
    )
)
register_arch(
    MoEArch(
        "mixtral",
        "MixtralConfig",
        "MixtralTopKRouter",
        mixtral_weights,
        tiny_overrides=dict(num_local_experts=8, intermediate_size=32, head_dim=16),
    )
)
register_arch(
    MoEArch(
        "deepseek_v3",
        "DeepseekV3Config",
        "DeepseekV3TopkRouter",
        sigmoid_group_weights,
        probs_fn=sigmoid_probs,
        has_aux_loss=False,
        tiny_overrides=dict(
            n_routed_experts=8,
            moe_intermediate_size=32,
            n_shared_experts=1,
            first_k_dense_replace=0,
            n_group=2,
            topk_group=1,
            kv_lora_rank=16,
            q_lora_rank=32,
            qk_rope_head_dim=8,
            qk_nope_head_dim=8,
            v_head_dim=16,
            head_dim=8,
            num_key_value_heads=4,
            rope_interleave=False,
        ),
        notes="sigmoid router with grouped top-k and a selection bias; no aux loss",
    )
)
register_arch(
    MoEArch(
        "gpt_oss",
        "GptOssConfig",
        "GptOssTopKRouter",
        topk_softmax_weights,
        tiny_overrides=dict(
            num_local_experts=8,
            intermediate_size=32,
            head_dim=16,
            sliding_window=16,
            layer_types=["sliding_attention", "full_attention"],
        ),
        notes="softmax over the top-k logits only; attention sinks",
    )
)


def get_arch(name: str) -> MoEArch:
    """Look an architecture up by `model_type`; the error lists what is supported."""
    try:
        return ARCHS[name]
    except KeyError:
        raise ValueError(
            f"unsupported MoE architecture {name!r}; choose one of: {', '.join(ARCHS)}"
        ) from None


def arch_of(model: torch.nn.Module) -> MoEArch:
    """The registry entry of a (possibly PEFT-wrapped) transformers model, from its config's `model_type`."""
    config = getattr(model, "config", None)
    if config is None:
        raise ValueError(f"{type(model).__name__} has no `config`; pass a transformers model")
    return get_arch(config.get_text_config().model_type)
