"""Property-based fuzzing of the file readers: the trace store and JSONL/parquet task files.

A file of valid rows is damaged at random: junk bytes appended, cut at a random byte (a torn
last line), one line re-encoded as Latin-1 (mixed encodings), or random bytes for a parquet
file. Reading it must give every row before the damage unchanged and then a clear error naming
the file and line (:class:`~selfdistill.traces.TraceStoreError` /
:class:`~selfdistill.configio.ConfigError`), never another exception and never a silently
dropped or altered row.

Run: ``python -m pytest tests/fuzz/test_fuzz_files.py -q``; ``-m slow`` for 10,000 examples.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict
from pathlib import Path

import hypothesis.strategies as st
from _fuzz import fast, slow
from hypothesis import example, given

from selfdistill.config import TaskSourceConfig
from selfdistill.configio import ConfigError
from selfdistill.tasks.files import load_file_tasks
from selfdistill.traces import Trace, TraceStore, TraceStoreError

TMP = Path(tempfile.mkdtemp(prefix="fuzz-files-"))
texts = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30
) | st.sampled_from(["é", "naïve", "日本", "\u2028", "\r", "x"])


def first_bad_line(data: bytes, n_good: int) -> int | None:
    """1-based number of the first line after the ``n_good`` valid lines that is not blank, or None."""
    for k, line in enumerate(data.split(b"\n")[n_good:], n_good + 1):
        if line.strip():
            return k
    return None


@st.composite
def damaged(draw):
    """(valid rows' JSON lines as bytes, damaged file bytes, number of rows left intact, first bad line)."""
    rows = draw(
        st.lists(
            st.fixed_dictionaries(
                {"prompt": texts.filter(lambda t: t.strip()), "answer": texts.filter(lambda t: t.strip())}
            ),
            min_size=1,
            max_size=6,
        )
    )
    return (
        rows,
        draw(st.sampled_from(["append", "cut", "latin1"])),
        draw(st.binary(max_size=40)),
        draw(st.integers(0, 10**6)),
    )


def damage(
    lines: list[bytes], how: str, junk: bytes, pick: int, hashed: bool = False
) -> tuple[bytes, int, int | None]:
    """The damaged bytes, how many leading rows stay valid, and the first line that must be reported.

    ``hashed``: the rows carry a hash of their text (trace shards), so a re-encoded line that is still
    valid UTF-8 is detectable; without one (task files) such a line is just different text.
    """
    data = b"".join(line + b"\n" for line in lines)
    if how == "append":
        out = data + junk
        bad = first_bad_line(out, len(lines))
        if bad is not None:
            try:  # junk that is itself one valid line is not damage (only the error line count matters)
                tail = out.split(b"\n")[bad - 1]
                json.loads(tail.decode("utf-8"))
                if len([x for x in out.split(b"\n")[len(lines) :] if x.strip()]) == 1 and isinstance(
                    json.loads(tail), dict
                ):
                    return (
                        out,
                        len(lines),
                        -1,
                    )  # parsed as a row: the reader may accept or reject it, with location
            except (UnicodeDecodeError, ValueError, RecursionError):
                pass
        return out, len(lines), bad
    if how == "cut":
        cut = pick % (len(data) + 1)
        out = data[:cut]
        parts = out.split(b"\n")
        complete, last = parts[:-1], parts[-1]
        if not last.strip():
            return out, len(complete), None
        try:
            json.loads(last.decode("utf-8"))
            return out, len(complete) + 1, None  # cut right before the newline: the line is whole
        except (UnicodeDecodeError, ValueError):
            return out, len(complete), len(complete) + 1
    k = pick % len(lines)  # one line re-encoded as Latin-1 (when it has non-ASCII text that Latin-1 can hold)
    try:
        relined = lines[k].decode("utf-8").encode("latin-1")
    except UnicodeEncodeError:
        relined = lines[k]
    if relined == lines[k]:
        return data, len(lines), None
    out = b"".join((relined if i == k else line) + b"\n" for i, line in enumerate(lines))
    try:
        relined.decode("utf-8")
        silent = not hashed  # valid UTF-8 (mojibake): only a hash can tell
    except UnicodeDecodeError:
        silent = False
    return out, k, -1 if silent else k + 1


def check_trace_store(case) -> None:
    rows, how, junk, pick = case
    root = TMP / f"store-{pick % 7}"
    for old in root.glob("*.jsonl") if root.exists() else ():
        old.unlink()
    traces = [
        Trace(
            prompt=r["prompt"],
            completion=r["answer"],
            reward=1.0,
            kind="math",
            task_id=f"t{i}",
            round=1,
            model="m",
        )
        for i, r in enumerate(rows)
    ]
    traces = list({t.trace_id: t for t in traces}.values())  # the store dedupes equal (prompt, completion)
    lines = [json.dumps(asdict(t), ensure_ascii=False).encode("utf-8") for t in traces]
    out, n_good, bad = damage(lines, how, junk, pick, hashed=True)
    root.mkdir(parents=True, exist_ok=True)
    path = root / "r1-collect-00000.jsonl"
    path.write_bytes(out)
    got: list[Trace] = []
    try:
        for t in TraceStore(root).iter():
            got.append(t)
    except TraceStoreError as exc:
        assert bad is not None, f"unexpected error: {exc}"
        if bad != -1:
            assert f"{path}:{bad}:" in str(exc), (str(exc), bad)
    else:
        assert bad in (None, -1), f"damage at line {bad} not reported"
    assert [asdict(t) for t in got[:n_good]] == [asdict(t) for t in traces[:n_good]], (
        "an earlier row was lost or altered"
    )


test_trace_store = fast(80)(
    example(
        ([{"prompt": "0", "answer": "Â\x80"}], "latin1", b"", 0)
    )(  # Latin-1 bytes that are valid UTF-8: caught by the trace_id
        example(([{"prompt": "é", "answer": "a"}, {"prompt": "p", "answer": "a"}], "latin1", b"", 0))(
            example(
                ([{"prompt": "p", "answer": "a"}], "append", b"[1, 2]\n", 0)
            )(  # JSON, not an object: was AttributeError
                example(([{"prompt": "p", "answer": "a"}], "append", b"\xff\xfe", 0))(
                    given(damaged())(check_trace_store)
                )
            )
        )
    )
)
test_trace_store_slow = slow(given(damaged())(check_trace_store), of=3)


def check_task_jsonl(case) -> None:
    rows, how, junk, pick = case
    lines = [json.dumps(r, ensure_ascii=False).encode("utf-8") for r in rows]
    out, n_good, bad = damage(lines, how, junk, pick)
    path = TMP / "tasks.jsonl"
    path.write_bytes(out)
    src = TaskSourceConfig(type="jsonl", path=str(path), kind="math", n=100)
    try:
        tasks = load_file_tasks(src, seed=0)
    except ConfigError as exc:
        msg = str(exc)
        if bad not in (None, -1):
            assert f"{path}:{bad}:" in msg, (msg, bad)
            assert f"the {n_good} row(s) before it are intact" in msg, msg
        else:
            assert str(path) in msg, msg
        return
    assert bad in (None, -1), f"damage at line {bad} not reported"
    assert [(t.prompt, t.answer) for t in tasks[:n_good]] == [
        (r["prompt"], r["answer"]) for r in rows[:n_good]
    ]


test_task_jsonl = fast(80)(
    example(
        ([{"prompt": "p", "answer": "a"}], "append", b'{"prompt": "q"}\n', 0)
    )(  # a later row without the answer: was KeyError
        example(([{"prompt": "p", "answer": "a"}], "append", b'{"prompt": "q", "answer": null}\n', 0))(
            given(damaged())(check_task_jsonl)
        )
    )
)
test_task_jsonl_slow = slow(given(damaged())(check_task_jsonl), of=3)


def test_task_jsonl_bom_and_blank_lines(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"prompt": "p", "answer": "1"}\n\n  \n{"prompt": "q", "answer": "2"}\n')
    tasks = load_file_tasks(TaskSourceConfig(type="jsonl", path=str(path), kind="math"), seed=0)
    assert [(t.prompt, t.answer) for t in tasks] == [("p", "1"), ("q", "2")]


@st.composite
def parquet_files(draw):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = draw(
        st.lists(
            st.fixed_dictionaries({"prompt": texts, "answer": texts | st.none()}), min_size=1, max_size=5
        )
    )
    path = TMP / "tasks.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    data = path.read_bytes()
    how = draw(st.sampled_from(["cut", "flip", "random", "whole"]))
    if how == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    elif how == "flip":
        i = draw(st.integers(0, len(data) - 1))
        data = data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1 :]
    elif how == "random":
        data = draw(st.binary(max_size=300))
    return rows, how, data


def check_task_parquet(case) -> None:
    rows, how, data = case
    path = TMP / "fuzzed.parquet"
    path.write_bytes(data)
    try:
        tasks = load_file_tasks(TaskSourceConfig(type="parquet", path=str(path), kind="math", n=100), seed=0)
    except ConfigError as exc:
        assert str(path) in str(exc), str(exc)
        return
    if how == "whole":  # an undamaged file: every row as written
        assert [(t.prompt, t.answer) for t in tasks] == [(r["prompt"], r["answer"]) for r in rows]
    assert all(isinstance(t.prompt, str) and t.prompt.strip() and t.answer.strip() for t in tasks)


test_task_parquet = fast(50)(given(parquet_files())(check_task_parquet))
test_task_parquet_slow = slow(given(parquet_files())(check_task_parquet), of=3)
