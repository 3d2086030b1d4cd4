"""Online difficulty filtering: per-prompt pass rates decide which prompts RL samples.

Prompts the policy always solves, or never solves, give GRPO groups with equal rewards and so no
gradient. The pass-rate store keeps, per task id, a decayed count of samples ``n`` and of their
correctness ``s`` (correctness reward in [0, 1]: math 0/1, code the passed fraction), fed by RL
(every group it scores) and by collect (every prompt it samples). `sampling_weight` turns a
prompt's rate into a weight: ``floor`` when it is known (``n >= min_samples``) to be always
solved (rate >= ``high``) or never solved (rate <= ``low``), 1 otherwise, unknown prompts 1.

Each update is tagged with a source id (``r1.rl``, ``r1-collect-00003``): a source already applied
is skipped, so a resumed run that redoes a collect chunk does not count it twice. The store is
one JSON file in the run directory (``pass_rates.json``), written atomically (temp file, fsync,
rename) after every update, so a killed run resumes with exactly the rates it had.

Used by `stages.steps.rl_step` (the RL prompts of each round, `weighted_sample`) and by the
dynamic-sampling refills (`RLOptionsMixin`), both through the same weights.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FILE_NAME = "pass_rates.json"
VERSION = 1


@dataclass(frozen=True)
class Observation:
    """``n`` samples of one prompt whose correctness rewards sum to ``s`` (0 <= s <= n)."""

    task_id: str
    n: float
    s: float


def observations(task_ids: Iterable[str], correct: Iterable[float | None]) -> list[Observation]:
    """Per-prompt observations from flat per-sample (task id, correctness) pairs; None (unscored) is skipped."""
    totals: dict[str, list[float]] = {}
    for task_id, value in zip(task_ids, correct, strict=True):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"correctness of {task_id!r} must be in [0, 1], got {value}")
        entry = totals.setdefault(str(task_id), [0.0, 0.0])
        entry[0] += 1.0
        entry[1] += float(value)
    return [Observation(k, n, s) for k, (n, s) in totals.items()]


def merge_observations(parts: Iterable[Iterable[Observation]]) -> list[Observation]:
    """One observation per task id from several lists (e.g. every rank's), counts summed; first-seen order."""
    totals: dict[str, list[float]] = {}
    for part in parts:
        for o in part:
            entry = totals.setdefault(o.task_id, [0.0, 0.0])
            entry[0] += o.n
            entry[1] += o.s
    return [Observation(k, n, s) for k, (n, s) in totals.items()]


class PassRates:
    """Decayed per-prompt sample counts: ``{task_id: (n, s)}`` plus the ids of the sources applied."""

    def __init__(
        self,
        decay: float = 0.5,
        rates: dict[str, tuple[float, float]] | None = None,
        sources: list[str] | None = None,
    ) -> None:
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"pass-rate decay must be in [0, 1], got {decay}")
        self.decay = decay
        self.rates: dict[str, tuple[float, float]] = dict(rates or {})
        self.sources: list[str] = list(sources or [])

    def update(self, source: str, obs: Iterable[Observation]) -> bool:
        """Apply ``obs`` under ``source`` (older counts of a prompt seen again are multiplied by ``decay``).
        Returns False (and changes nothing) when ``source`` was applied before."""
        if source in self.sources:
            return False
        for o in obs:
            n0, s0 = self.rates.get(o.task_id, (0.0, 0.0))
            self.rates[o.task_id] = (self.decay * n0 + o.n, self.decay * s0 + o.s)
        self.sources.append(source)
        return True

    def rate(self, task_id: str) -> float | None:
        n, s = self.rates.get(task_id, (0.0, 0.0))
        return s / n if n > 0 else None

    # ------------------------------------------------------------ persistence
    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "decay": self.decay,
            "sources": self.sources,
            "rates": {k: [n, s] for k, (n, s) in sorted(self.rates.items())},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PassRates:
        if data.get("version") != VERSION:
            raise ValueError(
                f"pass-rate store version {data.get('version')!r}; this code reads version {VERSION}"
            )
        return cls(
            decay=data["decay"],
            rates={k: (float(n), float(s)) for k, (n, s) in data["rates"].items()},
            sources=data["sources"],
        )

    def save(self, path: Path) -> None:
        """Write atomically: a crash leaves the previous file or the new one, never a torn one."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(self.to_json(), fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path, decay: float) -> PassRates:
        """The store at ``path``, or an empty one; a stored decay different from ``decay`` is an error."""
        if not path.exists():
            return cls(decay=decay)
        store = cls.from_json(json.loads(path.read_text(encoding="utf-8")))
        if store.decay != decay:
            raise ValueError(
                f"{path} was written with decay {store.decay}, the config says {decay}: "
                "resume with the same rl.difficulty_filter.decay or start a new run"
            )
        return store


def sampling_weight(
    n: float, s: float, *, floor: float, low: float, high: float, min_samples: float
) -> float:
    """A prompt's sampling weight: ``floor`` if known always solved (rate >= high) or never solved
    (rate <= low) after at least ``min_samples`` (decayed) samples, else 1 (unknown prompts too)."""
    if n < min_samples or n <= 0:
        return 1.0
    rate = s / n
    return floor if rate <= low + 1e-9 or rate >= high - 1e-9 else 1.0


def weights_for(store: PassRates, task_ids: list[str], dcfg) -> list[float]:
    """Sampling weight of each task id under the ``rl.difficulty_filter`` settings ``dcfg``."""
    return [
        sampling_weight(
            *store.rates.get(t, (0.0, 0.0)),
            floor=dcfg.floor,
            low=dcfg.low,
            high=dcfg.high,
            min_samples=dcfg.min_samples,
        )
        for t in task_ids
    ]


def weighted_sample(n_items: int, weights: list[float], k: int, rng: random.Random) -> list[int]:
    """``k`` distinct indices into ``weights`` drawn without replacement, item i with odds proportional to
    ``weights[i]`` at each draw (Efraimidis-Spirakis keys u^(1/w)); in draw order."""
    if len(weights) != n_items:
        raise ValueError(f"{len(weights)} weights for {n_items} items")
    if any(w <= 0 for w in weights):
        raise ValueError(
            "sampling weights must be > 0 (rl.difficulty_filter.floor > 0 keeps every prompt reachable)"
        )
    keys = [(rng.random() ** (1.0 / w), i) for i, w in enumerate(weights)]
    keys.sort(reverse=True)
    return [i for _, i in keys[: min(k, n_items)]]


def round_prompts(rows: list[dict], weights: list[float], n: int, seed: str) -> list[dict]:
    """The ``n`` RL prompts of a round: a weighted draw without replacement from ``rows`` (all when n >= len)."""
    picks = weighted_sample(len(rows), weights, n, random.Random(seed))
    return [rows[i] for i in picks]


def weight_summary(weights: list[float], floor: float) -> dict[str, float]:
    """How the weights split the pool, for the stage's outputs: prompts down-weighted and the mean weight."""
    down = sum(1 for w in weights if w <= floor)
    return {"pool": len(weights), "down_weighted": down, "mean_weight": sum(weights) / max(1, len(weights))}


def store_path(run_dir: Path) -> Path:
    return Path(run_dir) / FILE_NAME
