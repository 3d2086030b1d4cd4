"""What every sampling backend shares: the request, the result, prompt rendering and backend choice.

A backend turns token-id prompts into ``n`` completions each (token ids, cut after the first EOS, EOS
included). `sample` (text in, text out) and `sample_ids` (ids in, ids out) wrap any backend with the
same contract, so collect, eval, on-policy distillation and `selfdistill generate` differ only in
which backend the config names (`generation.backend`, see `resolve_backend`).

Greedy decoding (``temperature == 0``) is sampled once per prompt and copied ``n`` times: every copy
would be identical anyway. Sampling is seeded per call and leaves the caller's random state as it
was, so a chunk re-run after a crash reproduces the same completions and training stays unperturbed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SamplingParams:
    """One sampling request's settings (the same on every backend)."""

    n: int = 1  # completions per prompt
    temperature: float = 1.0  # 0 = greedy
    top_p: float = 1.0
    max_new_tokens: int = 64
    seed: int = 0
    batch_size: int = 64  # sequences per forward (hf) or in flight at once (paged)

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1 or self.batch_size < 1:
            raise ValueError(
                f"max_new_tokens and batch_size must be >= 1, got {self.max_new_tokens}, {self.batch_size}"
            )

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass(frozen=True)
class SpecialTokens:
    eos: int
    pad: int


@dataclass
class Samples:
    completions: list[list[str]]  # [num_prompts][n]
    new_tokens: int
    seconds: float
    backend: str = "hf"

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0


@dataclass
class SampledIds:
    completions: list[list[list[int]]]  # [num_prompts][n][tokens], cut after the first EOS (kept)
    seconds: float
    backend: str

    @property
    def new_tokens(self) -> int:
        return sum(len(c) for per_prompt in self.completions for c in per_prompt)


class Backend(Protocol):
    """A sampling engine. ``generate`` returns [num_prompts][n] completion ids (see `cut_at_eos`)."""

    name: str

    def unavailable(self, model: Any, *, training: bool) -> str | None:
        """Why this backend cannot sample from ``model`` here (None when it can)."""

    def generate(
        self,
        model: Any,
        prompts: list[list[int]],
        params: SamplingParams,
        special: SpecialTokens,
        settings: Any,
        progress: str | None,
    ) -> list[list[list[int]]]:
        """``params.n`` completions for each token-id prompt."""


def cut_at_eos(ids: list[int], eos: int) -> list[int]:
    """Tokens up to and including the first EOS (all of them when there is none)."""
    try:
        return ids[: ids.index(eos) + 1]
    except ValueError:
        return list(ids)


def render(tokenizer, prompt: Any) -> str:
    """Prompt text as the model sees it: plain strings as-is, messages via the chat template."""
    if isinstance(prompt, str):
        return prompt
    return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)


def prompt_ids(tokenizer, prompts: list[Any]) -> list[list[int]]:
    """Token ids of rendered prompts (`tasks.base.render_prompt`), exactly as TRL's GRPOTrainer makes them.

    Chat messages: the chat template's text (with the generation prompt) without added special tokens (the
    template writes its own); plain strings: the tokenizer's own special tokens (a BOS where it adds one), as
    ``processing_class(text=...)`` does in TRL. Sampling (`sample`, every backend), RL (TRL) and
    SFT/distillation (`stages.sft.tokenize_rows`) therefore see the same prompt tokens.
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


def special_tokens(tokenizer) -> SpecialTokens:
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no eos_token_id: sampling could not tell where a completion ends")
    return SpecialTokens(eos=eos, pad=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos)


def resolve_backend(
    name: str, model: Any, settings: Any = None, *, training: bool = False, in_flight: int | None = None
) -> Backend:
    """The backend called ``name`` (or the one ``auto`` picks) for ``model``; a clear error when it cannot serve it.

    auto: vllm on CUDA when installed (not for a model being trained: vLLM holds its own copy of the weights),
    else paged where the model supports it and is not slower than hf there (CUDA; on CPU only where it attends
    request by request, `PagedBackend.slower_on_cpu`: with transformers' dense attention it measured 0.6-0.86x
    hf, docs/benchmarks.md) and with enough sequences in flight (``in_flight``: sequences decoded at once; None =
    unknown, taken as enough), else hf.
    """
    from selfdistill.registries import GENERATION_BACKENDS

    if name != "auto":
        from selfdistill.config import check_backend

        check_backend(name)
        backend = GENERATION_BACKENDS.get(name)()
        why = backend.unavailable(model, training=training)
        if why:
            raise RuntimeError(f"generation.backend={name}: {why}")
        return backend
    device = _device_type(model)
    order = ["vllm", "paged", "hf"] if device == "cuda" else ["paged", "hf"]
    settings = settings if settings is not None else default_settings()
    for candidate in order:
        backend = GENERATION_BACKENDS.get(candidate)()
        why = backend.unavailable(model, training=training)
        if why is None and candidate == "paged" and device != "cuda":
            why = backend.slower_on_cpu(model, settings, in_flight)
        if why is None:
            return backend
        log.debug("generation.backend=auto: %s skipped (%s)", candidate, why)
    raise RuntimeError(
        "generation.backend=auto: no backend can sample from this model"
    )  # hf serves any model


def _device_type(model: Any) -> str:
    if isinstance(model, str):  # a checkpoint path (vLLM loads it itself)
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return next(model.parameters()).device.type


def sample_ids(
    model,
    prompts: list[list[int]],
    params: SamplingParams,
    special: SpecialTokens,
    *,
    backend: str = "auto",
    settings: Any = None,
    training: bool = False,
    progress: str | None = None,
) -> SampledIds:
    """``params.n`` completions (token ids) for each token-id prompt, with the backend ``backend`` names.

    ``training``: the model is being trained (on-policy distillation), so backends that load their own copy
    of the weights (vllm) are ruled out.
    """
    in_flight = min(params.batch_size, len(prompts) * (1 if params.greedy else params.n))
    engine = resolve_backend(backend, model, settings, training=training, in_flight=in_flight)
    settings = settings if settings is not None else default_settings()
    start = time.perf_counter()
    if not prompts:
        return SampledIds([], 0.0, engine.name)
    if params.greedy and params.n > 1:  # every copy would be the same: decode once
        once = engine.generate(model, prompts, _replace(params, n=1), special, settings, progress)
        out = [[list(c[0]) for _ in range(params.n)] for c in once]
    else:
        out = engine.generate(model, prompts, params, special, settings, progress)
    out = [[cut_at_eos(c, special.eos) for c in per_prompt] for per_prompt in out]
    return SampledIds(out, time.perf_counter() - start, engine.name)


def sample(
    model,
    tokenizer,
    prompts: list[Any],
    *,
    n: int,
    temperature: float,
    top_p: float = 1.0,
    max_new_tokens: int,
    batch_size: int,
    seed: int,
    progress: str | None = None,
    backend: str = "auto",
    settings: Any = None,
) -> Samples:
    """``n`` samples (text) for each prompt (a string or a list of chat messages, tokenized by `prompt_ids`);
    greedy when ``temperature == 0``."""
    params = SamplingParams(
        n=n,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        seed=seed,
        batch_size=batch_size,
    )
    ids = prompt_ids(tokenizer, prompts)
    got = sample_ids(
        model, ids, params, special_tokens(tokenizer), backend=backend, settings=settings, progress=progress
    )
    flat = [c for per_prompt in got.completions for c in per_prompt]
    decoded = tokenizer.batch_decode(flat, skip_special_tokens=True) if flat else []
    completions = [decoded[i * n : (i + 1) * n] for i in range(len(prompts))]
    return Samples(completions, got.new_tokens, got.seconds, got.backend)


def decoding_kwargs(params: SamplingParams, special: SpecialTokens) -> dict[str, Any]:
    """`generate` keyword arguments for ``params`` (shared by the hf and paged backends, so they decode alike).

    Sampling is plain ancestral sampling at ``temperature`` with nucleus ``top_p``: top-k is switched off, so a
    model's own generation config (e.g. top_k=50) cannot change what "temperature 0.8" means between models.
    """
    sampling = not params.greedy
    return {
        "do_sample": sampling,
        "temperature": params.temperature if sampling else None,
        "top_p": params.top_p if sampling else None,
        "top_k": 0 if sampling else None,
        "max_new_tokens": params.max_new_tokens,
        "pad_token_id": special.pad,
        "eos_token_id": special.eos,
    }


def seeded(model, seed: int):
    """A context in which torch's random state is seeded with ``seed`` and restored afterwards."""
    import contextlib

    import torch

    @contextlib.contextmanager
    def ctx():
        device = next(model.parameters()).device
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            yield

    return ctx()


def default_settings():
    """`generation` config section at its defaults (for callers without a run config)."""
    from selfdistill.config import GenerationConfig

    return GenerationConfig()


def _replace(params: SamplingParams, **changes) -> SamplingParams:
    from dataclasses import replace

    return replace(params, **changes)
