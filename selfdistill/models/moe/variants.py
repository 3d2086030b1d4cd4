"""Named RL variants for MoE policies: which trainer class and which GRPOConfig settings each one means.

The registry the RL stage (and the GRPO vs GSPO vs replay experiment of issue 6) picks from by name:

- "gspo" (the default for MoE): sequence-level importance ratio (GSPO, arXiv 2507.18071). About 10% of a
  token's experts change per update in a 48-layer MoE, which makes per-token ratios noisy; the length-normalised
  sequence ratio averages that out and, per the paper, removes the need for routing replay. Clip range 3e-4 /
  4e-4 and loss_type "grpo" as in the paper (v2, section 5.1; TRL's paper index).
- "grpo": token-level ratios, routing only measured.
- "grpo_replay": token-level ratios with routing replay (R2): the training forward uses the experts the old
  policy used when it scored the samples.

All three set `router_aux_loss_coef=0.0` (see control.py) and log `moe/routing_change_rate`. They only differ
when training is off-policy: `steps_per_generation > gradient_accumulation_steps` or `num_iterations > 1`
(otherwise every ratio is 1), so the experiment must set one of those.

    trainer_cls, config_kwargs = rl_variant("grpo_replay")
    trainer = trainer_cls(model=m, reward_funcs=fs, args=GRPOConfig(**config_kwargs, **mine), ...)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .control import rl_aux_loss_coef


@dataclass(frozen=True)
class RLVariant:
    name: str
    routing: str  # "measure" | "replay" (see trl.py)
    config: dict = field(default_factory=dict)  # GRPOConfig keyword arguments


RL_VARIANTS: dict[str, RLVariant] = {
    v.name: v
    for v in (
        RLVariant("gspo", "measure", dict(importance_sampling_level="sequence", loss_type="grpo",
                                           epsilon=3e-4, epsilon_high=4e-4)),
        RLVariant("grpo", "measure", dict(importance_sampling_level="token")),
        RLVariant("grpo_replay", "replay", dict(importance_sampling_level="token")),
    )
}
DEFAULT_MOE_RL_VARIANT = "gspo"


def rl_variant(name: str = DEFAULT_MOE_RL_VARIANT, diagnostics: bool = True) -> tuple[type, dict]:
    """(trainer class, GRPOConfig kwargs) of a named variant; the error lists the valid names."""
    from trl import GRPOTrainer

    from .trl import moe_trainer_class

    if name not in RL_VARIANTS:
        raise ValueError(f"unknown MoE RL variant {name!r}; choose one of: {', '.join(RL_VARIANTS)}")
    variant = RL_VARIANTS[name]
    kwargs = {"beta": 0.0, "router_aux_loss_coef": rl_aux_loss_coef(), **variant.config}
    return moe_trainer_class(GRPOTrainer, routing=variant.routing, diagnostics=diagnostics), kwargs
