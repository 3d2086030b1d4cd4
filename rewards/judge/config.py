"""Settings of the judge reward (``rewards.judge`` in a selfdistill config): typed, documented, validated.

Each field is documented once, here (`selfdistill config --fields` prints these docs). Impossible
values raise ``ValueError`` naming the field and what is allowed. The dataclass is frozen (hashable)
so a process builds one judge per distinct setting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from rewards.judge.prompt import DEFAULT_RUBRIC

# Judge backends: name -> "module:Class" built as Class(cfg, loader=...) (the one list of them).
BACKENDS = {"local": "rewards.judge.local:LocalJudge", "http": "rewards.judge.http:HttpJudge"}


def _opt(default: Any, doc: str) -> Any:
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class JudgeConfig:
    backend: str = _opt(
        "local",
        "local: a causal LM run in its own worker process (model = any path policy.path accepts); "
        "http: an OpenAI-compatible server (vLLM, SGLang) at url, /v1/chat/completions.",
    )
    model: str | None = _opt(
        None, "The judge model: a local directory or hub id (local), the served model name (http)."
    )
    url: str | None = _opt(None, "http: base URL of the server, e.g. http://localhost:8000/v1.")
    api_key_env: str | None = _opt(
        None, "http: environment variable holding the bearer token (null: none sent)."
    )
    rubric: str = _opt(
        DEFAULT_RUBRIC,
        "What the judge scores against (the reference answer is shown beside it when the task has one).",
    )
    score_first: bool = _opt(
        False,
        "Prefill the judge's answer with 'SCORE:' so it states the score at once, no reasoning (small judges; "
        "http servers must support continue_final_message, as vLLM and SGLang do).",
    )
    max_new_tokens: int = _opt(256, "Tokens the judge may write (its reasoning plus the SCORE line).")
    temperature: float = _opt(
        0.0, "Judge sampling temperature (0 = greedy: the same inputs give the same score)."
    )
    timeout_s: float = _opt(
        60.0, "Deadline of one HTTP request, or of one local batch (the worker is killed and restarted)."
    )
    retries: int = _opt(
        2, "http: further attempts after a timeout, connection error or 5xx/429 answer (with backoff)."
    )
    concurrency: int = _opt(4, "http: requests in flight at once.")
    batch_size: int = _opt(8, "local: completions judged per generate call.")
    device: Literal["auto", "cpu", "cuda"] = _opt(
        "auto", "local: where the judge runs (auto = CUDA when available)."
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = _opt("auto", "local: judge weights dtype.")
    load_timeout_s: float = _opt(600.0, "local: deadline for the worker to load the judge model.")
    max_chars: int = _opt(8000, "Completions (and problems) longer than this are cut to their head and tail.")
    cache_dir: str | None = _opt(None, "Where judgements are cached (sqlite); null = <run_dir>/judge_cache.")

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(
                f"backend: unknown judge backend {self.backend!r}; choose one of: {', '.join(BACKENDS)}"
            )
        if self.backend == "http" and not self.url:
            raise ValueError("url: the http judge needs the server's base URL, e.g. http://localhost:8000/v1")
        if self.url and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url: must start with http:// or https://, got {self.url!r}")
        for key, low in (
            ("max_new_tokens", 1),
            ("concurrency", 1),
            ("batch_size", 1),
            ("max_chars", 100),
            ("retries", 0),
        ):
            if getattr(self, key) < low:
                raise ValueError(f"{key}: must be >= {low}, got {getattr(self, key)}")
        for key in ("timeout_s", "load_timeout_s"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{key}: must be > 0, got {getattr(self, key)}")
        if self.temperature < 0:
            raise ValueError(f"temperature: must be >= 0, got {self.temperature}")
        if not self.rubric.strip():
            raise ValueError("rubric: must not be empty")

    def require_model(self) -> None:
        """A judge that will be used needs a model (checked when the judge is configured, not by default)."""
        if not self.model:
            raise ValueError(
                "model: the judge reward needs a model (rewards.judge.model: a path/hub id, or the "
                "served model name for backend=http)"
            )

    @property
    def identity(self) -> str:
        """Who judges, for cache keys: backend, model and the settings that change its answer."""
        return f"{self.backend}:{self.model}:t={self.temperature}:n={self.max_new_tokens}:first={self.score_first}"
