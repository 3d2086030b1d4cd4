"""DAPO's dynamic sampling (arXiv 2503.14476, section 3.2), the batch arithmetic.

A GRPO group whose rewards are all equal has all-zero advantages, so it adds nothing to the
policy gradient while still diluting the batch. Dynamic sampling drops such "dead" groups and
refills the generation batch with groups of fresh prompts. TRL 1.16 lacks it (trl #3708), so
`selfdistill.rl_options.trainer.RLOptionsMixin` calls TRL's `_generate_and_score_completions`
again for the refills and merges the sub-batches with the pure functions here:

- `dead_groups`: which groups of a batch carry no gradient (equal rewards);
- `select_rows`: the rows of a batch dict (every row-aligned tensor);
- `merge_batches`: sub-batches whose prompt and completion widths differ, padded as TRL pads
  (prompt-aligned tensors on the left, completion-aligned ones on the right, `moe_routing`
  split at the prompt/completion boundary and padded on each side);
- `refill_size`: how many fresh prompts the next refill round draws.

Batch dicts are the output of TRL's `_generate_and_score_completions` (trl 1.16), B rows:
``prompt_ids``/``prompt_mask`` (B, P), ``completion_ids``/``completion_mask`` and the per-token
log-prob tensors (B, C), ``advantages`` (B,), ``num_items_in_batch`` (scalar), ``moe_routing``
(B, L, P + C, k) when routing replay is on.
"""

from __future__ import annotations

import math

import torch

# key -> (side, pad value); side "prompt" = left-padded to the widest prompt, "completion" = right-padded.
# Pad values follow TRL's own padding (`tool_mask` is padded with 1 there); "pad" = the tokenizer's pad id.
PROMPT_KEYS = {"prompt_ids": "pad", "prompt_mask": 0}
COMPLETION_KEYS = {
    "completion_ids": "pad",
    "completion_mask": 0,
    "old_per_token_logps": 0.0,
    "ref_per_token_logps": 0.0,
    "sampling_per_token_logps": 0.0,
    "tool_mask": 1,
    "importance_sampling_ratio": 0.0,  # (B, C) in TRL's token modes, (B, 1) in its sequence modes
}
ROW_KEYS = ("advantages",)  # (B,) one value per row
ROUTING_KEY = "moe_routing"  # (B, L, P + C, k): the MoE mixin's recorded routing
RECOMPUTED_KEYS = ("num_items_in_batch",)  # batch totals: the caller recomputes them after merging
KNOWN_KEYS = (*PROMPT_KEYS, *COMPLETION_KEYS, *ROW_KEYS, ROUTING_KEY, *RECOMPUTED_KEYS)


def dead_groups(rewards: torch.Tensor, group_size: int, rtol: float = 1e-5) -> torch.Tensor:
    """(n_groups,) bool: True for a group whose rewards are all equal (then its advantages carry no gradient).

    ``rewards`` (B,) are the weighted total rewards, NaN for unscorable completions, in consecutive groups of
    ``group_size`` rows as TRL lays them out. Equal means a spread (max - min over the scorable rows) within
    ``rtol * (1 + max |r|)``: float32 sums such as 0 * 1.0 + 1 * 0.2 differ in the last bits, and TRL then hands
    such a group tiny non-zero advantages (about 1.5e-4 with group scaling) and counts it as non-zero std. A
    group with fewer than two scorable rows is dead too.
    """
    if rewards.dim() != 1 or rewards.numel() % group_size:
        raise ValueError(
            f"rewards must be (B,) with B a multiple of the group size {group_size}, "
            f"got shape {tuple(rewards.shape)}"
        )
    grouped = rewards.view(-1, group_size).double()  # (n_groups, G)
    finite = torch.isfinite(grouped)
    high = torch.where(finite, grouped, torch.full_like(grouped, -torch.inf)).max(dim=1).values
    low = torch.where(finite, grouped, torch.full_like(grouped, torch.inf)).min(dim=1).values
    scale = 1.0 + torch.where(finite, grouped.abs(), torch.zeros_like(grouped)).max(dim=1).values
    return (finite.sum(dim=1) < 2) | ((high - low) <= rtol * scale)


def group_rows(groups: torch.Tensor | list[int], group_size: int) -> torch.Tensor:
    """(len(groups) * group_size,) row indices of the given group indices, groups kept whole and in order."""
    groups = torch.as_tensor(groups, dtype=torch.long).reshape(-1)
    return (groups[:, None] * group_size + torch.arange(group_size)).reshape(-1)


def _check_keys(batch: dict) -> None:
    unknown = sorted(set(batch) - set(KNOWN_KEYS))
    if unknown:
        raise ValueError(
            f"dynamic sampling cannot merge batch key(s) {unknown} (multimodal or a newer TRL?); "
            f"it knows: {', '.join(KNOWN_KEYS)}. Turn rl.dynamic_sampling off for this setup."
        )


def select_rows(batch: dict, rows: torch.Tensor) -> dict:
    """The batch restricted to ``rows`` (every row-aligned tensor); batch totals are dropped (recompute them)."""
    _check_keys(batch)
    out = {}
    for key, value in batch.items():
        if key in RECOMPUTED_KEYS:
            continue
        out[key] = value[rows.to(value.device)]
    return out


def _pad_to(x: torch.Tensor, width: int, dim: int, value: float | int, left: bool) -> torch.Tensor:
    """``x`` padded with ``value`` along ``dim`` to ``width`` (on the left or the right)."""
    missing = width - x.shape[dim]
    if missing == 0:
        return x
    shape = list(x.shape)
    shape[dim] = missing
    fill = torch.full(shape, value, dtype=x.dtype, device=x.device)
    return torch.cat([fill, x] if left else [x, fill], dim=dim)


def _pad_routing(x: torch.Tensor, width: int, left: bool) -> torch.Tensor:
    """Routing (b, L, T, k) padded along T to ``width``; padded tokens get experts 0..k-1 (distinct, as
    top-k choices are; they are masked out of the loss and of the routing metrics)."""
    missing = width - x.shape[2]
    if missing == 0:
        return x
    b, n_layers, _, k = x.shape
    fill = torch.arange(k, dtype=x.dtype, device=x.device).expand(b, n_layers, missing, k)
    return torch.cat([fill, x] if left else [x, fill], dim=2)


def merge_batches(parts: list[dict], pad_token_id: int) -> dict:
    """One batch from sub-batches with different prompt widths P_i and completion widths C_i.

    Rows keep their order (part by part). Prompt-aligned tensors are left-padded to max P_i, completion-aligned
    ones right-padded to max C_i (TRL's layout), ``moe_routing`` (b, L, P_i + C_i, k) is split at each part's
    prompt width P_i and padded on both sides. ``num_items_in_batch`` is not produced: it spans every process,
    so the caller recomputes it (see `RLOptionsMixin`). Unknown keys raise ``ValueError``.
    """
    if not parts:
        raise ValueError("merge_batches needs at least one batch")
    keys = set(parts[0]) - set(RECOMPUTED_KEYS)
    for part in parts:
        _check_keys(part)
        if set(part) - set(RECOMPUTED_KEYS) != keys:
            raise ValueError(f"sub-batches have different keys: {sorted(keys)} vs {sorted(set(part))}")
    p_width = max(p["prompt_ids"].shape[1] for p in parts)
    c_width = max(p["completion_ids"].shape[1] for p in parts)
    out: dict = {}
    for key in sorted(keys):
        if key in PROMPT_KEYS:
            pad = pad_token_id if PROMPT_KEYS[key] == "pad" else PROMPT_KEYS[key]
            out[key] = torch.cat([_pad_to(p[key], p_width, 1, pad, left=True) for p in parts])
        elif key in COMPLETION_KEYS:
            pad = pad_token_id if COMPLETION_KEYS[key] == "pad" else COMPLETION_KEYS[key]
            if all(p[key].shape[1] == p["completion_ids"].shape[1] for p in parts):  # (b, C_i)
                out[key] = torch.cat([_pad_to(p[key], c_width, 1, pad, left=False) for p in parts])
            elif all(p[key].shape[1] == 1 for p in parts):  # (b, 1): one value per sequence
                out[key] = torch.cat([p[key] for p in parts])
            else:
                raise ValueError(
                    f"{key}: widths {[tuple(p[key].shape) for p in parts]} are neither the completion "
                    "widths nor 1"
                )
        elif key in ROW_KEYS:
            out[key] = torch.cat([p[key] for p in parts])
        elif key == ROUTING_KEY:
            out[key] = torch.cat([_merge_routing(p, p_width, c_width) for p in parts])
    return out


def _merge_routing(part: dict, p_width: int, c_width: int) -> torch.Tensor:
    routing = part[ROUTING_KEY]  # (b, L, P_i + C_i, k)
    p_i, c_i = part["prompt_ids"].shape[1], part["completion_ids"].shape[1]
    if routing.shape[2] != p_i + c_i:
        raise ValueError(
            f"{ROUTING_KEY} has {routing.shape[2]} positions, expected prompt {p_i} + completion {c_i}"
        )
    prompt_side = _pad_routing(routing[:, :, :p_i], p_width, left=True)
    completion_side = _pad_routing(routing[:, :, p_i:], c_width, left=False)
    return torch.cat([prompt_side, completion_side], dim=2)


def refill_size(need: int, live_fraction: float, batch_groups: int) -> int:
    """Prompts to draw for a refill round: enough to fill ``need`` groups at the ``live_fraction`` seen so far
    (at least ``need``; at most a whole generation batch of ``batch_groups`` prompts)."""
    if need <= 0:
        return 0
    guess = math.ceil(need / max(live_fraction, 1.0 / batch_groups))
    return max(need, min(guess, batch_groups))
