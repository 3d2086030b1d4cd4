"""On-policy completions: the student samples a completion for each prompt of a trace batch.

The prompt of a row is its tokens before the first labelled one (`labels != -100`), so any SFT-style batch
(`input_ids`, `labels` with -100 on the prompt and on right padding) can be turned on-policy. The result is
the same kind of batch: prompt + sampled completion (up to and including EOS), labels on the completion,
right-padded. The teacher then scores every sampled token (GKD, Agarwal et al. 2024; on-policy distillation).
"""

from __future__ import annotations

import torch

IGNORE_INDEX = -100


def prompt_lengths(labels: torch.Tensor) -> torch.Tensor:
    """Tokens before the first labelled position of each row: `[B, T]` -> `[B]` (T when none is labelled)."""
    labelled = labels != IGNORE_INDEX  # [B, T]
    first = labelled.float().argmax(1)  # [B]
    return torch.where(labelled.any(1), first, torch.full_like(first, labels.shape[1]))


def completion_lengths(completion_ids: torch.Tensor, eos_id: int) -> torch.Tensor:
    """Sampled tokens per row up to and including the first EOS: `[B, N]` -> `[B]`."""
    is_eos = completion_ids == eos_id  # [B, N]
    first = is_eos.float().argmax(1)
    return torch.where(is_eos.any(1), first + 1, torch.full_like(first, completion_ids.shape[1]))


def left_pad(rows: list[torch.Tensor], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded `[B, P]` ids and attention mask of variable-length 1-d rows."""
    width = max(len(r) for r in rows)
    ids = rows[0].new_full((len(rows), width), pad_id)
    mask = torch.zeros_like(ids)
    for b, r in enumerate(rows):
        if len(r):
            ids[b, width - len(r):] = r
            mask[b, width - len(r):] = 1
    return ids, mask


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
        labels[b, len(p):n] = c
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
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The batch's prompts with completions sampled from ``student``: (input_ids, attention_mask, labels)."""
    plen = prompt_lengths(labels).tolist()
    prompts = [input_ids[b, :n] for b, n in enumerate(plen)]
    p_ids, p_mask = left_pad(prompts, pad_id)  # [B, P]
    was_training = student.training
    student.eval()
    try:
        gen = student.generate(
            input_ids=p_ids, attention_mask=p_mask, do_sample=True, temperature=temperature, top_p=1.0, top_k=0,
            max_new_tokens=max_new_tokens, pad_token_id=pad_id, eos_token_id=eos_id,
        )  # fmt: skip
    finally:
        student.train(was_training)
    completion = gen[:, p_ids.shape[1]:]  # [B, N]
    lengths = completion_lengths(completion, eos_id).tolist()
    return right_pad_batch(prompts, [completion[b, :n] for b, n in enumerate(lengths)], pad_id)
