"""The pipeline's step actions: glue between a `Run` (paths, config, store) and the stage functions.

Each action is ``fn(run, stage, step) -> StepOutput``: ``step`` (a `selfdistill.planning.Step`) carries the
step's own key (its work directory, its state file) and the keys of the steps it reads (``step.inputs``, by
role), so no action spells a key. `ACTIONS` maps `Step.action` to the function. Loading and saving happen
here so the stage modules stay pure training/sampling code.
"""

# long module: every pipeline action in one table (`ACTIONS`); to split by stage (debt noted 2026-11-30)

from __future__ import annotations

import logging
from typing import Any

from selfdistill.planning import Step, StepOutput

log = logging.getLogger(__name__)


def config_of(run, step: Step):
    """The run's config with ``step``'s per-stage overrides applied (``pipeline.stages[i].overrides``)."""
    from selfdistill.planning import apply_overrides

    return apply_overrides(run.cfg, step.params.get("overrides", {}), f"step {step.key}")


def has_training_data(run, step: Step, min_reward: float | None = None) -> bool:
    """Whether ``step`` has anything to train on: traces of the collect stages it reads at or above ``min_reward``
    (their keys in the store, ``params["trace_rounds"]``), or external rows."""
    rounds = step.params.get("trace_rounds", ())
    return (
        bool(step.params.get("external"))
        or bool(rounds)
        and run.store.to_dataset(rounds=rounds, min_reward=min_reward).num_rows > 0
    )


def training_data(
    run, step: Step, tokenizer, max_length: int, prompt_format: str, min_reward: float | None = None
):
    """The tokenised dataset ``step`` trains on: the traces of the collect stages it reads (`stages.sft.tokenize_traces`,
    memory-mapped and cached), then the rows of its external sets (`traces.external_rows`)."""
    import datasets

    from selfdistill.stages.sft import tokenize_rows, tokenize_traces
    from selfdistill.traces import external_rows

    parts = []
    rounds = tuple(step.params.get("trace_rounds", ()))
    if rounds and run.store.to_dataset(rounds=rounds, min_reward=min_reward).num_rows:
        parts.append(
            tokenize_traces(
                tokenizer, run.store, max_length, prompt_format, rounds=rounds, min_reward=min_reward
            )
        )
    rows = external_rows(step.params.get("external", ()), prompt_format)
    if rows:
        extra = tokenize_rows(tokenizer, rows, max_length)
        parts.append(extra.cast(parts[0].features) if parts else extra)
    return datasets.concatenate_datasets(parts) if len(parts) > 1 else parts[0]


def _kernels(cfg):
    """The LM-head loss choice with the fused path's options, as the SFT and distill losses take it."""
    from selfdistill.kernels.hf import KernelSpec

    return KernelSpec(cfg.kernels, cfg.fused_kernels.dw_accumulation, cfg.fused_kernels.fp32_logits)


def _tokenizer_for_tiny():
    from selfdistill.models.tokenizer import build_char_tokenizer

    return build_char_tokenizer()


def _in_sync(model) -> dict[str, Any]:
    """After data-parallel training: every rank's parameter digest (raises if they differ)."""
    from selfdistill import distributed as dist

    return (
        {"rank_digests": dist.check_in_sync(model)} if dist.is_distributed() and not dist.is_sharded() else {}
    )


def with_lora(model, mcfg):
    """``model`` wrapped with trainable LoRA adapters when ``mcfg.lora_r > 0`` (else unchanged)."""
    if mcfg.lora_r <= 0:
        return model
    from peft import LoraConfig, get_peft_model

    from selfdistill import distributed as dist

    if dist.is_sharded():  # the trainer would gather only the adapter for the final save
        raise RuntimeError(
            "lora_r > 0 under FSDP/ZeRO-3 is not supported yet; use DDP (LoRA models are small) or lora_r=0"
        )

    return get_peft_model(
        model,
        LoraConfig(
            r=mcfg.lora_r,
            lora_alpha=mcfg.lora_alpha,
            lora_dropout=mcfg.lora_dropout,
            target_modules=list(mcfg.lora_target_modules),
            task_type="CAUSAL_LM",
        ),
    )


def merged(model):
    """The plain model with LoRA adapters folded in (saved models load without peft)."""
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model


def _eval_hashes(run) -> set[str]:
    from selfdistill.tasks.base import prompt_hash

    return {prompt_hash(t.prompt) for t in run.split.eval}


def _sandbox(rcfg) -> dict[str, Any]:
    """The code sandbox's active layers, for steps that scored code in this process (report.json's ``sandbox``)."""
    from selfdistill.rewarding import sandbox_layers

    layers = sandbox_layers(rcfg)
    return {"sandbox_layers": layers} if layers is not None else {}


def model_config(cfg, name: str):
    """The model section of student ``name``, or the policy's for any other name (base, policy rounds)."""
    return next((s for s in cfg.distill.students if s.name == name), cfg.policy)


# long function: import, cold start, cut and upcycle of a base model in their order; to split (debt noted 2026-11-30)
def _pretrained_or_tiny(run, mcfg, step: Step, stage, seed: int) -> StepOutput:
    """A model to start from: a tiny model built and pre-trained here, or a pretrained one (a `.gguf` is
    imported once), optionally cold-started on the bootstrap corpus, then upcycled into a MoE (policy) or
    cut to fewer layers (student)."""
    from selfdistill.models.tiny import count_params

    if mcfg.source == "tiny":
        return _tiny(run, mcfg, step, stage, seed)
    if mcfg.source == "merge_experts":
        return _merged_student(run, mcfg, step)
    from selfdistill import distributed as dist
    from selfdistill.models.importing import ensure_plain

    # a .gguf is converted once, by rank 0; the broadcast holds the other ranks until the copy exists
    path = dist.broadcast(ensure_plain(mcfg.path, run.models_dir) if run.main else None)
    model, tokenizer = run.load(
        path, mcfg.dtype, train=True
    )  # fail now, with a clear error, if the path is wrong
    out: dict[str, Any] = {}
    derived = False
    if mcfg.cold_start:  # on the dense model, before upcycling: the same SFT at a fraction of the cost
        from selfdistill.models.bootstrap import cold_start_sft

        rows = _corpus(run, mcfg)
        metrics = cold_start_sft(
            model,
            tokenizer,
            mcfg.bootstrap,
            rows,
            run.stage_dir(step.key),
            seed=seed,
            stage=stage,
            device=run.device,
            run_name=f"{run.cfg.run.name}/{step.name}",
            prompt_format=run.cfg.tasks.prompt_format,
            kernels=_kernels(run.cfg),
        )
        out.update(cold_start_rows=len(rows), cold_start_loss=metrics["final_loss"], **_in_sync(model))
        derived = True
    if mcfg.source == "layers":
        from selfdistill.models.cutting import cut_layers, evenly_spaced

        out["kept_layers"] = evenly_spaced(model.config.num_hidden_layers, mcfg.num_layers)
        model = cut_layers(model, mcfg.num_layers).to(run.device)
        derived = True
    if mcfg.upcycle is not None:
        from selfdistill.models.upcycle import upcycle_model

        u = mcfg.upcycle
        out["dense_params"] = count_params(model)
        model = upcycle_model(
            model,
            u.num_experts,
            u.experts_per_token,
            u.arch,
            router_std=u.router_std,
            expert_noise=u.expert_noise,
            seed=u.seed,
        ).to(run.device)
        out["upcycled"] = {
            "arch": model.config.model_type,
            "num_experts": u.num_experts,
            "top_k": u.experts_per_token,
        }
        derived = True
    model_path = run.save(model, tokenizer, step.name, run.stage_dir(step.key)) if derived else path
    return StepOutput(model_path, {"params": count_params(model), **out})


def _merged_student(run, mcfg, step: Step) -> StepOutput:
    """A dense student merged from an MoE's experts, weighted by their usage on the training prompts."""
    from selfdistill import distributed as dist
    from selfdistill.generation import prompt_ids
    from selfdistill.models.importing import ensure_plain
    from selfdistill.models.merging import expert_usage, merge_experts
    from selfdistill.models.tiny import count_params

    if mcfg.path == "policy":
        path = _model_of(run, step, "moe")
    else:
        path = dist.broadcast(ensure_plain(mcfg.path, run.models_dir) if run.main else None)
    moe, tokenizer = run.load(path, mcfg.dtype)
    prompts = [t.to_row(run.cfg.tasks.prompt_format)["prompt"] for t in run.split.train[: mcfg.usage_prompts]]
    usage = expert_usage(
        moe, _padded_batches(prompt_ids(tokenizer, prompts), tokenizer.pad_token_id or 0, moe.device)
    )
    model = merge_experts(moe, usage).to(run.device)
    out: dict[str, Any] = {
        "merged_from": path,
        "usage_prompts": len(prompts),
        "expert_usage": {str(k): [round(float(x), 4) for x in v] for k, v in usage.items()},
    }
    if mcfg.num_layers:
        from selfdistill.models.cutting import cut_layers, evenly_spaced

        out["kept_layers"] = evenly_spaced(model.config.num_hidden_layers, mcfg.num_layers)
        model = cut_layers(model, mcfg.num_layers).to(run.device)
    return StepOutput(run.save(model, tokenizer, step.name), {"params": count_params(model), **out})


def _padded_batches(ids: list[list[int]], pad_id: int, device, size: int = 16):
    """Right-padded `input_ids` / `attention_mask` batches `[b, T]` of token-id lists."""
    import torch

    for start in range(0, len(ids), size):
        chunk = ids[start : start + size]
        width = max(map(len, chunk))
        input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros_like(input_ids)
        for row, seq in enumerate(chunk):
            input_ids[row, : len(seq)], mask[row, : len(seq)] = torch.tensor(seq), 1
        yield {"input_ids": input_ids.to(device), "attention_mask": mask.to(device)}


def _corpus(run, mcfg) -> list[dict[str, str]]:
    """The bootstrap corpus in the training split's task mix, held-out prompts excluded."""
    from selfdistill.models.bootstrap import bootstrap_corpus

    kinds: dict[str, int] = {}
    for t in run.split.train:
        kinds[t.kind] = kinds.get(t.kind, 0) + 1
    return bootstrap_corpus(mcfg.bootstrap, kinds, run.cfg.run.seed, _eval_hashes(run))


def _tiny(run, mcfg, step: Step, stage, seed: int) -> StepOutput:
    """A tiny model built here and pre-trained on the bootstrap corpus."""
    from selfdistill.models.bootstrap import pretrain_tiny
    from selfdistill.models.loading import resolve_dtype
    from selfdistill.models.tiny import build_tiny, count_params

    tokenizer = _tokenizer_for_tiny()
    model = build_tiny(mcfg.tiny, tokenizer, seed).to(run.device)
    if mcfg.dtype != "auto":  # auto: a tiny model pre-trains in float32 (mixed precision on CUDA)
        model = model.to(resolve_dtype(mcfg.dtype, run.device))
    rows = _corpus(run, mcfg)
    metrics = pretrain_tiny(
        model,
        tokenizer,
        mcfg.bootstrap,
        rows,
        run.stage_dir(step.key),
        seed=seed,
        stage=stage,
        device=run.device,
        run_name=f"{run.cfg.run.name}/{step.name}",
    )
    return StepOutput(
        run.save(model, tokenizer, step.name),
        {
            "params": count_params(model),
            "corpus_rows": len(rows),
            "final_loss": metrics["final_loss"],
            **_in_sync(model),
        },
    )


def base_policy(run, stage, step: Step) -> StepOutput:
    return _pretrained_or_tiny(run, run.cfg.policy, step, stage, run.cfg.run.seed)


def _model_of(run, step: Step, role: str) -> str:
    """The model path the step's input ``role`` produced."""
    return run.done(step.inputs[role]).model_path


def rl_step(run, stage, step: Step) -> StepOutput:
    from selfdistill.stages.rl import train_rl

    cfg = config_of(run, step)
    model, tokenizer = run.load(_model_of(run, step, "policy"), cfg.policy.dtype, train=True)
    model = with_lora(model, cfg.policy)
    rows = [t.to_row(cfg.tasks.prompt_format) for t in run.split.train]
    rows, pool, store, info = _difficulty_rows(run, cfg, rows, step.round)
    out = train_rl(
        model,
        tokenizer,
        rows,
        cfg.rl,
        cfg.rewards,
        run.stage_dir(step.key),
        seed=cfg.run.seed + 100 * step.round,
        stage=stage,
        device=run.device,
        run_name=f"{cfg.run.name}/{step.key}",
        refill_pool=pool,
    )
    observations = out.pop("observations", None)
    if store is not None:
        out["difficulty"] = info
        if run.main:  # before the step is marked done; a source already applied is skipped on a rerun
            store.update(step.key, observations)
            store.save(_pass_rate_path(run))
    model = merged(model)
    out.update(_in_sync(model), **_sandbox(cfg.rewards))
    return StepOutput(run.save(model, tokenizer, step.name, run.stage_dir(step.key)), out)


def _pass_rate_path(run):
    from selfdistill.rl_options.difficulty import store_path

    return store_path(run.dir)


def _pass_rates(run, cfg):
    """The run's pass-rate store (`rl_options.difficulty`), or None when difficulty filtering is off in ``cfg``
    (the step's own config: a stage's overrides may turn the filter on or off)."""
    dcfg = cfg.rl.difficulty_filter
    if not dcfg.enabled:
        return None
    from selfdistill.rl_options.difficulty import PassRates

    return PassRates.load(_pass_rate_path(run), decay=dcfg.decay)


def _difficulty_rows(run, cfg, rows: list[dict], round_: int):
    """(the round's RL rows, the refill pool, the store, a summary): with difficulty filtering on, the rows are a
    weighted draw of the prompts one round consumes and refills draw from every row by the same weights."""
    store = _pass_rates(run, cfg)
    if store is None:
        return rows, None, None, {}
    from selfdistill import distributed as dist
    from selfdistill.rl_options.difficulty import round_prompts, weight_summary, weights_for

    rl, dcfg = cfg.rl, cfg.rl.difficulty_filter
    weights = weights_for(store, [r["task_id"] for r in rows], dcfg)
    batch = rl.prompts_per_step * rl.steps_per_generation * dist.world_size()  # prompts per generation batch
    n = (
        max(1, -(-rl.max_steps // rl.steps_per_generation)) * batch
    )  # what the round consumes, in whole batches
    chosen = round_prompts(rows, weights, n, f"difficulty-{cfg.run.seed}-{round_}")
    return (
        chosen,
        (rows, weights),
        store,
        {**weight_summary(weights, dcfg.floor), "round_prompts": len(chosen)},
    )


def collect_step(run, stage, step: Step) -> StepOutput:
    from selfdistill.stages.collect import collect_round

    cfg = config_of(run, step)
    store = _pass_rates(run, cfg)

    def observe(
        shard: str, observations
    ) -> None:  # each chunk's per-prompt results, before its shard is kept
        if store is not None and run.main and store.update(shard, observations):
            store.save(_pass_rate_path(run))

    model, tokenizer = run.load(_model_of(run, step, "policy"), cfg.policy.dtype)
    out = collect_round(
        model,
        tokenizer,
        run.split.train,
        run.store,
        ccfg=cfg.collect,
        rcfg=cfg.rewards,
        round_=step.round,
        seed=cfg.run.seed,
        model_name=step.name,
        prompt_format=cfg.tasks.prompt_format,
        stage=stage,
        gcfg=cfg.generation,
        observe=observe,
    )
    return StepOutput(metrics={**out, **_sandbox(cfg.rewards)})


def student_collect_step(run, stage, step: Step) -> StepOutput:
    """A student samples its own traces on the training prompts (the collect stage: same sampling, rewards and
    filters as the policy's) into its own store, so it can teach the next student of a chain by its sequences."""
    from selfdistill.stages.collect import collect_round

    cfg = run.cfg
    name = step.params["student"]
    model, tokenizer = run.load(_model_of(run, step, "model"), model_config(cfg, name).dtype)
    out = collect_round(
        model,
        tokenizer,
        run.split.train,
        run.student_store(name),
        ccfg=cfg.collect,
        rcfg=cfg.rewards,
        round_=0,
        seed=cfg.run.seed + 13,
        model_name=step.name,
        prompt_format=cfg.tasks.prompt_format,
        stage=stage,
        gcfg=cfg.generation,
    )
    return StepOutput(metrics={"student": name, **out, **_sandbox(cfg.rewards)})


def sft_step(run, stage, step: Step) -> StepOutput:
    from selfdistill.stages.sft import train_sft

    cfg = config_of(run, step)
    round_ = step.round
    source = _model_of(run, step, "policy")
    # the traces of the collect stages it names (each filtered them by its own collect settings), external rows
    if not has_training_data(run, step):  # nothing passed the filters: the model goes on unchanged
        log.warning("%s: no traces to train on; SFT skipped", step.key)
        return StepOutput(source, {"skipped": True, "rows": 0})
    model, tokenizer = run.load(source, cfg.policy.dtype, train=True)
    rows = training_data(run, step, tokenizer, cfg.sft.max_length, cfg.tasks.prompt_format)
    model = with_lora(model, cfg.policy)
    out = train_sft(
        model,
        tokenizer,
        rows,
        cfg.sft,
        run.stage_dir(step.key),
        seed=cfg.run.seed + round_,
        stage=stage,
        device=run.device,
        run_name=f"{cfg.run.name}/{step.key}",
        kernels=_kernels(cfg),
    )
    model = merged(model)
    out.update(_in_sync(model))
    return StepOutput(run.save(model, tokenizer, step.name, run.stage_dir(step.key)), out)


def _student_config(run, step: Step):
    return next(s for s in run.cfg.distill.students if s.name == step.params["student"])


def student_base(run, stage, step: Step) -> StepOutput:
    return _pretrained_or_tiny(run, _student_config(run, step), step, stage, run.cfg.run.seed + 7)


def distill_step(run, stage, step: Step) -> StepOutput:
    from selfdistill.stages.distill import distill

    cfg = config_of(run, step)
    scfg = _student_config(run, step)
    base_path, teacher_path = _model_of(run, step, "student"), _model_of(run, step, "teacher")
    traces_from = step.params[
        "traces_from"
    ]  # "policy", or the teacher student whose own traces it learns from
    about = {
        "teacher": teacher_path,
        "teacher_key": step.inputs["teacher"],
        "method": cfg.distill.method,
        "traces_from": traces_from,
    }
    store = run.store if traces_from == "policy" else run.student_store(traces_from)
    if (
        not has_training_data(run, step, cfg.distill.min_reward)
        if traces_from == "policy"
        else store.to_dataset(min_reward=cfg.distill.min_reward).num_rows == 0
    ):
        # nothing passed the filters: the student stays at its base (as SFT does), the run goes on to eval
        log.warning(
            "%s: no traces from %s with reward >= %s; the student stays at its base",
            step.key,
            traces_from,
            cfg.distill.min_reward,
        )
        return StepOutput(base_path, {"skipped": True, "rows": 0, **about})
    student, tokenizer = run.load(base_path, scfg.dtype, train=True)
    student = with_lora(student, scfg)
    data = (
        training_data(
            run, step, tokenizer, cfg.distill.sft.max_length, cfg.tasks.prompt_format, cfg.distill.min_reward
        )
        if traces_from == "policy"
        else None
    )
    out = distill(
        cfg.distill.method,
        student,
        tokenizer,
        teacher=teacher_path,
        store=store,
        data=data,
        dcfg=cfg.distill,
        out_dir=run.stage_dir(step.key),
        seed=cfg.run.seed + 11,
        stage=stage,
        device=run.device,
        run_name=f"{cfg.run.name}/{step.key}",
        prompt_format=cfg.tasks.prompt_format,
        kernels=_kernels(cfg),
        teacher_dtype=model_config(cfg, scfg.teacher).dtype,
        gcfg=cfg.generation,
    )
    student = merged(student)
    out.update(_in_sync(student))
    path = run.save(student, tokenizer, step.name, trained_in=run.stage_dir(step.key))
    return StepOutput(path, {**out, **about})


def eval_step(run, stage, step: Step) -> StepOutput:
    from selfdistill.stages.evaluate import evaluate_with_config

    cfg = config_of(run, step)
    path = _model_of(run, step, "model")
    dtype = model_config(cfg, step.name).dtype if step.params["role"] == "student" else cfg.policy.dtype
    model, tokenizer = run.load(path, dtype)
    row = evaluate_with_config(model, tokenizer, run.split.eval, cfg, step.name)
    examples = row.pop("examples")
    stage.table("eval/samples", ["kind", "prompt", "completion", "reward"], examples)
    stage.summary({k: v for k, v in row.items() if isinstance(v, int | float)})
    per_kind = ", ".join(f"{kind} {_pct(acc)}" for kind, acc in row["accuracy_by_kind"].items())
    log.info(
        "eval %s: pass@1 %s (%s) maj@%d %s, %d infrastructure failures",
        step.name,
        _pct(row["accuracy"]),
        per_kind,
        row["k"],
        _pct(row["maj_at_k"]),
        row["infra_failures"],
    )
    return StepOutput(
        path,
        {
            "model": step.name,
            "role": step.params["role"],
            "round": step.round,
            **row,
            **_sandbox(cfg.rewards),
        },
    )


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def report_step(run, stage, step: Step) -> StepOutput:
    """report.json / .md / plots over the eval rows; every key it reads comes from ``step.inputs``."""
    from selfdistill.report import ReportKeys, write_report

    keys = ReportKeys(
        evals=step.inputs["evals"],
        final=step.inputs["final"],
        rl=step.inputs["rl"],
        collect=step.inputs["collect"],
        distill=step.inputs["distill"],
        student_collect=step.inputs["student_collect"],
        timed=step.params["timed"],
        steps=step.params["steps"],
    )
    paths, final_accuracy = write_report(run, keys)
    stage.summary({"final_accuracy": final_accuracy})
    return StepOutput(metrics={"files": [str(p) for p in paths]})


# Step.action -> the function that runs it.
ACTIONS = {
    "base": base_policy,
    "rl": rl_step,
    "collect": collect_step,
    "sft": sft_step,
    "student_base": student_base,
    "student_collect": student_collect_step,
    "distill": distill_step,
    "eval": eval_step,
    "report": report_step,
}
