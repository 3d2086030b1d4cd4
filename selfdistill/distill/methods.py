"""The `DISTILL_METHODS` entries beyond plain SFT, all with the pipeline's call contract:

    fn(student, tokenizer, *, teacher, store, dcfg, out_dir, seed, stage, device, run_name, prompt_format,
       kernels, teacher_dtype="auto") -> metrics

- `logit_kd`: the student learns the teacher's next-token distributions on the stored traces
  (`hard_weight * CE + (1 - hard_weight) * divergence`, fused kernels with ``kernels=fused``).
- `on_policy`: the same loss on completions the student samples itself for the trace prompts (a
  fraction ``on_policy_fraction`` of the batches; the rest use the traces), hard CE off on sampled batches.
- `hidden_align`: SFT on the traces plus a hidden-state alignment to the teacher (weight
  ``hidden_align_weight``, 1.0 when left at 0); ``hidden_align_weight > 0`` adds the same term to any method.

Every method that runs the teacher checks first that both sides share one tokenizer.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from selfdistill.kernels.hf import KernelSpec

TEACHER_KINDS = {"sft": "lm", "hidden_align": "lm", "logit_kd": "distill", "on_policy": "distill"}


def learns_from_teacher_traces(method: str) -> bool:
    """Whether ``method`` learns the teacher through its sequences (SFT on sampled traces: ``lm`` methods) rather
    than its logits. In a progressive chain such a student trains on its teacher student's own traces."""
    if method not in TEACHER_KINDS:
        raise ValueError(f"unknown distill method {method!r}; choose one of: {', '.join(TEACHER_KINDS)}")
    return TEACHER_KINDS[method] == "lm"


def align_weight(method: str, dcfg) -> float:
    """The hidden-alignment weight in effect for ``method``."""
    if method == "hidden_align" and dcfg.hidden_align_weight == 0:
        return 1.0
    return dcfg.hidden_align_weight


def build_objective(method: str, dcfg, kernels: str | KernelSpec, student, teacher):
    """The `Objective` of ``method`` from the distill config (the aligner, if any, is freshly initialised)."""
    from selfdistill.distill.hidden_align import HiddenAligner
    from selfdistill.distill.objective import Objective

    if method not in TEACHER_KINDS:
        raise ValueError(f"unknown distill method {method!r}; choose one of: {', '.join(TEACHER_KINDS)}")
    weight = align_weight(method, dcfg)
    aligner = None
    if weight > 0:
        aligner = HiddenAligner(dcfg.hidden_align_layers, student.config.get_text_config().hidden_size,
                                teacher.config.get_text_config().hidden_size, dcfg.hidden_align_loss)
    attention = None
    if dcfg.attention_align_weight > 0:
        from selfdistill.distill.attention_align import AttentionAligner

        attention = AttentionAligner(dcfg.attention_align_layers, dcfg.attention_align_loss, dcfg.attention_align_heads,
                                     dcfg.attention_align_chunk)
        attention.layers(student, teacher)  # impossible layer pairs fail here, before training
    return Objective(kind=TEACHER_KINDS[method], kernels=kernels, divergence=dcfg.divergence, beta=dcfg.beta,
                     temperature=dcfg.temperature, hard_weight=dcfg.hard_weight, aligner=aligner, align_weight=weight,
                     attention=attention, attention_weight=dcfg.attention_align_weight)


def run_distill(method: str, student, tokenizer, *, teacher: str, store, dcfg, out_dir: Path, seed: int, stage,
                device: str, run_name: str, prompt_format: str, kernels: str | KernelSpec,
                teacher_dtype: str = "auto") -> dict[str, Any]:
    """Distil the teacher at path ``teacher`` (loaded in ``teacher_dtype``) into ``student`` (in place) with
    ``method``; returns metrics."""
    import torch

    from selfdistill.distill.trainer import OnPolicy, distill_trainer_class
    from selfdistill.distill.vocab import check_shared_vocab
    from selfdistill.models.loading import load_model
    from selfdistill.stages.distill import trace_rows
    from selfdistill.stages.sft import sft_args, tokenize_rows

    rows = trace_rows(store, dcfg.min_reward, prompt_format)
    teacher_model, teacher_tokenizer = load_model(teacher, device=device, dtype=teacher_dtype)
    check_shared_vocab(method, tokenizer, teacher_tokenizer, student, teacher_model)
    torch.manual_seed(seed)  # the alignment projections' init
    objective = build_objective(method, dcfg, kernels, student, teacher_model)
    on_policy = None
    if method == "on_policy":
        on_policy = OnPolicy(fraction=dcfg.on_policy_fraction, max_new_tokens=dcfg.on_policy_max_new_tokens,
                             temperature=dcfg.on_policy_temperature, pad_id=tokenizer.pad_token_id,
                             eos_id=tokenizer.eos_token_id, seed=seed)
    dataset = tokenize_rows(tokenizer, rows, dcfg.sft.max_length)
    args = sft_args(dcfg.sft, out_dir, seed, stage.report_to, device, len(rows), run_name,
                    model_dtype=next(student.parameters()).dtype)
    trainer = distill_trainer_class()(model=student, args=args, train_dataset=dataset, processing_class=tokenizer,
                                      teacher=teacher_model, objective=objective, on_policy=on_policy)
    from selfdistill.checkpoints import train_resumable

    result = train_resumable(trainer)  # resumes from the latest complete checkpoint in out_dir
    history = trainer.state.log_history
    losses = [h["loss"] for h in history if "loss" in h]
    aligns = [h["distill/align"] for h in history if "distill/align" in h]
    sampled = trainer.on_policy_batches
    del trainer, teacher_model
    return {
        "method": method,
        "rows": len(rows),
        "steps": result.global_step,
        "train_loss": result.training_loss,
        "final_loss": losses[-1] if losses else None,
        "loss_curve": losses,
        "align_weight": objective.align_weight,
        "final_align_loss": aligns[-1] if aligns else None,
        "on_policy_batches": sampled,
    }


def distill_logit_kd(student, tokenizer, **kwargs) -> dict[str, Any]:
    """Logit KD on the stored traces (see module docstring)."""
    return run_distill("logit_kd", student, tokenizer, **kwargs)


def distill_on_policy(student, tokenizer, **kwargs) -> dict[str, Any]:
    """On-policy distillation: the student samples, the teacher scores every token."""
    return run_distill("on_policy", student, tokenizer, **kwargs)


def distill_hidden_align(student, tokenizer, **kwargs) -> dict[str, Any]:
    """SFT on the traces plus hidden-state alignment to the teacher."""
    return run_distill("hidden_align", student, tokenizer, **kwargs)
