"""Turn the ``rewards`` config section into TRL reward functions and per-sample scores.

RL gets a list of named reward callables with weights (TRL contract). Collect and eval need,
per completion, the *correctness* reward (math or code, whichever applies to the task's kind)
and the format reward separately; `score_completions` computes both with the same functions
the trainer uses, so what RL optimises and what collect keeps can never drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rewards import get_reward

CORRECTNESS = ("math", "code")


def _code_reward(rcfg):
    """The sandboxed code reward with this run's deadline and scoring rule."""
    from dataclasses import replace

    from rewards.code import CodeReward, CodeRewardConfig
    from rewards.sandbox.config import SandboxConfig

    sandbox = SandboxConfig()
    sandbox = replace(sandbox, limits=replace(sandbox.limits, test_timeout_s=rcfg.code_timeout_s))
    return CodeReward(CodeRewardConfig(all_or_nothing=rcfg.code_all_or_nothing, sandbox=sandbox))


def _math_reward(rcfg):
    """The math reward, reading prose answers only if the config allows it (per call: no global switch)."""
    base = get_reward("math")
    fallback = rcfg.math_text_fallback

    def math_reward(prompts, completions, **kwargs):
        return base(prompts, completions, text_fallback=fallback, **kwargs)

    return math_reward


# Rewards that take settings from the config; the others are the registry's plain functions.
_FACTORIES = {"code": _code_reward, "math": _math_reward}
_SETTINGS = {"code": ("code_timeout_s", "code_all_or_nothing"), "math": ("math_text_fallback",)}
_BUILT: dict[tuple, Any] = {}  # one instance per (name, settings): the sandbox starts once per process


def reward_func(rcfg, name: str):
    key = (name, *(getattr(rcfg, k) for k in _SETTINGS.get(name, ())))
    if key not in _BUILT:
        _BUILT[key] = _FACTORIES[name](rcfg) if name in _FACTORIES else get_reward(name)
    return _BUILT[key]


def build_reward_funcs(rcfg) -> tuple[list[Any], list[float]]:
    """The configured reward callables (TRL contract) and their weights, in config order."""
    names = list(rcfg.weights)
    return [reward_func(rcfg, n) for n in names], [rcfg.weights[n] for n in names]


@dataclass
class Scores:
    correct: list[float]  # [n] correctness reward in [0, 1] (0 when not applicable/failed)
    parts: list[dict[str, float]]  # [n] every reward by name (None -> omitted)
    formatted: list[bool]  # [n] format reward == 1 (True when no format reward is configured)
    total: list[float]  # [n] weighted sum, as RL sees it


def score_completions(rcfg, prompts: list[Any], completions: list[str], columns: dict[str, list[Any]]) -> Scores:
    """Score a flat batch; ``columns`` are the dataset columns (kind, answer, tests) per item."""
    funcs, weights = build_reward_funcs(rcfg)
    n = len(completions)
    parts: list[dict[str, float]] = [{} for _ in range(n)]
    for fn, name in zip(funcs, rcfg.weights):
        values = fn(prompts, completions, **columns)
        for i, v in enumerate(values):
            if v is not None:
                parts[i][name] = float(v)
    correct = [max((p[k] for k in CORRECTNESS if k in p), default=0.0) for p in parts]
    has_format = "format" in rcfg.weights
    formatted = [p.get("format", 0.0) >= 1.0 if has_format else True for p in parts]
    total = [sum(w * p.get(name, 0.0) for name, w in zip(rcfg.weights, weights)) for p in parts]
    return Scores(correct=correct, parts=parts, formatted=formatted, total=total)
