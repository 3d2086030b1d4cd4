"""``selfdistill score INPUT.jsonl [-o OUTPUT.jsonl] [--workers N] [--math-text-fallback]``: score offline generations.

Each input line is a JSON object with ``kind`` ("math", "code", ...) plus what that kind's scorer
reads (math: ``completion`` and ``answer``; other keys are carried through). Records are grouped by
``kind`` and each group goes to :func:`rewards.registry.get_scorer`; each output line is the input
record plus the scorer's keys (at least ``reward`` in [0, 1], ``status`` and ``detail``: why the
verdict is not PASS, empty for PASS), in input order.

Bad input never stops the rest:

* a line that is not a JSON object is reported on stderr with its line number and **written**
  as ``{"line": N, "raw": <first 200 chars>, "reward": 0.0, "status": "INVALID", "detail": ...}``
  so that output line i always matches input line i (blank lines are skipped silently);
* a record without ``kind``, with a kind that has no scorer, or whose scorer fails to import or
  raises, gets ``status: INVALID`` with a ``detail`` message.

A summary (counts per kind and status) goes to stderr. Exit code 0 unless INPUT cannot be read.
Run::

    selfdistill score generations.jsonl -o scored.jsonl --workers 4
    python -m rewards.scoring generations.jsonl     # same, without the CLI wrapper
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter, defaultdict
from typing import Any

from rewards.common import Status
from rewards.registry import get_scorer


def _invalid(detail: str) -> dict[str, Any]:
    return {"reward": 0.0, "status": str(Status.INVALID), "detail": detail}


def read_records(lines: list[str]) -> tuple[list[dict | None], list[dict]]:
    """Parse JSONL lines; returns (records, per-line INVALID results for malformed ones, or {})."""
    records: list[dict | None] = []
    results: list[dict] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            obj, why = None, f"line {n}: not valid JSON ({exc.msg} at column {exc.colno})"
        else:
            why = f"line {n}: expected a JSON object, got {type(obj).__name__}"
        if isinstance(obj, dict):
            records.append(obj)
            results.append({})
        else:
            print(f"score: {why}", file=sys.stderr)
            records.append(None)
            results.append({"line": n, "raw": line.rstrip("\n")[:200], **_invalid(why)})
    return records, results


def score_all(records: list[dict | None], workers: int, options: dict[str, dict[str, Any]] | None = None) -> list[dict]:
    """Scorer keys for every record (None entries are left empty for the caller to fill).

    ``options``: per kind, keyword arguments for that kind's scorer (``{"math": {"text_fallback": True}}``).
    """
    out: list[dict] = [{} for _ in records]
    groups: dict[str, list[int]] = defaultdict(list)
    for i, rec in enumerate(records):
        if rec is None:
            continue
        kind = rec.get("kind")
        if not isinstance(kind, str):
            out[i] = _invalid(f"record has no 'kind' (got {kind!r})")
        else:
            groups[kind].append(i)
    for kind, idx in groups.items():
        try:
            scorer = get_scorer(kind)
        except Exception as exc:  # noqa: BLE001 - unknown kind or scorer that fails to import
            why = f"no scorer for kind {kind!r}: {type(exc).__name__}: {exc}"
            print(f"score: {why}", file=sys.stderr)
            for i in idx:
                out[i] = _invalid(why)
            continue
        try:
            scored = scorer([records[i] for i in idx], workers, **(options or {}).get(kind, {}))
            if len(scored) != len(idx):
                raise RuntimeError(f"scorer returned {len(scored)} results for {len(idx)} records")
        except Exception as exc:  # noqa: BLE001 - one kind's failure must not stop the others
            why = f"scorer for kind {kind!r} failed: {type(exc).__name__}: {exc}"
            print(f"score: {why}", file=sys.stderr)
            scored = [_invalid(why) for _ in idx]
        for i, res in zip(idx, scored):
            out[i] = _with_detail(dict(res))
    return out


def _with_detail(res: dict) -> dict:
    """Every output line carries ``detail``: the scorer's reason, or one naming the status when a
    (plug-in) scorer gave none for a verdict other than PASS."""
    detail = res.get("detail")
    if not isinstance(detail, str):
        detail = "" if detail is None else str(detail)
    if not detail and res.get("status") != str(Status.PASS):
        detail = f"{res.get('status')}: the scorer gave no reason"
    res["detail"] = detail
    return res


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="selfdistill score", description="Score offline generations (JSONL).")
    parser.add_argument("input", help="JSONL file, one record per line ('-' for stdin)")
    parser.add_argument("-o", "--output", help="output JSONL (default: stdout)")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="verifier processes")
    parser.add_argument(
        "--math-text-fallback",
        action="store_true",
        help="math: read an answer stated in prose when a completion boxes nothing (rewards/math/prose.py)",
    )
    args = parser.parse_args(argv)
    return _score_file(args)


def _score_file(args: argparse.Namespace) -> int:
    try:
        if args.input == "-":
            lines = sys.stdin.readlines()
        else:
            with open(args.input, encoding="utf-8", errors="replace") as f:
                lines = f.readlines()
    except OSError as exc:
        print(f"score: cannot read {args.input}: {exc}", file=sys.stderr)
        return 2
    records, parse_results = read_records(lines)
    options = {"math": {"text_fallback": True}} if args.math_text_fallback else {}
    scored = score_all(records, max(1, args.workers), options)
    counts: Counter = Counter()
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        for rec, bad, res in zip(records, parse_results, scored):
            row = bad if rec is None else {**rec, **res}
            counts[(str(rec.get("kind")) if rec else "malformed", row.get("status"))] += 1
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    total = sum(counts.values())
    summary = ", ".join(f"{k}/{s}: {c}" for (k, s), c in sorted(counts.items()))
    print(f"score: {total} records ({summary})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
