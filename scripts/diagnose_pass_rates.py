"""Per-family pass rates of a run's models on training prompts: where RL has signal and where it has none.

For each model, samples ``k`` completions for ``n`` training prompts of each task family (as RL would:
temperature 1, the RL length limit), scores them with the run's rewards and prints, per family: the mean
pass rate, the fraction of prompts whose k samples all fail / all pass (GRPO groups with no gradient),
the fraction of completions that hit the length limit, and the mean completion length in tokens.

    python scripts/diagnose_pass_rates.py runs/demo                       # every policy model of the run
    python scripts/diagnose_pass_rates.py runs/demo --models base r1-rl --n 60 --k 8
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path


def family(task) -> str:
    return task.source.split(":")[0] + ":" + task.source.split(":")[1]


def diagnose(
    model_dir: Path, tasks_by_family: dict, cfg, k: int, seed: int, temperature: float | None = None
) -> dict[str, dict[str, float]]:
    from selfdistill.generation import sample
    from selfdistill.models.loading import load_model
    from selfdistill.rewarding import score_completions

    model, tokenizer = load_model(model_dir)
    out = {}
    for fam, tasks in sorted(tasks_by_family.items()):
        rows = [t.to_row(cfg.tasks.prompt_format) for t in tasks]
        samples = sample(
            model,
            tokenizer,
            [r["prompt"] for r in rows],
            n=k,
            temperature=cfg.rl.temperature if temperature is None else temperature,
            max_new_tokens=cfg.rl.max_completion_length,
            batch_size=256,
            seed=seed,
        )
        flat = [c for comps in samples.completions for c in comps]
        columns = {key: [r[key] for r in rows for _ in range(k)] for key in ("kind", "answer", "tests")}
        scores = score_completions(cfg.rewards, [r["prompt"] for r in rows for _ in range(k)], flat, columns)
        rates = [sum(scores.correct[i * k : (i + 1) * k]) / k for i in range(len(rows))]
        lengths = [len(tokenizer(c, add_special_tokens=False)["input_ids"]) for c in flat]
        out[fam] = {
            "pass": sum(rates) / len(rates),
            "all_fail": sum(r == 0 for r in rates) / len(rates),
            "all_pass": sum(r == 1 for r in rates) / len(rates),
            "at_limit": sum(n >= cfg.rl.max_completion_length for n in lengths) / len(lengths),
            "mean_tokens": sum(lengths) / len(lengths),
            "format": sum(scores.formatted) / len(flat),
        }
    return out


def main() -> None:
    import torch

    from selfdistill.config import Config
    from selfdistill.configio import from_dict
    from selfdistill.tasks import load_tasks

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument(
        "--models", nargs="*", help="model names under <run_dir>/models (default: base and r*-rl/sft)"
    )
    ap.add_argument("--n", type=int, default=60, help="training prompts per family")
    ap.add_argument("--k", type=int, default=8, help="samples per prompt (the GRPO group size)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--temperature", type=float, default=None, help="default: rl.temperature; 0 = greedy (k=1)"
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = from_dict(Config, json.loads((args.run_dir / "run.json").read_text())["config"])
    split = load_tasks(cfg)
    by_family: dict = defaultdict(list)
    for t in split.train:
        if len(by_family[family(t)]) < args.n:
            by_family[family(t)].append(t)
    names = args.models or sorted(
        p.name for p in (args.run_dir / "models").iterdir() if p.name == "base" or p.name.startswith("r")
    )
    print("| model | family | pass | all fail | all pass | at limit | tokens | format |")
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        for fam, d in diagnose(
            args.run_dir / "models" / name, by_family, cfg, args.k, args.seed, args.temperature
        ).items():
            print(
                f"| {name} | {fam} | {d['pass']:.2f} | {d['all_fail']:.2f} | {d['all_pass']:.2f} | "
                f"{d['at_limit']:.2f} | {d['mean_tokens']:.1f} | {d['format']:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
