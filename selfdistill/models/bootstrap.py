"""Pre-training of the tiny demo models on a procedurally generated corpus of worked solutions.

A random-init policy earns no reward, so RL has nothing to sharpen. A pretrained chat model
earns almost none either (SmolLM2-135M-Instruct solves 0/32 of the easiest prompts: it does not
box its answers), so `cold_start_sft` gives it the same corpus as a short SFT, R1's cold start. The demo therefore first
pre-trains its tiny models on worked solutions of freshly generated tasks, a fraction of which
contain a realistic mistake (see `tasks.math_gen` / `tasks.code_gen`). The result solves some
tasks but not all. No held-out prompt is ever in the corpus (checked by hash).
"""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

from selfdistill.tasks.base import prompt_hash
from selfdistill.tasks.kinds import TASK_KINDS, get_kind


def bootstrap_corpus(boot, kinds: dict[str, int], seed: int, exclude: set[str]) -> list[dict[str, str]]:
    """``boot.corpus_size`` (prompt, completion) rows; prompts in ``exclude`` dropped.

    ``kinds`` maps task kind -> number of training tasks of that kind; the corpus follows the
    same mix, so the pre-trained model sees each kind about as often as RL will ask for it.
    """
    kinds = {k: n for k, n in kinds.items() if k in TASK_KINDS.ordered() and get_kind(k).bootstrap and n > 0}
    if not kinds:
        with_generator = [k for k in TASK_KINDS.ordered() if get_kind(k).bootstrap]
        raise ValueError(
            f"the bootstrap corpus needs procedural {' or '.join(with_generator)} tasks in tasks.sources"
        )
    rng = random.Random(f"corpus-{seed}")
    rows: list[dict[str, str]] = []
    total = sum(kinds.values())
    for kind, n in sorted(kinds.items()):
        per_kind = boot.corpus_size * n // total
        generate, solve = get_kind(kind).bootstrap_fns()
        tasks = [
            t
            for t in generate(SimpleNamespace(n=per_kind, difficulty=1), seed + 1000)
            if prompt_hash(t.prompt) not in exclude
        ]
        if not tasks:
            continue
        for i in range(per_kind):
            task = tasks[i % len(tasks)]
            rows.append(
                {
                    "prompt": task.prompt,
                    "kind": task.kind,
                    "completion": solve(task, rng, rng.random() < boot.mistake_rate),
                }
            )
    rng.shuffle(rows)
    return rows


def pretrain_tiny(
    model, tokenizer, boot, rows, out_dir: Path, *, seed: int, stage, device: str, run_name: str
):
    """Train ``model`` on ``rows`` for ``boot.steps`` steps with the shared SFT helper."""
    return _bootstrap_sft(
        model,
        tokenizer,
        boot,
        rows,
        out_dir,
        max_length=160,
        seed=seed,
        stage=stage,
        device=device,
        run_name=run_name,
    )


def cold_start_sft(
    model,
    tokenizer,
    boot,
    rows,
    out_dir: Path,
    *,
    seed: int,
    stage,
    device: str,
    run_name: str,
    prompt_format: str,
    kernels="eager",
):
    """A pretrained model's cold start: ``boot.steps`` SFT steps on ``rows`` rendered in ``prompt_format``
    (by `tasks.base.render_prompt`, as sampling renders them)."""
    from selfdistill.tasks.base import Task, render_prompt

    rows = [
        {
            "prompt": render_prompt(Task("", r["kind"], r["prompt"]), prompt_format),
            "completion": r["completion"],
        }
        for r in rows
    ]
    return _bootstrap_sft(
        model,
        tokenizer,
        boot,
        rows,
        out_dir,
        max_length=256,
        seed=seed,
        stage=stage,
        device=device,
        run_name=run_name,
        kernels=kernels,
    )


def _bootstrap_sft(
    model,
    tokenizer,
    boot,
    rows,
    out_dir: Path,
    *,
    max_length: int,
    seed: int,
    stage,
    device: str,
    run_name: str,
    kernels="eager",
):
    """``boot.steps`` SFT steps at the bootstrap's learning rate and batch size (no router diagnostics)."""
    from selfdistill.config import SFTConfig
    from selfdistill.stages.sft import train_sft

    sft = SFTConfig(
        epochs=1.0,
        learning_rate=boot.learning_rate,
        batch_size=boot.batch_size,
        max_length=max_length,
        max_steps=boot.steps,
        gradient_checkpointing=False,
    )
    return train_sft(
        model,
        tokenizer,
        rows,
        sft,
        out_dir,
        seed=seed,
        stage=stage,
        device=device,
        run_name=run_name,
        kernels=kernels,
        router_diagnostics=False,
    )
