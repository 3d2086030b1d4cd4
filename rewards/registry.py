"""Name -> reward function / record scorer, resolved lazily so `import rewards` stays cheap.

Two families:

* **reward functions** (TRL contract): ``f(prompts, completions, **columns) -> list[float | None]``.
* **record scorers** (offline scoring, ``selfdistill score``): ``f(records: list[dict], workers: int)
  -> list[dict]`` returning, per record, at least ``{"reward": float, "status": str}`` (code scorers
  add ``passed`` and ``total``). Records are keyed by their ``kind`` field.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

_REWARDS: dict[str, str] = {
    "math": "rewards.math:math_reward",
    "code": "rewards.code:code_reward",
    "format": "rewards.format:format_reward",
    "judge": "rewards.judge:judge_reward",  # needs settings: selfdistill builds rewards.judge.JudgeReward
    "overlong": "rewards.overlong:overlong_reward",
}

_SCORERS: dict[str, str] = {
    "math": "rewards.math:score_records",
    "code": "rewards.code:score_records",
}


def _resolve(target: str) -> Callable:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def reward_names() -> list[str]:
    return sorted(_REWARDS)


def get_reward(name: str) -> Callable:
    """Return the reward function registered under ``name``."""
    if name not in _REWARDS:
        raise KeyError(f"unknown reward {name!r}; choose one of: {', '.join(sorted(_REWARDS))}")
    return _resolve(_REWARDS[name])


def get_scorer(kind: str) -> Callable:
    """Return the batch record scorer for records whose ``kind`` is ``kind``."""
    if kind not in _SCORERS:
        raise KeyError(f"unknown record kind {kind!r}; choose one of: {', '.join(sorted(_SCORERS))}")
    return _resolve(_SCORERS[kind])


def register_reward(name: str, target: str) -> None:
    """Register ``"module:function"`` under ``name`` (for plug-ins)."""
    _REWARDS[name] = target


def unregister_reward(name: str) -> None:
    """Remove a registered reward (a test that registers its own cleans up with this)."""
    if name not in _REWARDS:
        raise KeyError(f"unknown reward {name!r}; choose one of: {', '.join(sorted(_REWARDS))}")
    del _REWARDS[name]


def register_scorer(kind: str, target: str) -> None:
    _SCORERS[kind] = target
