"""Sparse upcycling: turn a dense decoder checkpoint into a transformers MoE that computes the same function.

    selfdistill upcycle runs/smollm2 runs/smollm2-moe4 --experts 4 --top-k 2     # llama -> mixtral

How (Komatsuzaki et al. 2022, "Sparse Upcycling"; Qwen1.5-MoE was built this way): every expert of
every layer starts as a copy of that layer's dense MLP, everything else (embeddings, attention,
norms, LM head) is copied as is. Whatever the router picks, the output is sum_k w_k * MLP(x) with
w_k the top-k routing weights; when the architecture renormalises them to sum to 1, that is MLP(x)
exactly. Mixtral always renormalises; Qwen2/3-MoE do when ``norm_topk_prob`` is True, which the
upcycled config sets. So the router may start anywhere: it starts small and random
(``router_std``), which keeps the function exact and makes different tokens pick different experts
(a zero router ties every logit, every token picks the same k experts, and the others never train;
and while experts are identical the router gets no gradient, so only distinct routing lets them
diverge). ``expert_noise`` perturbs the expert copies instead: that breaks the exactness, so it is
off unless asked for.

Supported pairs live in `PAIRS` (dense `model_type` -> MoE `model_type`); `--arch auto` picks the
registered target, anything else is an error that lists them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

log = logging.getLogger(__name__)

# Dense config keys that name the dense model and must not reach the MoE config.
MODEL_NAMING_KEYS = (
    "model_type",
    "architectures",
    "transformers_version",
    "_name_or_path",
    "_model_name_or_path",
    "auto_map",
    "dtype",
    "torch_dtype",
)


@dataclass(frozen=True)
class UpcyclePair:
    """How one dense family becomes one MoE family."""

    dense: str  # dense `model_type`
    moe: str  # MoE `model_type` (a transformers config class name below)
    config_class: str  # attribute of `transformers`
    moe_keys: Callable[[dict, int, int], dict]  # (dense config dict, experts, top_k) -> MoE-specific keys
    requires: dict = field(default_factory=dict)  # dense config values the MoE cannot express otherwise
    init_extra: Callable | None = None  # (MoE block, dense (gate, up, down)) -> names it set in the block


def _mixtral_keys(cfg: dict, experts: int, top_k: int) -> dict:
    return {
        "num_local_experts": experts,
        "num_experts_per_tok": top_k,
        "intermediate_size": cfg["intermediate_size"],
        "router_jitter_noise": 0.0,
        "output_router_logits": False,
    }


def _qwen3_moe_keys(cfg: dict, experts: int, top_k: int) -> dict:
    # norm_topk_prob=True: the top-k weights sum to 1, so identical experts give back the dense MLP
    return {
        "num_experts": experts,
        "num_experts_per_tok": top_k,
        "moe_intermediate_size": cfg["intermediate_size"],
        "norm_topk_prob": True,
        "decoder_sparse_step": 1,
        "mlp_only_layers": [],
        "output_router_logits": False,
    }


def _qwen2_moe_keys(cfg: dict, experts: int, top_k: int) -> dict:
    # Qwen2 always has q/k/v biases; Qwen2-MoE's shared expert starts silent (zero down projection)
    return {
        **_qwen3_moe_keys(cfg, experts, top_k),
        "qkv_bias": True,
        "shared_expert_intermediate_size": cfg["intermediate_size"],
    }


PAIRS: dict[str, UpcyclePair] = {}


def register_pair(pair: UpcyclePair) -> UpcyclePair:
    if pair.dense in PAIRS:
        raise ValueError(f"an upcycling target for {pair.dense!r} is already registered")
    PAIRS[pair.dense] = pair
    return pair


register_pair(
    UpcyclePair(
        "llama",
        "mixtral",
        "MixtralConfig",
        _mixtral_keys,
        requires={"attention_bias": False, "mlp_bias": False},
    )
)
register_pair(UpcyclePair("mistral", "mixtral", "MixtralConfig", _mixtral_keys))
register_pair(UpcyclePair("qwen3", "qwen3_moe", "Qwen3MoeConfig", _qwen3_moe_keys))


def _silent_shared_expert(block, mlp: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> list[str]:
    """Qwen2-MoE's shared expert: the dense MLP's input projections, a zero output projection (adds 0), gate 0."""
    gate, up, _ = mlp
    block.shared_expert.gate_proj.weight.copy_(gate)
    block.shared_expert.up_proj.weight.copy_(up)
    block.shared_expert.down_proj.weight.zero_()
    block.shared_expert_gate.weight.zero_()
    return [
        "shared_expert.gate_proj.weight",
        "shared_expert.up_proj.weight",
        "shared_expert.down_proj.weight",
        "shared_expert_gate.weight",
    ]


register_pair(
    UpcyclePair("qwen2", "qwen2_moe", "Qwen2MoeConfig", _qwen2_moe_keys, init_extra=_silent_shared_expert)
)


def target_pair(dense_type: str, arch: str = "auto") -> UpcyclePair:
    """The registered pair for ``dense_type``; ``arch`` (a MoE `model_type` or ``auto``) must agree with it."""
    pair = PAIRS.get(dense_type)
    supported = ", ".join(f"{p.dense} -> {p.moe}" for p in PAIRS.values())
    if pair is None:
        raise ValueError(f"cannot upcycle a {dense_type!r} model exactly; supported: {supported}")
    if arch not in ("auto", pair.moe):
        raise ValueError(
            f"cannot upcycle {dense_type} into {arch!r}; supported: {supported} (or --arch auto)"
        )
    return pair


def moe_config(dense_config, experts: int, top_k: int, arch: str = "auto"):
    """The MoE config whose every non-MLP setting equals ``dense_config``'s."""
    import transformers

    if experts < 1 or not 1 <= top_k <= experts:
        raise ValueError(f"need experts >= 1 and 1 <= top_k <= experts, got experts={experts}, top_k={top_k}")
    pair = target_pair(dense_config.model_type, arch)
    cfg = dense_config.to_dict()
    for key, want in pair.requires.items():
        if cfg.get(key, want) != want:
            raise ValueError(
                f"{pair.dense} -> {pair.moe} is exact only with {key}={want}; this model has {cfg[key]!r}"
            )
    kwargs = {k: v for k, v in cfg.items() if k not in MODEL_NAMING_KEYS}
    kwargs.update(pair.moe_keys(cfg, experts, top_k))
    return getattr(transformers, pair.config_class)(**kwargs)


def _mlp_of(dense_layer) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(gate (I, H), up (I, H), down (H, I)) of a SiLU-gated dense MLP."""
    mlp = dense_layer.mlp
    return mlp.gate_proj.weight, mlp.up_proj.weight, mlp.down_proj.weight


@torch.no_grad()
def upcycle_model(
    dense,
    experts: int,
    top_k: int,
    arch: str = "auto",
    router_std: float = 0.02,
    expert_noise: float = 0.0,
    seed: int = 0,
):
    """A MoE model equal in function to ``dense`` (see module docstring); ``dense`` is left untouched."""
    from transformers import AutoModelForCausalLM

    config = moe_config(dense.config, experts, top_k, arch)
    pair = target_pair(dense.config.model_type, arch)
    dtype = next(dense.parameters()).dtype
    moe = AutoModelForCausalLM.from_config(config, dtype=dtype)
    gen = torch.Generator().manual_seed(seed)
    dense_state = dense.state_dict()
    filled: set[str] = set()
    for name, param in moe.named_parameters(remove_duplicate=False):
        if name in dense_state:  # embeddings, attention, norms, LM head: same names in both families
            param.copy_(dense_state[name])
            filled.add(name)
    for i, layer in enumerate(moe.model.layers):
        gate, up, down = _mlp_of(dense.model.layers[i])
        block = layer.mlp
        gate_up = torch.cat([gate, up], dim=0)  # (2I, H): the experts' fused layout, gate rows first
        block.experts.gate_up_proj.copy_(gate_up.expand_as(block.experts.gate_up_proj))  # (E, 2I, H)
        block.experts.down_proj.copy_(down.expand_as(block.experts.down_proj))  # (E, H, I)
        if expert_noise > 0:
            for p in (block.experts.gate_up_proj, block.experts.down_proj):
                p.add_(torch.randn(p.shape, generator=gen).to(p) * expert_noise * p.std())
        block.gate.weight.copy_(torch.randn(block.gate.weight.shape, generator=gen) * router_std)  # (E, H)
        local = ["experts.gate_up_proj", "experts.down_proj", "gate.weight"]
        if pair.init_extra is not None:
            local += pair.init_extra(block, (gate, up, down))
        filled.update(f"model.layers.{i}.mlp.{s}" for s in local)
    left = [
        n for n, _ in moe.named_parameters(remove_duplicate=False) if n not in filled and not _tied(moe, n)
    ]
    if left:
        raise RuntimeError(f"upcycling {pair.dense} -> {pair.moe} left parameters uninitialised: {left[:6]}")
    moe.generation_config = dense.generation_config
    return moe.eval()


def _tied(model, name: str) -> bool:
    return name == "lm_head.weight" and getattr(model.config, "tie_word_embeddings", False)


def upcycle_checkpoint(
    dense_path: str | Path,
    out: str | Path,
    experts: int,
    top_k: int,
    arch: str = "auto",
    router_std: float = 0.02,
    expert_noise: float = 0.0,
    seed: int = 0,
) -> Path:
    """Load a dense checkpoint (directory, hub id or `.gguf`), upcycle it, save it with its tokenizer at ``out``."""
    from selfdistill.models.importing import load_source, save_plain

    dense, tokenizer = load_source(dense_path, "float32")
    moe = upcycle_model(
        dense, experts, top_k, arch, router_std=router_std, expert_noise=expert_noise, seed=seed
    )
    path = save_plain(moe, tokenizer, out, f"upcycle({dense_path}, experts={experts}, top_k={top_k})")
    log.info(
        "upcycled %s (%s, %d params) -> %s (%s, %d params)",
        dense_path,
        dense.config.model_type,
        dense.num_parameters(),
        path,
        moe.config.model_type,
        moe.num_parameters(),
    )
    return path
