"""Command line: `selfdistill run|rl|collect|sft|distill|eval|generate|score|sandbox-check|config|import-model|upcycle|cut-layers`.

    selfdistill run                                  # the embedded demo (configs/demo.yaml)
    selfdistill run configs/demo.yaml rl.max_steps=20 run.name=quick
    selfdistill rl configs/demo.yaml --round 1       # one stage of a run, prerequisites done
    selfdistill generate MODEL_DIR tasks.jsonl -o out.jsonl --n 4   # sample any model on any prompt file
    selfdistill score generations.jsonl -o scored.jsonl
    selfdistill config configs/demo.yaml             # validate and print the resolved config
    selfdistill import-model model.gguf models/dense # a .gguf / HF dir / hub id -> plain HF checkpoint
    selfdistill upcycle models/dense models/moe --experts 4 --top-k 2
    selfdistill cut-layers models/dense models/dense-26l --layers 26

Thin by design: parse, load the config, call one function.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

STAGE_HELP = {
    "rl": "RL of the policy with TRL's GRPOTrainer and the rule-based rewards (one step per round).",
    "collect": "Sample k completions per training prompt, score them, keep the good ones in the trace store.",
    "sft": "SFT of the RL'd policy on its own traces: the cold start of the next round.",
    "distill": "Build each student's base and distill the traces into it.",
    "eval": "Held-out pass@1 / maj@k, parameters, tokens/s and memory of every model.",
}


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", help="YAML config (default: the embedded demo, configs/demo.yaml)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. rl.max_steps=20 run.name=quick")


def _split_config(args) -> tuple[str | None, list[str]]:
    config, overrides = args.config, list(args.overrides)
    if config is not None and "=" in config and not os.path.exists(config):
        overrides.insert(0, config)
        config = None
    return config, overrides


# long function: one argparse declaration per command, read as the CLI's reference; a split would scatter it
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="selfdistill", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "run",
        help="run the whole loop (resumes a killed run)",
        description="RL -> collect -> SFT rounds on the MoE policy, then distillation into dense "
        "students, evaluation of every model, and the report. Re-running the same "
        "command resumes: finished stages are skipped.",
    )
    _add_config_args(p)
    for name, text in STAGE_HELP.items():
        p = sub.add_parser(
            name,
            help=text,
            description=text + " Uses the outputs earlier stages recorded in the run "
            "directory; reports which stage to run first when one is missing.",
        )
        _add_config_args(p)
        p.add_argument(
            "--round",
            type=int,
            default=None,
            help="only this round (rl, collect, sft, eval; in any plan the n-th stage of that kind)",
        )
        p.add_argument("--force", action="store_true", help="re-run even if the stage already finished")
    p = sub.add_parser(
        "config",
        help="validate a config and print it, or document every field",
        description="Validate CONFIG with overrides and print the resolved YAML; --fields documents "
        "every key with its type and default.",
    )
    _add_config_args(p)
    p.add_argument(
        "--fields", action="store_true", help="print every config key with type, default and meaning"
    )
    p.add_argument(
        "--plan",
        action="store_true",
        help="print the resolved plan: its stages, then every step with its command and inputs",
    )
    sub.add_parser(
        "generate", help="sample completions for a JSONL file of prompts (then `score` them)", add_help=False
    )
    p = sub.add_parser(
        "import-model",
        help="convert a .gguf file, HF directory or hub id into a plain HF checkpoint",
        description="Write SRC as safetensors + config + tokenizer (with its chat template) to OUT, "
        "loadable by from_pretrained with no extra package. A .gguf is dequantised.",
    )
    p.add_argument("src", help="a .gguf file, a local HF directory or a hub id")
    p.add_argument("out", help="output directory")
    p.add_argument(
        "--dtype", choices=["float32", "bfloat16"], default="float32", help="weights dtype (default float32)"
    )
    p = sub.add_parser(
        "upcycle",
        help="sparse-upcycle a dense checkpoint into a MoE with the same function",
        description="Every expert starts as a copy of the dense MLP; the MoE computes the dense "
        "model's function at initialisation (llama/mistral -> mixtral, qwen3 -> qwen3_moe, "
        "qwen2 -> qwen2_moe).",
    )
    p.add_argument("dense", help="dense checkpoint: a directory, hub id or .gguf file")
    p.add_argument("out", help="output directory")
    p.add_argument("--experts", type=int, required=True, help="experts per MoE layer")
    p.add_argument("--top-k", type=int, required=True, help="experts per token")
    p.add_argument("--arch", default="auto", help="target MoE model_type (default auto: the registered pair)")
    p.add_argument(
        "--router-std", type=float, default=0.02, help="std of the random router init (exact at any value)"
    )
    p.add_argument(
        "--expert-noise",
        type=float,
        default=0.0,
        help="relative noise on the expert copies (breaks exact function preservation; default 0)",
    )
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser(
        "cut-layers",
        help="keep N evenly spaced decoder layers of a dense checkpoint (a student base)",
        description="The first and last decoder layers and N-2 evenly spaced between them, with the "
        "embeddings, final norm and LM head: what students[].source=layers builds in a run.",
    )
    p.add_argument("dense", help="dense checkpoint: a directory, hub id or .gguf file")
    p.add_argument("out", help="output directory")
    p.add_argument("--layers", type=int, required=True, help="decoder layers to keep")
    sub.add_parser(
        "score", help="score offline generations (JSONL) with the math/code rewards", add_help=False
    )
    sub.add_parser(
        "sandbox-check",
        help="show the code sandbox's active isolation layers and canary results",
        add_help=False,
    )
    return parser


def _setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname).1s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    for noisy in ("httpx", "urllib3", "filelock", "datasets", "torch", "wandb"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Delegated commands own their argument parsing.
    if argv and argv[0] == "generate":
        from selfdistill.generation.command import main as generate_main

        _setup_logging()
        return generate_main(argv[1:])
    if argv and argv[0] == "score":
        from rewards.scoring import main as score_main

        return score_main(argv[1:])
    if argv and argv[0] == "sandbox-check":
        from rewards.sandbox.check import main as check_main

        return check_main(argv[1:])
    args = build_parser().parse_args(argv)
    from selfdistill.config import load_config
    from selfdistill.configio import ConfigError

    if args.command in ("import-model", "upcycle", "cut-layers"):
        return _convert(args)
    try:
        config, overrides = _split_config(args)
        cfg = load_config(config, overrides)
        if args.command == "config":
            return _print_config(cfg, args.fields, args.plan)
        _setup_logging()
        if args.command == "run":
            from selfdistill.pipeline import run_pipeline

            report = run_pipeline(cfg)
            print(f"\nreport: {cfg.run_dir / 'report.md'}")
            for key, value in report["summary"].items():
                print(f"  {key}: {value:.3f}" if isinstance(value, float) else f"  {key}: {value}")
            return 0
        from selfdistill.pipeline import run_stage

        for out in run_stage(cfg, args.command, args.round, args.force):
            print({k: v for k, v in out.to_json().items() if not isinstance(v, list | dict)})
        return 0
    except ConfigError as exc:
        print(f"selfdistill: config error: {exc}", file=sys.stderr)
        return 2
    except (RuntimeError, ValueError) as exc:
        print(f"selfdistill: error: {exc}", file=sys.stderr)
        return 1


def _convert(args) -> int:
    """`import-model`, `upcycle` and `cut-layers`: one model in, one plain HF checkpoint out."""
    from selfdistill.configio import ConfigError

    _setup_logging()
    try:
        if args.command == "import-model":
            from selfdistill.models.importing import import_model

            out = import_model(args.src, args.out, args.dtype)
        elif args.command == "cut-layers":
            from selfdistill.models.cutting import cut_checkpoint

            out = cut_checkpoint(args.dense, args.out, args.layers)
        else:
            from selfdistill.models.upcycle import upcycle_checkpoint

            out = upcycle_checkpoint(
                args.dense,
                args.out,
                args.experts,
                args.top_k,
                args.arch,
                router_std=args.router_std,
                expert_noise=args.expert_noise,
                seed=args.seed,
            )
    except (ConfigError, ValueError, RuntimeError) as exc:
        print(f"selfdistill: error: {exc}", file=sys.stderr)
        return 1
    print(out)
    return 0


def _print_config(cfg, fields: bool, plan: bool = False) -> int:
    import yaml

    from selfdistill.config import Config
    from selfdistill.configio import describe, to_dict
    from selfdistill.planning import format_plan, format_stages
    from selfdistill.planning import plan as build_plan

    if plan:
        print(format_stages(cfg) + "\n\nsteps:\n" + format_plan(build_plan(cfg)))
    elif fields:
        for key, tp, default, doc in describe(Config):
            print(f"{key:45s} {tp:30s} {default:20s} {doc}")
    else:  # the config, then the plan it resolves to as YAML comments (the output stays a loadable config)
        print(yaml.safe_dump(to_dict(cfg), sort_keys=False))
        print("\n".join("# " + line for line in format_stages(cfg).splitlines()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
