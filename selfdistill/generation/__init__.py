"""Sampling for collect, eval, on-policy distillation and `selfdistill generate`, behind one registry of backends.

    from selfdistill.generation import sample
    samples = sample(model, tokenizer, prompts, n=4, temperature=0.8, max_new_tokens=64, batch_size=64, seed=0,
                     backend="auto", settings=cfg.generation)

Backends (`selfdistill.registries.GENERATION_BACKENDS`, chosen by ``generation.backend``):
  hf      static left-padded batches of `generate` (the reference; `hf.py`)
  paged   transformers' continuous batching with a paged KV cache (`paged.py`)
  vllm    vLLM's offline engine on the stage's checkpoint (`vllm_offline.py`, the ``vllm`` extra)
  auto    vllm on CUDA when installed, else paged where it is not slower, else hf (`core.resolve_backend`)

Importing this package imports neither torch nor transformers.
"""

from selfdistill.generation.core import (
    SampledIds,
    Samples,
    SamplingParams,
    SpecialTokens,
    prompt_ids,
    render,
    resolve_backend,
    sample,
    sample_ids,
    special_tokens,
)

__all__ = [
    "SampledIds",
    "Samples",
    "SamplingParams",
    "SpecialTokens",
    "prompt_ids",
    "render",
    "resolve_backend",
    "sample",
    "sample_ids",
    "special_tokens",
]
