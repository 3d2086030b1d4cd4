"""TRL integration: router diagnostics for any trainer, routing measurement and replay for GRPOTrainer.

No fork of TRL: `moe_trainer_class(base, routing=...)` returns a subclass of a TRL trainer (GRPOTrainer,
SFTTrainer, ...) that overrides three hooks of trl 1.16 (the two private ones through `selfdistill.trl_private`,
the one module that names TRL internals):

- `compute_loss`: the training forward runs with a `RouterRecorder` capturing expert load and router entropy,
  and (GRPO, routing != "off") inside `RoutingReplay.replaying/comparing` of the batch's recorded routing.
  Metrics go to `self._metrics[mode]["moe/..."]`, which TRL's own `log` averages and sends to W&B.
- `sample_and_score` (GRPO; TRL's `_generate_and_score_completions`): records the routing of the old-policy log-prob
  pass, which TRL runs when samples can be off-policy (a generation batch outlives an optimizer step). The record
  goes into the batch dict as `moe_routing` (B, L, T, k), batch-first, so TRL's shuffle and `steps_per_generation`
  split carry it with its rows and gradient accumulation / num_iterations > 1 replay the right routing.
  On-policy (every forward on the batch runs at the weights that sampled it) TRL skips that pass and takes the
  training forward's own detached log-probs as the old ones; the routing follows the same rule: the training
  forward *is* the old-policy forward, so there is nothing to record or force, no extra pass is run, and its
  change rate is 0 by construction (logged as such, `RoutingReplay.on_policy_metrics`). An extra no-grad pass
  here used to take 23% of the demo's RL training loop (py-spy, docs/benchmarks.md) to measure that 0.
- `score_tokens` (GRPO; TRL's `_get_per_token_logps_and_entropies`): inside generation, records the first scoring pass (the old-policy
  one, which TRL runs before the reference pass).

routing: "off" (plain TRL), "measure" (log `moe/routing_change_rate` between the sampling-time and training-time
routing, no forcing), "replay" (R2: force the recorded experts and log the same rate, counted as what the router
would have chosen vs what was forced).

    GRPO = make_grpo_trainer_class(replay=True)
    trainer = GRPO(model=model, reward_funcs=[f], args=GRPOConfig(..., router_aux_loss_coef=rl_aux_loss_coef()),
                   train_dataset=ds, processing_class=tok)
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

from selfdistill.trl_private import GRPOHooks, has_metrics_store, is_grpo_style, push_metric

from .diagnostics import RouterRecorder
from .replay import RoutingReplay

ROUTING_MODES = ("off", "measure", "replay")
ROUTING_KEY = "moe_routing"


class MoETrainerMixin:
    """Mixin for TRL trainers; configure with the class attributes (see `moe_trainer_class`)."""

    moe_routing: str = "off"
    moe_diagnostics: bool = True
    moe_log_expert_load: bool = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.moe_routing not in ROUTING_MODES:
            raise ValueError(
                f"unknown moe_routing {self.moe_routing!r}; choose one of: {', '.join(ROUTING_MODES)}"
            )
        if not has_metrics_store(self):
            raise TypeError(f"{type(self).__name__} has no TRL `_metrics` store to log MoE metrics into")
        if self.moe_routing != "off" and not is_grpo_style(type(self)):
            raise ValueError(
                f"moe_routing={self.moe_routing!r} needs a GRPO-style trainer, not {type(self).__name__}"
            )
        # Replay hooks first: hooks run in registration order, so the recorder then sees the experts actually used.
        self._moe_replay = RoutingReplay(self.model) if self.moe_routing != "off" else None
        self._moe_recorder = (
            RouterRecorder(self.model, log_expert_load=self.moe_log_expert_load)
            if self.moe_diagnostics
            else None
        )
        self._moe_scoring: str | None = None  # "first" while the old-policy pass is expected
        self._moe_pending: torch.Tensor | None = None  # routing recorded by that pass

    # ------------------------------------------------------------ training forward
    def compute_loss(self, model, inputs, *args, **kwargs):
        routing = inputs.get(ROUTING_KEY) if isinstance(inputs, dict) else None
        if routing is not None:  # copy: TRL reuses the buffered batch when num_iterations > 1
            inputs = {key: value for key, value in inputs.items() if key != ROUTING_KEY}
        mode = "train" if self.model.training else "eval"
        measuring = self._moe_replay is not None and mode == "train"
        if measuring and routing is not None:
            ctx = (
                self._moe_replay.replaying if self.moe_routing == "replay" else self._moe_replay.comparing
            )(routing)
        else:  # no record: an on-policy batch (see `sample_and_score`), or eval
            ctx = nullcontext()
        rec = (
            self._moe_recorder.capture()
            if self._moe_recorder is not None and mode == "train"
            else nullcontext()
        )
        with ctx, rec:
            loss = super().compute_loss(model, inputs, *args, **kwargs)
        self._moe_push_metrics(mode, on_policy=measuring and routing is None)
        return loss

    def _moe_push_metrics(self, mode: str, on_policy: bool = False) -> None:
        metrics = {}
        if self._moe_recorder is not None:
            metrics.update(self._moe_recorder.summary())
        if self._moe_replay is not None:
            metrics.update(
                self._moe_replay.on_policy_metrics() if on_policy else self._moe_replay.change_metrics()
            )
        for key, value in metrics.items():  # TRL's `log` averages these per logging step
            push_metric(self, mode, key, value)

    # ------------------------------------------------------------ GRPO: record routing of the old-policy pass
    def sample_and_score(self, inputs):
        if self._moe_replay is None or not self.model.training:
            return super().sample_and_score(inputs)
        self._moe_scoring, self._moe_pending = "first", None
        try:
            output = super().sample_and_score(inputs)
        finally:
            self._moe_scoring = None
        routing, self._moe_pending = self._moe_pending, None
        if output.get("old_per_token_logps") is None:
            # On-policy: TRL skipped the old-policy pass because the weights cannot change before this batch's
            # last forward; its training forward is the old-policy forward (TRL takes its detached log-probs as
            # the old ones), so its routing is the old routing: no record to carry (a first pass recorded here
            # was the reference model's, beta > 0).
            return output
        if routing is None:
            raise RuntimeError(
                "TRL computed old-policy log-probs without routing them through the policy's routers: "
                "nothing to record for routing measure/replay"
            )
        output[ROUTING_KEY] = routing.to(output["completion_ids"].device)
        return output

    def score_tokens(self, *args, **kwargs):
        if self._moe_scoring != "first":
            return super().score_tokens(*args, **kwargs)
        self._moe_scoring = "done"
        with self._moe_replay.recording():
            result = super().score_tokens(*args, **kwargs)
        try:
            self._moe_pending = self._moe_replay.take_record()
        except RuntimeError:  # the first pass ran on a separate reference model: nothing of ours was routed
            self._moe_pending = None
        return result


def moe_trainer_class(
    base: type, routing: str = "off", diagnostics: bool = True, log_expert_load: bool = False
) -> type:
    """A subclass of the TRL trainer `base` with MoE diagnostics and (GRPO only) routing measure/replay."""
    if routing not in ROUTING_MODES:
        raise ValueError(f"unknown routing {routing!r}; choose one of: {', '.join(ROUTING_MODES)}")
    if routing != "off" and not is_grpo_style(base):
        raise ValueError(
            f"routing={routing!r} needs a GRPO-style trainer, not {base.__name__}; use routing='off'"
        )
    name = f"MoE{base.__name__}" + ("" if routing == "off" else f"_{routing}")
    attrs = {"moe_routing": routing, "moe_diagnostics": diagnostics, "moe_log_expert_load": log_expert_load}
    hooks = (GRPOHooks,) if is_grpo_style(base) and not issubclass(base, GRPOHooks) else ()
    return type(name, (MoETrainerMixin, *hooks, base), attrs)


def make_grpo_trainer_class(replay: bool, measure: bool = True, diagnostics: bool = True) -> type:
    """GRPOTrainer subclass: `replay=True` forces the old policy's experts (R2); otherwise routing is only
    measured (`measure=True`, logs `moe/routing_change_rate`) or left alone."""
    from trl import GRPOTrainer

    routing = "replay" if replay else "measure" if measure else "off"
    return moe_trainer_class(GRPOTrainer, routing=routing, diagnostics=diagnostics)


def make_sft_trainer_class(diagnostics: bool = True) -> type:
    """SFTTrainer subclass that logs router diagnostics."""
    from trl import SFTTrainer

    return moe_trainer_class(SFTTrainer, routing="off", diagnostics=diagnostics)
