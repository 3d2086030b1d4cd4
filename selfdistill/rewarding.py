"""Turn the ``rewards`` config section into TRL reward functions and per-sample scores.

RL gets a list of named reward callables with weights (TRL contract). Collect and eval need,
per completion, the *correctness* reward (the reward of the task's kind, `selfdistill.tasks.kinds`)
with its status, and the format reward separately; `score_completions` computes them with the
same verdicts the trainer's functions return, so what RL optimises and what collect keeps can
never drift apart. A verdict the infrastructure could not give (sandbox or math worker failure)
is None everywhere: left out of RL's reward, never kept as a trace, counted apart by eval.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from rewards import get_reward
from selfdistill.tasks.kinds import correctness_rewards

log = logging.getLogger(__name__)


def _code_reward(rcfg):
    """The sandboxed code reward with this run's deadline, scoring rule and isolation layers, started now.

    Starting the sandbox here (not at the first batch) makes a missing required layer stop the run before
    any work (`rewards.sandbox.client.SandboxUnavailable` names it) and logs the layers that are active.
    """
    from dataclasses import replace

    from rewards.code import CodeReward, CodeRewardConfig
    from rewards.sandbox.config import SandboxConfig

    sandbox = SandboxConfig(layers=tuple(rcfg.sandbox_layers) if rcfg.sandbox_layers else "auto")
    sandbox = replace(sandbox, limits=replace(sandbox.limits, test_timeout_s=rcfg.code_timeout_s))
    reward = CodeReward(CodeRewardConfig(all_or_nothing=rcfg.code_all_or_nothing, sandbox=sandbox))
    started = reward.sandbox
    missing = [x for x, ok in started.available.items() if not ok]
    log.info(
        "code sandbox: active isolation layers %s (required: %s; not on this machine: %s)",
        ", ".join(started.layers),
        ", ".join(rcfg.sandbox_layers) or "none, auto",
        ", ".join(missing) or "none",
    )
    return reward


def check_sandbox_layers(rcfg) -> None:
    """Refuse to start a run whose required sandbox layers this machine lacks (a cheap static probe; the
    sandbox's canaries check again when it starts). Raises `ConfigError` naming each missing layer and why."""
    if "code" not in rcfg.weights or not rcfg.sandbox_layers:
        return
    from rewards.sandbox import probe
    from selfdistill.configio import ConfigError

    available = probe.available_layers()
    missing = [x for x in rcfg.sandbox_layers if not available.get(x)]
    if missing:
        why = "; ".join(f"{x}: {probe.why_missing(x)}" for x in missing)
        raise ConfigError(
            f"rewards.sandbox_layers: required sandbox layer(s) {', '.join(missing)} missing on this "
            f"machine, refusing to start ({why})"
        )


def sandbox_layers(rcfg) -> list[str] | None:
    """The code sandbox's active layers if this process started the code reward for ``rcfg`` (else None)."""
    reward = _BUILT.get(_key(rcfg, "code"))
    return list(reward.sandbox.layers) if reward is not None else None


def _math_reward(rcfg):
    """The math reward, reading prose answers only if the config allows it (per call: no global switch)."""
    base = get_reward("math")
    fallback = rcfg.math_text_fallback

    def math_reward(prompts, completions, **kwargs):
        return base(prompts, completions, text_fallback=fallback, **kwargs)

    return math_reward


def _judge_reward(rcfg):
    """The judge reward (rewards.judge): loads the judge now, caches under rewards.judge.cache_dir or the run dir.

    A local judge loads with selfdistill's own `load_model`, so it accepts any path ``policy.path`` does.
    """
    from rewards.judge import JudgeReward

    run_dir = getattr(rcfg, "run_dir", None)  # set by Config (not a field); absent for a bare RewardConfig
    return JudgeReward(
        rcfg.judge,
        cache_dir=None if run_dir is None else run_dir / "judge_cache",
        loader="selfdistill.models.loading:load_model",
    )


def _overlong_reward(rcfg):
    """DAPO's soft overlong penalty with this run's limit and window (RL resolves a 0 limit, see `stages.rl`)."""
    base = get_reward("overlong")
    max_tokens, cache_tokens = rcfg.overlong_max_tokens, rcfg.overlong_cache_tokens

    def overlong_reward(prompts, completions, **kwargs):
        return base(prompts, completions, max_tokens=max_tokens, cache_tokens=cache_tokens, **kwargs)

    return overlong_reward


# Rewards that take settings from the config; the others are the registry's plain functions.
_FACTORIES = {
    "code": _code_reward,
    "math": _math_reward,
    "judge": _judge_reward,
    "overlong": _overlong_reward,
}
_SETTINGS = {
    "code": ("code_timeout_s", "code_all_or_nothing", "sandbox_layers"),
    "math": ("math_text_fallback",),
    "judge": ("judge", "run_dir"),
    "overlong": ("overlong_max_tokens", "overlong_cache_tokens"),
}
_BUILT: dict[tuple, Any] = {}  # one instance per (name, settings): the sandbox starts once per process


def _key(rcfg, name: str) -> tuple:
    values = (getattr(rcfg, k, None) for k in _SETTINGS.get(name, ()))  # run_dir: not a field, may be absent
    return (name, *(tuple(v) if isinstance(v, list) else v for v in values))


def reward_func(rcfg, name: str):
    key = _key(rcfg, name)
    if key not in _BUILT:
        _BUILT[key] = _FACTORIES[name](rcfg) if name in _FACTORIES else get_reward(name)
    return _BUILT[key]


def build_reward_funcs(rcfg) -> tuple[list[Any], list[float]]:
    """The configured reward callables (TRL contract) and their weights, in config order."""
    names = list(rcfg.weights)
    return [reward_func(rcfg, n) for n in names], [rcfg.weights[n] for n in names]


@dataclass
class Judgement:
    """A correctness reward's verdict on one completion: the reward (None: not judged, e.g. the sandbox or the
    math worker failed) and why (`rewards.common.Status` value)."""

    reward: float | None
    status: str


def _judge_math(
    rcfg, prompts: list[Any], completions: list[str], columns: dict[str, list[Any]]
) -> list[Judgement | None]:
    """The math reward's verdicts (the same `judge_batch` and `reward_of` that `math_reward` uses)."""
    from rewards.math import judge_batch, reward_of

    kind = columns.get("kind")
    rows = [i for i in range(len(completions)) if kind is None or kind[i] == "math"]
    verdicts = judge_batch(
        [completions[i] for i in rows],
        [columns["answer"][i] for i in rows],
        [prompts[i] for i in rows],
        text_fallback=rcfg.math_text_fallback,
    )
    out: list[Judgement | None] = [None] * len(completions)
    for i, v in zip(rows, verdicts):
        out[i] = Judgement(reward_of(v), str(v.status))
    return out


def _judge_code(
    rcfg, prompts: list[Any], completions: list[str], columns: dict[str, list[Any]]
) -> list[Judgement | None]:
    """The code reward's scores (the configured `CodeReward`, whose TRL call maps them the same way)."""
    scores = reward_func(rcfg, "code").judge(completions, columns.get("tests"), columns.get("kind"))
    return [None if s is None else Judgement(s.trl_reward, str(s.status)) for s in scores]


# Correctness rewards: name -> verdicts with statuses (collect stores them, eval counts infrastructure failures).
_JUDGES = {"math": _judge_math, "code": _judge_code}
CORRECTNESS = tuple(_JUDGES)  # the correctness rewards' names (difficulty filtering's pass rates read these)


@dataclass
class Scores:
    correct: list[
        float | None
    ]  # [n] correctness reward in [0, 1]; None = not judged (infrastructure failure)
    status: list[str]  # [n] the correctness reward's Status ("" when no correctness reward applies)
    parts: list[dict[str, float]]  # [n] every reward by name (None -> omitted)
    formatted: list[bool]  # [n] format reward == 1 (True when no format reward is configured)
    total: list[float]  # [n] weighted sum, as RL sees it

    @property
    def infra_failures(self) -> int:
        """Samples whose correctness could not be judged (sandbox or verifier failure, not the model's fault)."""
        return sum(c is None for c in self.correct)


def score_completions(
    rcfg, prompts: list[Any], completions: list[str], columns: dict[str, list[Any]]
) -> Scores:
    """Score a flat batch; ``columns`` are the dataset columns (kind, answer, tests) per item."""
    n = len(completions)
    parts: list[dict[str, float]] = [{} for _ in range(n)]
    judged: list[Judgement | None] = [None] * n
    kinds_rewards = correctness_rewards()
    for name in rcfg.weights:
        if name in _JUDGES:
            verdicts = _JUDGES[name](rcfg, prompts, completions, columns)
            judged = [j if v is None else v for j, v in zip(judged, verdicts)]
            values = [None if v is None else v.reward for v in verdicts]
        else:
            values = reward_func(rcfg, name)(prompts, completions, **columns)
            if (
                name in kinds_rewards
            ):  # a kind's correctness reward without statuses: its value is the verdict
                judged = [
                    j if v is None else Judgement(float(v), "PASS" if v >= 1.0 else "FAIL")
                    for j, v in zip(judged, values)
                ]
        for i, v in enumerate(values):
            if v is not None:
                parts[i][name] = float(v)
    correct = [0.0 if j is None else j.reward for j in judged]
    status = ["" if j is None else j.status for j in judged]
    has_format = "format" in rcfg.weights
    formatted = [p.get("format", 0.0) >= 1.0 if has_format else True for p in parts]
    total = [sum(w * p.get(name, 0.0) for name, w in rcfg.weights.items()) for p in parts]
    return Scores(correct=correct, status=status, parts=parts, formatted=formatted, total=total)
