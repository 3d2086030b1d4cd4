"""Registries of interchangeable parts, looked up by the names used in configs.

Entries may be objects or lazy ``"module:attribute"`` strings, so validating a config never
imports torch or TRL. A wrong name raises `ConfigError` listing the valid ones.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from selfdistill.configio import ConfigError


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

    def names(self) -> list[str]:
        return sorted(self._entries)

    def check(self, name: str, key: str | None = None) -> None:
        if name not in self._entries:
            where = f"{key}: " if key else ""
            raise ConfigError(f"{where}unknown {self.what} {name!r}; choose one of: {', '.join(self.names())}")

    def get(self, name: str, key: str | None = None) -> Any:
        self.check(name, key)
        entry = self._entries[name]
        if isinstance(entry, str) and ":" in entry:
            module, _, attr = entry.partition(":")
            entry = getattr(importlib.import_module(module), attr)
            self._entries[name] = entry
        return entry


# GRPO-family losses as GRPOConfig keyword sets (TRL implements the losses; we pick settings).
ALGORITHMS = Registry("RL algorithm")
ALGORITHMS.register("grpo", {"loss_type": "grpo", "importance_sampling_level": "token", "scale_rewards": "group"})
ALGORITHMS.register("dr_grpo", {"loss_type": "dr_grpo", "importance_sampling_level": "token", "scale_rewards": "none"})
ALGORITHMS.register(
    "dapo",
    {"loss_type": "dapo", "importance_sampling_level": "token", "epsilon_high": 0.28, "mask_truncated_completions": True},
)
# GSPO (arXiv 2507.18071): sequence-level, length-normalised ratios; the paper's clip range.
ALGORITHMS.register(
    "gspo",
    {"loss_type": "grpo", "importance_sampling_level": "sequence", "epsilon": 3e-4, "epsilon_high": 4e-4},
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

DISTILL_METHODS = Registry("distillation method")
DISTILL_METHODS.register("sft", "selfdistill.stages.distill:distill_sft")
DISTILL_METHODS.register("logit_kd", "selfdistill.distill.methods:distill_logit_kd")
DISTILL_METHODS.register("on_policy", "selfdistill.distill.methods:distill_on_policy")
DISTILL_METHODS.register("hidden_align", "selfdistill.distill.methods:distill_hidden_align")
