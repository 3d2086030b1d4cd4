"""Supervised fine-tuning with TRL's SFTTrainer: one helper for every SFT the loop does.

Used for (1) pre-training the tiny demo models on the worked-solution corpus, (2) the policy's
self-distillation on its own traces (the cold start of the next round) and (3) sequence-level
distillation of the traces into dense students. Loss is on completion tokens only.

With ``kernels=fused`` the LM-head loss goes through `selfdistill.kernels` (no [N, V] logits);
``eager`` is TRL's own loss.
"""

from __future__ import annotations

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
    """
    import datasets

    from selfdistill.generation import prompt_ids

    if not rows:
        raise ValueError("SFT needs at least one (prompt, completion) row; the trace store has none to train on")
    eos = tokenizer.eos_token or ""
    p_ids = prompt_ids(tokenizer, [r["prompt"] for r in rows])
    c_ids = tokenizer([r["completion"] + eos for r in rows], add_special_tokens=False)["input_ids"]
    input_ids, labels = [], []
    for p, c in zip(p_ids, c_ids):
        ids = (p + c)[:max_length]
        lab = ([-100] * len(p) + c)[:max_length]
        if any(x != -100 for x in lab):  # a prompt filling max_length teaches nothing
            input_ids.append(ids)
            labels.append(lab)
    if not input_ids:
        raise ValueError(f"every SFT row's prompt fills max_length={max_length}; raise sft.max_length")
    return datasets.Dataset.from_dict({"input_ids": input_ids, "labels": labels})


def sft_args(sft, out_dir: Path, seed: int, report_to: str, device: str, n_rows: int, run_name: str, model_dtype=None):
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
        warmup_steps=min(20, max(1, n_rows // sft.batch_size // 10)),
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


def train_sft(model, tokenizer, rows, sft, out_dir: Path, *, seed: int, stage, device: str, run_name: str,
              kernels: str | KernelSpec = "eager", router_diagnostics: bool = True) -> dict[str, Any]:
    """Train ``model`` in place on ``rows`` (dicts with a rendered prompt and a completion); returns metrics.

    ``router_diagnostics``: log MoE router metrics (hooks on every router; off for bootstrap pre-training,
    where they only cost time).
    """
    from selfdistill.checkpoints import train_resumable
    from selfdistill.stages.sft_trainer import sft_trainer_class

    dataset = tokenize_rows(tokenizer, rows, sft.max_length)
    args = sft_args(sft, out_dir, seed, stage.report_to, device, len(rows), run_name,
                    model_dtype=next(model.parameters()).dtype)
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
