"""MoE policies done right: architecture registry, router diagnostics, aux-loss control, routing replay, TRL glue.

The public API, imported lazily so `import selfdistill.models.moe` stays cheap (no torch/trl until used):

    from selfdistill.models.moe import (
        make_grpo_trainer_class,   # GRPOTrainer subclass: replay=True (R2) or measure routing change only
        make_sft_trainer_class,    # SFTTrainer subclass logging router diagnostics
        moe_trainer_class,         # the general form: any TRL trainer + routing off/measure/replay
        rl_aux_loss_coef, sft_aux_loss_coef, freeze_router, expert_lora_config, generation_safe,
        RouterRecorder, RoutingReplay, build_tiny_moe, ARCHS,
    )

See docs/moe.md for the support matrix and the reasons behind each default.
"""

from importlib import import_module

_EXPORTS = {
    "ARCHS": "archs",
    "MoEArch": "archs",
    "build_tiny_moe": "tiny",
    "tiny_config": "tiny",
    "get_arch": "archs",
    "arch_of": "archs",
    "find_routers": "routers",
    "top_k": "routers",
    "num_experts": "routers",
    "router_parameters": "routers",
    "expert_parameter_names": "routers",
    "RouterRecorder": "diagnostics",
    "expert_load": "diagnostics",
    "load_imbalance": "diagnostics",
    "router_entropy": "diagnostics",
    "routing_change_rate": "diagnostics",
    "routing_change_rates": "diagnostics",
    "RoutingReplay": "replay",
    "rl_aux_loss_coef": "control",
    "sft_aux_loss_coef": "control",
    "freeze_router": "control",
    "expert_lora_config": "control",
    "generation_safe": "control",
    "MoETrainerMixin": "trl",
    "moe_trainer_class": "trl",
    "make_grpo_trainer_class": "trl",
    "make_sft_trainer_class": "trl",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
