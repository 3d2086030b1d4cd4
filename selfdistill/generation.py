"""Batched sampling with Hugging Face `generate` (the default rollout engine for collect and eval).

`sample(...)` returns ``n`` completions per prompt plus throughput figures. Prompts are
tokenized once by `prompt_ids` (the tokens training sees too), sorted by length to waste little padding,
and generated in batches of ``batch_size`` sequences with left padding. Sampling is seeded
per call so a chunk re-run after a crash reproduces the same completions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any


@dataclass
class Samples:
    completions: list[list[str]]  # [num_prompts][n]
    new_tokens: int
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0


def render(tokenizer, prompt: Any) -> str:
    """Prompt text as the model sees it: plain strings as-is, messages via the chat template."""
    if isinstance(prompt, str):
        return prompt
    return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)


def prompt_ids(tokenizer, prompts: list[Any]) -> list[list[int]]:
    """Token ids of rendered prompts (`tasks.base.render_prompt`), exactly as TRL's GRPOTrainer makes them.

    Chat messages: the chat template's text (with the generation prompt) without added special tokens (the
    template writes its own); plain strings: the tokenizer's own special tokens (a BOS where it adds one), as
    ``processing_class(text=...)`` does in TRL. Sampling (`sample`), RL (TRL) and SFT/distillation
    (`stages.sft.tokenize_rows`) therefore see the same prompt tokens.
    """
    chat = [i for i, p in enumerate(prompts) if not isinstance(p, str)]
    plain = [i for i, p in enumerate(prompts) if isinstance(p, str)]
    out: list[list[int]] = [[] for _ in prompts]
    if chat:
        texts = [render(tokenizer, prompts[i]) for i in chat]
        for i, ids in zip(chat, tokenizer(texts, add_special_tokens=False)["input_ids"]):
            out[i] = ids
    if plain:
        for i, ids in zip(plain, tokenizer([prompts[i] for i in plain])["input_ids"]):
            out[i] = ids
    return out


def sample(model, tokenizer, prompts: list[Any], *, n: int, temperature: float, top_p: float = 1.0,
           max_new_tokens: int, batch_size: int, seed: int, progress: str | None = None) -> Samples:
    """``n`` samples for each prompt; greedy when ``temperature == 0``."""
    import torch
    from tqdm.auto import tqdm

    ids = prompt_ids(tokenizer, prompts)
    jobs = [(i, j) for i in range(len(ids)) for j in range(n)]
    jobs.sort(key=lambda ij: len(ids[ij[0]]))
    out: list[list[str]] = [[""] * n for _ in ids]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    generator_seed = torch.random.initial_seed()
    torch.manual_seed(seed)
    new_tokens, start = 0, time.perf_counter()
    eos = tokenizer.eos_token_id
    batches = range(0, len(jobs), batch_size)
    for b in tqdm(batches, desc=progress, disable=progress is None, leave=False):
        chunk = jobs[b : b + batch_size]
        enc = tokenizer.pad({"input_ids": [ids[i] for i, _ in chunk]}, padding=True, padding_side="left",
                            return_tensors="pt").to(device)  # (B, P) left-padded
        with torch.no_grad():
            gen = model.generate(
                **enc,
                do_sample=temperature > 0,
                temperature=temperature if temperature > 0 else None,
                top_p=top_p if temperature > 0 else None,
                top_k=0 if temperature > 0 else None,
                max_new_tokens=max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=eos,
            )
        completion_ids = gen[:, enc["input_ids"].shape[1] :]  # (B, T_new)
        lengths = _lengths(completion_ids, eos, tokenizer.pad_token_id)  # (B,)
        new_tokens += int(lengths.sum())
        decoded = tokenizer.batch_decode(completion_ids, skip_special_tokens=True)
        for (i, j), text in zip(chunk, decoded):
            out[i][j] = text
    torch.manual_seed(generator_seed)
    model.train(was_training)
    return Samples(out, new_tokens, time.perf_counter() - start)


def _lengths(ids, eos: int, pad: int):
    """Generated tokens per row: everything up to and including EOS (generate pads after it).

    ids: (B, T) -> (B,)
    """
    if pad == eos:  # cannot tell padding from the EOS itself; count up to the first EOS
        is_eos = ids == eos
        first = is_eos.float().argmax(1)
        return (first + 1).where(is_eos.any(1), first.new_full(first.shape, ids.shape[1]))
    return (ids != pad).sum(1)
