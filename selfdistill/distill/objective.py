"""The per-batch distillation objective: an LM or logit-distillation loss, plus optional hidden and attention alignment.

    obj = Objective(kind="distill", kernels="fused", divergence="jsd", beta=0.5, hard_weight=0.5)
    loss, parts = batch_loss(student, teacher, input_ids, attention_mask, labels, obj)

`kind="lm"` is the student's next-token cross-entropy on the labels (sequence-level distillation);
`kind="distill"` is `hard_weight * CE + (1 - hard_weight) * D(teacher || student at temperature)` from
`selfdistill.kernels.hf` (fused: no `[B, T, V]` logits; eager: full logits). With an `aligner` the
decoder-layer outputs of both models are captured during those same forwards (no extra pass for the
student) and `align_weight * aligner(...)` is added, on the labelled positions. With an `attention`
aligner the aligned layers' queries and keys are captured in those same forwards too, and
`attention_weight * attention(...)` is added (attention transfer, `distill.attention_align`).
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass

import torch

from selfdistill.distill.attention_align import AttentionAligner, capture_attention
from selfdistill.distill.hidden_align import HiddenAligner, capture_layers, decoder_layers
from selfdistill.kernels.hf import (
    IGNORE_INDEX,
    KernelSpec,
    causal_lm_distill_loss_fn,
    causal_lm_hidden,
    causal_lm_loss_fn,
)

OBJECTIVE_KINDS = ("lm", "distill")


@dataclass
class Objective:
    kind: str = "distill"  # "lm" | "distill"
    kernels: str | KernelSpec = "eager"  # "fused" | "eager", or a KernelSpec with the fused options
    divergence: str = "forward_kl"
    beta: float = 0.5
    temperature: float = 1.0
    hard_weight: float = 0.0
    aligner: HiddenAligner | None = None
    align_weight: float = 0.0
    attention: AttentionAligner | None = None
    attention_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in OBJECTIVE_KINDS:
            raise ValueError(f"unknown objective kind {self.kind!r}; choose one of: {', '.join(OBJECTIVE_KINDS)}")


def _main_loss(student, teacher, input_ids, attention_mask, labels, obj: Objective, run_teacher: bool):
    if obj.kind == "lm":
        loss = causal_lm_loss_fn(obj.kernels)(student, input_ids, attention_mask, labels)
        if run_teacher:  # only for its hidden states
            with torch.no_grad():
                causal_lm_hidden(teacher, input_ids, attention_mask)
        return loss
    return causal_lm_distill_loss_fn(obj.kernels)(
        student, teacher, input_ids, attention_mask, labels, divergence=obj.divergence, beta=obj.beta,
        temperature=obj.temperature, hard_weight=obj.hard_weight,
    )  # fmt: skip


def batch_loss(
    student,
    teacher,
    input_ids: torch.Tensor,  # [B, T]
    attention_mask: torch.Tensor | None,  # [B, T]
    labels: torch.Tensor,  # [B, T], -100 where ignored
    obj: Objective,
    *,
    hard_weight: float | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Scalar loss and its parts (`main`, `align`) as floats for logging.

    ``hard_weight`` overrides ``obj.hard_weight`` for this batch (on-policy batches use 0: their labels are
    the student's own samples, not the teacher's).
    """
    if hard_weight is not None and hard_weight != obj.hard_weight:
        obj = Objective(**{**obj.__dict__, "hard_weight": hard_weight})
    aligner = obj.aligner if obj.align_weight > 0 else None
    attention = obj.attention if obj.attention_weight > 0 else None
    if aligner is None and attention is None:
        main = _main_loss(student, teacher, input_ids, attention_mask, labels, obj, run_teacher=False)
        return main, {"main": main.item()}
    with ExitStack() as stack:
        if aligner is not None:
            s_layers, t_layers = aligner.layers(len(decoder_layers(student)), len(decoder_layers(teacher)))
            hs = stack.enter_context(capture_layers(student, s_layers))
            ht = stack.enter_context(capture_layers(teacher, t_layers))
        if attention is not None:
            sa_layers, ta_layers = attention.layers(student, teacher)
            qs = stack.enter_context(capture_attention(student, sa_layers))
            qt = stack.enter_context(capture_attention(teacher, ta_layers))
        main = _main_loss(student, teacher, input_ids, attention_mask, labels, obj, run_teacher=True)
    loss, parts = main, {"main": main.item()}
    counted = labels != IGNORE_INDEX  # [B, T]
    if aligner is not None:
        align = aligner([hs[i] for i in s_layers], [ht[j] for j in t_layers], counted)
        loss = loss + obj.align_weight * align.to(main.dtype)
        parts["align"] = align.item()
    if attention is not None:
        keys = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
        attn = attention(qs, qt, sa_layers, ta_layers, keys, counted)
        loss = loss + obj.attention_weight * attn.to(main.dtype)
        parts["attention"] = attn.item()
    return loss, parts
