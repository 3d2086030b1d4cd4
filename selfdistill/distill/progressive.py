"""Progressive expert distillation: the student learns the teacher's MoE blocks group by group, then its outputs.

The student's MLP output at a layer regresses onto the teacher's routed-mixture output (the whole MoE
block: the top-k experts' weighted sum, shared experts included) at the aligned teacher layer, beside
the cross-entropy on the traces. The aligned layer pairs are split into ``groups`` contiguous groups
from the input side; group g joins the regression at step ``g * progressive_steps / groups``, so the
shallow blocks settle before the deeper ones, which read their outputs, are asked to match. After
``progressive_steps`` (a ``progressive_fraction`` of the run) the regression stops and the final stage
trains the chosen output objective alone (``sft``: CE on the traces; ``logit_kd``: CE plus the
divergence to the teacher's logits).

    schedule = ProgressiveSchedule.build(n_student=4, n_teacher=8, groups=2, total_steps=100, fraction=0.6)
    schedule.active(step)      # indices of the pairs that count at this step
    with capture_mlps(student, s_layers) as ms, capture_mlps(teacher, t_layers) as mt: ...forwards...
    loss = aligner(states of the active pairs ...)   # a HiddenAligner over MLP outputs

MLP outputs are `[B, T, H]`; when the widths differ a learned `Linear(H_s, H_t)` per pair maps the
student's (as hidden-state alignment does); it is discarded after training.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from selfdistill.distill.hidden_align import decoder_layers, resolve_layer

FINAL_OBJECTIVES = ("sft", "logit_kd")


def mlp_module(model: nn.Module, layer: int) -> nn.Module:
    """The feed-forward block (dense MLP or sparse MoE block) of decoder layer ``layer``."""
    block = decoder_layers(model)[layer]
    for name in ("mlp", "block_sparse_moe", "feed_forward", "moe"):
        module = getattr(block, name, None)
        if isinstance(module, nn.Module):
            return module
    raise ValueError(
        f"{type(block).__name__} has no feed-forward block (looked for mlp, block_sparse_moe, "
        "feed_forward, moe)"
    )


@contextmanager
def capture_mlps(model: nn.Module, layers: list[int]) -> Iterator[dict[int, torch.Tensor]]:
    """While open, each forward of ``model`` stores the output `[B, T, H]` of each listed layer's MLP/MoE block."""
    store: dict[int, torch.Tensor] = {}

    def hook_for(i: int):
        def hook(_module, _args, output):
            store[i] = output[0] if isinstance(output, tuple) else output  # some MoE blocks add router logits

        return hook

    handles = [mlp_module(model, i).register_forward_hook(hook_for(i)) for i in layers]
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


def default_pairs(n_student: int, n_teacher: int) -> list[list[int]]:
    """Every student layer with the teacher layer at the same relative depth (first to first, last to last)."""
    if n_student == 1:
        return [[0, n_teacher - 1]]
    return [[i, round(i * (n_teacher - 1) / (n_student - 1))] for i in range(n_student)]


@dataclass(frozen=True)
class ProgressiveSchedule:
    """Which layer pairs count at each optimizer step."""

    pairs: tuple[tuple[int, int], ...]  # (student layer, teacher layer), shallow to deep, non-negative
    groups: int
    progressive_steps: int  # steps of the expert phase; the final stage follows

    @classmethod
    def build(
        cls,
        n_student: int,
        n_teacher: int,
        groups: int,
        total_steps: int,
        fraction: float,
        pairs: list[list[int]] | None = None,
    ) -> ProgressiveSchedule:
        """Validate the settings against the two models and the step budget."""
        raw = pairs or default_pairs(n_student, n_teacher)
        resolved = tuple(
            sorted(
                (resolve_layer(s, n_student, "student"), resolve_layer(t, n_teacher, "teacher"))
                for s, t in raw
            )
        )
        if not 1 <= groups <= len(resolved):
            raise ValueError(
                f"distill.progressive_groups must be in [1, {len(resolved)}] (the number of layer "
                f"pairs), got {groups}"
            )
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"distill.progressive_fraction must be in (0, 1], got {fraction}")
        steps = max(groups, round(total_steps * fraction))
        return cls(resolved, groups, steps)

    def group_of(self, pair_index: int) -> int:
        """Group (0 = shallowest) of a pair: contiguous, as equal in size as the count allows."""
        return pair_index * self.groups // len(self.pairs)

    def active(self, step: int) -> list[int]:
        """Indices of the pairs whose regression counts at optimizer step ``step`` (none in the final stage)."""
        if step >= self.progressive_steps:
            return []
        unlocked = step * self.groups // self.progressive_steps  # groups 0..unlocked are on
        return [i for i in range(len(self.pairs)) if self.group_of(i) <= unlocked]

    def layers(self) -> tuple[list[int], list[int]]:
        return [s for s, _ in self.pairs], [t for _, t in self.pairs]
