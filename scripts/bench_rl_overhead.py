"""Our RL step against plain TRL on the same settings: what our wrappers cost.

Runs the same GRPO settings (the config's `rl` section: GRPOConfig from `stages.rl.grpo_args`), the same
model (the config's policy shape, one random init copied into every run), the same prompts and the same
reward callables two ways:
  trl        `trl.GRPOTrainer(model, reward_funcs, args)`, nothing of ours around it
  ours       `selfdistill.stages.rl.train_rl` (the RL stage: MoE trainer subclass with the routing
             measurement of `rl.routing`, resumable training, history extraction), no tracking
  ours/routing=off  the same with `rl.routing=off` (no routing measurement: shows what measuring costs; on-policy
             it adds no forward pass, off-policy it records the routing of TRL's own old-policy pass)
  ours+wandb the same as ours with W&B offline tracking (`--wandb`), TRL's W&B callback logging every step
Runs are interleaved (the order alternates each repetition) so a shared machine's load hits both alike;
the ratio is taken per repetition (ours / trl) and its median reported. Per run: the median of TRL's
``step_time`` (generation + rewards + forward/backward, first step dropped) and the wall time of the
whole call (trainer construction and optimizer steps included) divided by the steps.

On CUDA each run also reports its peak allocated memory; ``--model moe1b`` swaps the policy for the ~1B-total
random-init Qwen3-MoE of `scripts/bench_rl_step.py` (bf16), for the GPU check (`scripts/gpu_check.sh`).

Run (demo size on CPU, about 1 min per run on 2 idle cores):
    python scripts/bench_rl_overhead.py --steps 6 --reps 3
    python scripts/bench_rl_overhead.py configs/demo.yaml rl.routing=off --steps 6   # without routing measurement
    python scripts/bench_rl_overhead.py --model moe1b --device cuda rl.max_completion_length=256 --steps 4 --reps 2
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time


def rows_for(cfg, n: int):
    from selfdistill.tasks import code_gen, math_gen

    ns = argparse.Namespace(n=n, difficulty=1)
    tasks = [
        t
        for pair in zip(math_gen.generate_math_tasks(ns, 0), code_gen.generate_code_tasks(ns, 0))
        for t in pair
    ]
    return [t.to_row(cfg.tasks.prompt_format) for t in tasks]


def run_trl(model, tok, rows, cfg, out: str, device: str = "cpu"):
    import datasets
    from trl import GRPOTrainer

    from selfdistill.rewarding import build_reward_funcs
    from selfdistill.stages.rl import grpo_args

    start = time.perf_counter()
    funcs, weights = build_reward_funcs(cfg.rewards)
    args = grpo_args(
        cfg.rl, out, seed=0, report_to="none", device=device, run_name="bench-trl", weights=weights
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=funcs,
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tok,
    )
    trainer.train()
    wall = time.perf_counter() - start
    return step_stats(trainer.state.log_history), wall


def run_ours(model, tok, rows, cfg, out: str, stage, routing: str | None = None, device: str = "cpu"):
    from dataclasses import replace

    from selfdistill.stages.rl import train_rl

    rl = replace(cfg.rl, routing=routing) if routing else cfg.rl
    start = time.perf_counter()
    res = train_rl(
        model, tok, rows, rl, cfg.rewards, out, seed=0, stage=stage, device=device, run_name="bench-ours"
    )
    wall = time.perf_counter() - start
    return step_stats(res["history"]), wall


def step_stats(history: list[dict]) -> tuple[list[float], list[float]]:
    """Per-step TRL ``step_time`` (s) and mean completion length (tokens): equal lengths = the same work."""
    rows = [h for h in history if "step_time" in h]
    return [h["step_time"] for h in rows], [h.get("completions/mean_length", float("nan")) for h in rows]


def policy(name: str, cfg, tok):
    """The config's policy shape (random init), or the ~1B-total Qwen3-MoE of bench_rl_step.py in bf16."""
    import torch

    from selfdistill.models.loading import generation_safe
    from selfdistill.models.tiny import build_tiny

    if name == "config":
        return build_tiny(cfg.policy.tiny, tok, seed=0)
    import sys
    from pathlib import Path

    from transformers import AutoModelForCausalLM, GenerationConfig

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_rl_step import moe_config

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(moe_config(False, len(tok)), dtype=torch.bfloat16)
    model.generation_config = GenerationConfig(pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    return generation_safe(model)


def wandb_stage(out: str):
    import wandb

    from selfdistill.tracking import WandbStage

    os.environ["WANDB_MODE"] = "offline"
    return WandbStage(
        wandb.init(project="bench-rl-overhead", dir=out, mode="offline", reinit="finish_previous")
    )


def main() -> None:
    import torch

    from selfdistill.config import load_config
    from selfdistill.models.tokenizer import build_char_tokenizer
    from selfdistill.tracking import NullStage

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("config", nargs="?", default=None, help="YAML config (default: the demo)")
    p.add_argument("overrides", nargs="*", help="key=value overrides")
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--wandb", action="store_true", help="also run ours with W&B offline tracking")
    p.add_argument(
        "--model", default="config", choices=["config", "moe1b"], help="the config's policy or ~1B MoE"
    )
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(
        args.config, [*args.overrides, f"rl.max_steps={args.steps}", "rl.logging_steps=1", "rl.save_steps=0"]
    )
    tok = build_char_tokenizer()
    base = policy(args.model, cfg, tok).to(args.device)
    rows = rows_for(cfg, cfg.rl.prompts_per_step * args.steps)
    variants = (
        ["trl", "ours"]
        + (["ours/routing=off"] if cfg.rl.routing != "off" else [])
        + (["ours+wandb"] if args.wandb else [])
    )
    step: dict[str, list[float]] = {v: [] for v in variants}
    wall: dict[str, list[float]] = {v: [] for v in variants}
    peak: dict[str, list[float]] = {v: [] for v in variants}
    with (
        tempfile.TemporaryDirectory() as out
    ):  # warm-up, not recorded: imports, reward pools, sandbox start-up
        run_trl(
            copy.deepcopy(base),
            tok,
            rows,
            load_config(args.config, [*args.overrides, "rl.max_steps=1"]),
            out,
            args.device,
        )
    load_before = os.getloadavg()
    for rep in range(args.reps):
        for v in variants if rep % 2 == 0 else variants[::-1]:
            model = copy.deepcopy(base)
            if args.device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            with tempfile.TemporaryDirectory() as out:
                if v == "trl":
                    (times, lengths), seconds = run_trl(model, tok, rows, cfg, out, args.device)
                else:
                    stage = wandb_stage(out) if v == "ours+wandb" else NullStage()
                    (times, lengths), seconds = run_ours(
                        model,
                        tok,
                        rows,
                        cfg,
                        out,
                        stage,
                        routing="off" if v == "ours/routing=off" else None,
                        device=args.device,
                    )
                    if v == "ours+wandb":
                        stage.run.finish()
            peak[v].append(
                torch.cuda.max_memory_allocated() / 2**30 if args.device == "cuda" else float("nan")
            )
            del model
            step[v].append(statistics.median(times[1:] or times))
            wall[v].append(seconds / args.steps)
            print(
                f"rep {rep} {v}: step_time median {step[v][-1]:.3f} s, wall {wall[v][-1]:.3f} s/step, "
                f"mean completion length {statistics.mean(lengths):.1f} (load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
    print(
        f"\n{args.model} policy ({base.config.model_type}) {sum(p.numel() for p in base.parameters()):,} params, "
        f"{base.dtype}, {args.device}, "
        f"{cfg.rl.prompts_per_step} prompts x {cfg.rl.num_generations} generations, <= "
        f"{cfg.rl.max_completion_length} tokens, algorithm {cfg.rl.algorithm}, routing {cfg.rl.routing}, "
        f"gradient checkpointing {cfg.rl.gradient_checkpointing}; {args.steps} steps x {args.reps} reps, "
        f"{args.threads} torch thread(s)\n"
    )
    print(
        "| runner | median TRL step_time (s) | per-repetition ratio to trl | median ratio | "
        "median wall s/step | median ratio | peak GiB |"
    )
    print("|---|---:|---|---:|---:|---:|---:|")
    for v in variants:
        ratios = [a / b for a, b in zip(step[v], step["trl"])]
        r_wall = statistics.median(a / b for a, b in zip(wall[v], wall["trl"]))
        print(
            f"| {v} | {statistics.median(step[v]):.3f} | {', '.join(f'{r:.2f}' for r in ratios)} | "
            f"{statistics.median(ratios):.3f} | {statistics.median(wall[v]):.3f} | {r_wall:.3f} | "
            f"{max(peak[v]):.1f} |"
        )
    print(
        f"\nload average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)"
    )


if __name__ == "__main__":
    main()
