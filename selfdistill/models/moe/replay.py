"""Routing replay (R2): record which experts each token used in one forward, force the same experts in another.

Why: in an MoE policy about 10% of a token's experts change after a gradient step (GSPO paper), so the
log-probabilities of the policy being trained and of the policy that scored the samples come from different
sub-networks, and the importance ratios drift for reasons that have nothing to do with the update. Replaying the
old policy's routing in the training forward removes that source of drift (verl, slime, ROLL, NeMo-RL do this;
TRL does not).

How (model-level, no fork of TRL or transformers): a forward hook on every router module of the model (all
transformers-5 MoE routers return `(router_logits (N, E), weights (N, k), indices (N, k))`, see `archs.py`).
- `record`: the hook stores `indices` per layer; one top-level forward of a (b, T) batch yields (b, L, T, k).
- `replay`: the hook replaces `indices` by the recorded ones and recomputes their `weights` from the *current*
  router logits with the architecture's own rule, so the router still gets gradients for the replayed experts.
  The experts the router would have chosen are compared with the forced ones to give the routing change rate.
- `compare`: like replay, but only measures the change rate; the model routes as it likes.
Rows are consumed in order, one top-level forward at a time, so a record of a whole generation batch can be
replayed in chunks, in another order (the TRL integration stores it as a batch-first tensor that TRL's own
shuffling and splitting carry along with the batch). The forced routing of a forward stays in place until the
next top-level forward starts, so gradient-checkpoint recomputation during backward replays it too.

    rr = RoutingReplay(model)
    with torch.no_grad(), rr.recording():
        old = model(input_ids=ids, attention_mask=mask)
    routing = rr.take_record()                    # (B, L, T, k) int16
    with rr.replaying(routing):
        new = model(input_ids=ids, attention_mask=mask)
    rr.change_metrics()                           # {'moe/routing_change_rate': 0.0, ...}
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from .archs import arch_of
from .diagnostics import ForwardScope, change_rate_metrics, routing_changes, scope_module, token_mask
from .routers import find_routers

MODES = ("off", "record", "replay", "compare")


def routing_dtype(num_experts: int) -> torch.dtype:
    """Smallest integer dtype for expert ids: a (B, L, T, k) record of a real model is large."""
    return torch.uint8 if num_experts <= 255 else torch.int16 if num_experts <= 32767 else torch.int32


class RoutingReplay:
    """Hooks on every router of `model` implementing the record / replay / compare modes."""

    def __init__(self, model: torch.nn.Module, prefix: str = "moe/"):
        self.arch = arch_of(model)
        self.routers = find_routers(model)
        self.layers = list(self.routers)  # position in a record -> decoder layer index
        self.num_experts = next(iter(self.routers.values())).num_experts
        self.top_k = next(iter(self.routers.values())).top_k
        self.dtype = routing_dtype(self.num_experts)
        self.prefix = prefix
        self.mode = "off"  # mode for the *next* top-level forward
        self.scope = ForwardScope()
        self._active = "off"  # mode of the current top-level forward
        self._chunks: list[torch.Tensor] = []  # recorded (b, L, T, k) chunks
        self._chunk: dict[int, torch.Tensor] = {}  # layer -> (b, T, k) of the current recording forward
        self._source: torch.Tensor | None = None  # (B, L, T, k) to replay
        self._cursor = 0
        self._forced: torch.Tensor | None = None  # (b, L, T, k) of the current replay forward
        self.reset_changes()
        base = scope_module(model)
        self._handles = [base.register_forward_pre_hook(self._pre_hook, with_kwargs=True)]
        for pos, (layer, router) in enumerate(self.routers.items()):
            self._handles.append(router.register_forward_hook(self._make_hook(layer, pos)))

    # ------------------------------------------------------------ modes
    @contextmanager
    def recording(self):
        """Record the routing of every forward in the body; collect it with `take_record()`."""
        self._chunks, self._chunk = [], {}
        with self._mode("record"):
            yield self

    @contextmanager
    def replaying(self, routing: torch.Tensor):
        """Force `routing` (B, L, T, k), rows consumed in order by the forwards in the body."""
        with self._source_for(routing), self._mode("replay"):
            yield self

    @contextmanager
    def comparing(self, routing: torch.Tensor):
        """Measure how the body's routing differs from `routing` (B, L, T, k) without forcing it."""
        with self._source_for(routing), self._mode("compare"):
            yield self

    @contextmanager
    def _mode(self, mode: str):
        if mode not in MODES:
            raise ValueError(f"unknown routing mode {mode!r}; choose one of: {', '.join(MODES)}")
        prev, self.mode = self.mode, mode
        try:
            yield
        finally:
            self.mode = prev

    @contextmanager
    def _source_for(self, routing: torch.Tensor):
        expected = (len(self.layers), self.top_k)
        if routing.dim() != 4 or (routing.shape[1], routing.shape[3]) != expected:
            raise ValueError(
                f"routing must be (B, L={expected[0]}, T, k={expected[1]}), got {tuple(routing.shape)}"
            )
        prev = (self._source, self._cursor)
        self._source, self._cursor = routing, 0
        try:
            yield
            consumed = self._cursor
        finally:
            self._source, self._cursor = prev
        if consumed != routing.shape[0]:
            raise RuntimeError(
                f"forwards used {consumed} of the {routing.shape[0]} recorded rows: batch mismatch"
            )

    def take_record(self) -> torch.Tensor:
        """The routing recorded by the last `recording()` body: (B, L, T, k), batch-first like the inputs."""
        self._flush_chunk()
        if not self._chunks:
            raise RuntimeError("nothing was recorded: run a forward inside `recording()` first")
        out, self._chunks = torch.cat(self._chunks, dim=0), []
        return out

    # ------------------------------------------------------------ change-rate counters
    def reset_changes(self) -> None:
        self.changed = dict.fromkeys(self.routers, 0)
        self.total = dict.fromkeys(self.routers, 0)

    def change_metrics(self, reset: bool = True) -> dict[str, float]:
        """`moe/routing_change_rate` (+ per layer) accumulated by replay/compare forwards since the last reset."""
        out = change_rate_metrics(self.changed, self.total, self.prefix)
        if reset:
            self.reset_changes()
        return out

    def on_policy_metrics(self) -> dict[str, float]:
        """Change-rate metrics of a forward that *is* the old policy's (an on-policy batch): 0 for every layer.

        When no optimizer step separates sampling from training, the training forward is the old-policy
        forward (TRL uses its detached log-probs as the old ones), so its routing cannot differ from the old
        routing; logging the 0 keeps `moe/routing_change_rate` averaged over every batch of a logging step.
        """
        return change_rate_metrics(
            dict.fromkeys(self.routers, 0), dict.fromkeys(self.routers, 1), self.prefix
        )

    # ------------------------------------------------------------ hooks
    def _flush_chunk(self) -> None:
        if self._chunk:
            missing = [layer for layer in self.layers if layer not in self._chunk]
            if missing:
                raise RuntimeError(f"recorded forward did not reach router layers {missing}")
            self._chunks.append(
                torch.stack([self._chunk[layer] for layer in self.layers], dim=1)
            )  # (b, L, T, k)
            self._chunk = {}

    def _pre_hook(self, module, args, kwargs):
        self.scope.pre_hook(module, args, kwargs)
        if self._active == "record":
            self._flush_chunk()
        self._active, self._forced = self.mode, None
        if self.mode in ("replay", "compare"):
            if self.scope.shape is None:
                raise RuntimeError(
                    "routing replay needs `input_ids` or `inputs_embeds` to know the batch shape"
                )
            b, t = self.scope.shape
            rows = self._source[self._cursor : self._cursor + b]  # (b, L, T, k)
            if rows.shape[0] != b or rows.shape[2] != t:
                raise RuntimeError(
                    f"forward of shape (B={b}, T={t}) does not match the recorded rows "
                    f"{self._cursor}:{self._cursor + b} of shape {tuple(self._source.shape)}"
                )
            self._forced, self._cursor = rows, self._cursor + b

    def _make_hook(self, layer: int, pos: int):
        def hook(module, args, output):
            mode = self._active
            if mode == "off":
                return None
            logits, weights, indices = output  # (N, E), (N, k), (N, k)
            first = self.scope.first_visit(layer)
            if mode == "record":
                b, t = self.scope.shape
                self._chunk[layer] = indices.detach().reshape(b, t, -1).to(self.dtype)
                return None
            forced = (
                self._forced[:, pos].reshape(-1, indices.shape[-1]).to(indices.device, indices.dtype)
            )  # (N, k)
            if forced.shape != indices.shape:
                raise RuntimeError(
                    f"layer {layer}: router chose {tuple(indices.shape)}, record has {tuple(forced.shape)}"
                )
            if first:  # count each forward once, not again in checkpoint recomputation
                keep = token_mask(self.scope.mask, indices.shape[0], indices.device)
                changed, total = routing_changes(indices, forced, self.num_experts, keep)
                self.changed[layer] += changed
                self.total[layer] += total
            if mode == "compare":
                return None
            return logits, self.arch.weights_fn(logits, forced, module), forced

        return hook

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
