"""The per-batch distillation objective: an LM or logit-distillation loss, plus optional hidden and attention alignment.

    obj = Objective(kind="distill", kernels="fused", divergence="jsd", beta=0.5, hard_weight=0.5)
    loss, parts = batch_loss(student, teacher, input_ids, attention_mask, labels, obj)

`kind="lm"` is the student's next-token cross-entropy on the labels (sequence-level distillation);
`kind="distill"` is `hard_weight * CE + (1 - hard_weight) * D(teacher || student at temperature)` from
`selfdistill.kernels.hf` (fused: no `[B, T, V]` logits; eager: full logits). With an `aligner` the
decoder-layer outputs of both models are captured during those same forwards (no extra pass for the
student) and `align_weight * aligner(...)` is added, on the labelled positions. With an `attention`
aligner the aligned layers' queries and keys are captured in those same forwards too, and
`attention_weight * attention(...)` is added (attention transfer, `distill.attention_align`). With a progressive `schedule` the MLP/MoE-block outputs
of the pairs active at the batch's step are captured and regressed (`selfdistill.distill.progressive`).
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, replace

import torch

from selfdistill.distill.attention_align import AttentionAligner, capture_attention
from selfdistill.distill.hidden_align import HiddenAligner, capture_layers, decoder_layers
from selfdistill.distill.progressive import ProgressiveSchedule, capture_mlps
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
    schedule: ProgressiveSchedule | None = None  # progressive_experts: which MoE-block pairs count per step
    experts: HiddenAligner | None = None  # projections + loss of the block regression (one per schedule pair)
    expert_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in OBJECTIVE_KINDS:
            raise ValueError(
                f"unknown objective kind {self.kind!r}; choose one of: {', '.join(OBJECTIVE_KINDS)}"
            )


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
    step: int = 0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Scalar loss and its parts (`main`, `align`, `attention`, `experts`) as floats for logging.

    ``hard_weight`` overrides ``obj.hard_weight`` for this batch (on-policy batches use 0: their labels are
    the student's own samples, not the teacher's). ``step`` (the optimizer step) drives a progressive
    schedule: while expert pairs are active the main loss is the trace CE (kind ``lm``).
    """
    if hard_weight is not None and hard_weight != obj.hard_weight:
        obj = replace(obj, hard_weight=hard_weight)
    active = obj.schedule.active(step) if obj.schedule is not None else []
    if active:
        obj = replace(obj, kind="lm")  # the expert phase: block regression beside the trace cross-entropy
    if not (
        active
        or (obj.aligner is not None and obj.align_weight > 0)
        or (obj.attention is not None and obj.attention_weight > 0)
    ):
        main = _main_loss(student, teacher, input_ids, attention_mask, labels, obj, run_teacher=False)
        return main, {"main": main.item()}
    with ExitStack() as stack:
        captured = _open_captures(stack, obj, student, teacher, active)
        main = _main_loss(student, teacher, input_ids, attention_mask, labels, obj, run_teacher=True)
    keys = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
    terms = _extra_terms(obj, captured, active, keys, labels != IGNORE_INDEX)
    loss = main + sum(weight * value.to(main.dtype) for _, weight, value in terms)
    return loss, {"main": main.item(), **{name: value.item() for name, _, value in terms}}


def _open_captures(stack: ExitStack, obj: Objective, student, teacher, active: list[int]) -> dict[str, tuple]:
    """Enter the capture contexts each extra term needs; returns per term (layers..., student store, teacher store)."""
    out: dict[str, tuple] = {}
    if obj.aligner is not None and obj.align_weight > 0:
        s, t = obj.aligner.layers(len(decoder_layers(student)), len(decoder_layers(teacher)))
        out["align"] = (
            s,
            t,
            stack.enter_context(capture_layers(student, s)),
            stack.enter_context(capture_layers(teacher, t)),
        )
    if obj.attention is not None and obj.attention_weight > 0:
        s, t = obj.attention.layers(student, teacher)
        out["attention"] = (
            s,
            t,
            stack.enter_context(capture_attention(student, s)),
            stack.enter_context(capture_attention(teacher, t)),
        )
    if active:
        s_all, t_all = obj.schedule.layers()
        s, t = [s_all[i] for i in active], [t_all[i] for i in active]
        out["experts"] = (
            s,
            t,
            stack.enter_context(capture_mlps(student, s)),
            stack.enter_context(capture_mlps(teacher, t)),
        )
    return out


def _extra_terms(
    obj: Objective,
    captured: dict[str, tuple],
    active: list[int],
    key_mask: torch.Tensor,
    counted: torch.Tensor,
) -> list[tuple[str, float, torch.Tensor]]:
    """(name, weight, value) of each extra term from the captured states; ``counted`` [B, T]: labelled positions."""
    terms = []
    if "align" in captured:
        s, t, hs, ht = captured["align"]
        terms.append(
            ("align", obj.align_weight, obj.aligner([hs[i] for i in s], [ht[j] for j in t], counted))
        )
    if "attention" in captured:
        s, t, qs, qt = captured["attention"]
        terms.append(("attention", obj.attention_weight, obj.attention(qs, qt, s, t, key_mask, counted)))
    if "experts" in captured:
        s, t, ms, mt = captured["experts"]
        value = obj.experts([ms[i] for i in s], [mt[j] for j in t], counted, indices=active)
        terms.append(("experts", obj.expert_weight, value))
    return terms
