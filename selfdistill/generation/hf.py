"""The `hf` backend: Hugging Face `generate` in static, left-padded batches (the reference backend).

Sequences are sorted by prompt length (little padding) and generated ``batch_size`` at a time; each
batch runs until its longest member stops, so short completions wait for long ones. Works for any
`generate`-capable model on any device; the other backends are checked against it.
"""

from __future__ import annotations

from typing import Any

from selfdistill.generation.core import SamplingParams, SpecialTokens, decoding_kwargs, seeded


class HFBackend:
    name = "hf"

    def unavailable(self, model: Any, *, training: bool) -> str | None:
        if isinstance(model, str):
            return "needs a loaded model, got a checkpoint path"
        return None if hasattr(model, "generate") else f"{type(model).__name__} has no generate()"

    def generate(
        self,
        model,
        prompts: list[list[int]],
        params: SamplingParams,
        special: SpecialTokens,
        settings: Any,
        progress: str | None,
    ) -> list[list[list[int]]]:
        import torch
        from tqdm.auto import tqdm

        jobs = sorted(
            ((i, j) for i in range(len(prompts)) for j in range(params.n)), key=lambda ij: len(prompts[ij[0]])
        )
        out: list[list[list[int]]] = [[[] for _ in range(params.n)] for _ in prompts]
        device = next(model.parameters()).device
        kwargs = decoding_kwargs(params, special)
        was_training = model.training
        model.eval()
        try:
            with seeded(model, params.seed), torch.no_grad():
                for b in tqdm(
                    range(0, len(jobs), params.batch_size),
                    desc=progress,
                    disable=progress is None,
                    leave=False,
                ):
                    chunk = jobs[b : b + params.batch_size]
                    ids, mask = left_pad([prompts[i] for i, _ in chunk], special.pad)  # (B, P)
                    gen = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs)
                    for (i, j), row in zip(chunk, gen[:, ids.shape[1] :].tolist()):  # (B, T_new)
                        out[i][j] = row
        finally:
            model.train(was_training)
        return out


def left_pad(rows: list[list[int]], pad_id: int):
    """Left-padded ids and attention mask, both (B, P), of variable-length token lists."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for b, r in enumerate(rows):
        if r:
            ids[b, width - len(r) :] = torch.tensor(r, dtype=torch.long)
            mask[b, width - len(r) :] = 1
    return ids, mask
