"""The table of distillation methods: what each one optimises, whether it samples, what alignment it adds.

One `DistillMethod` record per name in `DISTILL_METHODS` (looked up by ``distill.method``); the stage
(`selfdistill.stages.distill.distill`) reads the record and never switches on the name:

- `sft`: sequence-level distillation (DeepSeek-R1 §2.4), plain SFT of the student on the teacher's traces;
  the teacher is only loaded when ``hidden_align_weight > 0`` adds a hidden-state alignment.
- `logit_kd`: the student learns the teacher's next-token distributions on the stored traces
  (`hard_weight * CE + (1 - hard_weight) * divergence`, fused kernels with ``kernels=fused``).
- `on_policy`: the same loss on completions the student samples itself for the trace prompts (a
  fraction ``on_policy_fraction`` of the batches; the rest use the traces), hard CE off on sampled batches.
- `hidden_align`: SFT on the traces plus a hidden-state alignment to the teacher (weight
  ``hidden_align_weight``, 1.0 when left at 0); ``hidden_align_weight > 0`` adds the same term to any method,
  and ``attention_align_weight > 0`` an attention-transfer term (`distill/attention_align.py`).
- `progressive_experts`: the student's MLP outputs regress onto the teacher's routed MoE-block outputs,
  layer group by layer group (shallow first), beside the trace CE, for ``progressive_fraction`` of the
  steps; then the output objective ``progressive_final`` (``sft`` or ``logit_kd``) alone
  (`distill/progressive.py`).

Every method that runs the teacher checks first that both sides share one tokenizer. Importing this module
imports nothing heavy (config validation reads the table).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from selfdistill.registries import Registry

if TYPE_CHECKING:
    from selfdistill.kernels.hf import KernelSpec


@dataclass(frozen=True)
class DistillMethod:
    """One distillation method: the objective it trains, whether the student samples, its default alignment."""

    name: str
    objective: (
        str  # an `Objective.kind` (distill/objective.py): "lm" CE on labels | "distill" CE + divergence
    )
    on_policy: bool = False  # a share of batches are completions the student samples itself
    default_align_weight: float = 0.0  # hidden-alignment weight when distill.hidden_align_weight is 0
    progressive: bool = False  # MoE-block regression by layer groups, then `distill.progressive_final`
    summary: str = ""

    def objective_kind(self, dcfg) -> str:
        """The `Objective.kind` trained (for a progressive method: that of its final stage)."""
        if self.progressive:
            return "lm" if dcfg.progressive_final == "sft" else "distill"
        return self.objective

    def align_weight(self, dcfg) -> float:
        """The hidden-alignment weight in effect under the distill config ``dcfg``."""
        return dcfg.hidden_align_weight if dcfg.hidden_align_weight > 0 else self.default_align_weight

    @property
    def learns_from_sequences(self) -> bool:
        """Whether it learns the teacher through its sequences (SFT on sampled traces: ``lm`` objectives) rather
        than its logits. In a progressive chain such a student trains on its teacher student's own traces."""
        return self.objective == "lm" and not self.progressive

    def needs_teacher(self, dcfg) -> bool:
        """Whether training runs the teacher (its distributions, hidden states or attention); else plain SFT."""
        return (
            self.objective == "distill"
            or self.on_policy
            or self.progressive
            or self.align_weight(dcfg) > 0
            or dcfg.attention_align_weight > 0
        )


DISTILL_METHODS = Registry("distillation method")
for _m in (
    DistillMethod("sft", "lm", summary="SFT on the teacher's traces (sequence-level KD)"),
    DistillMethod(
        "logit_kd", "distill", summary="match the teacher's next-token distributions on the traces"
    ),
    DistillMethod(
        "on_policy",
        "distill",
        on_policy=True,
        summary="match the teacher's distributions on completions the student samples",
    ),
    DistillMethod(
        "hidden_align",
        "lm",
        default_align_weight=1.0,
        summary="SFT on the traces plus hidden-state alignment to the teacher",
    ),
    DistillMethod(
        "progressive_experts",
        "distill",
        progressive=True,
        summary="regress MLP outputs onto the teacher's MoE blocks group by group, then the output objective",
    ),
):
    DISTILL_METHODS.register(_m.name, _m)


def get_method(method: str | DistillMethod) -> DistillMethod:
    """The table's record of ``method`` (a name or a record); the error lists the valid names."""
    return method if isinstance(method, DistillMethod) else DISTILL_METHODS.get(method, "distill.method")


def learns_from_teacher_traces(method: str | DistillMethod) -> bool:
    """See `DistillMethod.learns_from_sequences`."""
    return get_method(method).learns_from_sequences


def align_weight(method: str | DistillMethod, dcfg) -> float:
    """The hidden-alignment weight in effect for ``method``."""
    return get_method(method).align_weight(dcfg)


def build_objective(
    method: str | DistillMethod,
    dcfg,
    kernels: str | KernelSpec,
    student,
    teacher,
    total_steps: int | None = None,
):
    """The `Objective` of ``method`` from the distill config (the aligner, if any, is freshly initialised).

    ``total_steps``: the run's optimizer steps, which a progressive method's schedule is laid over."""
    from selfdistill.distill.hidden_align import HiddenAligner
    from selfdistill.distill.objective import Objective

    record = get_method(method)
    weight = record.align_weight(dcfg)
    aligner = None
    if weight > 0:
        aligner = HiddenAligner(
            dcfg.hidden_align_layers,
            student.config.get_text_config().hidden_size,
            teacher.config.get_text_config().hidden_size,
            dcfg.hidden_align_loss,
        )
    attention = None
    if dcfg.attention_align_weight > 0:
        from selfdistill.distill.attention_align import AttentionAligner

        attention = AttentionAligner(
            dcfg.attention_align_layers,
            dcfg.attention_align_loss,
            dcfg.attention_align_heads,
            dcfg.attention_align_chunk,
        )
        attention.layers(student, teacher)  # impossible layer pairs fail here, before training
    schedule, experts = _progressive_parts(record, dcfg, student, teacher, total_steps)
    return Objective(
        kind=record.objective_kind(dcfg),
        kernels=kernels,
        divergence=dcfg.divergence,
        beta=dcfg.beta,
        temperature=dcfg.temperature,
        hard_weight=dcfg.hard_weight,
        aligner=aligner,
        align_weight=weight,
        attention=attention,
        attention_weight=dcfg.attention_align_weight,
        schedule=schedule,
        experts=experts,
        expert_weight=dcfg.progressive_weight,
    )


def _progressive_parts(record: DistillMethod, dcfg, student, teacher, total_steps: int | None):
    """(schedule, MoE-block regression) of a progressive method; (None, None) for the others."""
    if not record.progressive:
        return None, None
    from selfdistill.distill.hidden_align import HiddenAligner, decoder_layers
    from selfdistill.distill.progressive import ProgressiveSchedule

    if not total_steps:
        raise ValueError(f"{record.name} needs the run's step count to lay out its schedule")
    schedule = ProgressiveSchedule.build(
        len(decoder_layers(student)),
        len(decoder_layers(teacher)),
        dcfg.progressive_groups,
        total_steps,
        dcfg.progressive_fraction,
        pairs=dcfg.progressive_layers or None,
    )
    experts = HiddenAligner(
        [list(p) for p in schedule.pairs],
        student.config.get_text_config().hidden_size,
        teacher.config.get_text_config().hidden_size,
        dcfg.progressive_loss,  # the same per-position losses as hidden_align (nmse by default: scale-free)
    )
    return schedule, experts
