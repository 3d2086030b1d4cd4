"""One RL round from a finished run's base policy, on the prompts of one task kind or all, with config overrides;
prints the per-kind reward trend (means over blocks of 10 steps) and the held-out pass@1 afterwards.

A cheap probe of what RL alone does (about 1-3 minutes on the demo), without the rest of the loop:

    python scripts/experiment_rl_round.py runs/demo math                          # RL on math prompts only
    python scripts/experiment_rl_round.py runs/demo all rl.learning_rate=0.0001   # the demo's round 1, lr 1e-4
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    import torch

    from selfdistill.config import Config, load_config
    from selfdistill.configio import from_dict, to_dict
    from selfdistill.models.loading import load_model
    from selfdistill.stages.evaluate import evaluate_with_config
    from selfdistill.stages.rl import train_rl
    from selfdistill.tasks import load_tasks
    from selfdistill.tracking import NullStage

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path, help="a run directory with models/base and run.json")
    ap.add_argument("kind", choices=["math", "code", "all"], help="the training prompts RL sees")
    ap.add_argument("overrides", nargs="*", help="key=value config overrides (on the run's own config)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    base_cfg = from_dict(Config, json.loads((args.run_dir / "run.json").read_text())["config"])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(json.dumps(to_dict(base_cfg)))  # JSON is YAML
        cfg = load_config(path, args.overrides)
        split = load_tasks(cfg)
        rows = [t.to_row(cfg.tasks.prompt_format) for t in split.train if args.kind in ("all", t.kind)]
        model, tokenizer = load_model(args.run_dir / "models" / "base")
        start = time.time()
        out = train_rl(
            model,
            tokenizer,
            rows,
            cfg.rl,
            cfg.rewards,
            Path(tmp) / "rl",
            seed=cfg.run.seed + 100,
            stage=NullStage(),
            device="cpu",
            run_name="experiment",
        )
    seconds = time.time() - start
    history = [h for h in out["history"] if "reward" in h]
    for key in sorted(k for k in history[0] if k.startswith("rewards/") and k.endswith("/mean")):
        blocks = [
            [h[key] for h in history[i : i + 10] if key in h and h[key] == h[key]]
            for i in range(0, len(history), 10)
        ]
        print(key, [round(sum(b) / len(b), 3) if b else None for b in blocks])
    row = evaluate_with_config(model, tokenizer, split.eval, cfg, "experiment")
    print(
        f"RL {seconds:.0f} s; held-out pass@1 {row['accuracy']:.3f} (math {row['accuracy_math']:.3f}, "
        f"code {row['accuracy_code']:.3f})"
    )


if __name__ == "__main__":
    main()
