"""DAPO's soft overlong penalty (arXiv 2503.14476, eq. 13): a length reward for completions that run into
the generation limit.

With limit L and cache window W, a completion of n tokens gets

    0                      if n <= L - W
    ((L - W) - n) / W      if L - W < n <= L     (linear from 0 down to -1)
    -1                     if n > L

so truncated answers (which cannot be graded fairly) are discouraged smoothly instead of being
punished only through a wrong answer. Lengths are token counts: TRL passes each completion's token
ids as the ``completion_ids`` column. Without token ids (collect, eval and `selfdistill score` do not
pass them) the penalty does not apply and the reward is None. Settings: ``rewards.overlong_max_tokens``
(0 = ``rl.max_completion_length``) and ``rewards.overlong_cache_tokens`` (0 = a quarter of the limit).
"""

from __future__ import annotations

from typing import Any


def overlong_penalty(n_tokens: int, max_tokens: int, cache_tokens: int) -> float:
    """The penalty in [-1, 0] for a completion of ``n_tokens`` under limit ``max_tokens`` and window ``cache_tokens``."""
    if max_tokens <= 0 or not 0 < cache_tokens <= max_tokens:
        raise ValueError(
            f"overlong penalty needs 0 < cache_tokens <= max_tokens, got {cache_tokens}, {max_tokens}"
        )
    start = max_tokens - cache_tokens
    if n_tokens <= start:
        return 0.0
    if n_tokens > max_tokens:
        return -1.0
    return (start - n_tokens) / cache_tokens


def default_cache_tokens(max_tokens: int) -> int:
    """The window when none is set: a quarter of the limit (DAPO: 4096 of 20480, a fifth), at least 1 token."""
    return max(1, max_tokens // 4)


def overlong_reward(
    prompts: list[Any],
    completions: list[Any],
    completion_ids: list[list[int]] | None = None,
    max_tokens: int = 0,
    cache_tokens: int = 0,
    **kwargs: Any,
) -> list[float | None]:
    """TRL reward contract; ``max_tokens``/``cache_tokens`` come from the config (see `selfdistill.rewarding`)."""
    if completion_ids is None:  # not a trainer call: no token lengths, nothing to penalise
        return [None] * len(completions)
    if len(completion_ids) != len(completions):
        raise ValueError(f"{len(completion_ids)} completion_ids for {len(completions)} completions")
    if max_tokens <= 0:
        raise ValueError(
            "overlong reward: no length limit; set rewards.overlong_max_tokens (RL fills it in from "
            "rl.max_completion_length)"
        )
    cache = cache_tokens or default_cache_tokens(max_tokens)
    return [overlong_penalty(len(ids), max_tokens, cache) for ids in completion_ids]
