"""``selfdistill score INPUT.jsonl [-o OUTPUT.jsonl] [--workers N] [--math-text-fallback] [--judge MODEL]``: score offline generations.

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

With ``--judge MODEL`` every record with a ``completion`` is also scored by the judge reward
(`rewards.judge`: the same prompt, escaping, strict parsing and cache as in RL), against its
``prompt`` and, when present, its ``answer``: the output gains ``judge_score`` (in [0, 1], or null
when the judge gave no valid score), ``judge_status`` and ``judge_output``. Records without ``kind``
are then judged only, not marked INVALID. ``--judge-url`` points at an OpenAI-compatible server
instead of loading MODEL here.

A summary (counts per kind and status) goes to stderr. Exit code 0 unless INPUT cannot be read
(or the judge cannot be built: exit 2).
Run::

    selfdistill score generations.jsonl -o scored.jsonl --workers 4
    selfdistill score generations.jsonl --judge path/to/judge-model --judge-cache /tmp/judge
    selfdistill score generations.jsonl --judge Qwen/Qwen3-8B --judge-url http://localhost:8000/v1
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


def score_all(
    records: list[dict | None],
    workers: int,
    options: dict[str, dict[str, Any]] | None = None,
    kind_optional: bool = False,
) -> list[dict]:
    """Scorer keys for every record (None entries are left empty for the caller to fill).

    ``options``: per kind, keyword arguments for that kind's scorer (``{"math": {"text_fallback": True}}``).
    ``kind_optional``: a record without ``kind`` gets no keys instead of INVALID (the judge scores it).
    """
    out: list[dict] = [{} for _ in records]
    groups: dict[str, list[int]] = defaultdict(list)
    for i, rec in enumerate(records):
        if rec is None:
            continue
        kind = rec.get("kind")
        if kind is None and kind_optional:
            continue
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
    parser = argparse.ArgumentParser(
        prog="selfdistill score", description="Score offline generations (JSONL)."
    )
    parser.add_argument("input", help="JSONL file, one record per line ('-' for stdin)")
    parser.add_argument("-o", "--output", help="output JSONL (default: stdout)")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="verifier processes")
    parser.add_argument(
        "--math-text-fallback",
        action="store_true",
        help="math: read an answer stated in prose when a completion boxes nothing (rewards/math/prose.py)",
    )
    judge = parser.add_argument_group(
        "judge", "score every completion with a judge model too (rewards.judge)"
    )
    judge.add_argument(
        "--judge",
        metavar="MODEL",
        help="judge model: a local dir, hub id or .gguf (the served model name with --judge-url)",
    )
    judge.add_argument(
        "--judge-url", help="base URL of an OpenAI-compatible server, e.g. http://localhost:8000/v1"
    )
    judge.add_argument(
        "--judge-rubric", help="rubric text (default: correctness against the reference answer)"
    )
    judge.add_argument("--judge-cache", help="directory of the judgement cache (default: memory only)")
    judge.add_argument("--judge-score-first", action="store_true", help="prefill 'SCORE:' (small judges)")
    judge.add_argument("--judge-timeout", type=float, default=60.0, help="seconds per request or local batch")
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
    scored = score_all(records, max(1, args.workers), options, kind_optional=bool(args.judge))
    if args.judge:
        try:
            judged = _judge_records(records, args)
        except (ValueError, RuntimeError) as exc:
            print(f"score: cannot build the judge: {exc}", file=sys.stderr)
            return 2
        for res, extra in zip(scored, judged):
            res.update(extra)
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


def _judge_records(records: list[dict | None], args: argparse.Namespace) -> list[dict]:
    """The judge's keys for every record (empty for malformed lines)."""
    from rewards.judge import JudgeConfig, JudgeReward, score_records

    settings = {
        "backend": "http" if args.judge_url else "local",
        "model": args.judge,
        "url": args.judge_url,
        "score_first": args.judge_score_first,
        "timeout_s": args.judge_timeout,
        "cache_dir": args.judge_cache,
    }
    if args.judge_rubric:
        settings["rubric"] = args.judge_rubric
    judge = JudgeReward(JudgeConfig(**settings))
    try:
        idx = [i for i, r in enumerate(records) if r is not None]
        out: list[dict] = [{} for _ in records]
        for i, res in zip(idx, score_records([records[i] for i in idx], judge)):
            out[i] = res
        print(f"score: judge {dict(judge.stats)}", file=sys.stderr)
        return out
    finally:
        judge.close()


if __name__ == "__main__":
    raise SystemExit(main())
