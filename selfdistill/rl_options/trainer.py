"""`RLOptionsMixin`: dynamic sampling and pass-rate recording inside TRL's GRPOTrainer (trl 1.16).

Composed with the trainer class like the MoE mixin (`rl_options_class(GRPOTrainer or an MoE subclass, ...)`),
it overrides two TRL hooks:

- `_generate_and_score_completions` (dynamic sampling, `rl.dynamic_sampling`): after TRL generated and scored
  the generation batch, groups whose rewards are all equal (`dynamic_sampling.dead_groups`) are dropped and TRL's method is called again on
  fresh prompts (drawn from the refill pool: the train dataset, or the rows and difficulty weights given by
  `set_refill_pool`) until the batch is full or ``max_refills`` rounds were spent; a batch still short is
  topped up with dropped groups, so its size never changes. The sub-batches are merged by
  `dynamic_sampling.merge_batches` and ``num_items_in_batch`` is recomputed over every process. TRL gathers
  across processes inside that method, so every rank makes the same number of calls with the same number of
  prompts: the decision to refill, and the refill size, come from a gather. Logged per generation batch into
  ``self._metrics["train"]``: ``dynamic_sampling/dead_frac`` (groups of the first generation that were dead),
  ``refilled_frac`` (groups of the final batch that came from refills), ``dead_kept_frac`` (dead groups left in
  the final batch), ``refill_rounds``, ``sampled_groups_ratio`` (groups generated / groups trained on: the
  generation cost) and, when rows have a ``kind`` column, ``dead_frac/<kind>`` (e.g. math, code). TRL's own per-call metrics (reward, ``frac_reward_zero_std``, lengths) are averaged over
  the calls of a batch by its `log`.
- `_calculate_rewards`: keeps the batch's per-function rewards for the dead-group test and (difficulty
  filtering, ``correctness_columns`` set) records, per task id, the
  correctness rewards (the max of the math/code columns that apply) of this process's completions into
  ``prompt_observations`` for the pass-rate store (`difficulty.PassRates`); `stages.rl.train_rl` gathers them.

Merging: TRL's batch dict keys are listed in `dynamic_sampling.KNOWN_KEYS`; a key outside it (multimodal
inputs) is an error naming it.
"""

from __future__ import annotations

import math
import random

import torch

from selfdistill.rl_options.difficulty import Observation, observations, weighted_sample
from selfdistill.rl_options.dynamic_sampling import (
    dead_groups,
    group_rows,
    merge_batches,
    refill_size,
    select_rows,
)

METRIC_PREFIX = "dynamic_sampling/"


class RLOptionsMixin:
    """Mixin for TRL's GRPOTrainer; configure with the class attributes (see `rl_options_class`)."""

    ds_enabled: bool = False
    ds_max_refills: int = 0
    correctness_columns: tuple[int, ...] = ()  # reward_funcs indices of the correctness rewards (math, code)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(getattr(self, "_metrics", None), dict):
            raise TypeError(f"{type(self).__name__} has no TRL `_metrics` store to log dynamic sampling into")
        if (
            self.ds_enabled
            and getattr(self, "multi_objective_aggregation", "sum_then_normalize") != "sum_then_normalize"
        ):
            raise ValueError(
                "rl.dynamic_sampling needs multi_objective_aggregation='sum_then_normalize': with "
                "normalize_then_sum a group of equal rewards does not get zero advantages"
            )
        self._refill_rows: list[dict] | None = None  # None: draw from self.train_dataset
        self._refill_weights: list[float] | None = None
        self.prompt_observations: dict[str, list[float]] = {}  # task_id -> [n, s] seen by this process
        self._last_rewards: torch.Tensor | None = None  # (N_all, F) of the last `_calculate_rewards` call

    def set_refill_pool(self, rows: list[dict], weights: list[float] | None = None) -> None:
        """Draw refill prompts from ``rows`` (dataset rows), with odds proportional to ``weights`` (default: equal)."""
        if weights is not None and len(weights) != len(rows):
            raise ValueError(f"{len(weights)} refill weights for {len(rows)} rows")
        self._refill_rows, self._refill_weights = list(rows), weights

    # ------------------------------------------------------------ dynamic sampling
    def _generate_and_score_completions(self, inputs):
        if not self.ds_enabled or not self.model.training:
            return super()._generate_and_score_completions(inputs)
        size = self.num_generations
        if len(inputs) % size:
            raise ValueError(
                f"dynamic sampling needs whole groups on each process: {len(inputs)} rows is not a "
                f"multiple of num_generations={size}"
            )
        n_groups = len(inputs) // size
        first = super()._generate_and_score_completions(inputs)
        dead = dead_groups(self._local_rewards(len(inputs)), size)  # (n_groups,)
        parts = [select_rows(first, group_rows(torch.nonzero(~dead).flatten(), size))]
        have, refilled, rounds, sampled = int((~dead).sum()), 0, 0, n_groups
        live_total, groups_total = self._global_sum([have, n_groups])
        live_fraction = live_total / groups_total
        while rounds < self.ds_max_refills:
            need = n_groups - have
            global_need = self._global_max(need)
            if global_need == 0:
                break
            rounds += 1
            draw = refill_size(global_need, live_fraction, n_groups)  # the same on every rank
            sub = super()._generate_and_score_completions(self._draw_refill(draw, rounds))
            sampled += draw
            live = torch.nonzero(~dead_groups(self._local_rewards(draw * size), size)).flatten()
            live_total, drawn_total = self._global_sum([len(live), draw])
            live_fraction = live_total / drawn_total
            take = live[:need]
            if len(take):
                parts.append(select_rows(sub, group_rows(take, size)))
            have += len(take)
            refilled += len(take)
        topped_up = n_groups - have  # still short: dead groups of the first generation fill the batch
        if topped_up:
            parts.append(select_rows(first, group_rows(torch.nonzero(dead).flatten()[:topped_up], size)))
        merged = merge_batches(parts, self._tokenizer.pad_token_id)
        loss_mask = (
            merged["completion_mask"]
            if "tool_mask" not in merged
            else merged["completion_mask"] * merged["tool_mask"]
        )
        merged["num_items_in_batch"] = self.accelerator.gather(loss_mask.sum()).sum()
        self._log_dynamic_sampling(n_groups, int(dead.sum()), refilled, topped_up, rounds, sampled)
        self._log_dead_by_kind([x.get("kind") for x in inputs[::size]], dead.tolist())
        return merged

    def _log_dead_by_kind(self, kinds: list, dead: list[bool]) -> None:
        """``dynamic_sampling/dead_frac/<kind>`` over every process, when the rows carry a ``kind`` column."""
        from accelerate.utils import gather_object

        pairs = gather_object([(k, d) for k, d in zip(kinds, dead, strict=True) if k is not None])
        for kind in sorted({k for k, _ in pairs}):
            flags = [d for k, d in pairs if k == kind]
            self._metrics["train"][f"{METRIC_PREFIX}dead_frac/{kind}"].append(sum(flags) / len(flags))

    def _log_dynamic_sampling(
        self, n_groups: int, n_dead: int, refilled: int, topped_up: int, rounds: int, sampled: int
    ) -> None:
        total, dead, refill, kept_dead, drawn = self._global_sum(
            [n_groups, n_dead, refilled, topped_up, sampled]
        )
        metrics = self._metrics["train"]
        metrics[METRIC_PREFIX + "dead_frac"].append(dead / total)
        metrics[METRIC_PREFIX + "refilled_frac"].append(refill / total)
        metrics[METRIC_PREFIX + "dead_kept_frac"].append(kept_dead / total)
        metrics[METRIC_PREFIX + "refill_rounds"].append(float(rounds))
        metrics[METRIC_PREFIX + "sampled_groups_ratio"].append(drawn / total)

    def _global_sum(self, values: list[int | float]) -> list[float]:
        local = torch.tensor(values, dtype=torch.float64, device=self.accelerator.device)
        return self.accelerator.gather(local).view(-1, len(values)).sum(dim=0).tolist()

    def _global_max(self, value: int) -> int:
        local = torch.tensor([value], dtype=torch.long, device=self.accelerator.device)
        return int(self.accelerator.gather(local).max().item())

    def _draw_refill(self, n_prompts: int, round_: int) -> list[dict]:
        """``n_prompts`` distinct prompts from the refill pool, each repeated num_generations times (TRL's layout).
        Seeded by (seed, process, global step, round): the same draw after a resume, different prompts per rank."""
        rng = random.Random(
            f"refill-{self.args.seed}-{self.accelerator.process_index}-{self.state.global_step}-{round_}"
        )
        if self._refill_rows is None:
            n = len(self.train_dataset)
            picks = weighted_sample(n, [1.0] * n, n_prompts, rng)
            rows = [self.train_dataset[i] for i in picks]
        else:
            n = len(self._refill_rows)
            picks = weighted_sample(n, self._refill_weights or [1.0] * n, n_prompts, rng)
            rows = [self._refill_rows[i] for i in picks]
        if len(rows) < n_prompts:  # a pool smaller than the request: cycle through it
            rows = [rows[i % len(rows)] for i in range(n_prompts)]
        return [dict(row) for row in rows for _ in range(self.num_generations)]

    def _local_rewards(self, n_rows: int) -> torch.Tensor:
        """(n_rows,) this process's weighted total rewards of the last scored batch, NaN where no reward applied
        (TRL's sum, from the per-function rewards `_calculate_rewards` returned)."""
        per_func = self._last_rewards  # (N_all, F), every process's rows
        start = self.accelerator.process_index * n_rows
        local = per_func[start : start + n_rows]
        if local.shape[0] != n_rows:
            raise RuntimeError(f"expected {n_rows} scored rows on this process, TRL scored {local.shape[0]}")
        total = (local * self.reward_weights.to(local.device).unsqueeze(0)).nansum(dim=1)
        return total.masked_fill(torch.isnan(local).all(dim=1), float("nan"))

    # ------------------------------------------------------------ reward hook: dead groups, pass rates
    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)  # (N_all, F)
        self._last_rewards = rewards
        if self.correctness_columns and self.model.training:
            start = self.accelerator.process_index * len(prompts)
            local = rewards[start : start + len(prompts), list(self.correctness_columns)]  # (B, c), NaN = n/a
            if any("task_id" not in x for x in inputs):
                raise ValueError("difficulty filtering needs a `task_id` column in the RL dataset")
            for obs in observations(
                [x["task_id"] for x in inputs], [_correctness(row) for row in local.tolist()]
            ):
                entry = self.prompt_observations.setdefault(obs.task_id, [0.0, 0.0])
                entry[0] += obs.n
                entry[1] += obs.s
        return rewards

    def take_observations(self) -> list[Observation]:
        """This process's per-prompt observations since the last call (then cleared)."""
        out = [Observation(k, n, s) for k, (n, s) in self.prompt_observations.items()]
        self.prompt_observations = {}
        return out


def _correctness(values: list[float]) -> float | None:
    """One completion's correctness: the max of the correctness rewards that apply (not NaN), None if none."""
    known = [v for v in values if not math.isnan(v)]
    return max(known) if known else None


def rl_options_class(
    base: type,
    *,
    dynamic_sampling: bool = False,
    max_refills: int = 0,
    correctness_columns: tuple[int, ...] = (),
) -> type:
    """``base`` (TRL GRPOTrainer or a subclass, e.g. the MoE one) with the RL options mixed in; ``base`` itself
    when every option is off."""
    if not dynamic_sampling and not correctness_columns:
        return base
    if not hasattr(base, "_generate_and_score_completions"):
        raise ValueError(f"RL options need a GRPO-style trainer, not {base.__name__}")
    attrs = {
        "ds_enabled": dynamic_sampling,
        "ds_max_refills": max_refills,
        "correctness_columns": tuple(correctness_columns),
    }
    return type(f"RLOptions{base.__name__}", (RLOptionsMixin, base), attrs)
