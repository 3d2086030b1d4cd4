"""Distill stage: the policy's traces into smaller dense students, by any method of the table.

`distill(method, student, ...)` is the one entry point (the pipeline, the CLI and scripts/exp_distill.py
call it). It reads the method's record from `selfdistill.distill.methods.DISTILL_METHODS`:

- no teacher needed (``sft`` without hidden or attention alignment): sequence-level distillation as in
  DeepSeek-R1 §2.4, plain SFT of the student on the teacher's correct traces (every round's; in a
  progressive chain, the teacher student's own traces, see `selfdistill.planning`);
- otherwise the teacher is loaded and `DistillTrainer` (TRL's SFTTrainer with the method's `Objective`,
  and on-policy sampling when the record says so) trains the student (see docs/distillation.md).

The student starts from its own base (a tiny model pre-trained on the same bootstrap corpus in the demo:
the stand-in for a small pretrained base, or a local/hub model). The traces are read through
`stages.sft.tokenize_traces` (memory-mapped, tokenised once into a cache).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from selfdistill.distill.methods import DistillMethod, build_objective, get_method
from selfdistill.stages.sft import tokenize_traces, train_sft

if TYPE_CHECKING:
    from selfdistill.kernels.hf import KernelSpec


def distill(
    method: str | DistillMethod,
    student,
    tokenizer,
    *,
    teacher: str,
    store,
    dcfg,
    out_dir: Path,
    seed: int,
    stage,
    device: str,
    run_name: str,
    prompt_format: str,
    kernels: str | KernelSpec,
    teacher_dtype: str = "auto",
    gcfg=None,
    data=None,
) -> dict[str, Any]:
    """Distil the teacher at path ``teacher`` (loaded in ``teacher_dtype``) into ``student`` (in place) with
    ``method``; returns metrics. The data: ``data`` when given (a tokenised dataset: the pipeline builds it from its
    plan's trace sets), else ``store``'s traces at or above ``distill.min_reward``. ``gcfg``: the `generation` config section
    (the sampling backend of on-policy methods)."""
    record = get_method(method)
    dataset = (
        data
        if data is not None
        else tokenize_traces(tokenizer, store, dcfg.sft.max_length, prompt_format, min_reward=dcfg.min_reward)
    )
    if not record.needs_teacher(dcfg):
        return train_sft(
            student,
            tokenizer,
            dataset,
            dcfg.sft,
            out_dir,
            seed=seed,
            stage=stage,
            device=device,
            run_name=run_name,
            kernels=kernels,
        )
    return _train_with_teacher(
        record,
        student,
        tokenizer,
        dataset,
        teacher=teacher,
        dcfg=dcfg,
        out_dir=out_dir,
        seed=seed,
        stage=stage,
        device=device,
        run_name=run_name,
        kernels=kernels,
        teacher_dtype=teacher_dtype,
        gcfg=gcfg,
    )


# long function: teacher load, objective, trainer and metrics of one run; to split (debt noted 2026-11-30)
def _train_with_teacher(
    method: DistillMethod,
    student,
    tokenizer,
    dataset,
    *,
    teacher: str,
    dcfg,
    out_dir: Path,
    seed: int,
    stage,
    device: str,
    run_name: str,
    kernels: str | KernelSpec,
    teacher_dtype: str,
    gcfg=None,
) -> dict[str, Any]:
    """`DistillTrainer` with the teacher loaded from ``teacher`` and ``method``'s objective."""
    import torch

    from selfdistill.checkpoints import train_resumable
    from selfdistill.distill.trainer import OnPolicy, distill_trainer_class
    from selfdistill.distill.vocab import check_shared_vocab
    from selfdistill.models.loading import load_model
    from selfdistill.stages.sft import sft_args

    teacher_model, teacher_tokenizer = load_model(teacher, device=device, dtype=teacher_dtype)
    check_shared_vocab(method.name, tokenizer, teacher_tokenizer, student, teacher_model)
    torch.manual_seed(seed)  # the alignment projections' init
    args = sft_args(
        dcfg.sft,
        out_dir,
        seed,
        stage.report_to,
        device,
        len(dataset),
        run_name,
        model_dtype=next(student.parameters()).dtype,
    )
    objective = build_objective(
        method, dcfg, kernels, student, teacher_model, total_steps=planned_steps(args, len(dataset))
    )
    on_policy = None
    if method.on_policy:
        on_policy = OnPolicy(
            fraction=dcfg.on_policy_fraction,
            max_new_tokens=dcfg.on_policy_max_new_tokens,
            temperature=dcfg.on_policy_temperature,
            pad_id=tokenizer.pad_token_id,
            eos_id=tokenizer.eos_token_id,
            seed=seed,
            backend=gcfg.backend if gcfg is not None else "auto",
            settings=gcfg,
        )
    trainer = distill_trainer_class()(
        model=student,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        teacher=teacher_model,
        objective=objective,
        on_policy=on_policy,
    )
    result = train_resumable(trainer)  # resumes from the latest complete checkpoint in out_dir
    history = trainer.state.log_history
    losses = [h["loss"] for h in history if "loss" in h]
    aligns = [h["distill/align"] for h in history if "distill/align" in h]
    experts = [h["distill/experts"] for h in history if "distill/experts" in h]
    sampled = trainer.on_policy_batches
    del trainer, teacher_model
    return {
        "method": method.name,
        "rows": len(dataset),
        "steps": result.global_step,
        "train_loss": result.training_loss,
        "final_loss": losses[-1] if losses else None,
        "loss_curve": losses,
        "align_weight": objective.align_weight,
        "final_align_loss": aligns[-1] if aligns else None,
        "on_policy_batches": sampled,
        "expert_loss_curve": experts,
    }


def planned_steps(args, n_rows: int) -> int:
    """Optimizer steps the trainer will take: ``max_steps``, else epochs x batches per epoch (all ranks)."""
    import math
    import os

    if args.max_steps and args.max_steps > 0:
        return args.max_steps
    per_step = (
        args.per_device_train_batch_size
        * args.gradient_accumulation_steps
        * int(os.environ.get("WORLD_SIZE", 1))
    )
    return max(1, math.ceil(math.ceil(n_rows / per_step) * args.num_train_epochs))
