"""Experiment: the same traces and teacher distilled into the same student base by every method, several seeds.

Given a finished run directory (trace store at ``<run_dir>/traces``, teacher = the last round's SFT'd policy
in ``<run_dir>/state/r<R>.sft.json``, student base in ``<run_dir>/state/student.<name>.base.json``), each
(method, seed) starts from a fresh copy of the student base, is distilled with the run's ``distill`` settings
(plus ``--set`` overrides) and evaluated on the run's held-out tasks with `evaluate_model`, beside the
teacher and the undistilled base. Writes ``<out>/<name>.{json,md,png}`` (default docs/experiments/distill_exp.*) and prints
the table.

    python scripts/exp_distill.py --run-dir runs/demo --seeds 0 1 2
    python scripts/exp_distill.py --run-dir runs/demo --methods sft logit_kd --max-steps 50 --eval-max 60 \
        --set distill.divergence=reverse_kl --set distill.hard_weight=0.3
    python scripts/exp_distill.py --run-dir runs/demo --methods sft on_policy --warm-start sft --name distill_exp_warm
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

METRICS = ("accuracy", "maj_at_k", "tokens_per_s", "memory_mb", "train_s")


def run_config(run_dir: Path, overrides: list[str]):
    """The run's own config (from run.json) with ``key=value`` overrides, validated."""
    from selfdistill.config import Config
    from selfdistill.configio import apply_override, from_dict

    data = json.loads((run_dir / "run.json").read_text())["config"]
    for o in overrides:
        apply_override(data, o)
    return from_dict(Config, data)


def teacher_and_base(run_dir: Path, cfg) -> tuple[str, str, str]:
    """(teacher model path, student base model path, student name) from the run's state files."""
    state = run_dir / "state"
    sft = sorted(state.glob("r*.sft.json"), key=lambda p: int(p.name[1:].split(".")[0]))
    if not sft:
        raise SystemExit(f"{state}: no r<R>.sft.json; is {run_dir} a finished run?")
    name = cfg.distill.students[0].name
    base = state / f"student.{name}.base.json"
    if not base.exists():
        raise SystemExit(f"{base} is missing: the run has not built its student base yet")
    return json.loads(sft[-1].read_text())["model_path"], json.loads(base.read_text())["model_path"], name


def evaluate(model, tokenizer, tasks, cfg, name: str) -> dict[str, Any]:
    from selfdistill.stages.evaluate import evaluate_model

    row = evaluate_model(
        model,
        tokenizer,
        tasks,
        ecfg=cfg.eval,
        rcfg=cfg.rewards,
        seed=cfg.run.seed + 5,
        prompt_format=cfg.tasks.prompt_format,
        name=name,
    )
    row.pop("examples")
    return row


def distill_once(
    method: str,
    seed: int,
    base_path: str,
    teacher_path: str,
    store,
    cfg,
    device: str,
    warm_start: str | None = None,
):
    """Fresh student from ``base_path``, distilled by ``warm_start`` (if any) then ``method``.

    Returns (student, tokenizer, metrics of the last method, with ``train_s`` covering both).
    """
    from selfdistill.distill.methods import DISTILL_METHODS
    from selfdistill.models.loading import load_model
    from selfdistill.stages.distill import distill
    from selfdistill.tracking import NullStage

    student, tokenizer = load_model(base_path, device=device)
    start = time.perf_counter()
    for m in ([warm_start] if warm_start else []) + [method]:
        with tempfile.TemporaryDirectory() as out_dir:
            DISTILL_METHODS.check(m, "--methods")
            out = distill(
                m, student, tokenizer, teacher=teacher_path, store=store, dcfg=cfg.distill, out_dir=Path(out_dir),
                seed=seed, stage=NullStage(), device=device, run_name=f"exp/{m}/{seed}",
                prompt_format=cfg.tasks.prompt_format, kernels=cfg.kernels,
            )  # fmt: skip
    out["train_s"] = time.perf_counter() - start
    return student, tokenizer, out


def summarise(rows: list[dict], teacher_acc: float) -> list[dict]:
    """Mean and std over seeds per method, with retention = accuracy / teacher accuracy."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        rs = [r for r in rows if r["method"] == method]
        s = {"method": method, "seeds": len(rs), "params": rs[0]["params"]}
        for k in METRICS:
            vals = [r[k] for r in rs if r.get(k) is not None]
            s[k] = statistics.fmean(vals) if vals else None
            s[k + "_std"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
        s["retention"] = s["accuracy"] / teacher_acc if teacher_acc else None
        out.append(s)
    return out


def table(summary: list[dict]) -> str:
    head = "| model / method | seeds | params | pass@1 | maj@k | retention vs teacher | tokens/s | memory MB | train s |"
    lines = [head, "|" + "---|" * 9]
    for s in summary:
        ret = "n/a" if s["retention"] is None else f"{100 * s['retention']:.0f}%"
        lines.append(
            f"| {s['method']} | {s['seeds']} | {s['params']:,} | {100 * s['accuracy']:.1f} ± {100 * s['accuracy_std']:.1f}"
            f" | {100 * s['maj_at_k']:.1f} | {ret} | {s['tokens_per_s']:.0f} | {s['memory_mb']:.2f}"
            f" | {'-' if s['train_s'] is None else format(s['train_s'], '.0f')} |"
        )
    return "\n".join(lines)


def plot(summary: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [s["method"] for s in summary]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax1.bar(
        names,
        [100 * s["accuracy"] for s in summary],
        yerr=[100 * s["accuracy_std"] for s in summary],
        color=["#777" if n in ("teacher", "student base") else "#3a7" for n in names],
        capsize=3,
    )
    ax1.set_ylabel("held-out pass@1 (%)")
    ax1.set_title("accuracy (mean ± std over seeds)")
    ax2.bar(names, [s["tokens_per_s"] for s in summary], color="#37a")
    ax2.set_ylabel("generation tokens/s")
    ax2.set_title("throughput, same machine")
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-dir", type=Path, required=True)
    ap.add_argument("--methods", nargs="+", default=["sft", "logit_kd", "on_policy", "hidden_align"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument(
        "--max-steps", type=int, default=-1, help="distill.sft.max_steps for every method (-1: epochs)"
    )
    ap.add_argument(
        "--eval-max", type=int, default=0, help="evaluate at most this many held-out tasks (0: all)"
    )
    ap.add_argument("--set", action="append", default=[], help="config override key=value (repeatable)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "experiments")
    ap.add_argument("--name", default="distill_exp", help="output files are <out>/<name>.{json,md,png}")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--warm-start", default=None, help="run this method first (e.g. sft), then each of --methods"
    )
    args = ap.parse_args()

    import torch

    from selfdistill.models.loading import load_model
    from selfdistill.tasks import load_tasks
    from selfdistill.traces import TraceStore

    torch.set_num_threads(args.threads)
    overrides = list(args.set) + ([f"distill.sft.max_steps={args.max_steps}"] if args.max_steps > 0 else [])
    cfg = run_config(args.run_dir, overrides)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tasks = load_tasks(cfg).eval
    tasks = tasks[: args.eval_max] if args.eval_max else tasks
    store = TraceStore(args.run_dir / "traces")
    teacher_path, base_path, name = teacher_and_base(args.run_dir, cfg)
    print(
        f"run {args.run_dir}: {len(store)} traces, {len(tasks)} held-out tasks, teacher {teacher_path}, "
        f"student {name}",
        flush=True,
    )

    rows = []
    for label, path in (("teacher", teacher_path), ("student base", base_path)):
        model, tok = load_model(path, device=device)
        rows.append(
            {"method": label, "seed": None, **evaluate(model, tok, tasks, cfg, label), "train_s": None}
        )
        print(label, f"pass@1 {rows[-1]['accuracy']:.3f}", flush=True)
    for method in args.methods:
        for seed in args.seeds:
            student, tok, out = distill_once(
                method, seed, base_path, teacher_path, store, cfg, device, args.warm_start
            )
            row = evaluate(student, tok, tasks, cfg, f"{method}/{seed}")
            rows.append(
                {
                    "method": method,
                    "seed": seed,
                    **row,
                    "train_s": out["train_s"],
                    "steps": out["steps"],
                    "final_loss": out["final_loss"],
                }
            )
            print(
                f"{method} seed {seed}: pass@1 {row['accuracy']:.3f} steps {out['steps']} "
                f"final loss {out['final_loss']} in {out['train_s']:.0f}s",
                flush=True,
            )

    summary = summarise(rows, rows[0]["accuracy"])
    md = table(summary)
    print(md)
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {
        "run_dir": str(args.run_dir),
        "overrides": overrides,
        "seeds": args.seeds,
        "device": device,
        "eval_tasks": len(tasks),
        "warm_start": args.warm_start,
        "traces": len(store),
        "distill": _plain(cfg.distill),
        "kernels": cfg.kernels,
    }
    (args.out / f"{args.name}.json").write_text(
        json.dumps({"meta": meta, "rows": rows, "summary": summary}, indent=1)
    )
    (args.out / f"{args.name}.md").write_text(md + "\n")
    plot(summary, args.out / f"{args.name}.png")


def _plain(obj):
    from selfdistill.configio import to_dict

    d = to_dict(obj)
    d.pop("students", None)
    return d


if __name__ == "__main__":
    main()
