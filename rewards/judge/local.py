"""A local causal LM as the judge, in its own long-lived worker process.

The worker (`rewards.judge.worker`, a `rewards.pool.DeadlinePool` of one process) loads the model
once and judges batches of ``batch_size`` sent over its pipe; the trainer's process never imports
the judge's weights, and a batch that passes ``timeout_s`` gets the worker killed (its items:
status TIMEOUT, reward None) and a fresh worker that reloads the model before the next batch.
The model is loaded when the judge is built, so a wrong path fails before any training.

``loader`` ("module:function", ``f(path, device, dtype) -> (model, tokenizer)``) is how the model is
read: selfdistill passes its own `load_model`, so the judge accepts any path ``policy.path`` does;
standalone, `worker.load_hf` reads a directory, a hub id or a ``.gguf`` file.
"""

from __future__ import annotations

from rewards.common import Status
from rewards.judge.config import JudgeConfig
from rewards.judge.types import JudgeItem, Outcome
from rewards.pool import DeadlinePool

DEFAULT_LOADER = "rewards.judge.worker:load_hf"


class LocalJudge:
    """`complete(items) -> outcomes` with a model in a worker process (see module docstring)."""

    def __init__(self, cfg: JudgeConfig, loader: str | None = None, threads: int = 1) -> None:
        self.cfg = cfg
        self.spec = {
            "model": cfg.model,
            "loader": loader or DEFAULT_LOADER,
            "device": cfg.device,
            "dtype": cfg.dtype,
            "threads": threads,
        }
        self.settings = {
            "rubric": cfg.rubric,
            "max_chars": cfg.max_chars,
            "score_first": cfg.score_first,
            "temperature": cfg.temperature,
            "max_new_tokens": cfg.max_new_tokens,
        }
        self.pool = DeadlinePool(workers=1, deadline_s=cfg.timeout_s, memory_mb=None, spares=0)
        self.restarts = 0
        error = self._load()
        if error:
            self.pool.close()
            raise RuntimeError(f"cannot load the judge model {cfg.model!r}: {error}")

    def _load(self) -> str | None:
        """Have the worker hold the model (a no-op when it does); the error text if it cannot."""
        from rewards.judge.worker import ensure_loaded

        (res,) = self.pool.map(ensure_loaded, [(self.spec,)], deadline_s=self.cfg.load_timeout_s)
        return None if res.ok else (res.error or res.kind)

    def complete(self, items: list[JudgeItem]) -> list[Outcome]:
        """Judge ``items`` in batches of ``batch_size``; outcomes in input order.

        Items are batched by length (left padding makes a batch as long as its longest prompt, so
        one flood among short answers would cost the whole batch its length).
        """
        order = sorted(range(len(items)), key=lambda i: len(items[i].completion) + len(items[i].problem))
        size = self.cfg.batch_size
        out: list[Outcome | None] = [None] * len(items)
        for start in range(0, len(order), size):
            idx = order[start : start + size]
            for i, outcome in zip(idx, self._batch([items[i] for i in idx])):
                out[i] = outcome
        return out  # type: ignore[return-value]

    def _batch(self, batch: list[JudgeItem]) -> list[Outcome]:
        """One batch through the worker; failures become one outcome per item."""
        from rewards.judge.worker import judge_batch

        error = self._load()
        if error:
            return [
                Outcome(None, str(Status.INFRA_ERROR), f"judge worker cannot load the model: {error}")
            ] * len(batch)
        (res,) = self.pool.map(judge_batch, [(self.spec, self.settings, [tuple(it) for it in batch])])
        if res.ok:
            return [Outcome(*o) for o in res.value]
        if res.kind == "timeout":
            self.restarts += 1
            return [Outcome(None, str(Status.TIMEOUT), f"judge batch passed {self.cfg.timeout_s} s")] * len(
                batch
            )
        self.restarts += res.kind == "crashed"
        return [Outcome(None, str(Status.INFRA_ERROR), f"judge worker {res.kind}: {res.error}")] * len(batch)

    def close(self) -> None:
        self.pool.close()
