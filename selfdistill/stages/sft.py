"""Supervised fine-tuning with TRL's SFTTrainer: one helper for every SFT the loop does.

Used for (1) pre-training the tiny demo models on the worked-solution corpus, (2) the policy's
self-distillation on its own traces (the cold start of the next round) and (3) sequence-level
distillation of the traces into dense students. Loss is on completion tokens only.

With ``kernels=fused`` the LM-head loss goes through `selfdistill.kernels` (no [N, V] logits);
``eager`` is TRL's own loss.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from selfdistill.kernels.hf import KernelSpec

log = logging.getLogger(__name__)


def rows_from_traces(traces, prompt_format: str) -> list[dict[str, Any]]:
    """(prompt as sampled, completion) rows of ``traces``: `selfdistill.traces.training_rows`."""
    from selfdistill.traces import training_rows

    return training_rows(traces, prompt_format)


def tokenize_rows(tokenizer, rows: list[dict[str, Any]], max_length: int):
    """Trainer-ready dataset: ``input_ids`` and ``labels`` (-100 on the prompt), truncated.

    ``rows[i]["prompt"]`` is a rendered prompt (`tasks.base.render_prompt`: a string or chat messages).
    Tokenising here in one batched call (instead of TRL's per-row ``map`` passes) keeps SFT
    start-up to a fraction of a second for tens of thousands of rows. Prompt tokens come from
    `generation.prompt_ids`, the function sampling uses, so training and sampling agree token for token.
    Stored traces go through `tokenize_traces` instead (memory-mapped, cached).
    """
    import datasets

    if not rows:
        raise ValueError(
            "SFT needs at least one (prompt, completion) row; the trace store has none to train on"
        )
    batch = _tokenize(tokenizer, [r["prompt"] for r in rows], [r["completion"] for r in rows], max_length)
    if not batch["input_ids"]:
        raise ValueError(f"every SFT row's prompt fills max_length={max_length}; raise sft.max_length")
    return datasets.Dataset.from_dict(batch)


def _tokenize(
    tokenizer, prompts: list[Any], completions: list[str], max_length: int
) -> dict[str, list[list[int]]]:
    """``input_ids`` and ``labels`` (-100 on the prompt) of (rendered prompt, completion) pairs, truncated to
    ``max_length``; pairs whose prompt fills ``max_length`` are dropped (they teach nothing)."""
    from selfdistill.generation import prompt_ids

    eos = tokenizer.eos_token or ""
    p_ids = prompt_ids(tokenizer, prompts)
    c_ids = tokenizer([c + eos for c in completions], add_special_tokens=False)["input_ids"]
    input_ids, labels = [], []
    for p, c in zip(p_ids, c_ids):
        ids = (p + c)[:max_length]
        lab = ([-100] * len(p) + c)[:max_length]
        if any(x != -100 for x in lab):
            input_ids.append(ids)
            labels.append(lab)
    return {"input_ids": input_ids, "labels": labels}


TOKENIZED_CACHE_VERSION = 1  # bump when `_tokenize` or the trace columns it reads change meaning


# long function: cache key, rank-0 build and memory-mapped load of one cache; to split (debt noted 2026-11-30)
def tokenize_traces(
    tokenizer,
    store,
    max_length: int,
    prompt_format: str,
    *,
    round: int | None = None,
    min_reward: float | None = None,
    max_round: int | None = None,
    rounds: tuple[int, ...] | None = None,
):
    """The stored traces selected as `TraceStore.to_dataset` selects them, tokenised like `tokenize_rows`, as a
    memory-mapped dataset: tokenised once into ``<store>/.arrow/tokenized/<key>.arrow`` and loaded from there
    after, on every rank (rank 0 builds it first, the others wait and load it).

    The key is the tokenizer (`datasets`' own hash of it), ``max_length``, ``prompt_format``, the filters and
    the store's shard contents (`TraceStore.arrow_key`): a new shard, tokenizer or setting makes a new file.
    Traces without a rendered prompt (schema 1) are rendered with ``prompt_format`` as sampling would have.
    """
    import datasets
    from datasets.fingerprint import Hasher

    from selfdistill import distributed as dist

    settings = {
        "v": TOKENIZED_CACHE_VERSION,
        "tokenizer": Hasher.hash(tokenizer),
        "max_length": max_length,
        "prompt_format": prompt_format,
        "round": round,
        "min_reward": min_reward,
        "max_round": max_round,
    }
    if rounds is not None:  # only when given: cache keys written before this filter existed stay valid
        settings["rounds"] = sorted(rounds)
    with dist.main_first():
        key = hashlib.sha256(
            json.dumps({**settings, "store": store.arrow_key()}, sort_keys=True).encode()
        ).hexdigest()
        path = store.root / ".arrow" / "tokenized" / f"{key[:32]}.arrow"
        if path.exists():
            dataset = datasets.Dataset.from_file(str(path))
        else:
            traces = store.to_dataset(round=round, min_reward=min_reward, max_round=max_round, rounds=rounds)
            if traces.num_rows == 0:
                raise ValueError(
                    "SFT needs at least one (prompt, completion) row; the trace store has none to train on"
                )
            path.parent.mkdir(parents=True, exist_ok=True)
            dataset = traces.map(
                _tokenize_trace_batch,
                batched=True,
                batch_size=1000,
                remove_columns=traces.column_names,
                fn_kwargs={"tokenizer": tokenizer, "max_length": max_length, "prompt_format": prompt_format},
                cache_file_name=str(path),
                new_fingerprint=key[:32],
                desc="tokenise traces",
            )
    if dataset.num_rows == 0:
        raise ValueError(f"every SFT row's prompt fills max_length={max_length}; raise sft.max_length")
    log.info("SFT data: %d tokenised traces from %s", dataset.num_rows, path)
    return dataset


def _tokenize_trace_batch(batch: dict[str, list[Any]], *, tokenizer, max_length: int, prompt_format: str):
    """`_tokenize` over a batch of trace columns (`TraceStore.to_dataset`: rendered_prompt as JSON text)."""
    from selfdistill.traces import sampled_prompt

    prompts = [
        sampled_prompt(json.loads(r), p, k, prompt_format)
        for r, p, k in zip(batch["rendered_prompt"], batch["prompt"], batch["kind"])
    ]
    return _tokenize(tokenizer, prompts, batch["completion"], max_length)


def warmup_steps(steps: int, cap: int = 20) -> int:
    """Linear warm-up of a ``steps``-step training run (SFT, RL): a tenth of it, at most ``cap``, none under 20 steps.

    Counted from the steps that will run (``max_steps`` when set), not from the data: a warm-up as long as
    the whole run leaves it at a fraction of its learning rate. The first warm-up step runs at lr 0, which
    in a run of fewer than 20 steps is more than 5% of it wasted, so short runs start at full rate.
    """
    return min(cap, steps // 10) if steps >= 20 else 0


def sft_args(
    sft, out_dir: Path, seed: int, report_to: str, device: str, n_rows: int, run_name: str, model_dtype=None
):
    """TRL `SFTConfig` from our `SFTConfig` section (the mapping is explicit and small).

    ``device`` may be ``cuda:<rank>`` (a launcher's rank); ``model_dtype`` is the weights' torch dtype.
    """
    import math

    from trl import SFTConfig as TRLSFTConfig

    from selfdistill.checkpoints import save_args
    from selfdistill.models.loading import precision_args

    steps = sft.max_steps if sft.max_steps > 0 else math.ceil(n_rows / sft.batch_size * sft.epochs)
    return TRLSFTConfig(
        output_dir=str(out_dir),
        run_name=run_name,
        num_train_epochs=sft.epochs,
        max_steps=sft.max_steps,
        learning_rate=sft.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=warmup_steps(steps),
        per_device_train_batch_size=sft.batch_size,
        max_length=sft.max_length,
        completion_only_loss=True,
        logging_steps=max(1, steps // 20),  # ~20 points per curve
        **save_args(sft.save_steps, sft.save_total_limit),
        report_to=report_to,
        seed=seed,
        **precision_args(device, model_dtype),
        dataloader_num_workers=0,
        # MoE load balancing belongs in SFT (not in RL); None = the model config's own coefficient
        router_aux_loss_coef=sft.router_aux_loss_coef,
        weight_decay=0.0,
        gradient_checkpointing=sft.gradient_checkpointing,
        disable_tqdm=False,
        dataset_kwargs={"skip_prepare_dataset": True},
    )


def train_sft(
    model,
    tokenizer,
    rows,
    sft,
    out_dir: Path,
    *,
    seed: int,
    stage,
    device: str,
    run_name: str,
    kernels: str | KernelSpec = "eager",
    router_diagnostics: bool = True,
) -> dict[str, Any]:
    """Train ``model`` in place on ``rows``; returns metrics.

    ``rows``: dicts with a rendered prompt and a completion (tokenised here by `tokenize_rows`), or a dataset
    already tokenised (`tokenize_traces`: stored traces, memory-mapped).

    ``router_diagnostics``: log MoE router metrics (hooks on every router; off for bootstrap pre-training,
    where they only cost time).
    """
    import datasets

    from selfdistill.checkpoints import train_resumable
    from selfdistill.stages.sft_trainer import sft_trainer_class

    dataset = rows if isinstance(rows, datasets.Dataset) else tokenize_rows(tokenizer, rows, sft.max_length)
    args = sft_args(
        sft,
        out_dir,
        seed,
        stage.report_to,
        device,
        len(rows),
        run_name,
        model_dtype=next(model.parameters()).dtype,
    )
    from selfdistill.models.loading import is_moe

    trainer_cls = sft_trainer_class(kernels, moe=router_diagnostics and is_moe(model))
    trainer = trainer_cls(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    result = train_resumable(trainer)  # from the latest complete checkpoint in out_dir, if any
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {
        "rows": len(rows),
        "steps": trainer.state.global_step,
        "train_loss": result.training_loss,
        "final_loss": losses[-1] if losses else None,
        "loss_curve": losses,
    }
