"""Dense students merged from an MoE: each layer's MLP is the router-usage-weighted average of its experts.

    usage = expert_usage(moe, batches)                # {layer: (E,) share of routed token-slots}
    dense = merge_experts(moe, usage)                 # mixtral -> llama/mistral, qwen3_moe -> qwen3

The inverse of sparse upcycling (`selfdistill.models.upcycle`): the dense counterpart architecture
is the dense family an upcycling pair starts from (`upcycle.PAIRS`, read backwards), every non-MLP
weight (embeddings, attention, norms, LM head) is copied, and the MLP of layer l is
`sum_e u_le * expert_e` for gate, up and down projections alike, with `u_l` the share of routed
token-slots each expert took on the run's training prompts (uniform when no usage is given).
Averaging weights is exact when the experts are equal, so an upcycled model merged back before
training gives back the dense model's function (tested); after RL the experts differ and the merge
is the usage-weighted compromise, a starting point for distillation, not a lossless conversion.

Families whose MoE block has parts a single dense MLP cannot hold (Qwen2-MoE's gated shared expert)
are refused by name. `num_layers` cuts the result as `students[].source: layers` does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import torch

log = logging.getLogger(__name__)

# MoE config keys a dense config does not take (beside the model-naming keys upcycling drops too).
_MOE_ONLY = (
    "num_local_experts",
    "num_experts",
    "num_experts_per_tok",
    "router_jitter_noise",
    "output_router_logits",
    "router_aux_loss_coef",
    "moe_intermediate_size",
    "norm_topk_prob",
    "decoder_sparse_step",
    "mlp_only_layers",
    "shared_expert_intermediate_size",
)
_INTERMEDIATE = {
    "mixtral": "intermediate_size",
    "qwen3_moe": "moe_intermediate_size",
}  # the experts' width key


def dense_counterpart(moe_config) -> str:
    """The dense `model_type` an MoE config merges into (the upcycling pair read backwards)."""
    from selfdistill.models.upcycle import PAIRS

    moe_type = moe_config.model_type
    if moe_type not in _INTERMEDIATE:
        known = ", ".join(
            f"{m} -> {', '.join(p.dense for p in PAIRS.values() if p.moe == m)}" for m in _INTERMEDIATE
        )
        raise ValueError(
            f"cannot merge the experts of a {moe_type!r} model into one dense MLP exactly; supported: {known}"
        )
    if moe_type == "mixtral":  # Mistral has the sliding window, Llama not
        return "mistral" if getattr(moe_config, "sliding_window", None) else "llama"
    return next(p.dense for p in PAIRS.values() if p.moe == moe_type)


def dense_config(moe_config):
    """The dense config with every non-MLP setting of ``moe_config`` and the experts' MLP width."""
    from transformers import AutoConfig

    from selfdistill.models.upcycle import MODEL_NAMING_KEYS

    dense_type = dense_counterpart(moe_config)
    cfg = moe_config.to_dict()
    kwargs = {k: v for k, v in cfg.items() if k not in _MOE_ONLY and k not in MODEL_NAMING_KEYS}
    kwargs["intermediate_size"] = cfg[_INTERMEDIATE[moe_config.model_type]]
    if dense_type == "llama":
        kwargs.pop("sliding_window", None)
    return AutoConfig.for_model(dense_type, **kwargs)


@torch.no_grad()
def expert_usage(model, batches: Iterable[dict[str, torch.Tensor]]) -> dict[int, torch.Tensor]:
    """Share of routed token-slots per expert `(E,)` for each MoE layer, over ``batches`` (padding excluded)."""
    from selfdistill.models.moe.diagnostics import RouterRecorder

    recorder = RouterRecorder(model)
    was_training = model.training
    model.eval()
    try:
        with recorder.capture():
            for batch in batches:
                model(input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask"))
    finally:
        recorder.remove()
        model.train(was_training)
    usage = {}
    for layer, counts in recorder.counts.items():
        if counts.sum() <= 0:
            raise ValueError(
                f"no token was routed in layer {layer}: give expert_usage at least one non-empty batch"
            )
        usage[layer] = counts / counts.sum()
    return usage


def _experts(block) -> tuple[torch.Tensor, torch.Tensor]:
    """(gate_up (E, 2I, H), down (E, H, I)) of a transformers-5 fused experts module."""
    experts = block.experts
    return experts.gate_up_proj, experts.down_proj


@torch.no_grad()
def merge_experts(moe, usage: dict[int, torch.Tensor] | None = None):
    """The dense counterpart of ``moe`` whose MLPs are usage-weighted expert averages (``moe`` untouched)."""
    from transformers import AutoModelForCausalLM

    config = dense_config(moe.config)
    dtype = next(moe.parameters()).dtype
    dense = AutoModelForCausalLM.from_config(config, dtype=dtype)
    moe_state = moe.state_dict()
    filled: set[str] = set()
    for name, param in dense.named_parameters(remove_duplicate=False):
        if name in moe_state and moe_state[name].shape == param.shape:  # embeddings, attention, norms, head
            param.copy_(moe_state[name])
            filled.add(name)
    for i, layer in enumerate(dense.model.layers):
        gate_up, down = _experts(moe.model.layers[i].mlp)
        n_experts = gate_up.shape[0]
        weights = usage[i] if usage is not None else torch.full((n_experts,), 1.0 / n_experts)
        if weights.shape != (n_experts,) or abs(float(weights.sum()) - 1.0) > 1e-4:
            raise ValueError(
                f"usage of layer {i} must be {n_experts} shares summing to 1, got {weights.tolist()}"
            )
        w = weights.to(gate_up)
        merged_gate_up = torch.einsum("e,eij->ij", w, gate_up)  # (2I, H)
        inter = merged_gate_up.shape[0] // 2
        layer.mlp.gate_proj.weight.copy_(merged_gate_up[:inter])
        layer.mlp.up_proj.weight.copy_(merged_gate_up[inter:])
        layer.mlp.down_proj.weight.copy_(torch.einsum("e,eij->ij", w, down))  # (H, I)
        filled.update(f"model.layers.{i}.mlp.{p}.weight" for p in ("gate_proj", "up_proj", "down_proj"))
    tied = getattr(dense.config, "tie_word_embeddings", False)
    left = [
        n
        for n, _ in dense.named_parameters(remove_duplicate=False)
        if n not in filled and not (tied and n == "lm_head.weight")
    ]
    if left:
        raise RuntimeError(
            f"merging {moe.config.model_type} -> {config.model_type} left parameters unset: {left[:6]}"
        )
    dense.generation_config = moe.generation_config
    return dense.eval()
