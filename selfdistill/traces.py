"""The trace store: the policy's own scored completions, durable, deduplicated, resumable.

Layout: ``<run_dir>/traces/<shard>.jsonl``, one JSON `Trace` per line. A shard is written
whole or not at all (temporary file, fsync, atomic rename, directory fsync), so a SIGKILL at
any moment leaves either the complete shard or nothing visible; leftover ``*.tmp`` files are
ignored and cleaned. Shard names are chosen by the writer (e.g. ``r1-collect-00003``) and a
shard that exists is never rewritten, which is how a resumed collect knows which chunks are
done. Every trace has ``trace_id = sha256(prompt \\0 completion)``; appending skips ids already
stored, and reading deduplicates too, so a trace is never stored or returned twice.

Schema (`Trace`): trace_id, prompt, completion, reward (the correctness reward, in [0, 1]),
rewards (every reward part by name), status (the correctness reward's `rewards.common.Status`),
task_id, kind, round, model, sampling (temperature, top_p, max_new_tokens, seed), rendered_prompt
(what the model was given: `tasks.base.render_prompt`'s text or chat messages), prompt_hash,
completion_hash, created_at. Schema 1 stores (no ``rendered_prompt``) stay readable: their field
reads None and training renders the stored prompt with the same function.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 2  # 2: rendered_prompt


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def trace_id(prompt: str, completion: str) -> str:
    return sha256(prompt + "\x00" + completion)


@dataclass
class Trace:
    prompt: str
    completion: str
    reward: float
    kind: str
    task_id: str
    round: int
    model: str
    rewards: dict[str, float] = field(default_factory=dict)
    status: str = ""
    sampling: dict[str, Any] = field(default_factory=dict)
    rendered_prompt: Any = None  # str (plain) or chat messages; None in schema-1 stores
    trace_id: str = ""
    prompt_hash: str = ""
    completion_hash: str = ""
    created_at: float = 0.0
    schema: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if not isinstance(self.prompt, str) or not isinstance(self.completion, str):
            raise TypeError("Trace.prompt and Trace.completion must be strings")
        self.trace_id = self.trace_id or trace_id(self.prompt, self.completion)
        self.prompt_hash = self.prompt_hash or sha256(self.prompt)
        self.completion_hash = self.completion_hash or sha256(self.completion)
        self.created_at = self.created_at or time.time()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Trace:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def training_rows(traces: Iterable[Trace], prompt_format: str) -> list[dict[str, Any]]:
    """(prompt, completion) rows of stored traces, each prompt as the trace was sampled with.

    A trace records its rendered prompt; traces from schema-1 stores (without it) are rendered now by
    the same function sampling used (`tasks.base.render_prompt`), so old stores train correctly too.
    """
    from selfdistill.tasks.base import render_prompt

    return [{"prompt": t.rendered_prompt if t.rendered_prompt is not None else render_prompt(t, prompt_format),
             "completion": t.completion} for t in traces]


class TraceStoreError(ValueError):
    """A stored line is not a valid trace; the message names the file and line."""


_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "prompt": str, "completion": str, "reward": (int, float), "kind": str, "task_id": str, "round": int,
    "model": str, "rewards": dict, "status": str, "sampling": dict, "trace_id": str, "created_at": (int, float),
}


def _row_problem(data: Any) -> str | None:
    """Why ``data`` (one decoded JSON line) is not a trace, or None."""
    if not isinstance(data, dict):
        return f"expected a JSON object, got {type(data).__name__}"
    missing = [k for k in ("prompt", "completion", "reward", "kind", "task_id", "round", "model") if k not in data]
    if missing:
        return f"missing field(s) {', '.join(missing)}"
    for key, tp in _FIELD_TYPES.items():
        if key in data and (not isinstance(data[key], tp) or isinstance(data[key], bool)):
            return f"field {key!r} must be {getattr(tp, '__name__', 'a number')}, got {type(data[key]).__name__}"
    return None


def read_shard(path: Path) -> Iterator[tuple[int, Trace]]:
    """``(line number, trace)`` for every line of one shard, in order (blank lines skipped).

    A stored ``trace_id`` must still be the hash of the stored prompt and completion, so a line whose
    text was altered but is still valid (a Latin-1 re-encoding that happens to be valid UTF-8) is
    reported too.

    Lines are split on ``\\n`` only and decoded one at a time, so a bad line is reported by its
    own number, and every line before it has already been yielded.
    """
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():  # ASCII whitespace only
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise TraceStoreError(f"{path}:{lineno}: corrupt trace (not UTF-8: byte {raw[exc.start]:#04x} at column {exc.start + 1})") from None
            try:
                data = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as exc:
                raise TraceStoreError(f"{path}:{lineno}: corrupt trace (not valid JSON: {exc}; torn or truncated line?)") from None
            why = _row_problem(data)
            if why is None and data.get("trace_id") and data["trace_id"] != trace_id(data["prompt"], data["completion"]):
                why = "its trace_id does not match its prompt and completion: the line was altered (edited or re-encoded)"
            if why is None:
                try:
                    yield lineno, Trace.from_json(data)
                    continue
                except (TypeError, ValueError) as exc:
                    why = str(exc)
            raise TraceStoreError(f"{path}:{lineno}: corrupt trace ({why})")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class TraceStore:
    """Append-only, sharded JSONL store with dedupe by ``trace_id`` (see module docstring)."""

    def __init__(self, root: str | Path, clean: bool = True) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        # clean=False for readers beside the writer (other ranks): a *.tmp may be a shard being written.
        for stale in self.root.glob("*.tmp") if clean else ():
            stale.unlink()  # a shard whose writer was killed: never became visible
        self._ids: set[str] | None = None
        self.read_shards: set[str] | None = None  # while `reading()`: shards a yielded trace came from

    @contextmanager
    def reading(self) -> Iterator[set[str]]:
        """Record the paths of the shards whose traces `iter` yields inside this block (W&B lineage)."""
        self.read_shards = read = set()
        try:
            yield read
        finally:
            self.read_shards = None

    def shards(self) -> list[Path]:
        return sorted(self.root.glob("*.jsonl"))

    def has_shard(self, name: str) -> bool:
        return (self.root / f"{name}.jsonl").exists()

    def _known_ids(self) -> set[str]:
        if self._ids is None:
            watching, self.read_shards = self.read_shards, None  # reading ids to dedupe is not using the traces
            try:
                self._ids = {t.trace_id for t in self.iter()}
            finally:
                self.read_shards = watching
        return self._ids

    def append(self, traces: Iterable[Trace], shard: str) -> int:
        """Write the new traces as shard ``shard`` atomically; returns how many were new.

        An empty shard is still written (as an empty file) so resume logic sees the chunk done.
        Raises `FileExistsError` if the shard already exists: shards are immutable.
        """
        if "/" in shard or not shard:
            raise ValueError(f"bad shard name {shard!r}")
        final = self.root / f"{shard}.jsonl"
        if final.exists():
            raise FileExistsError(f"trace shard {final} already exists; shards are never rewritten")
        known = self._known_ids()
        fresh: list[Trace] = []
        for t in traces:
            if t.trace_id not in known:
                known.add(t.trace_id)
                fresh.append(t)
        tmp = self.root / f"{shard}.jsonl.tmp"
        with tmp.open("w", encoding="utf-8") as fh:
            for t in fresh:
                fh.write(json.dumps(asdict(t), ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        _fsync_dir(self.root)
        return len(fresh)

    def iter(self, round: int | None = None, min_reward: float | None = None) -> Iterator[Trace]:
        """Every stored trace once, in shard order, optionally filtered.

        A line that is not a valid trace (bytes that are not UTF-8, a torn or truncated line, JSON
        that is not an object, a field of the wrong type) raises :class:`TraceStoreError` naming the
        file and line, after every trace before it has been yielded intact.
        """
        seen: set[str] = set()
        for path in self.shards():
            for _, t in read_shard(path):
                if t.trace_id in seen:
                    continue
                seen.add(t.trace_id)
                if round is not None and t.round != round:
                    continue
                if min_reward is not None and t.reward < min_reward:
                    continue
                if self.read_shards is not None:
                    self.read_shards.add(str(path))
                yield t

    def __len__(self) -> int:
        return len(self._known_ids())

    def rows(self, prompt_format: str, round: int | None = None, min_reward: float | None = None,
             max_round: int | None = None) -> list[dict[str, Any]]:
        """The (prompt as sampled, completion) training rows of the stored traces, filtered as `iter` (plus
        ``max_round``): what SFT and distillation train on (`training_rows`)."""
        traces = (t for t in self.iter(round=round, min_reward=min_reward) if max_round is None or t.round <= max_round)
        return training_rows(traces, prompt_format)

    def to_dataset(self, round: int | None = None, min_reward: float | None = None, max_round: int | None = None):
        """A `datasets.Dataset` with one row per trace (all schema fields as columns)."""
        import datasets

        rows = [asdict(t) for t in self.iter(round=round, min_reward=min_reward) if max_round is None or t.round <= max_round]
        for row in rows:  # nested dicts with varying keys (or str/messages/None prompts) do not make stable Arrow columns
            row["rewards"] = json.dumps(row["rewards"])
            row["sampling"] = json.dumps(row["sampling"])
            row["rendered_prompt"] = json.dumps(row["rendered_prompt"])
        return datasets.Dataset.from_list(rows)

    def stats(self) -> dict[str, Any]:
        by_round: dict[int, int] = {}
        by_kind: dict[str, int] = {}
        for t in self.iter():
            by_round[t.round] = by_round.get(t.round, 0) + 1
            by_kind[t.kind] = by_kind.get(t.kind, 0) + 1
        return {"total": sum(by_round.values()), "by_round": by_round, "by_kind": by_kind, "shards": len(self.shards())}
