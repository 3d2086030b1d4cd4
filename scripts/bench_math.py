"""Benchmark: our math verifier vs Math-Verify, side by side, on dev / note / generated / adversarial sets.

Prints one table per set: per answer class, accuracy, false-positive rate (label-0 items scored
1), false-negative rate (label-1 items scored 0), median and p99 latency per call, and hangs
(calls over 2 s). Then throughput on the generated set, both verifiers on the same number of
worker processes. Math-Verify runs inside our DeadlinePool too (10 s kill) so that its hangs
cannot stall the benchmark; its own 5 s ``signal.alarm`` timeouts stay on.

Run (needs ``pip install math-verify``; the dev set is ``scripts/data/math_dev.jsonl``)::

    python scripts/bench_math.py --workers 2 --gen-refs 600 --mv-adversarial 24
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rewards.math import judge_batch  # noqa: E402
from rewards.math.cases import Case, adversarial_cases, generated_cases, note_cases  # noqa: E402
from rewards.pool import DeadlinePool  # noqa: E402

HANG_S = 2.0


def mv_task(completion: str, answer: str) -> tuple[float, float]:
    """(reward, seconds) from Math-Verify in a worker; module-level so the pool can pickle it."""
    from math_verify import parse, verify

    t = time.perf_counter()
    try:
        gold = parse(f"${answer}$")
        pred = parse(completion)
        ok = verify(gold, pred)
    except Exception:  # noqa: BLE001 - count as wrong, like a grader would
        ok = False
    return float(bool(ok)), time.perf_counter() - t


def mv_warm() -> None:
    import logging

    logging.getLogger("math_verify").setLevel(logging.CRITICAL)  # it logs whole completions on timeouts
    mv_task("\\boxed{1}", "1")


def wait_ready(*pools: DeadlinePool) -> None:
    """Block until every worker (and spare) of each pool has started: no timing includes a start-up."""
    for pool in pools:
        while pool.ready_count() < pool.size + pool.spares:
            time.sleep(0.05)


def load_dev() -> list[Case]:
    path = Path(__file__).with_name("data") / "math_dev.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [
        Case(r["cls"], r["completion"], r["answer"], r["label"], r["source"], r.get("dispute", ""))
        for r in rows
    ]


def run_ours(cases: list[Case], pool: DeadlinePool) -> tuple[list[float], list[float]]:
    """Per-call reward and latency: each case is one call (fast path here, sympy in the pool)."""
    rewards, lat = [], []
    for c in cases:
        t = time.perf_counter()
        v = judge_batch([c.completion], [c.answer], pool=pool)[0]
        lat.append(time.perf_counter() - t)
        rewards.append(v.reward)
    return rewards, lat


def run_mv(cases: list[Case], pool: DeadlinePool, mv_task_fn) -> tuple[list[float], list[float]]:
    res = pool.map(mv_task_fn, [(c.completion, c.answer) for c in cases])
    rewards = [r.value[0] if r.ok else 0.0 for r in res]
    lat = [r.value[1] if r.ok else r.elapsed_s for r in res]
    return rewards, lat


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def table(name: str, cases: list[Case], results: dict[str, tuple[list[float], list[float]]]) -> str:
    by_cls: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(cases):
        by_cls[c.cls].append(i)
    by_cls["ALL"] = list(range(len(cases)))
    if any(
        c.dispute for c in cases
    ):  # labels we dispute (see scripts/data/build_math_dev.py), reported apart
        by_cls["ALL undisputed"] = [i for i, c in enumerate(cases) if not c.dispute]
    names = list(results)
    head = (
        f"| {name} class | n | "
        + " | ".join(f"{v} acc | {v} FP | {v} FN | {v} p50 ms | {v} p99 ms | {v} hangs" for v in names)
        + " |"
    )
    lines = [head, "|" + "---|" * (2 + 6 * len(names))]
    for cls in sorted(by_cls, key=lambda k: (k.startswith("ALL"), k)):
        idx = by_cls[cls]
        cells = [cls, str(len(idx))]
        for v in names:
            rew, lat = results[v]
            neg = [i for i in idx if cases[i].label == 0]
            pos = [i for i in idx if cases[i].label == 1]
            acc = sum((rew[i] >= 0.5) == bool(cases[i].label) for i in idx) / len(idx)
            fp = sum(rew[i] >= 0.5 for i in neg) / len(neg) if neg else float("nan")
            fn = sum(rew[i] < 0.5 for i in pos) / len(pos) if pos else float("nan")
            ls = [lat[i] * 1e3 for i in idx]
            hangs = sum(lat[i] > HANG_S for i in idx)
            cells += [
                f"{acc:.3f}",
                f"{fp:.3f}",
                f"{fn:.3f}",
                f"{statistics.median(ls):.2f}",
                f"{_pct(ls, 0.99):.1f}",
                str(hangs),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--gen-refs", type=int, default=600, help="references in the generated set (x ~6 cases each)"
    )
    ap.add_argument(
        "--mv-adversarial",
        type=int,
        default=24,
        help="adversarial cases given to Math-Verify (each can burn 5-10 s)",
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    import bench_math  # this file as an importable module, so its mv_task pickles by name

    ours_pool = DeadlinePool(
        args.workers, 1.0, initializer="rewards.math.symbolic:warm_up", spares=2
    )  # as math_reward
    mv_pool = DeadlinePool(args.workers, 10.0, initializer="bench_math:mv_warm", spares=0)
    wait_ready(ours_pool, mv_pool)  # every worker started and warm before any timing
    print(f"# load average at start: {os.getloadavg()}; workers: {args.workers}")
    sets = {"dev": load_dev(), "note": note_cases(), "generated": generated_cases(args.gen_refs, args.seed)}
    for name, cases in sets.items():
        res = {"ours": run_ours(cases, ours_pool), "MV": run_mv(cases, mv_pool, bench_math.mv_task)}
        print(f"\n### {name} ({len(cases)} cases)\n")
        print(table(name, cases, res))
        keep = [i for i, c in enumerate(cases) if not c.dispute]
        if len(keep) < len(
            cases
        ):  # the same calls, disputed rows left out (reasons: scripts/data/build_math_dev.py)
            sub = {v: ([r[0][i] for i in keep], [r[1][i] for i in keep]) for v, r in res.items()}
            print(f"\n### {name}, undisputed labels only ({len(keep)} cases)\n")
            print(table(f"{name}-undisputed", [cases[i] for i in keep], sub))
    adv = adversarial_cases()
    step = max(1, len(adv) // max(1, args.mv_adversarial))
    res = {"ours": run_ours(adv, ours_pool)}
    print(f"\n### adversarial ({len(adv)} cases; ours only)\n")
    print(table("adversarial", adv, res))
    print(
        f"max single call (ours): {max(res['ours'][1]):.3f} s; rewarded: {sum(r > 0 for r in res['ours'][0])}"
    )
    sub = adv[::step][: args.mv_adversarial]
    both = {"ours": run_ours(sub, ours_pool), "MV": run_mv(sub, mv_pool, bench_math.mv_task)}
    print(f"\n### adversarial subset ({len(sub)} cases, both)\n")
    print(table("adv-subset", sub, both))
    gen = sets["generated"]
    wait_ready(ours_pool, mv_pool)  # Math-Verify workers killed on the adversarial subset are back
    t = time.perf_counter()
    judge_batch([c.completion for c in gen], [c.answer for c in gen], pool=ours_pool)
    ours_s = time.perf_counter() - t
    t = time.perf_counter()
    run_mv(gen, mv_pool, bench_math.mv_task)
    mv_s = time.perf_counter() - t
    print(f"\n### throughput on the generated set ({len(gen)} cases, {args.workers} workers each)\n")
    print(
        f"ours: {len(gen) / ours_s:.0f} cases/s ({ours_s:.2f} s); Math-Verify: {len(gen) / mv_s:.0f} cases/s ({mv_s:.2f} s); "
        f"ratio {mv_s / ours_s:.1f}x"
    )
    print(f"# load average at end: {os.getloadavg()}")
    ours_pool.close()
    mv_pool.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
