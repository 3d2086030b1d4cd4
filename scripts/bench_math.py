"""Benchmark: our math verifier vs Math-Verify, side by side, on dev / note / generated / adversarial sets.

Prints one table per set: per answer class, accuracy, false-positive rate (label-0 items scored
1), false-negative rate (label-1 items scored 0), median and p99 latency per call, and hangs
(calls over 2 s). Then throughput on the generated set, both verifiers on the same number of
worker processes. Math-Verify runs inside our DeadlinePool too (10 s kill) so that its hangs
cannot stall the benchmark; its own 5 s ``signal.alarm`` timeouts stay on.

Run (needs ``pip install math-verify``; the dev sets are ``scripts/data/math_dev.jsonl`` (boxed) and
``math_dev_prose.jsonl`` (free text, ours with ``text_fallback=True``))::

    python scripts/bench_math.py --workers 2 --gen-refs 600 --mv-adversarial 24

Held-out set (real model outputs, ``scripts/data/build_math_heldout.py``), alone or with the rest::

    python scripts/bench_math.py --workers 1 --sets heldout --heldout scripts/data/math_heldout.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(
    0, str(Path(__file__).resolve().parents[1] / "tests" / "rewards")
)  # the case sets (test data)

from math_cases import Case, adversarial_cases, generated_cases, note_cases  # noqa: E402

from rewards.math import judge_batch  # noqa: E402
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


def load_dev(name: str = "math_dev.jsonl") -> list[Case]:
    """A dev set built by ``scripts/data/build_math_dev.py`` (``math_dev.jsonl`` or ``math_dev_prose.jsonl``)."""
    path = Path(__file__).with_name("data") / name
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [
        Case(
            r["cls"],
            r["completion"],
            r["answer"],
            r["label"],
            r["source"],
            r.get("mv_label"),
            r.get("policy", ""),
        )
        for r in rows
    ]


def load_heldout(path: str) -> list[Case]:
    """Held-out rows (``scripts/data/build_math_heldout.py``): class = shape of the reference, source = model."""
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return [
        Case(r["cls"], r["completion"], r["answer"], r["label"], r["source"], prompt=r.get("problem"))
        for r in rows
    ]


def run_ours(
    cases: list[Case], pool: DeadlinePool, text_fallback: bool = False
) -> tuple[list[float], list[float]]:
    """Per-call reward and latency: each case is one call (fast path here, sympy in the pool)."""
    rewards, lat = [], []
    for c in cases:
        t = time.perf_counter()
        v = judge_batch([c.completion], [c.answer], [c.prompt], pool=pool, text_fallback=text_fallback)[
            0
        ]  # prompt as RL
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
    ap.add_argument(
        "--heldout", default=None, help="held-out JSONL (scripts/data/math_heldout.jsonl): adds that set"
    )
    ap.add_argument(
        "--sets",
        default="all",
        help="comma-separated subset of dev,prose,note,generated,adversarial,throughput,heldout (default: all)",
    )
    ap.add_argument(
        "--text-fallback",
        choices=("off", "on", "both"),
        default="off",
        help="ours on the held-out set: boxed answers only (off, the default setting), 'answer is' fallback (on), or both",
    )
    args = ap.parse_args(argv)
    want = (
        {"dev", "prose", "note", "generated", "adversarial", "throughput"}
        if args.sets == "all"
        else set(args.sets.split(","))
    )
    if args.heldout and args.sets == "all":
        want.add("heldout")
    if "heldout" in want and not args.heldout:
        ap.error("--sets heldout needs --heldout PATH")
    import bench_math  # this file as an importable module, so its mv_task pickles by name

    ours_pool = DeadlinePool(
        args.workers, 1.0, initializer="rewards.math.symbolic:warm_up", spares=2
    )  # as math_reward
    mv_pool = DeadlinePool(args.workers, 10.0, initializer="bench_math:mv_warm", spares=0)
    wait_ready(ours_pool, mv_pool)  # every worker started and warm before any timing
    print(f"# load average at start: {os.getloadavg()}; workers: {args.workers}")
    sets = {}
    if "dev" in want:
        sets["dev"] = load_dev()
    if "prose" in want:
        sets["prose"] = load_dev("math_dev_prose.jsonl")
    if "note" in want:
        sets["note"] = note_cases()
    if "generated" in want or "throughput" in want:
        sets["generated"] = generated_cases(args.gen_refs, args.seed)
    for name, cases in sets.items():
        if name == "generated" and "generated" not in want:
            continue
        ours = run_ours(
            cases, ours_pool, text_fallback=name == "prose"
        )  # free text: the fallback the config allows
        res = {"ours": ours, "MV": run_mv(cases, mv_pool, bench_math.mv_task)}
        print(
            f"\n### {name} ({len(cases)} cases{'; ours with text_fallback=True' if name == 'prose' else ''})\n"
        )
        print(table(name, cases, res))
        relabelled = [c for c in cases if c.mv_label is not None]
        if relabelled:  # the same calls, scored against Math-Verify's own expectations
            mv_cases = [replace(c, label=c.mv_label) if c.mv_label is not None else c for c in cases]
            print(
                f"\n### {name}, scored on Math-Verify's own expectations ({len(relabelled)} labels differ)\n"
            )
            print(table(f"{name}-MV-labels", mv_cases, res))
    if "heldout" in want:
        run_heldout(args, ours_pool, mv_pool, bench_math.mv_task)
    if "adversarial" in want:
        run_adversarial(args, ours_pool, mv_pool, bench_math.mv_task)
    if "throughput" in want:
        run_throughput(args, sets["generated"], ours_pool, mv_pool, bench_math.mv_task)
    print(f"# load average at end: {os.getloadavg()}")
    ours_pool.close()
    mv_pool.close()
    return 0


def run_heldout(args: argparse.Namespace, ours_pool: DeadlinePool, mv_pool: DeadlinePool, mv_task_fn) -> None:
    """The held-out set, per reference class and per model, ours (text fallback as asked) next to Math-Verify."""
    cases = load_heldout(args.heldout)
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.text_fallback]
    res = {}
    for fb in modes:
        res[f"ours{'+fb' if fb else ''}"] = run_ours(cases, ours_pool, text_fallback=fb)
    res["MV"] = run_mv(cases, mv_pool, mv_task_fn)
    print(f"\n### heldout ({len(cases)} cases, CHAMP model outputs; '+fb' = text_fallback=True)\n")
    print(table("heldout", cases, res))
    by_model = [replace(c, cls=c.source) for c in cases]
    print(f"\n### heldout by model ({len(cases)} cases)\n")
    print(table("heldout-model", by_model, res))


def run_adversarial(
    args: argparse.Namespace, ours_pool: DeadlinePool, mv_pool: DeadlinePool, mv_task_fn
) -> None:
    adv = adversarial_cases()
    step = max(1, len(adv) // max(1, args.mv_adversarial))
    res = {"ours": run_ours(adv, ours_pool)}
    print(f"\n### adversarial ({len(adv)} cases; ours only)\n")
    print(table("adversarial", adv, res))
    print(
        f"max single call (ours): {max(res['ours'][1]):.3f} s; rewarded: {sum(r > 0 for r in res['ours'][0])}"
    )
    fb = run_ours(
        adv, ours_pool, text_fallback=True
    )  # the prose reader on the same inputs: it must stay linear too
    print(
        f"with text_fallback=True: max single call {max(fb[1]):.3f} s; p99 {_pct(fb[1], 0.99) * 1e3:.1f} ms; rewarded: {sum(r > 0 for r in fb[0])}"
    )
    sub = adv[::step][: args.mv_adversarial]
    both = {"ours": run_ours(sub, ours_pool), "MV": run_mv(sub, mv_pool, mv_task_fn)}
    print(f"\n### adversarial subset ({len(sub)} cases, both)\n")
    print(table("adv-subset", sub, both))


def run_throughput(
    args: argparse.Namespace, gen: list[Case], ours_pool: DeadlinePool, mv_pool: DeadlinePool, mv_task_fn
) -> None:
    wait_ready(ours_pool, mv_pool)  # Math-Verify workers killed on the adversarial subset are back
    t = time.perf_counter()
    judge_batch([c.completion for c in gen], [c.answer for c in gen], pool=ours_pool)
    ours_s = time.perf_counter() - t
    t = time.perf_counter()
    run_mv(gen, mv_pool, mv_task_fn)
    mv_s = time.perf_counter() - t
    print(f"\n### throughput on the generated set ({len(gen)} cases, {args.workers} workers each)\n")
    print(
        f"ours: {len(gen) / ours_s:.0f} cases/s ({ours_s:.2f} s); Math-Verify: {len(gen) / mv_s:.0f} cases/s ({mv_s:.2f} s); "
        f"ratio {mv_s / ours_s:.1f}x"
    )


if __name__ == "__main__":
    raise SystemExit(main())
