"""Distill stage: the policy's traces into smaller dense students.

Methods come from `selfdistill.registries.DISTILL_METHODS`. ``sft`` is sequence-level
distillation as in DeepSeek-R1 §2.4: plain SFT of the student on the teacher's correct traces
(every round's; in a progressive chain, the teacher student's own traces, see `pipeline.plan`). The student starts from its own base (a tiny model pre-trained on the same
bootstrap corpus in the demo: the stand-in for a small pretrained base, or a local/hub model).
``logit_kd``, ``on_policy`` and ``hidden_align`` (and ``sft`` with ``distill.hidden_align_weight > 0`` or
``distill.attention_align_weight > 0``)
also run the teacher: they live in `selfdistill.distill.methods` (see docs/distillation.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from selfdistill.stages.sft import rows_from_traces, train_sft

if TYPE_CHECKING:
    from selfdistill.kernels.hf import KernelSpec


def trace_rows(store, min_reward: float, prompt_format: str) -> list[dict[str, Any]]:
    """Every stored trace at or above ``min_reward`` as (prompt as sampled, completion) rows."""
    return rows_from_traces(store.iter(min_reward=min_reward), prompt_format)


def distill_sft(student, tokenizer, *, teacher, store, dcfg, out_dir: Path, seed: int, stage, device: str,
                run_name: str, prompt_format: str, kernels: str | KernelSpec, teacher_dtype: str = "auto") -> dict[str, Any]:
    """Sequence-level distillation: SFT of ``student`` on the stored traces (``teacher`` unused unless
    ``dcfg.hidden_align_weight > 0`` or ``dcfg.attention_align_weight > 0``, which add an alignment to it)."""
    if dcfg.hidden_align_weight > 0 or dcfg.attention_align_weight > 0:
        from selfdistill.distill.methods import run_distill

        return run_distill("sft", student, tokenizer, teacher=teacher, store=store, dcfg=dcfg, out_dir=out_dir,
                           seed=seed, stage=stage, device=device, run_name=run_name, prompt_format=prompt_format,
                           kernels=kernels, teacher_dtype=teacher_dtype)
    rows = trace_rows(store, dcfg.min_reward, prompt_format)
    return train_sft(student, tokenizer, rows, dcfg.sft, out_dir, seed=seed, stage=stage, device=device,
                     run_name=run_name, kernels=kernels)
