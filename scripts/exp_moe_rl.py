"""Experiment: token-level GRPO vs GSPO vs GRPO with routing replay on the embedded default's MoE policy.

Starts every (variant, seed) from the same pre-trained base of a finished demo run, runs one RL round with
``steps_per_generation=2`` (so later steps are off-policy and importance ratios, and routing drift, matter),
logs the reward curve and the routing change rate (fraction of top-k expert choices that differ between the
sampling pass and the training pass), and evaluates held-out pass@1. Writes docs/experiments/moe_rl_exp.{md,json,png}.

    python scripts/exp_moe_rl.py --run-dir runs/demo --seeds 0 1 2 --steps 40
    python scripts/exp_moe_rl.py --run-dir runs/demo --seeds 0 1 2 --steps 40 --lr 1e-3 --tag _lr1e-3   # stress

A variant is ``<rl.algorithm>[+replay]``: an entry of `selfdistill.registries.ALGORITHMS`, with routing
replay (``rl.routing=replay``) or, by default, only measured (``rl.routing=measure``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_VARIANTS = ["grpo", "gspo", "grpo+replay"]


def parse_variant(variant: str) -> tuple[str, str]:
    """``"grpo+replay"`` -> ("grpo", "replay"); ``"gspo"`` -> ("gspo", "measure"). Unknown names raise."""
    from selfdistill.registries import ALGORITHMS

    algorithm, _, routing = variant.partition("+")
    ALGORITHMS.check(algorithm, "--variants")
    if routing not in ("", "replay"):
        raise SystemExit(f"--variants: {variant!r}: the only suffix is '+replay'")
    return algorithm, routing or "measure"


def run_one(base: str, cfg, split, variant: str, seed: int, steps: int, lr: float | None = None) -> dict:
    from selfdistill.config import Config
    from selfdistill.configio import apply_override, from_dict, to_dict
    from selfdistill.models.loading import load_model
    from selfdistill.stages.evaluate import evaluate_model
    from selfdistill.stages.rl import train_rl
    from selfdistill.tracking import NullStage

    algorithm, routing = parse_variant(variant)
    data = to_dict(cfg)
    for o in (
        f"rl.algorithm={algorithm}",
        f"rl.routing={routing}",
        f"rl.max_steps={steps}",
        *([f"rl.learning_rate={lr}"] if lr is not None else []),
        "rl.steps_per_generation=2",
        "rl.logging_steps=1",
    ):
        apply_override(data, o)
    c = from_dict(Config, data)
    model, tok = load_model(base)
    rows = [t.to_row() for t in split.train]
    with tempfile.TemporaryDirectory() as tmp:
        out = train_rl(
            model,
            tok,
            rows,
            c.rl,
            c.rewards,
            Path(tmp),
            seed=100 + seed,
            stage=NullStage(),
            device="cpu",
            run_name=variant,
        )
    hist = out["history"]
    ev = evaluate_model(
        model, tok, split.eval, ecfg=c.eval, rcfg=c.rewards, seed=5, prompt_format="plain", name=variant
    )
    key = "moe/routing_change_rate"
    # A generation's first step trains the weights that sampled it (rate 0 by construction, and it is the step
    # that logs rewards); the second trains on data the previous weights sampled: that step's rate is the drift.
    change = [h[key] for h in hist if key in h and "reward" not in h]
    return {
        "variant": variant,
        "seed": seed,
        "accuracy": ev["accuracy"],
        "accuracy_math": ev["accuracy_math"],  # this experiment's table has math and code columns
        "accuracy_code": ev["accuracy_code"],
        "rewards": [h["reward"] for h in hist if "reward" in h],
        "routing_change_all_steps": [h[key] for h in hist if key in h],
        "routing_change_rate": statistics.mean(change) if change else None,
    }


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run-dir", type=Path, required=True)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument(
        "--lr", type=float, default=None, help="RL learning rate (default: the run's rl.learning_rate)"
    )
    ap.add_argument("--tag", default="", help="suffix of the output files, e.g. _lr1e-3")
    ap.add_argument("--from-json", type=Path, default=None, help="re-render the outputs of this results file")
    ap.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, help="<rl.algorithm>[+replay] each")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "experiments")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from selfdistill.config import Config
    from selfdistill.configio import from_dict
    from selfdistill.tasks import load_tasks

    cfg = from_dict(Config, json.loads((args.run_dir / "run.json").read_text())["config"])
    split = load_tasks(cfg)
    base = json.loads((args.run_dir / "state" / "base.json").read_text())["model_path"]
    if not Path(base).is_absolute():
        base = str(args.run_dir.parent.parent / base) if not Path(base).exists() else base
    if args.from_json:  # re-render the table and plot of an earlier run
        results = json.loads(args.from_json.read_text())
    else:
        for v in args.variants:
            parse_variant(v)  # fail before any training
        results = [
            run_one(base, cfg, split, v, s, args.steps, args.lr) for v in args.variants for s in args.seeds
        ]
        (args.out / f"moe_rl_exp{args.tag}.json").write_text(json.dumps(results, indent=2))
    write_outputs(results, args, cfg)


def write_outputs(results: list[dict], args, cfg) -> None:
    lines = [
        f"# Token-level GRPO vs GSPO vs GRPO + routing replay ({args.steps} RL steps, steps_per_generation=2, "
        f"lr {args.lr or cfg.rl.learning_rate}, seeds {args.seeds}, from the demo's base)",
        "",
        "| variant | held-out pass@1 (mean ± sd) | math | code | routing change rate, off-policy steps (mean / max) |",
        "|---|---|---|---|---|",
    ]
    variants = list(dict.fromkeys(r["variant"] for r in results))
    for v in variants:
        rs = [r for r in results if r["variant"] == v]
        acc = [r["accuracy"] for r in rs]
        sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
        rate = [r["routing_change_rate"] for r in rs if r["routing_change_rate"] is not None]
        peak = max((x for r in rs for x in r["routing_change_all_steps"]), default=None)
        rate_txt = f"{statistics.mean(rate):.4f} / {peak:.4f}" if rate else "–"
        lines.append(
            f"| {v} | {100 * statistics.mean(acc):.1f} ± {100 * sd:.1f} | "
            f"{100 * statistics.mean(r['accuracy_math'] for r in rs):.1f} | "
            f"{100 * statistics.mean(r['accuracy_code'] for r in rs):.1f} | {rate_txt} |"
        )
    (args.out / f"moe_rl_exp{args.tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for v in variants:
        curves = [r["rewards"] for r in results if r["variant"] == v]
        n = min(len(c) for c in curves)
        ax.plot(range(1, n + 1), [statistics.mean(c[i] for c in curves) for i in range(n)], label=v)
    ax.set_xlabel("generation (one per 2 RL steps)")
    ax.set_ylabel("mean reward (seed average)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / f"moe_rl_exp{args.tag}.png", dpi=110)


if __name__ == "__main__":
    main()
