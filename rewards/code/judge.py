"""The trusted comparison: type-aware values, strict stdout, and per-job status.

Nothing here trusts the job: values arrive as decoded plain data (``rewards.sandbox.codec``),
records are matched by index and each test needs exactly one record, and the exit code or
printed text is never a verdict on its own.
"""

from __future__ import annotations

import math
from typing import Any

from rewards.common import Status
from rewards.sandbox import codec
from rewards.sandbox.proc import JobResult

# when a program has several failing tests, report the most telling status
_PRIORITY = (
    Status.INFRA_ERROR,
    Status.INVALID,
    Status.SYNTAX_ERROR,
    Status.MEMORY,
    Status.OUTPUT_LIMIT,
    Status.TIMEOUT,
    Status.RUNTIME_ERROR,
    Status.FAIL,
)


def values_equal(got: Any, expected: Any, rel_tol: float = 1e-9, abs_tol: float = 1e-9) -> bool:
    """Strict equality of plain data: ``True`` is not ``1``, ``"1"`` is not ``1``.

    Floats compare with tolerance (an int is accepted where a float is expected, NaN equals NaN);
    a JSON list expectation accepts a list or tuple, since JSON has no tuples.
    """
    te = type(expected)
    if expected is None or te is bool or te is str or te is bytes:
        return type(got) is te and got == expected
    if te is int:
        return type(got) is int and got == expected
    if te is float:
        if type(got) not in (int, float):
            return False
        if math.isnan(expected) or math.isnan(got):
            return math.isnan(expected) and math.isnan(got)
        return math.isclose(got, expected, rel_tol=rel_tol, abs_tol=abs_tol)
    if te is list or te is tuple:
        if not (type(got) is te or (te is list and type(got) is tuple)) or len(got) != len(expected):
            return False
        return all(values_equal(g, e, rel_tol, abs_tol) for g, e in zip(got, expected))
    if te is dict:
        if type(got) is not dict or set(got) != set(expected):
            return False
        return all(values_equal(got[k], expected[k], rel_tol, abs_tol) for k in expected)
    if te is set or te is frozenset:
        return type(got) in (set, frozenset) and got == expected
    return False


def stdout_equal(got: str, expected: str) -> bool:
    """Same lines after stripping trailing spaces and trailing blank lines; same line count."""
    return _lines(got) == _lines(expected)


def _lines(s: str) -> list[str]:
    """Lines without trailing spaces, trailing blank lines dropped (what stdout comparison sees)."""
    out = [line.rstrip() for line in s.replace("\r\n", "\n").split("\n")]
    while out and not out[-1]:
        out.pop()
    return out


def _error_status(err: str) -> Status:
    return Status.MEMORY if err.startswith("MemoryError") else Status.RUNTIME_ERROR


def _process_status(res: JobResult) -> Status | None:
    """A status explained by how the process ended, if any."""
    if res.infra:
        return Status.INFRA_ERROR
    if res.memory:
        return Status.MEMORY
    if res.output_limit:
        return Status.OUTPUT_LIMIT
    if res.timeout or res.signal == 24:  # SIGXCPU: the CPU rlimit
        return Status.TIMEOUT
    return None


def _head(res: JobResult) -> tuple[Status | None, list[dict]]:
    """Status fixed before any test ran (syntax, load error, infra) and the result records."""
    for rec in res.records:
        k = rec["k"]
        if k == "infra":
            return Status.INFRA_ERROR, []
        if k == "syntax":
            return Status.SYNTAX_ERROR, []
        if k == "load_error":
            return _process_status(res) or _error_status(str(rec.get("err", ""))), []
    return None, [r for r in res.records if r["k"] == "r"]


def python_eq(got: Any, expected: Any) -> bool:
    """Python ``==`` -- safe here because both sides are fresh builtins from the codec."""
    try:
        return bool(got == expected)
    except Exception:  # noqa: BLE001 -- e.g. comparing deeply nested values
        return False


def judge_call(
    res: JobResult, expected: tuple, compare=None, **tol: float
) -> tuple[list[Status], Status | None]:
    """Per-test statuses for a call-based job, plus a status that applies to all (or None).

    ``compare(got, expected)`` defaults to the strict :func:`values_equal` with ``tol``.
    """
    compare = compare or (lambda got, exp: values_equal(got, exp, **tol))
    head, recs = _head(res)
    if head is not None:
        return [head] * len(expected), head
    by_index: dict[int, dict] = {}
    for r in recs:
        i = r.get("i")
        if type(i) is int and 0 <= i < len(expected):
            if i in by_index:  # a forged duplicate: the test fails, whatever either says
                by_index[i] = {"err": "duplicate record"}
            else:
                by_index[i] = r
    missing = _process_status(res) or (Status.RUNTIME_ERROR if res.signal or res.exit else Status.FAIL)
    out = []
    for i, exp in enumerate(expected):
        r = by_index.get(i)
        if r is None:
            out.append(missing)
        elif "err" in r:
            out.append(_error_status(str(r["err"])))
        else:
            try:
                ok = compare(codec._dec(r.get("v"), 0), exp)
            except codec.CodecError:
                ok = False
            out.append(Status.PASS if ok else Status.FAIL)
    return out, None


def judge_stdio(res: JobResult, expected_stdout: str) -> Status:
    head, _ = _head(res)
    if head is not None:
        return head
    proc = _process_status(res)
    if proc is not None:
        return proc
    if res.signal or res.exit or not any(r["k"] == "done" for r in res.records):
        return Status.RUNTIME_ERROR
    text = res.stdout.decode("utf-8", errors="replace")
    return Status.PASS if stdout_equal(text, expected_stdout) else Status.FAIL


def overall(statuses: list[Status]) -> Status:
    if statuses and all(s == Status.PASS for s in statuses):
        return Status.PASS
    for s in _PRIORITY:
        if s in statuses:
            return s
    return Status.FAIL


# -- reasons: every non-PASS verdict says why, in one line ------------------------------------
_SHOW = 80  # characters of a value or a line shown in a reason


def _short(x: Any) -> str:
    text = repr(x)
    return text if len(text) <= _SHOW else text[: _SHOW - 3] + "..."


def _process_reason(res: JobResult) -> str:
    """How the job ended, in words (for tests that left no result)."""
    if res.infra:
        return f"sandbox failure: {res.infra}"
    if res.memory:
        return "memory limit exceeded"
    if res.output_limit:
        return "output limit exceeded"
    if res.timeout or res.signal == 24:
        return f"time limit exceeded (ran {res.wall_s:.1f} s)"
    if res.signal:
        return f"killed by signal {res.signal}"
    if res.exit:
        return f"exited with code {res.exit}"
    return "the program ended without returning a result"


def _stderr_tail(res: JobResult) -> str:
    tail = res.stderr.decode("utf-8", errors="replace").strip().splitlines()[-1:] if res.stderr else []
    return f" ({tail[0][:_SHOW]})" if tail else ""


def _head_reason(res: JobResult) -> str | None:
    for rec in res.records:
        k = rec.get("k")
        if k == "infra":
            return f"sandbox failure: {rec.get('err', '')}"[:300]
        if k == "syntax":
            return f"syntax error: {rec.get('err', '')}"[:300]
        if k == "load_error":
            return f"the program failed to load: {rec.get('err', '')}"[:300]
    return None


def call_reason(res: JobResult, expected: tuple, statuses: list[Status], compare=None, **tol: float) -> str:
    """Why a call-based job did not pass: the first failing test, what was expected and what came back."""
    head = _head_reason(res) or (_process_reason(res) if res.infra else None)
    if head is not None:
        return head
    bad = [i for i, s in enumerate(statuses) if s != Status.PASS]
    if not bad:
        return "no tests" if not statuses else ""
    i = bad[0]
    recs = [r for r in res.records if r.get("k") == "r" and r.get("i") == i]
    prefix = f"test {i + 1} of {len(statuses)}" + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else "")
    if len(recs) > 1:
        return f"{prefix}: duplicate result records"
    if not recs:
        return f"{prefix}: no result: {_process_reason(res)}{_stderr_tail(res)}"
    rec = recs[0]
    if "err" in rec:
        return f"{prefix}: raised {str(rec['err'])[:200]}"
    try:
        got = codec._dec(rec.get("v"), 0)
    except codec.CodecError as e:
        return f"{prefix}: returned a value that is not plain data ({e})"
    return f"{prefix}: expected {_short(expected[i])}, got {_short(got)}"


def stdio_reason(res: JobResult, expected_stdout: str, status: Status, index: int, total: int) -> str:
    """Why one stdin/stdout run did not pass (``index`` counts from 0)."""
    prefix = f"test {index + 1} of {total}"
    head = _head_reason(res)
    if head is not None:
        return f"{prefix}: {head}"
    if status != Status.FAIL:
        return f"{prefix}: {_process_reason(res)}{_stderr_tail(res)}"
    got, want = _lines(res.stdout.decode("utf-8", errors="replace")), _lines(expected_stdout)
    for n, (g, w) in enumerate(zip(got, want), 1):
        if g != w:
            return f"{prefix}: stdout line {n}: expected {_short(w)}, got {_short(g)}"
    return f"{prefix}: stdout has {len(got)} lines, expected {len(want)}"
