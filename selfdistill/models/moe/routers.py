"""Find the router (gate) module of every MoE layer, whatever the architecture.

A router is recognised by its class name from the architecture registry (`archs.py`), and keyed by the index of
the decoder layer it sits in (parsed from its module path, `...layers.<i>....`), so layer keys stay the same
under PEFT wrapping and gradient checkpointing. Dense layers (e.g. DeepSeek-V3's `first_k_dense_replace`,
Qwen's `mlp_only_layers`) simply have no entry.

    routers = find_routers(model)          # {layer_index: router_module}
    k, E = top_k(model), num_experts(model)
"""

from __future__ import annotations

import re

import torch

from .archs import arch_of

_LAYER_RE = re.compile(r"(?:^|\.)layers\.(\d+)\.")


def find_routers(model: torch.nn.Module) -> dict[int, torch.nn.Module]:
    """Map decoder-layer index -> router module, in layer order. Raises if the model has no known router."""
    arch = arch_of(model)
    routers: dict[int, torch.nn.Module] = {}
    for name, module in model.named_modules():
        if type(module).__name__ != arch.router_class:
            continue
        match = _LAYER_RE.search(name)
        if match is None:
            raise ValueError(f"router {name!r} is not under a `layers.<i>.` path; cannot key it by layer")
        layer = int(match.group(1))
        if layer in routers:
            raise ValueError(f"two routers found for layer {layer} (second: {name!r})")
        routers[layer] = module
    if not routers:
        raise ValueError(f"no {arch.router_class} module found in {type(model).__name__}")
    return dict(sorted(routers.items()))


def top_k(model: torch.nn.Module) -> int:
    """Experts chosen per token."""
    return next(iter(find_routers(model).values())).top_k


def num_experts(model: torch.nn.Module) -> int:
    """Routed experts per MoE layer."""
    return next(iter(find_routers(model).values())).num_experts


def router_parameters(model: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    """(name, parameter) of every router parameter (weight, and bias where the router has one)."""
    router_ids = {id(m) for m in find_routers(model).values()}
    out = []
    for name, module in model.named_modules():
        if id(module) in router_ids:
            out.extend((f"{name}.{p}", param) for p, param in module.named_parameters(recurse=False))
    return out


def expert_parameter_names(model: torch.nn.Module) -> list[str]:
    """Suffixes of the fused 3-D expert parameters, e.g. ['mlp.experts.gate_up_proj', 'mlp.experts.down_proj'].

    These are what PEFT's `target_parameters` matches (by suffix), since fused experts are not nn.Linear.
    """
    suffixes = set()
    for name, param in model.named_parameters():
        if param.ndim == 3 and ".experts." in name:
            match = _LAYER_RE.search(name)
            suffixes.add(name[match.end() :] if match else name)
    if not suffixes:
        raise ValueError(f"no fused 3-D expert parameters found in {type(model).__name__}")
    return sorted(suffixes)
