"""RL stage: TRL's GRPOTrainer with our rule-based rewards on the MoE policy.

The algorithm (grpo, dr_grpo, dapo, gspo) is a `RLAlgorithm` record of `selfdistill.registries.ALGORITHMS`:
GRPOConfig settings (TRL implements those losses) and, for a loss TRL lacks, a trainer mixin overriding
`compute_loss` (`rl_trainer_class` composes it). MoE specifics: the router
load-balancing loss is off in RL by default (`rl.router_aux_loss_coef`); router diagnostics
(`moe/...`: load, imbalance, entropy, routing change rate) are logged and routing replay is
available (`rl.routing`) through `selfdistill.models.moe`'s trainer subclass. Options from
`selfdistill.rl_options` (dynamic sampling, pass-rate recording for difficulty filtering) are a mixin
composed on top; the overlong penalty is a reward whose limit defaults to `rl.max_completion_length`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from selfdistill.checkpoints import save_args, train_resumable
from selfdistill.models.loading import is_moe
from selfdistill.registries import ALGORITHMS
from selfdistill.rewarding import CORRECTNESS, build_reward_funcs

log = logging.getLogger(__name__)


def grpo_args(
    rl,
    out_dir: Path,
    *,
    seed: int,
    report_to: str,
    device: str,
    run_name: str,
    weights: list[float],
    model_dtype=None,
):
    """TRL `GRPOConfig` for one round: our settings plus the algorithm's named loss settings.

    ``device`` may be ``cuda:<rank>`` (a launcher's rank); ``model_dtype`` is the weights' torch dtype.
    """
    from trl import GRPOConfig

    from selfdistill.models.loading import precision_args
    from selfdistill.stages.sft import warmup_steps

    algo: dict[str, Any] = dict(ALGORITHMS.get(rl.algorithm, "rl.algorithm").trl)
    return GRPOConfig(
        output_dir=str(out_dir),
        run_name=run_name,
        max_steps=rl.max_steps,
        learning_rate=rl.learning_rate,
        lr_scheduler_type="constant_with_warmup",
        warmup_steps=warmup_steps(rl.max_steps, cap=5),
        per_device_train_batch_size=rl.prompts_per_step * rl.num_generations,
        gradient_accumulation_steps=1,
        steps_per_generation=rl.steps_per_generation,
        num_generations=rl.num_generations,
        max_completion_length=rl.max_completion_length,
        temperature=rl.temperature,
        top_k=0,
        beta=rl.beta,
        reward_weights=weights,
        router_aux_loss_coef=rl.router_aux_loss_coef,
        max_grad_norm=rl.max_grad_norm,
        logging_steps=rl.logging_steps,
        log_completions=report_to == "wandb",
        num_completions_to_print=0,
        **save_args(rl.save_steps, rl.save_total_limit),
        report_to=report_to,
        seed=seed,
        **precision_args(device, model_dtype),
        **vllm_args(rl),
        dataloader_num_workers=0,
        weight_decay=0.0,
        gradient_checkpointing=rl.gradient_checkpointing,
        **algo,
    )


def rl_trainer_class(algorithm: str, *, moe: bool, routing: str = "off") -> type:
    """TRL's GRPOTrainer with the algorithm's loss hook (if any) and, for MoE policies, our MoE mixin on top.

    MRO: MoE mixin (diagnostics, routing measure/replay) -> the algorithm's loss mixin -> GRPOTrainer.
    """
    from trl import GRPOTrainer

    cls = GRPOTrainer
    mixin = ALGORITHMS.get(algorithm, "rl.algorithm").loss_mixin()
    if mixin is not None:
        cls = type(f"{mixin.__name__}GRPOTrainer", (mixin, GRPOTrainer), {})
    if moe:
        from selfdistill.models.moe import moe_trainer_class

        cls = moe_trainer_class(cls, routing=routing)
    return cls


def vllm_args(rl) -> dict[str, Any]:
    """GRPOConfig's vLLM settings (TRL runs the engine); a clear error when vLLM is not installed."""
    if not rl.use_vllm:
        return {"use_vllm": False}
    require_vllm("rl.use_vllm=true")
    if rl.vllm_mode == "server":
        return {"use_vllm": True, "vllm_mode": "server", "vllm_server_base_url": rl.vllm_server_url}
    return {
        "use_vllm": True,
        "vllm_mode": "colocate",
        "vllm_gpu_memory_utilization": rl.vllm_gpu_memory_utilization,
        "vllm_tensor_parallel_size": rl.vllm_tensor_parallel_size,
    }


def require_vllm(what: str) -> None:
    """Raise `RuntimeError` naming ``what`` when the optional vLLM engine is not importable."""
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        raise RuntimeError(
            f"{what} needs vLLM, which is not installed: pip install 'selfdistill[vllm]' "
            "(a CUDA machine; TRL 1.16 supports vLLM 0.22-0.31), or set it to false"
        )


def with_overlong_limit(rcfg, max_completion_length: int):
    """``rcfg`` with the overlong penalty's limit filled in from ``rl.max_completion_length`` when it is 0."""
    import dataclasses

    if "overlong" not in rcfg.weights or rcfg.overlong_max_tokens:
        return rcfg
    return dataclasses.replace(rcfg, overlong_max_tokens=max_completion_length)


def correctness_columns(rcfg) -> tuple[int, ...]:
    """Positions, among the configured reward functions, of the correctness rewards (math, code)."""
    return tuple(i for i, name in enumerate(rcfg.weights) if name in CORRECTNESS)


# long function: trainer class composition (MoE, loss hook, RL options) and its run; to split (debt noted 2026-11-30)
def train_rl(
    model,
    tokenizer,
    rows: list[dict[str, Any]],
    rl,
    rcfg,
    out_dir: Path,
    *,
    seed: int,
    stage,
    device: str,
    run_name: str,
    refill_pool: tuple[list[dict], list[float]] | None = None,
) -> dict[str, Any]:
    """Run ``rl.max_steps`` GRPO steps on ``rows`` (TRL dataset rows); the model is updated in place.

    ``refill_pool``: (rows, weights) that dynamic sampling draws fresh prompts from (default: ``rows``,
    uniformly). With ``rl.difficulty_filter.enabled`` the output has ``observations``: every rank's per-prompt
    correctness counts (`rl_options.difficulty.Observation`, not JSON: the caller stores them).
    """
    import datasets

    from selfdistill import distributed as dist
    from selfdistill.rl_options.difficulty import merge_observations
    from selfdistill.rl_options.trainer import rl_options_class

    rcfg = with_overlong_limit(rcfg, rl.max_completion_length)
    funcs, weights = build_reward_funcs(rcfg)
    trainer_cls = rl_trainer_class(rl.algorithm, moe=is_moe(model), routing=rl.routing)
    if is_moe(model) and rl.freeze_router:
        from selfdistill.models.moe import freeze_router

        freeze_router(model)
    record = rl.difficulty_filter.enabled
    trainer_cls = rl_options_class(
        trainer_cls,
        dynamic_sampling=rl.dynamic_sampling.enabled,
        max_refills=rl.dynamic_sampling.max_refills,
        correctness_columns=correctness_columns(rcfg) if record else (),
    )
    args = grpo_args(
        rl,
        out_dir,
        seed=seed,
        report_to=stage.report_to,
        device=device,
        run_name=run_name,
        weights=weights,
        model_dtype=next(model.parameters()).dtype,
    )
    trainer = trainer_cls(
        model=model,
        reward_funcs=funcs,
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    if refill_pool is not None and rl.dynamic_sampling.enabled:
        trainer.set_refill_pool(*refill_pool)
    train_resumable(trainer)  # from the latest complete checkpoint in out_dir, if any
    # every per-step training log, not only those carrying rewards: with steps_per_generation > 1 only a batch's
    # first step logs rewards, and the later steps (trained on data the previous weights sampled) carry the
    # routing-change rate that matters
    history = [h for h in trainer.state.log_history if "step" in h and "train_runtime" not in h]
    out = {
        "steps": trainer.state.global_step,
        "history": [{k: v for k, v in h.items() if isinstance(v, int | float)} for h in history],
    }
    if record:
        out["observations"] = merge_observations(dist.gather(trainer.take_observations()))
    return out
