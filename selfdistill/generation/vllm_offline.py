"""The `vllm` backend: vLLM's offline engine (`vllm.LLM`) loading the stage's checkpoint from disk.

Paged attention, continuous batching, prefix caching (the ``n`` samples of a prompt share its prefill)
and tensor parallelism over ``generation.vllm_tensor_parallel_size`` GPUs. vLLM reads the weights from
the checkpoint directory the model was loaded from, so it serves collect and eval (whose models are
loaded fresh from a saved stage) but not on-policy distillation, whose student changes every step.
Install with ``pip install 'selfdistill[vllm]'`` (CUDA only).

Each prompt gets its own seed (``seed + prompt index``), so a prompt's samples do not depend on which
other prompts share the call. The engine is built once per (checkpoint, settings) and kept for the
next call: building one costs tens of seconds (weights, CUDA graphs, KV cache).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from selfdistill.generation.core import SamplingParams, SpecialTokens

INSTALL_HINT = "vLLM is not installed: pip install 'selfdistill[vllm]' (needs a CUDA GPU), or use generation.backend=paged"

_engine: tuple[tuple, Any] | None = None  # (engine_kwargs key, vllm.LLM): the one live engine


class VLLMBackend:
    name = "vllm"

    def unavailable(self, model: Any, *, training: bool) -> str | None:
        if training:
            return (
                "vLLM holds its own copy of the weights and cannot follow a model being trained; "
                "use generation.backend=paged or hf"
            )
        if importlib.util.find_spec("vllm") is None:
            return INSTALL_HINT
        import torch

        if not torch.cuda.is_available():
            return "vLLM needs a CUDA GPU; torch sees none"
        if checkpoint_dir(model) is None:
            return (
                "needs the model's checkpoint directory, and this model was not loaded from a local directory"
            )
        return None

    def generate(
        self,
        model,
        prompts: list[list[int]],
        params: SamplingParams,
        special: SpecialTokens,
        settings: Any,
        progress: str | None,
    ) -> list[list[list[int]]]:
        from vllm import SamplingParams as VSamplingParams

        llm = engine(engine_kwargs(checkpoint_dir(model), settings, _dtype(model)))
        per_prompt = [
            VSamplingParams(**sampling_kwargs(params, special, params.seed + i)) for i in range(len(prompts))
        ]
        outputs = llm.generate(
            [{"prompt_token_ids": list(p)} for p in prompts],
            sampling_params=per_prompt,
            use_tqdm=progress is not None,
        )
        return [
            [completion_ids(c, special.eos) for c in sorted(o.outputs, key=lambda c: c.index)]
            for o in outputs
        ]


def checkpoint_dir(model: Any) -> str | None:
    """The local directory ``model`` was loaded from (or ``model`` itself when it is such a path)."""
    path = model if isinstance(model, str | Path) else getattr(model, "name_or_path", None)
    if path and Path(path).is_dir() and (Path(path) / "config.json").exists():
        return str(path)
    return None


def engine_kwargs(path: str, settings: Any, dtype: str = "auto") -> dict[str, Any]:
    """`vllm.LLM` arguments from the `generation` config section."""
    kwargs: dict[str, Any] = {
        "model": path,
        "tokenizer": path,
        "dtype": dtype,
        "tensor_parallel_size": settings.vllm_tensor_parallel_size,
        "gpu_memory_utilization": settings.vllm_gpu_memory_utilization,
        "enable_prefix_caching": settings.vllm_prefix_caching,
        "seed": 0,  # per-request seeds decide the samples (sampling_kwargs)
    }
    if settings.vllm_max_model_len:
        kwargs["max_model_len"] = settings.vllm_max_model_len
    return kwargs


def sampling_kwargs(params: SamplingParams, special: SpecialTokens, seed: int) -> dict[str, Any]:
    """`vllm.SamplingParams` arguments for one prompt: the same decoding as the hf backend (no top-k)."""
    return {
        "n": params.n,
        "temperature": params.temperature,  # 0 = greedy in vLLM too
        "top_p": params.top_p if not params.greedy else 1.0,
        "max_tokens": params.max_new_tokens,
        "seed": seed,
        "stop_token_ids": [special.eos],
        "detokenize": False,  # we decode with the stage's tokenizer, as every backend does
    }


def completion_ids(completion: Any, eos: int) -> list[int]:
    """A vLLM completion's token ids with the EOS it stopped at (our contract: EOS kept when it ended the text)."""
    ids = list(completion.token_ids)
    if getattr(completion, "finish_reason", None) == "stop" and eos not in ids:
        ids.append(eos)
    return ids


def engine(kwargs: dict[str, Any]):
    """The `vllm.LLM` for ``kwargs``: the cached one when it matches, else a new one (the old is released)."""
    global _engine
    key = tuple(sorted(kwargs.items()))
    if _engine is not None and _engine[0] == key:
        return _engine[1]
    if importlib.util.find_spec("vllm") is None:
        raise RuntimeError(INSTALL_HINT)
    _engine = None  # drop the old engine before the new one claims GPU memory
    from vllm import LLM

    llm = LLM(**kwargs)
    _engine = (key, llm)
    return llm


def _dtype(model: Any) -> str:
    dtype = getattr(model, "dtype", None)
    return str(dtype).removeprefix("torch.") if dtype is not None else "auto"
