"""The trace store: the policy's own scored completions, durable, deduplicated, resumable.

Layout: ``<run_dir>/traces/<shard>.jsonl``, one JSON `Trace` per line. A shard is written whole or not at all
(temporary file, fsync, atomic rename, directory fsync), so a SIGKILL at any moment leaves either the complete
shard or nothing visible; leftover ``*.tmp`` files are ignored and cleaned. Shard names are chosen by the writer
(e.g. ``r1-collect-00003``) and a shard that exists is never rewritten, which is how a resumed collect knows which
chunks are done. Every trace has ``trace_id = sha256(prompt \\0 completion)``; appending skips ids already stored,
and reading deduplicates too, so a trace is never stored or returned twice.

Several writers (the ranks of a distributed collect) each write their own shards: chunk ``c``'s shard is
``r1-collect-0000c`` in a single process and ``r1-collect-0000c-rank0001of0002`` etc. under N processes
(`shard_name`); a chunk is done when every shard of one world size exists (`missing_ranks`). Writers dedupe
against what they have read plus the ids the other writers report (`remember`), so the same guarantees hold with
no writer seeing another's completions.

Reading for training (`to_dataset`) goes through Arrow: each immutable shard is converted once to
``.arrow/<shard>.arrow`` (keyed by the shard file's size and mtime, which also records the sha256 of its bytes)
and the store is the memory-mapped concatenation of those files, deduplicated and filtered by index, so no rank
holds every trace as Python objects (`arrow_key` names the selection's contents, e.g. for a tokenised cache).

Schema (`Trace`): trace_id, prompt, completion, reward (the correctness reward, in [0, 1]), rewards (every reward
part by name), status (the correctness reward's `rewards.common.Status`), task_id, kind, round, model, sampling
(temperature, top_p, max_new_tokens, seed), rendered_prompt (what the model was given:
`tasks.base.render_prompt`'s text or chat messages), prompt_hash, completion_hash, created_at. Schema 1 stores (no
``rendered_prompt``) stay readable: their field reads None and training renders the stored prompt with the same
function.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
import os
import re
import time
from collections.abc import Collection, Iterable, Iterator
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


def sampled_prompt(rendered: Any, prompt: str, kind: str, prompt_format: str) -> Any:
    """The rendered prompt a trace was sampled with: the one it records (``rendered``), or for traces from
    schema-1 stores (``rendered`` None) its stored ``prompt`` rendered now by the function sampling used
    (`tasks.base.render_prompt`, which reads ``prompt`` and ``kind``), so old stores train correctly too."""
    from types import SimpleNamespace

    from selfdistill.tasks.base import render_prompt

    return (
        rendered
        if rendered is not None
        else render_prompt(SimpleNamespace(prompt=prompt, kind=kind), prompt_format)
    )


def training_rows(traces: Iterable[Trace], prompt_format: str) -> list[dict[str, Any]]:
    """(prompt as sampled, completion) rows of stored traces (`sampled_prompt`); for traces in hand; training on a
    store reads it through `stages.sft.tokenize_traces` (memory-mapped, same prompts)."""
    return [
        {
            "prompt": sampled_prompt(t.rendered_prompt, t.prompt, t.kind, prompt_format),
            "completion": t.completion,
        }
        for t in traces
    ]


def shard_name(base: str, rank: int = 0, world: int = 1) -> str:
    """The shard that writer ``rank`` of ``world`` writes for chunk ``base`` (``base`` itself in one process)."""
    return base if world == 1 else f"{base}-rank{rank:04d}of{world:04d}"


_RANK_SHARD = re.compile(r"-rank(\d{4})of(\d{4})$")

# Arrow columns of the `Trace` fields: nested or mixed-type fields (rewards, sampling, rendered_prompt) are JSON text,
# since dicts with varying keys and str/messages/None prompts do not make stable Arrow columns.
_JSON_FIELDS = ("rewards", "sampling", "rendered_prompt")


def _arrow_schema():
    import pyarrow as pa

    types = {"reward": pa.float64(), "round": pa.int64(), "created_at": pa.float64(), "schema": pa.int64()}
    return pa.schema([(name, types.get(name, pa.string())) for name in Trace.__dataclass_fields__])


def _shards_of_rows(rows: Iterable[int], shards: list[Path], lengths: list[int]) -> set[str]:
    """The paths of ``shards`` (``lengths[i]`` rows each, concatenated in order) holding the row indices ``rows``."""
    ends = list(itertools.accumulate(lengths))
    return {str(shards[bisect.bisect_right(ends, i)]) for i in rows}


class TraceStoreError(ValueError):
    """A stored line is not a valid trace; the message names the file and line."""


_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "prompt": str,
    "completion": str,
    "reward": (int, float),
    "kind": str,
    "task_id": str,
    "round": int,
    "model": str,
    "rewards": dict,
    "status": str,
    "sampling": dict,
    "trace_id": str,
    "created_at": (int, float),
}


def _row_problem(data: Any) -> str | None:
    """Why ``data`` (one decoded JSON line) is not a trace, or None."""
    if not isinstance(data, dict):
        return f"expected a JSON object, got {type(data).__name__}"
    missing = [
        k for k in ("prompt", "completion", "reward", "kind", "task_id", "round", "model") if k not in data
    ]
    if missing:
        return f"missing field(s) {', '.join(missing)}"
    for key, tp in _FIELD_TYPES.items():
        if key in data and (not isinstance(data[key], tp) or isinstance(data[key], bool)):
            return (
                f"field {key!r} must be {getattr(tp, '__name__', 'a number')}, got {type(data[key]).__name__}"
            )
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
                raise TraceStoreError(
                    f"{path}:{lineno}: corrupt trace (not UTF-8: byte {raw[exc.start]:#04x} at column {exc.start + 1})"
                ) from None
            try:
                data = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as exc:
                raise TraceStoreError(
                    f"{path}:{lineno}: corrupt trace (not valid JSON: {exc}; torn or truncated line?)"
                ) from None
            why = _row_problem(data)
            if (
                why is None
                and data.get("trace_id")
                and data["trace_id"] != trace_id(data["prompt"], data["completion"])
            ):
                why = "its trace_id does not match its prompt and completion: the line was altered (edited or re-encoded)"
            if why is None:
                try:
                    yield lineno, Trace.from_json(data)
                    continue
                except (TypeError, ValueError) as exc:
                    why = str(exc)
            raise TraceStoreError(f"{path}:{lineno}: corrupt trace ({why})")


def external_rows(sets: Iterable[dict[str, Any]], prompt_format: str) -> list[dict[str, Any]]:
    """Training rows of external (prompt, completion) sets (`config.TraceSetConfig` as dicts), each prompt rendered
    as a task of the set's ``kind`` is (`tasks.base.render_prompt`), so they train beside the store's traces.

    The rows are taken as they are: no reward, no filter (the set's author vouches for them).
    """
    from types import SimpleNamespace

    from selfdistill.configio import ConfigError
    from selfdistill.tasks.base import render_prompt
    from selfdistill.tasks.files import read_table

    out: list[dict[str, Any]] = []
    for s in sets:
        rows, origin, lines = read_table(
            s["type"], s["path"], split=s["split"], subset=s["subset"], limit=s["n"] or None, what="trace set"
        )
        for i, row in enumerate(rows):
            where = f"{origin}:{lines[i]}" if lines is not None else f"{origin}: row {i}"
            for col in (s["prompt_field"], s["completion_field"]):
                if not isinstance(row.get(col), str) or not row[col]:
                    raise ConfigError(
                        f"{where}: {col!r} must be a non-empty string (columns present: "
                        f"{sorted(row)}); set prompt_field/completion_field of the external set"
                    )
            task = SimpleNamespace(prompt=row[s["prompt_field"]], kind=s["kind"])
            out.append(
                {"prompt": render_prompt(task, prompt_format), "completion": row[s["completion_field"]]}
            )
    return out


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
        # A *.tmp is a shard (or its Arrow copy) whose writer was killed: it never became visible. clean=False for
        # readers beside the writer (other ranks): there a *.tmp may be a shard being written.
        for stale in [*self.root.glob("*.tmp"), *self.root.glob(".arrow/*.tmp")] if clean else ():
            stale.unlink(missing_ok=True)
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

    def missing_ranks(self, base: str, world: int) -> list[int]:
        """The writers of ``world`` whose shard of chunk ``base`` is still to write ([] when the chunk is done).

        A chunk is done when all the shards of one world size exist (the single-process name counts as world 1).
        Shards of an unfinished chunk from a run with another world size raise: the missing share would be sampled
        with other seeds and prompts split otherwise, so the chunk would hold neither run's traces.
        """
        if self.has_shard(base):
            return []
        by_world: dict[int, set[int]] = {}
        for path in self.root.glob(f"{base}-rank*of*.jsonl"):
            m = _RANK_SHARD.search(path.stem)
            if m:
                by_world.setdefault(int(m.group(2)), set()).add(int(m.group(1)))
        if any(len(ranks) == w for w, ranks in by_world.items()):
            return []
        other = sorted(w for w in by_world if w != world)
        if other:
            raise RuntimeError(
                f"trace chunk {base} in {self.root} was partly written by a {other[0]}-process run; "
                f"resume it with {other[0]} processes (now {world}), or delete its shards "
                f"{base}-rank*.jsonl to sample the chunk again"
            )
        return [r for r in range(world) if r not in by_world.get(world, set())]

    def remember(self, ids: Iterable[str]) -> None:
        """Count ``ids`` as stored: the traces other writers (ranks) stored meanwhile, so appends skip them."""
        self._known_ids().update(ids)

    def _known_ids(self) -> set[str]:
        if self._ids is None:
            # reading ids to dedupe is not using the traces
            watching, self.read_shards = self.read_shards, None
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

    def iter(
        self, round: int | None = None, min_reward: float | None = None, rounds: Collection[int] | None = None
    ) -> Iterator[Trace]:
        """Every stored trace once, in shard order, optionally filtered (``rounds``: the keys of the collect
        stages wanted; a plan's n-th collect stage stores its traces as round n).

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
                if rounds is not None and t.round not in rounds:
                    continue
                if min_reward is not None and t.reward < min_reward:
                    continue
                if self.read_shards is not None:
                    self.read_shards.add(str(path))
                yield t

    def __len__(self) -> int:
        return len(self._known_ids())

    def rows(
        self,
        prompt_format: str,
        round: int | None = None,
        min_reward: float | None = None,
        max_round: int | None = None,
        rounds: Collection[int] | None = None,
    ) -> list[dict[str, Any]]:
        """The (prompt as sampled, completion) rows of the stored traces, filtered as `iter` (plus ``max_round``),
        as Python lists (`training_rows`): for small stores and inspection; SFT and distillation read the store
        through `stages.sft.tokenize_traces` instead (memory-mapped, tokenised once)."""
        traces = (
            t
            for t in self.iter(round=round, min_reward=min_reward, rounds=rounds)
            if max_round is None or t.round <= max_round
        )
        return training_rows(traces, prompt_format)

    def to_dataset(
        self,
        round: int | None = None,
        min_reward: float | None = None,
        max_round: int | None = None,
        rounds: Collection[int] | None = None,
    ):
        """A memory-mapped `datasets.Dataset`, one row per stored trace (each once, in shard order), filtered as
        `iter` plus ``max_round``; every `Trace` field is a column (rewards, sampling, rendered_prompt as JSON text).

        Built from the per-shard Arrow files (converted on first use): opening it costs a read of the
        ``trace_id``, ``round`` and ``reward`` columns, not a parse of every trace.
        """
        import datasets

        parts = [datasets.Dataset.from_file(str(self._arrow_file(path))) for path in self.shards()]
        if not parts:
            return datasets.Dataset(datasets.table.InMemoryTable(_arrow_schema().empty_table()))
        ds = datasets.concatenate_datasets(parts) if len(parts) > 1 else parts[0]
        table = ds.data
        ids = table.column("trace_id").to_pylist()
        round_of = table.column("round").to_pylist()
        rewards = table.column("reward").to_pylist()
        seen: set[str] = set()
        keep: list[int] = []
        for i, tid in enumerate(ids):
            if tid in seen:
                continue
            seen.add(tid)
            if (
                (round is None or round_of[i] == round)
                and (min_reward is None or rewards[i] >= min_reward)
                and (max_round is None or round_of[i] <= max_round)
                and (rounds is None or round_of[i] in rounds)
            ):
                keep.append(i)
        if self.read_shards is not None:  # W&B lineage: the shards the kept rows come from were read
            self.read_shards.update(_shards_of_rows(keep, self.shards(), [len(p) for p in parts]))
        return ds if len(keep) == len(ids) else ds.select(keep)

    def arrow_key(self) -> str:
        """A digest of the stored shards' contents (names and sha256 of their bytes): equal keys, equal traces."""
        h = hashlib.sha256()
        for path in self.shards():
            self._arrow_file(path)
            h.update(f"{path.name}\0{self._arrow_meta(path)['sha256']}\n".encode())
        return h.hexdigest()

    def _arrow_meta(self, path: Path) -> dict[str, Any]:
        return json.loads((self.root / ".arrow" / f"{path.stem}.json").read_text())

    def _arrow_file(self, path: Path) -> Path:
        """Shard ``path`` as an Arrow stream file, converted once: shards are immutable, and the cache is keyed by
        the shard file's size and mtime (a shard deleted and written again is converted again)."""
        import pyarrow as pa

        cache = self.root / ".arrow"
        out, meta_path = cache / f"{path.stem}.arrow", cache / f"{path.stem}.json"
        st = path.stat()
        stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
        if out.exists() and meta_path.exists():
            meta = json.loads(meta_path.read_text())
            if {k: meta.get(k) for k in stamp} == stamp:
                return out
        cache.mkdir(exist_ok=True)
        raw = path.read_bytes()  # one shard (one chunk of one writer): bounded by the collect chunk size
        schema = _arrow_schema()
        columns: dict[str, list[Any]] = {name: [] for name in schema.names}
        for lineno, line in enumerate(raw.decode("utf-8").splitlines(), 1):
            try:
                row = asdict(Trace.from_json(json.loads(line)))
            except (json.JSONDecodeError, TypeError) as exc:
                raise ValueError(f"{path}:{lineno}: corrupt trace ({exc})") from None
            for name in schema.names:
                columns[name].append(json.dumps(row[name]) if name in _JSON_FIELDS else row[name])
        table = pa.Table.from_pydict(columns, schema=schema)
        suffix = (
            f".{os.getpid()}.tmp"  # writers on several ranks may convert the same shard: each renames its own
        )
        with pa.OSFile(str(out) + suffix, "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
            writer.write_table(table)
        os.replace(str(out) + suffix, out)
        meta_tmp = meta_path.with_name(meta_path.name + suffix)
        meta_tmp.write_text(
            json.dumps({**stamp, "sha256": hashlib.sha256(raw).hexdigest(), "rows": table.num_rows})
        )
        os.replace(meta_tmp, meta_path)
        return out

    def stats(self) -> dict[str, Any]:
        by_round: dict[int, int] = {}
        by_kind: dict[str, int] = {}
        for t in self.iter():
            by_round[t.round] = by_round.get(t.round, 0) + 1
            by_kind[t.kind] = by_kind.get(t.kind, 0) + 1
        return {
            "total": sum(by_round.values()),
            "by_round": by_round,
            "by_kind": by_kind,
            "shards": len(self.shards()),
        }
