"""Code reward: sandboxed tests, judged in trusted code (see ``rewards.code.reward``).

Public API::

    code_reward(prompts, completions, tests, kind=None, **kw) -> list[float | None]   # TRL
    score_records(records, workers) -> list[{"reward", "status", "passed", "total", "detail"}]  # offline
    CodeReward(CodeRewardConfig(...))                                                 # configurable

The module-level functions share one lazily created sandbox (a zygote fork server spawned on
first use and shut down at interpreter exit).
"""

from __future__ import annotations

import threading
from typing import Any

from rewards.code.reward import CodeReward, CodeRewardConfig, Score
from rewards.sandbox.config import SandboxConfig

__all__ = ["CodeReward", "CodeRewardConfig", "Score", "code_reward", "score_records", "default_reward"]

_DEFAULTS: dict[int, CodeReward] = {}
_LOCK = threading.Lock()


def default_reward(workers: int = 0) -> CodeReward:
    """The shared :class:`CodeReward` for ``workers`` (0 = one per CPU), created on first use."""
    with _LOCK:
        if workers not in _DEFAULTS:
            _DEFAULTS[workers] = CodeReward(CodeRewardConfig(sandbox=SandboxConfig(workers=workers)))
        return _DEFAULTS[workers]


def code_reward(
    prompts: list, completions: list, tests: list | None = None, kind: list | None = None, **kwargs: Any
) -> list[float | None]:
    """TRL reward: fraction of tests passed per completion; None for rows of another kind."""
    return default_reward()(prompts, completions, tests=tests, kind=kind, **kwargs)


def score_records(records: list[dict], workers: int = 0) -> list[dict]:
    """Score ``{"completion", "tests"}`` records; per record reward, status, passed, total, detail (why not PASS)."""
    reward = default_reward(workers)
    texts, tests, bad = [], [], {}
    for i, rec in enumerate(records):
        try:
            texts.append(rewards_text(rec.get("completion", "")))
            tests.append(rec.get("tests"))
        except TypeError as e:
            bad[i] = str(e)
            texts.append("")
            tests.append(None)
    out = [s.as_dict() for s in reward.score(texts, tests)]
    for i in bad:
        out[i] = {
            "reward": 0.0,
            "status": "INVALID",
            "passed": 0,
            "total": 0,
            "detail": f"completion: {bad[i]}",
        }
    return out


def rewards_text(completion: Any) -> str:
    from rewards.common import completion_text

    return completion_text(completion)
