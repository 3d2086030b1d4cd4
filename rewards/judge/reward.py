"""The judge reward: a judge model scores each completion against a rubric, in [0, 1] or None.

``JudgeReward(cfg)`` is a TRL reward function (``f(prompts, completions, answer=None, **columns)``)
and has `judge` for callers that want the statuses (collect, ``selfdistill score --judge``). For
each completion: look the (judge, rubric, problem, reference, completion) hash up in the cache;
send the misses to the backend (`local.LocalJudge` or `http.HttpJudge`); read the score strictly
from the judge's own answer (`prompt.parse_score`: ``SCORE: <0-10>`` on its last line, divided
by 10); cache what the judge said. An answer that does not parse is ``None`` with status
UNPARSEABLE, a timeout or server failure ``None`` with TIMEOUT / INFRA_ERROR: never 0 or 1.
"""

from __future__ import annotations

import importlib
import logging
from collections import Counter
from pathlib import Path
from typing import Any

from rewards.common import Status, completion_text
from rewards.judge.cache import JudgeCache, cache_key
from rewards.judge.config import BACKENDS, JudgeConfig
from rewards.judge.prompt import SCORE_MAX, parse_score, prompt_text
from rewards.judge.types import JudgeItem, Judgement, Outcome

log = logging.getLogger(__name__)
_OUTPUT_KEEP = 2000  # characters of the judge's answer kept in the cache and in score files


def _backend(cfg: JudgeConfig, loader: str | None):
    """The backend named by ``cfg.backend``, from `config.BACKENDS` (imported only when used)."""
    module, _, cls = BACKENDS[cfg.backend].partition(":")
    return getattr(importlib.import_module(module), cls)(cfg, loader=loader)


def verdict(outcome: Outcome) -> Judgement:
    """A backend outcome read strictly: a score only from a valid ``SCORE:`` line of the judge's own answer."""
    if outcome.text is None:
        return Judgement(None, outcome.status, outcome.detail)
    value = parse_score(outcome.text)
    status = Status.JUDGED if value is not None else Status.UNPARSEABLE
    return Judgement(None if value is None else value / SCORE_MAX, str(status), outcome.text[-_OUTPUT_KEEP:])


def _reference(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if text.strip() else None


class JudgeReward:
    """Judge completions (TRL contract via ``__call__``; statuses via `judge`). See module docstring."""

    __name__ = "judge"

    def __init__(
        self, cfg: JudgeConfig, cache_dir: str | Path | None = None, loader: str | None = None
    ) -> None:
        cfg.require_model()
        self.cfg = cfg
        where = cfg.cache_dir or cache_dir
        if where is None:
            log.warning("judge: no cache directory configured; judgements are cached in memory only")
        self.cache = JudgeCache(where)
        self.backend = _backend(cfg, loader)
        self.stats: Counter = Counter()  # statuses and cache hits over this judge's life

    def judge(
        self, prompts: list[Any], completions: list[Any], references: list[Any] | None = None
    ) -> list[Judgement]:
        """One `Judgement` per completion, in order (cached ones without asking the judge)."""
        refs = list(references) if references is not None else [None] * len(completions)
        if len(refs) != len(completions) or len(prompts) != len(completions):
            raise ValueError(
                f"judge: {len(prompts)} prompts, {len(completions)} completions and {len(refs)} references "
                "must be as many"
            )
        items = [
            JudgeItem(prompt_text(p), _reference(r), completion_text(c))
            for p, c, r in zip(prompts, completions, refs)
        ]
        keys = [cache_key(self.cfg.identity, self.cfg.rubric, *it) for it in items]
        hits = self.cache.get(list(dict.fromkeys(keys)))
        out: list[Judgement | None] = [Judgement(*hits[k], cached=True) if k in hits else None for k in keys]
        todo: dict[str, list[int]] = {}
        for i, k in enumerate(keys):
            if out[i] is None:
                todo.setdefault(k, []).append(i)  # the same completion twice is judged once
        first = [idx[0] for idx in todo.values()]
        fresh = [verdict(o) for o in self.backend.complete([items[i] for i in first])]
        for idx, j in zip(todo.values(), fresh):
            for i in idx:
                out[i] = j
        self.cache.put(
            [
                (k, j.score, j.status, j.output)
                for k, j in zip(todo, fresh)
                if j.status in (Status.JUDGED, Status.UNPARSEABLE)
            ]
        )  # transport failures are retried later
        self.stats.update(j.status for j in out)
        self.stats["cache_hits"] += sum(j.cached for j in out)
        return out  # type: ignore[return-value]

    def __call__(
        self, prompts: list[Any], completions: list[Any], answer: list[Any] | None = None, **columns: Any
    ) -> list[float | None]:
        """TRL reward: the judge's score in [0, 1] per completion, None when it gave no valid score.

        Under TRL (which passes ``log_metric``) the share of completions left unjudged and of cache hits is
        logged, since a None reward otherwise vanishes from the sum without a trace.
        """
        verdicts = self.judge(prompts, completions, answer)
        log_metric = columns.get("log_metric")
        if callable(log_metric) and verdicts:
            log_metric("judge/unjudged_fraction", sum(v.score is None for v in verdicts) / len(verdicts))
            log_metric("judge/cache_hit_fraction", sum(v.cached for v in verdicts) / len(verdicts))
        return [v.score for v in verdicts]

    def close(self) -> None:
        self.backend.close()
        self.cache.close()


def judge_reward(prompts: list, completions: list, **columns: Any) -> list[float | None]:
    """Registry entry of ``judge``: it needs settings, so it is built, not called bare."""
    raise TypeError(
        "the judge reward needs settings: build it with rewards.judge.JudgeReward(JudgeConfig(model=...)); "
        "in a selfdistill config, set rewards.judge.model (and backend/url for a server)"
    )


def score_records(records: list[dict], judge: JudgeReward) -> list[dict[str, Any]]:
    """Offline: ``judge_score``, ``judge_status`` and ``judge_output`` for records with ``prompt`` and ``completion``."""
    ok = [i for i, r in enumerate(records) if isinstance(r.get("completion"), str | list)]
    out: list[dict[str, Any]] = [
        {
            "judge_score": None,
            "judge_status": str(Status.INVALID),
            "judge_output": "record has no 'completion'",
        }
        for _ in records
    ]
    verdicts = judge.judge(
        [records[i].get("prompt", "") for i in ok],
        [records[i]["completion"] for i in ok],
        [records[i].get("answer") for i in ok],
    )
    for i, j in zip(ok, verdicts):
        out[i] = {"judge_score": j.score, "judge_status": j.status, "judge_output": j.output}
    return out
