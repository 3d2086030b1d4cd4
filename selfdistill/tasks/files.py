"""Tasks from local JSONL/parquet files and Hugging Face datasets.

Rows need a prompt column and the reference column of their kind (`TaskKind.reference`): an answer
column (``answer_field``, e.g. math) or a tests column (``tests_field``, e.g. code; a mapping or its JSON text). Column names come from the source config. Missing columns,
unreadable files and an offline hub are reported with the path and what was expected.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from selfdistill.configio import ConfigError
from selfdistill.tasks.base import Task
from selfdistill.tasks.kinds import get_kind


def _needed_columns(src) -> list[str]:
    return [
        src.prompt_field,
        src.answer_field if get_kind(src.kind).reference == "answer" else src.tests_field,
    ]


def rows_to_tasks(rows: list[dict[str, Any]], src, origin: str, lines: list[int] | None = None) -> list[Task]:
    """Validate columns and build tasks; an error names the file, the row (or its line, for JSONL:
    ``lines[i]`` is row i's line number) and what is wrong with it."""
    if not rows:
        raise ConfigError(f"{origin}: no rows")
    needed = _needed_columns(src)
    missing = [c for c in needed if c not in rows[0]]
    if missing:
        raise ConfigError(
            f"{origin}: missing column(s) {missing} for kind={src.kind}; columns present: {sorted(rows[0])}. "
            "Set prompt_field/answer_field/tests_field in the task source."
        )
    tasks = []
    for i, row in enumerate(rows[: src.n]):
        where = f"{origin}:{lines[i]}" if lines is not None else f"{origin}: row {i}"
        absent = [c for c in needed if c not in row]
        if absent:
            raise ConfigError(f"{where}: missing column(s) {absent} (present: {sorted(row)})")
        prompt = row[src.prompt_field]
        if not isinstance(prompt, str) or not prompt.strip():
            raise ConfigError(f"{where}: {src.prompt_field!r} must be a non-empty string")
        if get_kind(src.kind).reference == "answer":
            answer = row[src.answer_field]
            if answer is None or isinstance(answer, dict | list) or not str(answer).strip():
                raise ConfigError(
                    f"{where}: {src.answer_field!r} must be a non-empty answer, got {answer!r:.60}"
                )
            tasks.append(
                Task(f"{Path(origin).stem}-{i:06d}", src.kind, prompt, answer=str(answer), source=origin)
            )
        else:
            tests = row[src.tests_field]
            if isinstance(tests, str):
                try:
                    tests = json.loads(tests)
                except (json.JSONDecodeError, RecursionError) as exc:
                    raise ConfigError(f"{where}: {src.tests_field!r} is not valid JSON: {exc}") from None
            if not isinstance(tests, dict):
                raise ConfigError(f"{where}: {src.tests_field!r} must be a mapping of tests")
            tasks.append(Task(f"{Path(origin).stem}-{i:06d}", src.kind, prompt, tests=tests, source=origin))
    return tasks


def read_jsonl(path: Path) -> tuple[list[dict[str, Any]], list[int]]:
    """Rows of a JSONL file and their line numbers (blank lines skipped; a UTF-8 BOM is allowed).

    Lines are split on ``\\n`` only and decoded one at a time: bytes that are not UTF-8, a line
    that is not JSON (a truncated last line too) or not an object raise :class:`ConfigError` naming
    ``path:line`` and how many rows before it were read intact.
    """
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():  # ASCII whitespace only
                continue
            where = f"{path}:{lineno}"
            intact = f"; the {len(rows)} row(s) before it are intact"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ConfigError(
                    f"{where}: not UTF-8 (byte {raw[exc.start]:#04x} at column {exc.start + 1}){intact}"
                ) from None
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as exc:
                why = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
                raise ConfigError(f"{where}: not valid JSON ({why}){intact}") from None
            if not isinstance(row, dict):
                raise ConfigError(
                    f"{where}: each line must be a JSON object, got {type(row).__name__}{intact}"
                )
            rows.append(row)
            lines.append(lineno)
    return rows, lines


def read_table(
    kind: str,
    path: str,
    *,
    split: str = "train",
    subset: str | None = None,
    limit: int | None = None,
    what: str = "task",
) -> tuple[list[dict[str, Any]], str, list[int] | None]:
    """(rows, origin, JSONL line numbers or None) of a JSONL or parquet file or a Hugging Face dataset split
    (``kind``: jsonl, parquet, hf); at most ``limit`` rows. Unreadable files and an offline hub raise
    `ConfigError` naming the path. Task sources and external trace sets (`selfdistill.traces.external_rows`)
    both read through here."""
    if kind == "hf":
        return _read_hf(path, split, subset, limit), f"hf:{path}", None
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"{what} file not found: {file}")
    lines = None
    if kind == "jsonl":
        rows, lines = read_jsonl(file)
    else:
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(file).to_pylist()
        except Exception as exc:  # pyarrow raises several types for bad files
            raise ConfigError(f"{file}: cannot read parquet: {exc}") from None
    if limit is not None:
        rows, lines = rows[:limit], lines[:limit] if lines is not None else None
    return rows, str(file), lines


def load_file_tasks(src, seed: int) -> list[Task]:
    """Read ``src.path`` (``.jsonl`` or ``.parquet``)."""
    if not src.path:
        raise ConfigError(f"tasks source type={src.type} needs `path`")
    rows, origin, lines = read_table(src.type, src.path)
    return rows_to_tasks(rows, src, origin, lines)


def _read_hf(path: str, split: str, subset: str | None, limit: int | None) -> list[dict[str, Any]]:
    import datasets

    try:
        ds = datasets.load_dataset(path, subset, split=split)
    except Exception as exc:  # offline / missing dataset / bad split
        raise ConfigError(
            f"cannot load Hugging Face dataset {path!r} (subset={subset}, split={split}): "
            f"{type(exc).__name__}: {exc}. Offline? Download it first or point `path` at a local copy."
        ) from None
    return ds.select(range(min(limit, len(ds)) if limit is not None else len(ds))).to_list()


def load_hf_tasks(src, seed: int) -> list[Task]:
    """Load a Hugging Face dataset split; a clear error when the hub cannot be reached."""
    if not src.path:
        raise ConfigError("tasks source type=hf needs `path` (a dataset id or local dataset directory)")
    rows, origin, _ = read_table("hf", src.path, split=src.split, subset=src.subset, limit=src.n)
    return rows_to_tasks(rows, src, origin)
