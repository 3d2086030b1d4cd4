"""Attention transfer: the student's attention distributions match the teacher's on the completion tokens.

    aligner = AttentionAligner(pairs=[[-1, -1]], loss="kl", chunk=128)
    with capture_attention(student, s_layers) as qs, capture_attention(teacher, t_layers) as qt:
        ...forward both models (their own fast attention kernels run unchanged)...
    loss = aligner(qs, qt, attention_mask, completion_mask)

**What is captured.** Models in transformers 5 call their attention kernel through
``ALL_ATTENTION_FUNCTIONS`` with the post-RoPE (and post q/k-norm) queries `[B, H, T, d]` and keys
`[B, H_kv, T, d]`. While `capture_attention` is open, the kernel entry the model uses (``sdpa``,
``eager``, flash ...) is wrapped: for the chosen layers' attention modules the wrapper keeps the query
and key tensors (and the module's scaling), then calls the original kernel, so the forward's output
and speed are those of the model's own kernel. Nothing of the `[B, H, T, T]` probabilities is built
by the forward.

**What is recomputed.** The loss rebuilds the attention probabilities of the aligned layers only,
`softmax(q k^T * scale)` with the causal and padding masks, a chunk of ``chunk`` query positions at a
time, each chunk under activation checkpointing: the memory of the term is `O(B * H * chunk * T)` at
any moment, and what backward keeps is the inputs `q`, `k` (`O(T)`), never the `[T, T]` maps. Only
query positions in ``completion_mask`` count (the trace's completion tokens).

**Heads.** Grouped-query attention: keys are repeated to the query heads (as every kernel does).
When student and teacher have the same number of heads, head h matches head h; when the teacher's
count is a multiple of the student's, each student head matches the average of its group of
``H_t / H_s`` consecutive teacher heads; otherwise both sides are averaged over their heads
(``heads="mean"`` forces that everywhere). An average of distributions is a distribution, so KL is
still defined.

**Losses.** ``kl``: KL(teacher || student) over the keys of each query row; ``mse``: squared
difference of the probabilities summed over the keys. Averaged over counted query positions, heads
and layer pairs. Sliding windows and logit soft-capping are not modelled (full causal attention).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from selfdistill.distill.hidden_align import decoder_layers, resolve_layer

ATTENTION_LOSSES = ("kl", "mse")
HEAD_MODES = ("auto", "mean")


@dataclass
class Captured:
    """Post-RoPE queries and keys one attention layer used in the last forward."""

    query: torch.Tensor  # [B, H, T, d]
    key: torch.Tensor  # [B, H_kv, T, d]
    scaling: float


def attention_module(model: nn.Module, layer: int) -> nn.Module:
    """The self-attention module of decoder layer ``layer``."""
    block = decoder_layers(model)[layer]
    for name in ("self_attn", "attention", "attn"):
        module = getattr(block, name, None)
        if isinstance(module, nn.Module):
            return module
    raise ValueError(
        f"{type(block).__name__} has no self-attention module (looked for self_attn, attention, attn)"
    )


def _module_eager(module: nn.Module):
    """The `eager_attention_forward` of the modeling file ``module`` comes from (the default kernel)."""
    fn = getattr(sys.modules.get(type(module).__module__), "eager_attention_forward", None)
    if fn is None:
        raise ValueError(f"{type(module).__name__}: its modeling file has no eager_attention_forward to wrap")
    return fn


@contextmanager
def _wrapped_kernel(name: str, wrapper_for) -> Iterator[None]:
    """Swap the kernel registered as ``name`` in transformers' attention registry for the duration."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    local = ALL_ATTENTION_FUNCTIONS._local_mapping
    had_local, previous = name in local, local.get(name)
    original = previous if had_local else ALL_ATTENTION_FUNCTIONS._global_mapping.get(name)
    ALL_ATTENTION_FUNCTIONS[name] = wrapper_for(original)
    try:
        yield
    finally:
        if had_local:
            local[name] = previous
        else:
            del ALL_ATTENTION_FUNCTIONS[name]


@contextmanager
def capture_attention(model: nn.Module, layers: list[int]) -> Iterator[dict[int, Captured]]:
    """While open, each forward of ``model`` stores the queries and keys of the layers in ``layers``."""
    store: dict[int, Captured] = {}
    wanted = {id(attention_module(model, i)): i for i in layers}
    impl = model.config.get_text_config()._attn_implementation or "eager"

    def wrapper_for(original):
        def kernel(module, query, key, value, attention_mask, *args, **kwargs):
            layer = wanted.get(id(module))
            if layer is not None:
                scaling = kwargs.get("scaling")
                store[layer] = Captured(
                    query, key, float(scaling if scaling is not None else query.size(-1) ** -0.5)
                )
            fn = original if original is not None else _module_eager(module)
            return fn(module, query, key, value, attention_mask, *args, **kwargs)

        return kernel

    with _wrapped_kernel(impl, wrapper_for):
        yield store


def _expand_kv(key: torch.Tensor, heads: int) -> torch.Tensor:
    """[B, H_kv, T, d] -> [B, H, T, d] (grouped-query attention: each key head serves H / H_kv query heads)."""
    groups = heads // key.size(1)
    if groups * key.size(1) != heads:
        raise ValueError(f"{heads} query heads cannot share {key.size(1)} key heads evenly")
    return key if groups == 1 else key.repeat_interleave(groups, dim=1)


def group_heads(probs: torch.Tensor, groups: int) -> torch.Tensor:
    """[B, H, c, T] -> [B, groups, c, T]: average consecutive blocks of H / groups heads."""
    b, h, c, t = probs.shape
    return probs.view(b, groups, h // groups, c, t).mean(2)


def head_plan(student_heads: int, teacher_heads: int, mode: str) -> tuple[int, int]:
    """How many head groups each side is reduced to before comparing: (student groups, teacher groups)."""
    if mode not in HEAD_MODES:
        raise ValueError(f"unknown attention_align_heads {mode!r}; choose one of: {', '.join(HEAD_MODES)}")
    if mode == "auto" and teacher_heads % student_heads == 0:
        return student_heads, student_heads
    return 1, 1


def _log_probs_chunk(
    q: torch.Tensor, k: torch.Tensor, scale: float, start: int, key_ok: torch.Tensor
) -> torch.Tensor:
    """Log attention probabilities of query rows ``start..start+c``: [B, H, c, d] x [B, H, T, d] -> [B, H, c, T]."""
    c, t = q.size(2), k.size(2)
    scores = torch.matmul(q, k.transpose(-1, -2)) * scale  # [B, H, c, T]
    rows = torch.arange(start, start + c, device=q.device).unsqueeze(1)  # [c, 1]
    allowed = (torch.arange(t, device=q.device).unsqueeze(0) <= rows).unsqueeze(0) & key_ok[
        :, None, :
    ]  # [B, c, T]
    scores = scores.masked_fill(~allowed.unsqueeze(1), float("-inf"))
    return torch.log_softmax(scores.float(), dim=-1)


def _chunk_loss(q_s, k_s, q_t, k_t, key_ok, rows_ok, start, scale_s, scale_t, groups_s, groups_t, loss):
    """Summed loss of one chunk of query rows: [B, H, c, d] queries -> scalar (fp32)."""
    logp_s = _log_probs_chunk(q_s, k_s, scale_s, start, key_ok)  # [B, H_s, c, T]
    with torch.no_grad():
        p_t = _log_probs_chunk(q_t, k_t, scale_t, start, key_ok).exp()  # [B, H_t, c, T]
        p_t = group_heads(p_t, groups_t)
    if groups_s != logp_s.size(1):  # average student heads in probability space
        logp_s = torch.log(group_heads(logp_s.exp(), groups_s).clamp_min(1e-30))
    if loss == "kl":
        log_t = torch.log(p_t.clamp_min(1e-30))
        per_key = torch.where(p_t > 0, p_t * (log_t - logp_s), torch.zeros_like(p_t))
        per_key = torch.nan_to_num(
            per_key, nan=0.0, posinf=0.0, neginf=0.0
        )  # masked keys: p_t = 0, logp_s = -inf
    else:
        per_key = (logp_s.exp() - p_t).pow(2)
    per_row = per_key.sum(-1).mean(1)  # [B, c]: summed over keys, averaged over head groups
    return torch.where(rows_ok > 0, per_row, torch.zeros_like(per_row)).sum()  # padding rows may be NaN


def attention_align_loss(
    student: Captured,
    teacher: Captured,
    key_mask: torch.Tensor,  # [B, T] bool/int: real (non-padding) tokens
    row_mask: torch.Tensor,  # [B, T] bool: query positions that count (completion tokens)
    *,
    loss: str = "kl",
    heads: str = "auto",
    chunk: int = 128,
) -> torch.Tensor:
    """Mean per-row attention loss between one student and one teacher layer (see module docstring)."""
    if loss not in ATTENTION_LOSSES:
        raise ValueError(
            f"unknown attention_align_loss {loss!r}; choose one of: {', '.join(ATTENTION_LOSSES)}"
        )
    if chunk < 1:
        raise ValueError(f"attention_align_chunk must be >= 1, got {chunk}")
    q_s, q_t = student.query, teacher.query.detach()
    if q_s.size(2) != q_t.size(2):
        raise ValueError(
            f"student and teacher saw different sequence lengths ({q_s.size(2)} vs {q_t.size(2)})"
        )
    k_s = _expand_kv(student.key, q_s.size(1))
    k_t = _expand_kv(teacher.key.detach(), q_t.size(1))
    groups_s, groups_t = head_plan(q_s.size(1), q_t.size(1), heads)
    key_ok = key_mask.bool()
    rows = row_mask.bool() & key_ok
    total = q_s.new_zeros((), dtype=torch.float32)
    t = q_s.size(2)
    for start in range(0, t, chunk):
        stop = min(t, start + chunk)
        rows_ok = rows[:, start:stop].float()
        if not rows_ok.any():
            continue
        args = (
            q_s[:, :, start:stop],
            k_s,
            q_t[:, :, start:stop],
            k_t,
            key_ok,
            rows_ok,
            start,
            student.scaling,
            teacher.scaling,
            groups_s,
            groups_t,
            loss,
        )
        if torch.is_grad_enabled() and q_s.requires_grad:
            total = total + checkpoint(_chunk_loss, *args, use_reentrant=False)
        else:
            total = total + _chunk_loss(*args)
    return total / rows.sum().clamp_min(1)


class AttentionAligner:
    """Layer pairs and settings of the attention-transfer term; no parameters of its own."""

    def __init__(
        self, pairs: list[list[int]], loss: str = "kl", heads: str = "auto", chunk: int = 128
    ) -> None:
        if loss not in ATTENTION_LOSSES:
            raise ValueError(
                f"unknown attention_align_loss {loss!r}; choose one of: {', '.join(ATTENTION_LOSSES)}"
            )
        head_plan(1, 1, heads)  # validates the mode
        if not pairs or any(len(p) != 2 for p in pairs):
            raise ValueError(
                f"distill.attention_align_layers must be a non-empty list of [student, teacher] pairs, got {pairs}"
            )
        self.pairs = [(int(s), int(t)) for s, t in pairs]
        self.loss, self.heads, self.chunk = loss, heads, chunk

    def layers(self, student: nn.Module, teacher: nn.Module) -> tuple[list[int], list[int]]:
        """The pairs as non-negative (student, teacher) layer lists; impossible pairs raise naming the layer."""
        n_s, n_t = len(decoder_layers(student)), len(decoder_layers(teacher))
        s = [resolve_layer(i, n_s, "student") for i, _ in self.pairs]
        t = [resolve_layer(j, n_t, "teacher") for _, j in self.pairs]
        for i, j in zip(s, t):
            attention_module(student, i), attention_module(teacher, j)
        return s, t

    def __call__(
        self,
        student: dict[int, Captured],
        teacher: dict[int, Captured],
        s_layers: list[int],
        t_layers: list[int],
        key_mask: torch.Tensor,
        row_mask: torch.Tensor,
    ) -> torch.Tensor:
        missing = [i for i in s_layers if i not in student] + [j for j in t_layers if j not in teacher]
        if missing:
            raise RuntimeError(
                f"attention of layers {missing} was not captured: the model's attention does not go "
                "through transformers' attention registry"
            )
        losses = [
            attention_align_loss(
                student[i], teacher[j], key_mask, row_mask, loss=self.loss, heads=self.heads, chunk=self.chunk
            )
            for i, j in zip(s_layers, t_layers)
        ]
        return torch.stack(losses).mean()
