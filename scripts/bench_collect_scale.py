"""Collect and SFT at scale: peak memory of collect against the trace count, and SFT start-up on those traces.

For each trace count N (default 5,000 and 50,000) one fresh process runs `stages.collect.collect_round` with
the demo policy's architecture (`configs/demo.yaml` policy.tiny, random init, the char tokenizer) on procedural
math prompts (difficulty 2: level 1 has only 4,200 distinct prompts), filters open (``min_reward=0``, no format requirement, ``max_per_prompt = k``) so that about
``k`` traces per prompt are stored, and reports its peak RSS. Then, each in a fresh process on that store:

  old lists   `rows_from_traces(store.iter())` + `tokenize_rows` (Python lists of every trace; the path before
              the Arrow store)
  arrow cold  `stages.sft.tokenize_traces`: Arrow copies of the shards + tokenised cache built
  arrow warm  `tokenize_traces` again (memory-mapped cache loaded: what every later rank/run/student pays)

and the seconds from "model loaded" to the first finished SFT optimizer step (`train_sft`, max_steps=1).

Run (tens of minutes on 2 shared cores at the defaults):
    python scripts/bench_collect_scale.py                                  # 5k and 50k traces
    python scripts/bench_collect_scale.py --traces 2000 --max-new-tokens 8 # smoke run, about a minute
Prints a markdown table; paste it with the command into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def rss_mb() -> float:
    """Current resident set size of this process (MiB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (MiB; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def demo_policy():
    """The demo policy's architecture at random init, with the char tokenizer, in float32 on CPU."""
    import torch

    from selfdistill.config import load_config
    from selfdistill.models.tiny import build_tiny
    from selfdistill.models.tokenizer import build_char_tokenizer

    torch.set_num_threads(1)
    tokenizer = build_char_tokenizer()
    return build_tiny(load_config().policy.tiny, tokenizer, seed=0), tokenizer


def collect(args) -> dict:
    """Worker: collect about ``args.n`` traces into ``args.dir``; peak RSS and counts."""
    from selfdistill.config import CollectConfig, RewardConfig, TaskSourceConfig
    from selfdistill.registries import TASK_SOURCES
    from selfdistill.stages.collect import collect_round
    from selfdistill.traces import TraceStore
    from selfdistill.tracking import NullStage

    model, tokenizer = demo_policy()
    num_prompts = -(-args.n // args.k)
    tasks = TASK_SOURCES.get("math", "tasks.sources[].type")(
        TaskSourceConfig(type="math", n=num_prompts, difficulty=2), seed=0
    )
    ccfg = CollectConfig(
        num_prompts=num_prompts,
        k=args.k,
        max_new_tokens=args.max_new_tokens,
        min_reward=0.0,
        require_format=False,
        max_per_prompt=args.k,
        chunk_size=250,
        batch_size=256,
    )
    before = rss_mb()
    start = time.perf_counter()
    out = collect_round(
        model,
        tokenizer,
        tasks,
        TraceStore(args.dir),
        ccfg=ccfg,
        rcfg=RewardConfig(weights={"math": 1.0}),
        round_=1,
        seed=0,
        model_name="demo-random",
        prompt_format="plain",
        stage=NullStage(),
    )
    if len(tasks) < num_prompts:
        raise SystemExit(
            f"the math generator made {len(tasks)} distinct prompts, {num_prompts} needed; lower --traces"
        )
    return {
        "seconds": time.perf_counter() - start,
        "rss_before_mb": before,
        "peak_rss_mb": peak_rss_mb(),
        "prompts": num_prompts,
        "sampled": out["sampled"],
        "kept": out["kept"],
        "store_total": out["store_total"],
    }


def sft(args) -> dict:
    """Worker: the SFT data path ``args.mode`` on the store in ``args.dir``, then one SFT step."""
    from selfdistill.config import SFTConfig
    from selfdistill.stages.sft import rows_from_traces, tokenize_rows, tokenize_traces, train_sft
    from selfdistill.traces import TraceStore
    from selfdistill.tracking import NullStage

    model, tokenizer = demo_policy()
    sft_cfg = SFTConfig(max_steps=1, batch_size=32, max_length=256, gradient_checkpointing=False)
    before = rss_mb()
    start = time.perf_counter()
    store = TraceStore(args.dir, clean=False)
    if args.mode == "lists":
        data = tokenize_rows(
            tokenizer, rows_from_traces(store.iter(min_reward=0.0), "plain"), sft_cfg.max_length
        )
    else:
        data = tokenize_traces(tokenizer, store, sft_cfg.max_length, "plain", min_reward=0.0)
    data_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as out:
        train_sft(
            model,
            tokenizer,
            data,
            sft_cfg,
            Path(out),
            seed=0,
            stage=NullStage(),
            device="cpu",
            run_name="bench",
            router_diagnostics=False,
        )
    return {
        "rows": len(data),
        "data_s": data_s,
        "first_step_s": time.perf_counter() - start,
        "rss_before_mb": before,
        "peak_rss_mb": peak_rss_mb(),
    }


def run_worker(*argv: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {argv} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--traces", type=int, nargs="+", default=[5000, 50000])
    p.add_argument("--k", type=int, default=8, help="samples (and kept traces) per prompt")
    p.add_argument(
        "--max-new-tokens", type=int, default=16, help="cut from the demo's 48 to make 50k traces affordable"
    )
    p.add_argument("--workdir", default=None, help="where the stores go (default: a temporary directory)")
    p.add_argument("--worker", choices=["collect", "sft"], help=argparse.SUPPRESS)
    p.add_argument("--mode", choices=["lists", "arrow"], help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--dir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(collect(args) if args.worker == "collect" else sft(args)))
        return
    root = Path(args.workdir or tempfile.mkdtemp(prefix="bench_collect_"))
    rows = []
    for n in args.traces:
        store = root / f"traces-{n}"
        common = [
            "--k",
            str(args.k),
            "--max-new-tokens",
            str(args.max_new_tokens),
            "--n",
            str(n),
            "--dir",
            str(store),
        ]
        c = run_worker("--worker", "collect", *common)
        print(f"collect {n}: {c}", file=sys.stderr)
        results = {
            mode: run_worker("--worker", "sft", "--mode", mode.split()[0], "--dir", str(store))
            for mode in ("lists", "arrow cold", "arrow warm")
        }
        for mode, r in results.items():
            print(f"sft {n} {mode}: {r}", file=sys.stderr)
        rows.append((n, c, results))
    print(
        f"\nk = {args.k}, max_new_tokens = {args.max_new_tokens}, chunk_size = 250, demo policy (random init)\n"
    )
    print(
        "| traces asked | stored | collect s | collect RSS before / peak MiB | SFT data path | data s | "
        "to 1st step s | SFT RSS before / peak MiB |"
    )
    print("|---:|---:|---:|---:|---|---:|---:|---:|")
    for n, c, results in rows:
        for i, (mode, r) in enumerate(results.items()):
            head = (
                f"| {n:,} | {c['store_total']:,} | {c['seconds']:.0f} | {c['rss_before_mb']:.0f} / {c['peak_rss_mb']:.0f} "
                if i == 0
                else "| | | | "
            )
            print(
                f"{head}| {mode} | {r['data_s']:.2f} | {r['first_step_s']:.2f} | "
                f"{r['rss_before_mb']:.0f} / {r['peak_rss_mb']:.0f} |"
            )


if __name__ == "__main__":
    main()
