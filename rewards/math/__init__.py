"""Math reward: extract the final boxed answer and check it against the reference with sympy.

Public API:

* :func:`math_reward` -- TRL reward function (batch in, ``list[float | None]`` out);
* :func:`score_records` -- offline scorer for ``selfdistill score`` (``{"reward", "status", "detail"}``);
* :func:`verify` -- one completion in-process, ``(reward, Status)``; :func:`extract` -- the policy.

How a batch is scored: extraction, guards and the fast path (normalised string equality, exact
``Fraction`` arithmetic, structure: lists, intervals, sets, matrices, percentages, choices) run
in the calling process and settle the common case in microseconds. Only answers that need
sympy go to a :class:`rewards.pool.DeadlinePool` (``spawn`` workers, a hard per-item deadline,
SIGKILL and replacement). A timeout scores 0.0 with ``TIMEOUT``; a dead worker ``INFRA_ERROR``
(the TRL reward is None: the sample is left out, as the code reward does); nothing raises into the trainer. The extraction policy is in
:mod:`rewards.math.extract`, the comparison rules in :mod:`rewards.math.compare` and
:mod:`rewards.math.symbolic`, the caps in :mod:`rewards.math.guards`.

Importing this package does not import sympy (workers do).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

from rewards.common import Status, completion_text
from rewards.math.extract import Extraction, extract
from rewards.math.verify import Pending, Verdict, differs, judge, symbolic_task, verify
from rewards.pool import DeadlinePool, TaskResult

__all__ = [
    "Extraction",
    "Verdict",
    "extract",
    "judge",
    "judge_batch",
    "math_reward",
    "reward_of",
    "score_records",
    "verify",
]

log = logging.getLogger(__name__)

# The default pool's size and per-item deadline (seconds), from the environment. Whether prose answers are
# read (the text fallback) is not a process setting: every call says so (`text_fallback=`), fed from the
# run config's `rewards.math_text_fallback` or `selfdistill score --math-text-fallback`.
_CONFIG: dict[str, Any] = {
    "workers": int(os.environ.get("SELFDISTILL_MATH_WORKERS", "0")) or min(4, os.cpu_count() or 1),
    "deadline_s": float(os.environ.get("SELFDISTILL_MATH_DEADLINE_S", "1.0")),
}
_POOL: DeadlinePool | None = None
_POOL_LOCK = threading.Lock()
_INITIALIZER = "rewards.math.symbolic:warm_up"
_SPARES = 2  # warmed-up standby workers: a kill never leaves a call waiting for a sympy import


def default_pool() -> DeadlinePool:
    """The lazily created module-level pool (closed automatically at exit)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = DeadlinePool(
                _CONFIG["workers"], _CONFIG["deadline_s"], initializer=_INITIALIZER, spares=_SPARES
            )
        return _POOL


def _prompt_text(prompt: Any) -> str | None:
    if prompt is None:
        return None
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        return "\n".join(str(m.get("content", "")) for m in prompt if isinstance(m, dict))
    return None


def _from_task(result: TaskResult, pending: Pending) -> Verdict:
    if result.ok:
        return (
            Verdict(1.0, Status.PASS)
            if result.value
            else differs(" = ".join(pending.preds), pending.ref, "sympy")
        )
    if result.kind == "timeout":
        return Verdict(0.0, Status.TIMEOUT, result.error or "the symbolic check ran past its deadline")
    if result.kind == "crashed":
        return Verdict(0.0, Status.INFRA_ERROR, result.error or "the verifier worker died")
    return Verdict(0.0, Status.FAIL, f"verifier error: {result.error}")


def judge_batch(
    completions: Sequence[Any],
    answers: Sequence[Any],
    prompts: Sequence[Any] | None = None,
    pool: DeadlinePool | None = None,
    text_fallback: bool = False,
) -> list[Verdict]:
    """Verdicts for a batch: fast path here, the rest in parallel on ``pool`` (default pool if None).

    ``text_fallback``: also read an answer stated in prose when a completion boxes nothing.
    """
    verdicts: list[Verdict | None] = [None] * len(completions)
    pending: list[tuple[int, Pending]] = []
    for i, (completion, ref) in enumerate(zip(completions, answers)):
        try:
            text = completion_text(completion)
            prompt = _prompt_text(prompts[i]) if prompts is not None and i < len(prompts) else None
            v = judge(text, ref, prompt, text_fallback=text_fallback)
        except Exception as exc:  # noqa: BLE001 - a bad record must not stop the batch
            log.warning("math reward: item %d could not be judged: %s", i, exc)
            v = Verdict(0.0, Status.INVALID, f"{type(exc).__name__}: {exc}"[:300])
        if isinstance(v, Pending):
            pending.append((i, v))
        else:
            verdicts[i] = v
    if pending:
        results = (pool or default_pool()).map(symbolic_task, [(p.preds, p.ref) for _, p in pending])
        for (i, p), res in zip(pending, results):
            verdicts[i] = _from_task(res, p)
    return [v if v is not None else Verdict(0.0, Status.INFRA_ERROR, "lost") for v in verdicts]


def math_reward(
    prompts: list,
    completions: list,
    answer: list,
    kind: list | None = None,
    *,
    text_fallback: bool = False,
    **kwargs: Any,
) -> list[float | None]:
    """TRL reward: 1.0 when the boxed answer equals ``answer[i]``, else 0.0; None where ``kind[i] != "math"``
    and where verification failed for infrastructure reasons (`reward_of`).

    ``text_fallback`` (keyword only) also reads prose answers (the config's ``rewards.math_text_fallback``).
    """
    rows = [i for i in range(len(completions)) if kind is None or kind[i] == "math"]
    verdicts = judge_batch(
        [completions[i] for i in rows],
        [answer[i] for i in rows],
        [prompts[i] for i in rows] if prompts is not None and len(prompts) == len(completions) else None,
        text_fallback=text_fallback,
    )
    out: list[float | None] = [None] * len(completions)
    for i, v in zip(rows, verdicts):
        out[i] = reward_of(v)
    return out


def reward_of(verdict: Verdict) -> float | None:
    """The TRL reward of a verdict: None when the verifier itself failed (``INFRA_ERROR``: a crashed or lost
    worker), so the trainer leaves the sample out instead of punishing a completion nobody judged."""
    if verdict.status == Status.INFRA_ERROR:
        log.warning("math reward: verification failed (%s); reward left out", verdict.detail)
        return None
    return verdict.reward


class _LazyPool:
    """A private pool of ``workers`` processes, started only if some record needs sympy."""

    def __init__(self, workers: int) -> None:
        self.workers, self.pool = workers, None

    def map(self, fn: Any, arg_tuples: Sequence[tuple]) -> list[TaskResult]:
        if self.pool is None:
            self.pool = DeadlinePool(self.workers, _CONFIG["deadline_s"], _INITIALIZER, spares=_SPARES)
        return self.pool.map(fn, arg_tuples)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()


def score_records(records: list[dict], workers: int, text_fallback: bool = False) -> list[dict]:
    """Offline scorer: per record ``{"reward", "status", "detail"}`` from ``completion``/``answer`` keys."""
    own = _LazyPool(workers) if workers != _CONFIG["workers"] else None
    try:
        verdicts = judge_batch(
            [r.get("completion") for r in records],
            [r.get("answer") for r in records],
            [r.get("prompt") for r in records],
            pool=own,  # type: ignore[arg-type]  # duck-typed: only .map is used
            text_fallback=text_fallback,
        )
    finally:
        if own is not None:
            own.close()
    return [{"reward": v.reward, "status": str(v.status), "detail": v.detail} for v in verdicts]
