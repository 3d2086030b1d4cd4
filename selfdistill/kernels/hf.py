"""Fused LM-head losses for Hugging Face causal LMs: run the decoder, never the `lm_head`, so no `[B, T, V]` logits.

    from selfdistill.kernels.hf import fused_causal_lm_loss, fused_causal_lm_distill_loss
    loss = fused_causal_lm_loss(model, input_ids, attention_mask, labels)          # == model(..., labels=labels).loss
    loss = fused_causal_lm_distill_loss(student, teacher, input_ids, attention_mask, labels, divergence="jsd")
    loss_fn = causal_lm_loss_fn(cfg.kernels)                 # "fused" | "eager", the same call signature
    loss_fn = causal_lm_loss_fn(KernelSpec("fused", dw_accumulation="weight"))   # with the fused path's options

Labels follow the Hugging Face convention: `labels[b, t]` is the token at position t (-100 to ignore) and the loss
predicts it from position t - 1, averaged over the non-ignored tokens of the batch.

What is reproduced and what is refused:
- tied input/output embeddings work unchanged (the head weight *is* the embedding; autograd adds both gradients);
- PEFT-wrapped models are unwrapped (LoRA layers live inside the decoder modules, so they still apply);
- MoE models whose config sets `output_router_logits` get the same load-balancing aux loss as their own forward;
- anything that changes logits after the head matmul (a head bias, `final_logit_softcapping`, `logit_scale`,
  `logits_scaling`) cannot be reproduced by the fused kernels and raises `ValueError` naming the attribute.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .cross_entropy import fused_linear_cross_entropy
from .distillation import fused_linear_distillation
from .reference import reference_distillation_from_logits

IGNORE_INDEX = -100
# Config attributes that transform logits after the head matmul, with the value at which they are a no-op.
_LOGIT_TRANSFORMS: dict[str, float | None] = {
    "final_logit_softcapping": None,
    "logit_scale": 1.0,
    "logits_scaling": 1.0,
}


_PARALLEL_WRAPPERS = ("DistributedDataParallel", "DataParallel", "FullyShardedDataParallel")


def _parallel_wrapped(model: torch.nn.Module) -> bool:
    """Whether ``model`` is a data-parallel wrapper (DDP, DataParallel, FSDP1) around the real model."""
    return type(model).__name__ in _PARALLEL_WRAPPERS and hasattr(model, "module")


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The underlying transformers model of data-parallel and PEFT wrappers, or the model itself."""
    while _parallel_wrapped(model):
        model = model.module
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _text_config(model: torch.nn.Module):
    config = model.config
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def _wants_router_aux(model: torch.nn.Module) -> bool:
    return bool(getattr(_text_config(model), "output_router_logits", False))


def lm_head_weight(model: torch.nn.Module) -> torch.Tensor:
    """The output projection `[V, H]`, after checking that logits are exactly `hidden @ weight.T`."""
    model = _unwrap(model)
    config = _text_config(model)
    for name, neutral in _LOGIT_TRANSFORMS.items():
        value = getattr(config, name, neutral)
        if value is not None and value != neutral:
            raise ValueError(
                f"{type(model).__name__} sets config.{name}={value}: the fused LM-head losses cannot reproduce "
                "that logit transform; use kernels=eager for this model"
            )
    head = model.get_output_embeddings()
    if head is None or not hasattr(head, "weight"):
        raise ValueError(
            f"{type(model).__name__} has no output embedding (get_output_embeddings() is {head!r})"
        )
    if getattr(head, "bias", None) is not None:
        raise ValueError(f"{type(model).__name__}.lm_head.bias is set: the fused LM-head losses take no bias")
    return head.weight


def causal_lm_hidden(
    model: torch.nn.Module,
    input_ids: torch.Tensor,  # [B, T]
    attention_mask: torch.Tensor | None = None,  # [B, T]
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The decoder's final hidden states `[B, T, H]` (no lm_head) and the MoE aux loss (None unless configured)."""
    inner = _unwrap(model)
    decoder = inner.get_decoder()
    kwargs = {"output_router_logits": True} if _wants_router_aux(inner) else {}
    if _parallel_wrapped(model):
        out = _decoder_output_through(model, decoder, input_ids, attention_mask, kwargs)
    else:
        out = decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, **kwargs)
    hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
    return hidden, (_router_aux_loss(inner, out.router_logits, attention_mask) if kwargs else None)


def _decoder_output_through(wrapper, decoder, input_ids, attention_mask, kwargs):
    """The decoder's output from a forward of the data-parallel ``wrapper`` itself.

    DDP prepares its gradient all-reduce (and FSDP1 its unsharding) in the wrapper's forward; calling
    the inner decoder directly would skip that. The LM head runs on the last position only
    (``logits_to_keep=1``: `[B, 1, V]`), and a forward hook hands back the decoder's full output.
    """
    box: dict = {}
    handle = decoder.register_forward_hook(lambda _m, _a, out: box.__setitem__("out", out))
    try:
        wrapper(
            input_ids=input_ids, attention_mask=attention_mask, use_cache=False, logits_to_keep=1, **kwargs
        )
    finally:
        handle.remove()
    return box["out"]


def _router_aux_loss(model, router_logits, attention_mask) -> torch.Tensor:
    """The model family's own load-balancing loss times its coefficient, as its forward adds it."""
    aux_fn = getattr(sys.modules[type(model).__module__], "load_balancing_loss_func", None)
    missing = [
        a for a in ("num_experts", "num_experts_per_tok", "router_aux_loss_coef") if not hasattr(model, a)
    ]
    if aux_fn is None or missing:
        raise ValueError(
            f"{type(model).__name__} sets output_router_logits but its aux loss cannot be found "
            f"(load_balancing_loss_func in {type(model).__module__}; attributes {missing})"
        )
    aux = aux_fn(router_logits, model.num_experts, model.num_experts_per_tok, attention_mask)
    return router_aux_coef(model) * aux


def router_aux_coef(model) -> float:
    """The load-balancing coefficient in effect: the config's (TRL's trainers write the configured value there,
    e.g. ``sft.router_aux_loss_coef``), not the attribute the model copied from its config when it was built."""
    model = _unwrap(model)
    return float(getattr(_text_config(model), "router_aux_loss_coef", model.router_aux_loss_coef))


def shift_for_next_token(
    hidden: torch.Tensor,  # [B, T, H]
    labels: torch.Tensor,  # [B, T]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pair each position's hidden state with the next token: `hidden [B*(T-1), H]`, `labels [B*(T-1)]`."""
    flat_hidden = hidden[:, :-1].reshape(-1, hidden.shape[-1])  # [N, H]
    flat_labels = labels[:, 1:].reshape(-1)  # [N]
    return flat_hidden, flat_labels


def _keep_labelled(labels: torch.Tensor, *rows: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Rows whose label is not ignored (one host sync for the boolean index): skips their share of the GEMMs."""
    keep = labels != IGNORE_INDEX  # [N]
    return labels[keep], *(r[keep] for r in rows)


def fused_causal_lm_loss(
    model: torch.nn.Module,
    input_ids: torch.Tensor,  # [B, T]
    attention_mask: torch.Tensor | None,  # [B, T]
    labels: torch.Tensor,  # [B, T], -100 where ignored
    *,
    num_items_in_batch: int | torch.Tensor | None = None,
    impl: str = "auto",
    drop_ignored: bool = False,
    dw_accumulation: str = "fp32",
) -> torch.Tensor:
    """Next-token cross-entropy (+ MoE aux loss when configured); the same value as `model(..., labels).loss`.

    `num_items_in_batch` (as Hugging Face trainers pass it under gradient accumulation) replaces the batch's own
    count of non-ignored tokens as the divisor. `drop_ignored=True` removes ignored positions (prompt, padding)
    before the LM head, saving their FLOPs at the cost of one host synchronisation.
    """
    weight = lm_head_weight(model)
    hidden, aux = causal_lm_hidden(model, input_ids, attention_mask)
    flat_hidden, flat_labels = shift_for_next_token(hidden, labels)
    if drop_ignored:
        flat_labels, flat_hidden = _keep_labelled(flat_labels, flat_hidden)
    reduction = "mean" if num_items_in_batch is None else "sum"
    loss = fused_linear_cross_entropy(
        flat_hidden.to(weight.dtype),
        weight,
        flat_labels,
        reduction=reduction,
        impl=impl,
        dw_accumulation=dw_accumulation,
    )
    if num_items_in_batch is not None:
        loss = loss / num_items_in_batch
    return loss if aux is None else loss + aux.to(loss.dtype)


def eager_causal_lm_loss(
    model: torch.nn.Module,
    input_ids: torch.Tensor,  # [B, T]
    attention_mask: torch.Tensor | None,  # [B, T]
    labels: torch.Tensor,  # [B, T]
    *,
    num_items_in_batch: int | torch.Tensor | None = None,
) -> torch.Tensor:
    """The model's own loss with full logits (`kernels=eager`): the baseline the fused loss must equal."""
    kwargs = {} if num_items_in_batch is None else {"num_items_in_batch": num_items_in_batch}
    return model(
        input_ids=input_ids, attention_mask=attention_mask, labels=labels, use_cache=False, **kwargs
    ).loss


def fused_causal_lm_distill_loss(
    student: torch.nn.Module,
    teacher: torch.nn.Module,
    input_ids: torch.Tensor,  # [B, T], the same tokens for both (tokenizers must match)
    attention_mask: torch.Tensor | None,  # [B, T]
    labels: torch.Tensor,  # [B, T], -100 where ignored (prompt, padding)
    *,
    divergence: str = "forward_kl",
    beta: float = 0.5,
    temperature: float = 1.0,
    hard_weight: float = 0.0,
    impl: str = "auto",
    drop_ignored: bool = False,
    dw_accumulation: str = "fp32",
    fp32_logits: bool = True,
) -> torch.Tensor:
    """Logit distillation of `teacher` into `student` on next-token positions (+ the student's MoE aux loss).

    The teacher runs under `torch.no_grad()`; see `fused_linear_distillation` for the loss and its arguments.
    """
    s_weight, t_weight = lm_head_weight(student), lm_head_weight(teacher)
    _check_same_vocab(s_weight.shape[0], t_weight.shape[0])
    s_hidden, aux = causal_lm_hidden(student, input_ids, attention_mask)
    with torch.no_grad():
        t_hidden, _ = causal_lm_hidden(teacher, input_ids, attention_mask)
    s_flat, flat_labels = shift_for_next_token(s_hidden, labels)
    t_flat, _ = shift_for_next_token(t_hidden, labels)
    if drop_ignored:
        flat_labels, s_flat, t_flat = _keep_labelled(flat_labels, s_flat, t_flat)
    loss = fused_linear_distillation(
        s_flat.to(s_weight.dtype), s_weight, t_flat.to(t_weight.dtype), t_weight, flat_labels,
        divergence=divergence, beta=beta, temperature=temperature, hard_weight=hard_weight, impl=impl,
        dw_accumulation=dw_accumulation, fp32_logits=fp32_logits,
    )  # fmt: skip
    return loss if aux is None else loss + aux.to(loss.dtype)


def eager_causal_lm_distill_loss(
    student: torch.nn.Module,
    teacher: torch.nn.Module,
    input_ids: torch.Tensor,  # [B, T]
    attention_mask: torch.Tensor | None,  # [B, T]
    labels: torch.Tensor,  # [B, T]
    *,
    divergence: str = "forward_kl",
    beta: float = 0.5,
    temperature: float = 1.0,
    hard_weight: float = 0.0,
) -> torch.Tensor:
    """The same loss from both models' full `[B, T, V]` logits (`kernels=eager`)."""
    s_out = student(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    with torch.no_grad():
        t_logits = teacher(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
    _check_same_vocab(s_out.logits.shape[-1], t_logits.shape[-1])
    vocab = s_out.logits.shape[-1]
    loss = reference_distillation_from_logits(
        s_out.logits[:, :-1].reshape(-1, vocab), t_logits[:, :-1].reshape(-1, vocab), labels[:, 1:].reshape(-1),
        divergence=divergence, beta=beta, temperature=temperature, hard_weight=hard_weight,
    )  # fmt: skip
    aux = getattr(s_out, "aux_loss", None)
    return loss if aux is None else loss + router_aux_coef(student) * aux.to(loss.dtype)


def _check_same_vocab(student_vocab: int, teacher_vocab: int) -> None:
    if student_vocab != teacher_vocab:
        raise ValueError(
            f"student and teacher output vocabularies differ ({student_vocab} vs {teacher_vocab}): "
            "logit distillation needs the same tokenizer and embedding size"
        )


# `kernels=fused|eager` in the SFT / distillation configs picks one of these; each pair shares its call signature.
LM_LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "fused": fused_causal_lm_loss,
    "eager": eager_causal_lm_loss,
}
DISTILL_LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "fused": fused_causal_lm_distill_loss,
    "eager": eager_causal_lm_distill_loss,
}


@dataclass(frozen=True)
class KernelSpec:
    """``kernels`` ("fused" | "eager") with the fused path's options (config: ``kernels`` + ``fused_kernels``).

    `dw_accumulation`: "fp32" (exact chunk sum, 4·V·H extra bytes) or "weight" (the weight's dtype, as Liger;
    peak dX + dW + the chunk budget). `fp32_logits`: distillation keeps each chunk's logits in fp32 (about 6x
    lower bf16 error, 10 bytes per logit of chunk buffers). Both are ignored by the eager losses.
    """

    name: str = "eager"
    dw_accumulation: str = "fp32"
    fp32_logits: bool = True


def kernel_spec(kernels: str | KernelSpec) -> KernelSpec:
    """A bare name means that path with the default options."""
    return kernels if isinstance(kernels, KernelSpec) else KernelSpec(kernels)


def _pick(registry: dict[str, Callable[..., torch.Tensor]], kernels: str) -> Callable[..., torch.Tensor]:
    if kernels not in registry:
        raise ValueError(f"unknown kernels {kernels!r}; choose one of: {', '.join(registry)}")
    return registry[kernels]


def causal_lm_loss_fn(kernels: str | KernelSpec) -> Callable[..., torch.Tensor]:
    """`(model, input_ids, attention_mask, labels, *, num_items_in_batch=None) -> loss` for `kernels`."""
    spec = kernel_spec(kernels)
    fn = _pick(LM_LOSSES, spec.name)
    return functools.partial(fn, dw_accumulation=spec.dw_accumulation) if spec.name == "fused" else fn


def causal_lm_distill_loss_fn(kernels: str | KernelSpec) -> Callable[..., torch.Tensor]:
    """`(student, teacher, input_ids, attention_mask, labels, *, divergence, beta, temperature, hard_weight)`."""
    spec = kernel_spec(kernels)
    fn = _pick(DISTILL_LOSSES, spec.name)
    if spec.name != "fused":
        return fn
    return functools.partial(fn, dw_accumulation=spec.dw_accumulation, fp32_logits=spec.fp32_logits)
