"""Hidden-state alignment (FitNets-style hints): match chosen student layers to teacher layers.

    aligner = HiddenAligner(pairs=[[-1, -1]], student_width=32, teacher_width=64, loss="nmse")
    with capture_layers(student, aligner.student_layers(n_s)) as hs, capture_layers(teacher, ...) as ht:
        ...forward both models...
    loss = aligner(hs_list, ht_list, mask)

A layer's state is the output of that decoder layer (`[B, T, H]`, before the final norm). When the widths
differ the student state goes through a learned `Linear(H_s, H_t, bias=False)` per pair (an identity when
they are equal); the projections train with the student and are thrown away afterwards (the saved
student is unchanged in shape). The loss is averaged over the masked positions and over the pairs:
`mse` = mean over the teacher's width of the squared difference, `nmse` = that divided by the teacher state's
mean square over the same positions (per pair and batch, no gradient through it), `cosine` = 1 - cosine
similarity. `nmse` and `cosine` are scale-free: multiplying both states by c leaves them unchanged, so their
size is about 1 whatever the model's hidden-state scale. `mse` is not: SmolLM2's layer outputs have norms in
the hundreds and an `mse` term of ~190 swamped the trace cross-entropy (docs/distillation.md), so `nmse` is
the default of ``distill.hidden_align_loss``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

ALIGN_LOSSES = ("nmse", "mse", "cosine")


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The transformer blocks of a Hugging Face causal LM (PEFT wrappers unwrapped)."""
    model = model.get_base_model() if hasattr(model, "get_base_model") else model
    layers = getattr(model.get_decoder(), "layers", None)
    if layers is None:
        raise ValueError(f"{type(model).__name__}: its decoder has no `layers` to align hidden states with")
    return layers


def resolve_layer(index: int, n_layers: int, who: str) -> int:
    """A layer index in [0, n_layers) from a possibly negative one, with a clear error."""
    if not -n_layers <= index < n_layers:
        raise ValueError(
            f"distill.hidden_align_layers: {who} layer {index} is out of range for {n_layers} layers"
        )
    return index % n_layers


@contextmanager
def capture_layers(model: nn.Module, layers: list[int]) -> Iterator[dict[int, torch.Tensor]]:
    """While open, every forward of ``model`` stores the output `[B, T, H]` of each layer in ``layers``."""
    store: dict[int, torch.Tensor] = {}
    blocks = decoder_layers(model)

    def hook_for(i: int):
        def hook(_module, _args, output):
            store[i] = output[0] if isinstance(output, tuple) else output

        return hook

    handles = [blocks[i].register_forward_hook(hook_for(i)) for i in layers]
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


def align_rows(projected: torch.Tensor, target: torch.Tensor, loss: str) -> torch.Tensor:
    """Per-position alignment loss: `[N, H_t]` x `[N, H_t]` -> `[N]` (`nmse`: relative to the rows' mean
    square of ``target``, so the mean of the result is sum ||p - t||^2 / sum ||t||^2)."""
    if loss == "mse":
        return (projected - target).pow(2).mean(-1)
    if loss == "nmse":
        scale = target.pow(2).mean().clamp_min(torch.finfo(target.dtype).tiny)  # scalar, no grad (teacher)
        return (projected - target).pow(2).mean(-1) / scale
    if loss == "cosine":
        return 1.0 - F.cosine_similarity(projected, target, dim=-1)
    raise ValueError(f"unknown hidden_align_loss {loss!r}; choose one of: {', '.join(ALIGN_LOSSES)}")


class HiddenAligner(nn.Module):
    """Learned projections from student to teacher layer states and the alignment loss between them."""

    def __init__(
        self, pairs: list[list[int]], student_width: int, teacher_width: int, loss: str = "nmse"
    ) -> None:
        super().__init__()
        if loss not in ALIGN_LOSSES:
            raise ValueError(f"unknown hidden_align_loss {loss!r}; choose one of: {', '.join(ALIGN_LOSSES)}")
        self.pairs = [(int(s), int(t)) for s, t in pairs]
        self.loss = loss
        self.proj = nn.ModuleList(
            nn.Identity()
            if student_width == teacher_width
            else nn.Linear(student_width, teacher_width, bias=False)
            for _ in self.pairs
        )

    def layers(self, n_student: int, n_teacher: int) -> tuple[list[int], list[int]]:
        """The pairs as non-negative (student, teacher) layer lists."""
        return (
            [resolve_layer(s, n_student, "student") for s, _ in self.pairs],
            [resolve_layer(t, n_teacher, "teacher") for _, t in self.pairs],
        )

    def forward(
        self,
        student_states: list[torch.Tensor],  # per pair [B, T, H_s]
        teacher_states: list[torch.Tensor],  # per pair [B, T, H_t], no grad
        mask: torch.Tensor,  # [B, T] bool: positions that count
        indices: list[int] | None = None,  # which pairs the states belong to (default: all, in order)
    ) -> torch.Tensor:
        count = mask.sum().clamp_min(1)
        total = 0.0
        projections = self.proj if indices is None else [self.proj[i] for i in indices]
        for proj, s, t in zip(projections, student_states, teacher_states, strict=True):
            weight = getattr(proj, "weight", None)
            s = s[mask].to(weight.dtype if weight is not None else t.dtype)  # [N, H_s]
            rows = align_rows(proj(s), t[mask].detach().to(s.dtype), self.loss)  # [N]
            total = total + rows.sum() / count
        return total / len(projections)
