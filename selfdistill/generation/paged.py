"""The `paged` backend: transformers' continuous batching with a paged KV cache (`init_continuous_batching`).

Requests join and leave the running batch token by token, so a finished completion frees its slot at
once instead of waiting for the longest one in a static batch, and the ``n`` samples of a prompt share
its prefill (forked requests share the prompt's cache pages). On a GPU this is where the speed is; on
CPU decoding is compute-bound and the gain comes only from not decoding padding (docs/benchmarks.md), and
only with `paged_attention`'s request-by-request attention (``generation.paged_varlen_attention``, on by
default): transformers' own SDPA path attends every request's queries to every request's keys under a
block-diagonal mask, which made paged 0.64-0.86x hf on one core.

Determinism: every request is queued *before* the generation thread starts, so the scheduler sees the
same queue on every run and the thread's seeded sampler (``ContinuousBatchingConfig.seed``) draws the
same tokens. The KV cache is sized from the workload (``batch_size`` sequences in flight, each up to
its prompt + ``max_new_tokens``), not from free memory: on CPU transformers would otherwise reserve
60% of RAM, and every forward's attention would scan that whole cache.
"""

from __future__ import annotations

import gc
import logging
import math
from typing import Any

from selfdistill.generation.core import SamplingParams, SpecialTokens, decoding_kwargs, seeded
from selfdistill.generation.paged_attention import attention_for

SUPPORTED_ATTENTION = ("sdpa", "eager", "paged|eager", "paged|sdpa")


class PagedBackend:
    name = "paged"

    def unavailable(self, model: Any, *, training: bool) -> str | None:
        if isinstance(model, str):
            return "needs a loaded model, got a checkpoint path"
        if not hasattr(model, "init_continuous_batching"):
            return f"{type(model).__name__} has no continuous batching (init_continuous_batching)"
        attn = getattr(model.config, "_attn_implementation", None) or "eager"
        if attn not in SUPPORTED_ATTENTION and "flash" not in attn:
            return f"attention implementation {attn!r} does not support a paged cache"
        if getattr(model.config.get_text_config(), "is_encoder_decoder", False):
            return "encoder-decoder models are not supported"
        return None

    def slower_on_cpu(self, model: Any, settings: Any, in_flight: int | None = None) -> str | None:
        """Why `auto` should keep hf over paged for ``model`` on CPU (None: paged qualifies).

        ``in_flight``: sequences decoded at once (None: unknown). Measured on one core (docs/benchmarks.md): with
        the request-by-request attention paged ran at 1.19-1.27x hf on the demo policy with 128 sequences in
        flight, 0.99x with 64 and 0.72x with 32 (a step's scheduling cost is then spread over too few tokens, and
        each call pays ~0.2 s of set-up), and at 1.04x on SmolLM2-135M with 64 (0.97x with 32); with
        transformers' dense attention at 0.64-0.86x.
        """
        from selfdistill.generation.paged_attention import supported

        if not settings.paged_on_cpu:
            return "generation.paged_on_cpu is false"
        if not settings.paged_varlen_attention:
            return "generation.paged_varlen_attention is false (dense attention is slower than hf on CPU)"
        if in_flight is not None and in_flight < settings.paged_cpu_min_in_flight:
            return (
                f"{in_flight} sequences in flight, fewer than generation.paged_cpu_min_in_flight="
                f"{settings.paged_cpu_min_in_flight}"
            )
        why = supported(_base_model(model))
        return None if why is None else f"no request-by-request attention for this model ({why})"

    def generate(
        self,
        model,
        prompts: list[list[int]],
        params: SamplingParams,
        special: SpecialTokens,
        settings: Any,
        progress: str | None,
    ) -> list[list[list[int]]]:
        from tqdm.auto import tqdm

        gen_config = generation_config(model, params, special)
        cb_config = continuous_batching_config(prompts, params, settings)
        base = _base_model(model)
        was_training = base.training
        total = len(prompts) * params.n
        results: dict[str, Any] = {}
        _quiet_cache_logs()
        manager = base.init_continuous_batching(
            generation_config=gen_config, continuous_batching_config=cb_config
        )
        gc.freeze()  # the manager runs gc.collect() on stop: over a training process's heap that costs ~0.5 s a call
        try:
            # after init (which accepts only transformers' own implementations), before the batches are built
            with seeded(base, params.seed), attention_for(base, settings.paged_varlen_attention):
                ids = manager.add_requests(prompts, max_new_tokens=params.max_new_tokens)
                manager.start()  # after every request is queued: the same schedule, so the same samples, each run
                with tqdm(total=total, desc=progress, disable=progress is None, leave=False) as bar:
                    while len(results) < total:
                        result = manager.get_result(timeout=1)
                        if result is None:
                            if not manager.is_running():
                                raise RuntimeError(
                                    "continuous batching stopped before every request finished "
                                    f"({len(results)}/{total} done)"
                                )
                            continue
                        if result.is_finished():
                            if result.error is not None:
                                raise RuntimeError(
                                    f"continuous batching request {result.request_id} failed: {result.error}"
                                )
                            results[result.request_id] = result
                            bar.update(1)
                manager.stop(block=True, timeout=60)
        finally:
            manager.destroy()
            gc.unfreeze()
            base.train(was_training)
        return [[list(results[rid].generated_tokens) for rid in request_ids(rid0, params.n)] for rid0 in ids]


def _quiet_cache_logs() -> None:
    """transformers' continuous batching logs its cache sizing at INFO on its own stderr handler, every call (each
    collect chunk, each eval): two lines through the progress bars. Keep its warnings; our log says what ran."""
    cb_log = logging.getLogger("ContinuousBatchingLogger")
    if cb_log.level < logging.WARNING:
        cb_log.setLevel(logging.WARNING)


def request_ids(parent: str, n: int) -> list[str]:
    """The ids of a prompt's ``n`` samples: the parent request and its forked children."""
    return [parent] + [f"{parent}__child#{i}" for i in range(n - 1)]


def generation_config(model, params: SamplingParams, special: SpecialTokens):
    """The model's own generation config with the request's decoding settings (as the hf backend uses)."""
    import copy

    gen_config = copy.deepcopy(model.generation_config)
    kwargs = decoding_kwargs(params, special)
    gen_config.update(**kwargs, num_return_sequences=params.n)
    return gen_config


def continuous_batching_config(prompts: list[list[int]], params: SamplingParams, settings: Any):
    """Cache and batch sizes for this workload (see the module docstring), seeded by ``params.seed``."""
    from transformers.generation.configuration_utils import ContinuousBatchingConfig

    page = settings.paged_page_size
    longest = max(len(p) for p in prompts) + params.max_new_tokens
    in_flight = min(params.batch_size, len(prompts) * params.n)
    num_blocks = (
        in_flight * math.ceil(longest / page) + 1
    )  # +1: a prompt's shared last page is copied on fork
    return ContinuousBatchingConfig(
        page_size=page,
        num_blocks=num_blocks,
        max_batch_tokens=settings.paged_max_batch_tokens,
        max_requests_per_batch=in_flight,
        seed=params.seed,
        allow_block_sharing=True,
    )


def _base_model(model):
    """The transformers model under a PEFT wrapper (adapters stay active: they live in its modules)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model
