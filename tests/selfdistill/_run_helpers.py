"""A tiny run directory for the pipeline/report tests: a `Run` on a small config, state files written by hand."""

from __future__ import annotations

import json
from pathlib import Path

from selfdistill.config import load_config

SMALL = [
    "tracking.report_to=none",
    "run.rounds=1",
    "pipeline.preset=rounds",  # RL in round 1 (the demo starts with rejection-sampling fine-tuning)
    "tasks.sources.0.n=40",
    "tasks.sources.1.n=20",
    "tasks.eval_max=6",
]


def small_config(tmp_path: Path, *overrides: str):
    return load_config(None, [f"run.output_dir={tmp_path}", *SMALL, *overrides])


def write_state(run_dir: Path, key: str, data: dict) -> None:
    """A state file exactly as the pipeline wrote it before `StepOutput` existed: one flat JSON object."""
    state = run_dir / "state"
    state.mkdir(parents=True, exist_ok=True)
    (state / f"{key}.json").write_text(json.dumps(data, indent=2))


def eval_state(
    model: str,
    role: str,
    round_: int | None,
    accuracy: float,
    math: float,
    code: float,
    path: str,
    params: int,
) -> dict:
    """An eval step's state in the old layout (no accuracy_by_kind)."""
    return {
        "model": model,
        "role": role,
        "round": round_,
        "params": params,
        "accuracy": accuracy,
        "accuracy_math": math,
        "accuracy_code": code,
        "maj_at_k": accuracy,
        "k": 4,
        "format_rate": 1.0,
        "tokens_per_s": 100.0 * params / 1000,
        "memory_mb": params / 1e3,
        "n_problems": 6,
        "temperature": 1.0,
        "model_path": path,
        "seconds": 2.0,
        "cpu_seconds": 1.5,
    }


def finished_run(tmp_path):
    """Every step of a one-round plan finished, in the layout written before `StepOutput`; the report not."""
    cfg = small_config(tmp_path)
    run_dir = cfg.run_dir
    models = run_dir / "models"
    write_state(
        run_dir,
        "base",
        {
            "model_path": str(models / "base"),
            "params": 4000,
            "corpus_rows": 10,
            "final_loss": 1.0,
            "seconds": 10.0,
            "cpu_seconds": 9.0,
        },
    )
    write_state(
        run_dir,
        "r1.rl",
        {
            "steps": 2,
            "history": [
                {"step": 1, "reward": 0.25, "loss": 0.1},
                {"step": 2, "moe/routing_change_rate": 0.0},
            ],
            "model_path": str(models / "r1-rl"),
            "seconds": 20.0,
            "cpu_seconds": 18.0,
        },
    )
    write_state(
        run_dir,
        "r1.collect",
        {"sampled": 16, "kept": 5, "sample_accuracy": 0.3125, "seconds": 5.0, "cpu_seconds": 4.0},
    )
    write_state(
        run_dir,
        "r1.sft",
        {"steps": 4, "rows": 5, "model_path": str(models / "r1-sft"), "seconds": 3.0, "cpu_seconds": 3.0},
    )
    write_state(
        run_dir,
        "student.student-dense.base",
        {
            "model_path": str(models / "student-student-dense-base"),
            "params": 1000,
            "seconds": 1.0,
            "cpu_seconds": 1.0,
        },
    )
    write_state(
        run_dir,
        "distill.student-dense",
        {
            "steps": 2,
            "model_path": str(models / "student-student-dense"),
            "teacher": str(models / "r1-sft"),
            "teacher_key": "r1.sft",
            "method": "sft",
            "seconds": 2.0,
            "cpu_seconds": 2.0,
        },
    )
    write_state(
        run_dir, "eval.base", eval_state("base", "base", None, 0.25, 0.5, 0.0, str(models / "base"), 4000)
    )
    write_state(
        run_dir,
        "eval.policy-r1",
        eval_state("policy-r1", "policy", 1, 0.5, 0.75, 0.25, str(models / "r1-sft"), 4000),
    )
    write_state(
        run_dir,
        "eval.student-dense",
        eval_state(
            "student-dense", "student", None, 0.5, 0.5, 0.5, str(models / "student-student-dense"), 1000
        ),
    )
    return cfg
