"""Registries of interchangeable parts, looked up by the names used in configs.

Entries may be objects or lazy ``"module:attribute"`` strings, so validating a config never
imports torch or TRL. A wrong name raises `ConfigError` listing the valid ones.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from selfdistill.configio import ConfigError


def load_target(target: str) -> Any:
    """The object a lazy ``"module:attribute"`` string names (imports the module)."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


class Registry:
    """Name -> object (or lazy ``module:attr`` target) with clear errors."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[str, Any] = {}

    def register(self, name: str, target: Any = None) -> Callable:
        """``REG.register("x", obj)`` or as a decorator ``@REG.register("x")``."""
        if target is not None:
            self._entries[name] = target
            return target

        def deco(obj: Any) -> Any:
            self._entries[name] = obj
            return obj

        return deco

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests that register a temporary entry clean up with this)."""
        self.check(name)
        del self._entries[name]

    def names(self) -> list[str]:
        """Registered names, sorted (for error messages)."""
        return sorted(self._entries)

    def ordered(self) -> list[str]:
        """Registered names in registration order (for tables whose column order is meaningful)."""
        return list(self._entries)

    def check(self, name: str, key: str | None = None) -> None:
        if name not in self._entries:
            where = f"{key}: " if key else ""
            raise ConfigError(
                f"{where}unknown {self.what} {name!r}; choose one of: {', '.join(self.names())}"
            )

    def get(self, name: str, key: str | None = None) -> Any:
        self.check(name, key)
        entry = self._entries[name]
        if isinstance(entry, str) and ":" in entry:
            entry = self._entries[name] = load_target(entry)
        return entry


@dataclass(frozen=True)
class RLAlgorithm:
    """One RL algorithm: the GRPOConfig settings that select it in TRL and, where TRL lacks its loss, a hook.

    ``loss``: a trainer mixin (or its lazy ``"module:Class"`` name) whose `compute_loss` computes the loss;
    `selfdistill.stages.rl.rl_trainer_class` puts it between our MoE mixin and TRL's GRPOTrainer, so
    ``super().compute_loss`` is TRL's GRPO loss and the inputs are TRL's batch (advantages, old log-probs, masks).
    """

    trl: dict[str, Any] = field(default_factory=dict)  # GRPOConfig keyword arguments
    loss: Any = None  # None: TRL's loss for `trl["loss_type"]`
    summary: str = ""

    def loss_mixin(self) -> type | None:
        """The loss hook's class (imported on first use), or None."""
        return load_target(self.loss) if isinstance(self.loss, str) else self.loss


# The GRPO family. TRL implements these losses; an entry only picks settings.
ALGORITHMS = Registry("RL algorithm")
ALGORITHMS.register(
    "grpo",
    RLAlgorithm(
        {"loss_type": "grpo", "importance_sampling_level": "token", "scale_rewards": "group"},
        summary="token-level ratios, per-sequence length normalisation, group-scaled advantages",
    ),
)
ALGORITHMS.register(
    "dr_grpo",
    RLAlgorithm(
        {"loss_type": "dr_grpo", "importance_sampling_level": "token", "scale_rewards": "none"},
        summary="Dr. GRPO: no length or std normalisation",
    ),
)
ALGORITHMS.register(
    "dapo",
    RLAlgorithm(
        {
            "loss_type": "dapo",
            "importance_sampling_level": "token",
            "epsilon_high": 0.28,
            "mask_truncated_completions": True,
        },
        summary="DAPO: token-level normalisation, clip-higher, truncated completions masked",
    ),
)
# GSPO (arXiv 2507.18071): sequence-level, length-normalised ratios; the paper's clip range.
ALGORITHMS.register(
    "gspo",
    RLAlgorithm(
        {"loss_type": "grpo", "importance_sampling_level": "sequence", "epsilon": 3e-4, "epsilon_high": 4e-4},
        summary="GSPO: sequence-level ratios (the MoE default: per-token ratios are noisy when experts shift)",
    ),
)

TASK_SOURCES = Registry("task source")
TASK_SOURCES.register("math", "selfdistill.tasks.math_gen:generate_math_tasks")
TASK_SOURCES.register("code", "selfdistill.tasks.code_gen:generate_code_tasks")
TASK_SOURCES.register("jsonl", "selfdistill.tasks.files:load_file_tasks")
TASK_SOURCES.register("parquet", "selfdistill.tasks.files:load_file_tasks")
TASK_SOURCES.register("hf", "selfdistill.tasks.files:load_hf_tasks")

TINY_ARCHS = Registry("tiny architecture")
TINY_ARCHS.register("qwen3_moe", "selfdistill.models.tiny:qwen3_moe_config")
TINY_ARCHS.register("qwen2", "selfdistill.models.tiny:qwen2_config")
TINY_ARCHS.register("llama", "selfdistill.models.tiny:llama_config")

# The distillation methods' table is `selfdistill.distill.methods.DISTILL_METHODS`.

# Sampling engines of collect, eval, on-policy distillation and `selfdistill generate` (selfdistill/generation/).
GENERATION_BACKENDS = Registry("generation backend")
GENERATION_BACKENDS.register("hf", "selfdistill.generation.hf:HFBackend")
GENERATION_BACKENDS.register("paged", "selfdistill.generation.paged:PagedBackend")
GENERATION_BACKENDS.register("vllm", "selfdistill.generation.vllm_offline:VLLMBackend")
