"""On-policy completions: the student samples a completion for each prompt of a trace batch.

The prompt of a row is its tokens before the first labelled one (`labels != -100`), so any SFT-style batch
(`input_ids`, `labels` with -100 on the prompt and on right padding) can be turned on-policy. The result is
the same kind of batch: prompt + sampled completion (up to and including EOS), labels on the completion,
right-padded. The teacher then scores every sampled token (GKD, Agarwal et al. 2024; on-policy distillation).
Sampling goes through `selfdistill.generation` (``generation.backend``; vLLM is ruled out: it cannot follow a
student whose weights change every step), seeded per batch.
"""

from __future__ import annotations

from typing import Any

import torch

IGNORE_INDEX = -100


def prompt_lengths(labels: torch.Tensor) -> torch.Tensor:
    """Tokens before the first labelled position of each row: `[B, T]` -> `[B]` (T when none is labelled)."""
    labelled = labels != IGNORE_INDEX  # [B, T]
    first = labelled.float().argmax(1)  # [B]
    return torch.where(labelled.any(1), first, torch.full_like(first, labels.shape[1]))


def right_pad_batch(prompts: list[torch.Tensor], completions: list[torch.Tensor], pad_id: int):
    """Right-padded `input_ids`, `attention_mask`, `labels` `[B, T]` of prompt + completion rows."""
    width = max(len(p) + len(c) for p, c in zip(prompts, completions))
    ids = prompts[0].new_full((len(prompts), width), pad_id)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, IGNORE_INDEX)
    for b, (p, c) in enumerate(zip(prompts, completions)):
        n = len(p) + len(c)
        ids[b, :n] = torch.cat([p, c])
        mask[b, :n] = 1
        labels[b, len(p) : n] = c
    return ids, mask, labels


@torch.no_grad()
def sample_on_policy(
    student,
    input_ids: torch.Tensor,  # [B, T]
    labels: torch.Tensor,  # [B, T], -100 on prompt and padding
    *,
    pad_id: int,
    eos_id: int,
    max_new_tokens: int,
    temperature: float,
    seed: int = 0,
    backend: str = "auto",
    settings: Any = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The batch's prompts with completions sampled from ``student``: (input_ids, attention_mask, labels)."""
    from selfdistill.generation import SamplingParams, SpecialTokens, sample_ids

    plen = prompt_lengths(labels).tolist()
    prompts = [input_ids[b, :n] for b, n in enumerate(plen)]
    params = SamplingParams(
        n=1, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed, batch_size=len(prompts)
    )
    got = sample_ids(
        student,
        [p.tolist() for p in prompts],
        params,
        SpecialTokens(eos=eos_id, pad=pad_id),
        backend=backend,
        settings=settings,
        training=True,
    )
    completions = [
        torch.tensor(c[0], dtype=input_ids.dtype, device=input_ids.device) for c in got.completions
    ]
    return right_pad_batch(prompts, completions, pad_id)
