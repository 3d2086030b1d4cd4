"""Router diagnostics: expert load, load imbalance, router entropy and routing change rate.

Pure functions on tensors (N = tokens in a forward, flattened batch x time; E = routed experts; k = top-k), plus
`RouterRecorder`, a small hook object that accumulates them over the training forwards of a logging window and
returns them as flat `moe/...` metrics for the trainer's normal `log` (so they reach W&B like any other metric).
Padding is excluded everywhere through the attention mask. The recorder reads what the router returns, so it
never needs `output_router_logits=True` in the config (which crashes `generate` in transformers 5.23).

    with RouterRecorder(model) as rec:
        model(input_ids=ids, attention_mask=mask)
    rec.summary()   # {'moe/load_imbalance': 1.4, 'moe/router_entropy': 1.9, 'moe/load_imbalance/layer_0': ...}
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .archs import arch_of
from .routers import find_routers


# ---------------------------------------------------------------- pure functions
def token_mask(mask: torch.Tensor | None, n: int, device: torch.device) -> torch.Tensor:
    """Flattened keep-mask (N,) bool from an attention mask (B, T) or None (keep all N tokens)."""
    if mask is None:
        return torch.ones(n, dtype=torch.bool, device=device)
    flat = mask.reshape(-1).to(device=device).bool()
    if flat.numel() != n:
        raise ValueError(f"mask has {flat.numel()} tokens but the router saw {n}")
    return flat


def expert_counts(indices: torch.Tensor, num_experts: int, keep: torch.Tensor | None = None) -> torch.Tensor:
    """Routed token-slots per expert. indices (N, k), keep (N,) bool -> counts (E,) float."""
    if keep is not None:
        indices = indices[keep]
    return torch.bincount(indices.reshape(-1).long(), minlength=num_experts).float()[:num_experts]


def expert_load(indices: torch.Tensor, num_experts: int, keep: torch.Tensor | None = None) -> torch.Tensor:
    """Fraction of routed token-slots each expert receives: (N, k) -> (E,), sums to 1 (0s if no token)."""
    counts = expert_counts(indices, num_experts, keep)
    return counts / counts.sum().clamp_min(1.0)


def load_imbalance(load: torch.Tensor) -> float:
    """max / mean of an expert-load vector (E,): 1.0 is perfectly balanced, E means one expert takes all."""
    mean = load.float().mean()
    return float(load.max() / mean) if mean > 0 else float("nan")


def router_entropy(probs: torch.Tensor, keep: torch.Tensor | None = None) -> float:
    """Mean per-token entropy (nats) of the router distribution probs (N, E) over kept tokens."""
    if keep is not None:
        probs = probs[keep]
    if probs.shape[0] == 0:
        return float("nan")
    ent = -(probs * probs.clamp_min(1e-30).log()).sum(dim=-1)  # (N,)
    return float(ent.mean())


def topk_overlap(a: torch.Tensor, b: torch.Tensor, num_experts: int) -> torch.Tensor:
    """Experts shared by two top-k choices of the same tokens, order-insensitive: (N, k), (N, k) -> (N,)."""
    set_a = F.one_hot(a.long(), num_experts).sum(dim=-2).clamp_max(1)  # (N, E)
    set_b = F.one_hot(b.long(), num_experts).sum(dim=-2).clamp_max(1)  # (N, E)
    return (set_a * set_b).sum(dim=-1)


def routing_changes(
    a: torch.Tensor, b: torch.Tensor, num_experts: int, keep: torch.Tensor | None = None
) -> tuple[int, int]:
    """(changed choices, total choices) between two routings (N, k) of the same kept tokens."""
    if a.shape != b.shape:
        raise ValueError(f"routings differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    if keep is not None:
        a, b = a[keep], b[keep]
    k = a.shape[-1]
    changed = (k - topk_overlap(a, b, num_experts)).sum()
    return int(changed), int(a.shape[0] * k)


def routing_change_rate(
    a: torch.Tensor, b: torch.Tensor, num_experts: int, keep: torch.Tensor | None = None
) -> float:
    """Fraction of top-k expert choices that differ between routings a and b (N, k) (order-insensitive)."""
    changed, total = routing_changes(a, b, num_experts, keep)
    return changed / total if total else float("nan")


def routing_change_rates(
    rec_a: dict[int, torch.Tensor],
    rec_b: dict[int, torch.Tensor],
    num_experts: int,
    keep: torch.Tensor | None = None,
) -> dict[int, float]:
    """Per-layer change rate between two routing records {layer: indices (N, k)} of the same tokens."""
    if rec_a.keys() != rec_b.keys():
        raise ValueError(f"records cover different layers: {sorted(rec_a)} vs {sorted(rec_b)}")
    return {layer: routing_change_rate(rec_a[layer], rec_b[layer], num_experts, keep) for layer in rec_a}


def change_rate_metrics(
    changed: dict[int, int], total: dict[int, int], prefix: str = "moe/"
) -> dict[str, float]:
    """Flat metrics from per-layer (changed, total) counters: overall rate and one per layer."""
    out = {}
    if total and sum(total.values()):
        out[f"{prefix}routing_change_rate"] = sum(changed.values()) / sum(total.values())
    for layer in sorted(total):
        if total[layer]:
            out[f"{prefix}routing_change_rate/layer_{layer}"] = changed[layer] / total[layer]
    return out


# ---------------------------------------------------------------- hook plumbing shared with replay.py
class ForwardScope:
    """Tracks the top-level forward the routers are running in: its (B, T), attention mask, and which layers
    have already been seen in it (so gradient-checkpoint recomputation in backward is not counted twice)."""

    def __init__(self):
        self.shape: tuple[int, int] | None = None
        self.mask: torch.Tensor | None = None
        self.seen: set[int] = set()
        self.serial = 0  # increments on every top-level forward

    def pre_hook(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is None and kwargs.get("inputs_embeds") is not None:
            ids = kwargs["inputs_embeds"][..., 0]
        self.shape = tuple(ids.shape[:2]) if ids is not None else None
        self.mask = kwargs.get("attention_mask")
        if self.mask is not None and (self.mask.dim() != 2 or tuple(self.mask.shape) != self.shape):
            self.mask = None  # 4-D or packed masks: keep every token
        self.seen = set()
        self.serial += 1

    def first_visit(self, layer: int) -> bool:
        if layer in self.seen:
            return False
        self.seen.add(layer)
        return True


def scope_module(model: torch.nn.Module) -> torch.nn.Module:
    """The module whose forward marks one model call: the decoder of the transformers model (under any PEFT
    wrapper). Not the causal-LM wrapper: the fused LM-head losses (`kernels.hf.causal_lm_hidden`) call the decoder
    directly, and a scope on the wrapper would never see their forwards (stale masks, layers never seen again)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = base.get_decoder() if hasattr(base, "get_decoder") else None
    return decoder if isinstance(decoder, torch.nn.Module) else base


# ---------------------------------------------------------------- recorder
class RouterRecorder:
    """Accumulates expert load and router entropy per layer over the forwards run while `active`.

    Attach once (hooks stay, and cost nothing while inactive); wrap the forwards to measure in `capture()`;
    call `summary()` at logging time (it resets the window).
    """

    def __init__(self, model: torch.nn.Module, prefix: str = "moe/", log_expert_load: bool = False):
        self.arch = arch_of(model)
        self.routers = find_routers(model)
        self.num_experts = next(iter(self.routers.values())).num_experts
        self.prefix = prefix
        self.log_expert_load = log_expert_load
        self.active = False
        self.scope = ForwardScope()
        self._handles = [scope_module(model).register_forward_pre_hook(self.scope.pre_hook, with_kwargs=True)]
        for layer, router in self.routers.items():
            self._handles.append(router.register_forward_hook(self._make_hook(layer)))
        self.reset()

    def reset(self) -> None:
        self.counts = {layer: torch.zeros(self.num_experts) for layer in self.routers}  # (E,) per layer
        self.entropy_sum = dict.fromkeys(self.routers, 0.0)
        self.tokens = dict.fromkeys(self.routers, 0)

    def _make_hook(self, layer: int):
        def hook(module, args, output):
            if not self.active or not self.scope.first_visit(layer):
                return None
            logits, _, indices = output  # (N, E), (N, k), (N, k)
            with torch.no_grad():
                keep = token_mask(self.scope.mask, indices.shape[0], indices.device)
                self.counts[layer] += expert_counts(indices, self.num_experts, keep).cpu()
                n = int(keep.sum())
                probs = self.arch.probs_fn(logits.detach())
                if n:
                    self.entropy_sum[layer] += router_entropy(probs, keep) * n
                self.tokens[layer] += n
            return None

        return hook

    def capture(self):
        return _Active(self)

    def __enter__(self):
        self.active = True
        return self

    def __exit__(self, *exc):
        self.active = False

    def summary(self, reset: bool = True) -> dict[str, float]:
        """Flat metrics over the window; empty if nothing was captured."""
        out: dict[str, float] = {}
        imbalances, entropies = [], []
        for layer in self.routers:
            if not self.tokens[layer]:
                continue
            load = self.counts[layer] / self.counts[layer].sum()
            imb, ent = load_imbalance(load), self.entropy_sum[layer] / self.tokens[layer]
            imbalances.append(imb)
            entropies.append(ent)
            out[f"{self.prefix}load_imbalance/layer_{layer}"] = imb
            out[f"{self.prefix}router_entropy/layer_{layer}"] = ent
            out[f"{self.prefix}max_load/layer_{layer}"] = float(load.max())
            out[f"{self.prefix}min_load/layer_{layer}"] = float(load.min())
            if self.log_expert_load:
                for e, v in enumerate(load.tolist()):
                    out[f"{self.prefix}expert_load/layer_{layer}/expert_{e}"] = v
        if imbalances:
            out[f"{self.prefix}load_imbalance"] = sum(imbalances) / len(imbalances)
            out[f"{self.prefix}router_entropy"] = sum(entropies) / len(entropies)
        if reset:
            self.reset()
        return out

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


class _Active:
    """Context manager that switches a hook object on for its body (re-entrant safe)."""

    def __init__(self, owner):
        self.owner = owner

    def __enter__(self):
        self.prev, self.owner.active = self.owner.active, True
        return self.owner

    def __exit__(self, *exc):
        self.owner.active = self.prev
