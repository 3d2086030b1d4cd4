"""MoE training controls: the load-balancing aux-loss coefficient per stage, router freezing, expert LoRA.

Aux loss. trl 1.16 reads `router_aux_loss_coef=None` as "use the model config's value" (0.001 for Qwen3-MoE,
0.01 for OLMoE), so the load-balancing loss is ON by default in both GRPO and SFT. For RL we default it to 0.0:
NVIDIA NeMo-RL (PR #3169) found the 0.001 default "severely degrades accuracy" in GRPO, with about 10x the
gradient norm at step 1; the balancing term is a pre-training concern, and in RL it pushes the router against the
reward signal on a batch far too small to estimate load. For SFT on the policy's own traces we keep the
architecture's value (None), the regime it was tuned for. DeepSeek-V3 has no aux loss (bias balancing): both
values are harmless there.

Never leave `output_router_logits=True` in a model config: in transformers 5.23 `generate` then crashes inside
`load_balancing_loss_func`. TRL's SFTTrainer writes `output_router_logits = (coef != 0)` into the config, so
call `generation_safe(model)` before handing an SFT'd model to the collect stage.

    GRPOConfig(..., router_aux_loss_coef=rl_aux_loss_coef())
    SFTConfig(..., router_aux_loss_coef=sft_aux_loss_coef())
    freeze_router(model)                      # optional: routers keep their pre-RL routing
    peft_config = expert_lora_config(model, r=8, alpha=16)
"""

from __future__ import annotations

import torch

from .routers import expert_parameter_names, find_routers, router_parameters

RL_AUX_LOSS_COEF = 0.0  # NeMo-RL PR #3169: the load-balancing loss degrades GRPO accuracy
SFT_AUX_LOSS_COEF: float | None = None  # None = the architecture's own coefficient


def rl_aux_loss_coef() -> float:
    """`router_aux_loss_coef` for RL stages (GRPOConfig): 0.0, see the module docstring for why."""
    return RL_AUX_LOSS_COEF


def sft_aux_loss_coef() -> float | None:
    """`router_aux_loss_coef` for SFT stages (SFTConfig): None, i.e. the model config's own value."""
    return SFT_AUX_LOSS_COEF


def generation_safe(model: torch.nn.Module) -> torch.nn.Module:
    """Switch `output_router_logits` off in the model config so `generate` works (returns the model)."""
    config = model.config.get_text_config()
    if getattr(config, "output_router_logits", False):
        config.output_router_logits = False
    return model


def freeze_router(model: torch.nn.Module, frozen: bool = True) -> int:
    """Stop (or restart) gradient flow into every router parameter; returns how many tensors were changed."""
    params = router_parameters(model)
    for _, param in params:
        param.requires_grad_(not frozen)
    return len(params)


def attention_linear_names(model: torch.nn.Module) -> list[str]:
    """Leaf names of the nn.Linear modules inside attention blocks (q_proj, ..., or MLA's q_a_proj, ...)."""
    names = set()
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and ".self_attn." in name:
            names.add(name.rsplit(".", 1)[-1])
    return sorted(names)


def expert_lora_config(
    model: torch.nn.Module,
    r: int = 8,
    alpha: int = 16,
    attention: bool = True,
    experts: bool = True,
    dropout: float = 0.0,
    **kwargs,
):
    """A peft LoraConfig covering the fused 3-D expert weights (`target_parameters`) and, optionally, the
    attention projections (`target_modules`). Routers and lm_head stay out (TRL's fused LM head rejects LoRA
    there). Extra kwargs go to LoraConfig.
    """
    from peft import LoraConfig

    if not (attention or experts):
        raise ValueError("expert_lora_config needs attention=True or experts=True (or both)")
    find_routers(model)  # raises a clear error on a non-MoE model
    target_modules = attention_linear_names(model) if attention else []
    target_parameters = expert_parameter_names(model) if experts else None
    return LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=target_modules,
        target_parameters=target_parameters,
        task_type="CAUSAL_LM",
        **kwargs,
    )
