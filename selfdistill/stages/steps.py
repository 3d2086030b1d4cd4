"""The pipeline's steps: glue between a `Run` (paths, config, store) and the stage functions.

Each factory returns ``fn(run, stage) -> outputs`` where outputs is JSON-serialisable and
includes ``model_path`` for steps that produce a model. Loading and saving happen here so the
stage modules stay pure training/sampling code.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)



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

    return {"rank_digests": dist.check_in_sync(model)} if dist.is_distributed() and not dist.is_sharded() else {}


def with_lora(model, mcfg):
    """``model`` wrapped with trainable LoRA adapters when ``mcfg.lora_r > 0`` (else unchanged)."""
    if mcfg.lora_r <= 0:
        return model
    from peft import LoraConfig, get_peft_model

    from selfdistill import distributed as dist

    if dist.is_sharded():  # the trainer would gather only the adapter for the final save
        raise RuntimeError("lora_r > 0 under FSDP/ZeRO-3 is not supported yet; use DDP (LoRA models are small) "
                           "or lora_r=0")

    return get_peft_model(model, LoraConfig(r=mcfg.lora_r, lora_alpha=mcfg.lora_alpha, lora_dropout=mcfg.lora_dropout,
                                            target_modules=list(mcfg.lora_target_modules), task_type="CAUSAL_LM"))


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


def _pretrained_or_tiny(run, mcfg, name: str, stage, seed: int) -> dict[str, Any]:
    """A model to start from: a tiny model built and pre-trained here, or a pretrained one (a `.gguf` is
    imported once), optionally cold-started on the bootstrap corpus, then upcycled into a MoE (policy) or
    cut to fewer layers (student)."""
    from selfdistill.models.tiny import count_params

    if mcfg.source == "tiny":
        return _tiny(run, mcfg, name, stage, seed)
    from selfdistill import distributed as dist
    from selfdistill.models.importing import ensure_plain

    # a .gguf is converted once, by rank 0; the broadcast holds the other ranks until the copy exists
    path = dist.broadcast(ensure_plain(mcfg.path, run.models_dir) if run.main else None)
    model, tokenizer = run.load(path, mcfg.dtype, train=True)  # fail now, with a clear error, if the path is wrong
    out: dict[str, Any] = {}
    derived = False
    if mcfg.cold_start:  # on the dense model, before upcycling: the same SFT at a fraction of the cost
        from selfdistill.models.bootstrap import cold_start_sft

        rows = _corpus(run, mcfg)
        metrics = cold_start_sft(model, tokenizer, mcfg.bootstrap, rows, run.stage_dir(name), seed=seed, stage=stage,
                                 device=run.device, run_name=f"{run.cfg.run.name}/{name}",
                                 prompt_format=run.cfg.tasks.prompt_format, kernels=_kernels(run.cfg))
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
        model = upcycle_model(model, u.num_experts, u.experts_per_token, u.arch, router_std=u.router_std,
                              expert_noise=u.expert_noise, seed=u.seed).to(run.device)
        out["upcycled"] = {"arch": model.config.model_type, "num_experts": u.num_experts, "top_k": u.experts_per_token}
        derived = True
    model_path = run.save(model, tokenizer, name, run.stage_dir(name)) if derived else path
    return {"model_path": model_path, "params": count_params(model), **out}


def _corpus(run, mcfg) -> list[dict[str, str]]:
    """The bootstrap corpus in the training split's task mix, held-out prompts excluded."""
    from selfdistill.models.bootstrap import bootstrap_corpus

    kinds: dict[str, int] = {}
    for t in run.split.train:
        kinds[t.kind] = kinds.get(t.kind, 0) + 1
    return bootstrap_corpus(mcfg.bootstrap, kinds, run.cfg.run.seed, _eval_hashes(run))


def _tiny(run, mcfg, name: str, stage, seed: int) -> dict[str, Any]:
    """A tiny model built here and pre-trained on the bootstrap corpus."""
    from selfdistill.models.bootstrap import pretrain_tiny
    from selfdistill.models.loading import resolve_dtype
    from selfdistill.models.tiny import build_tiny, count_params

    tokenizer = _tokenizer_for_tiny()
    model = build_tiny(mcfg.tiny, tokenizer, seed).to(run.device)
    if mcfg.dtype != "auto":  # auto: a tiny model pre-trains in float32 (mixed precision on CUDA)
        model = model.to(resolve_dtype(mcfg.dtype, run.device))
    rows = _corpus(run, mcfg)
    metrics = pretrain_tiny(model, tokenizer, mcfg.bootstrap, rows, run.stage_dir(name), seed=seed, stage=stage,
                            device=run.device, run_name=f"{run.cfg.run.name}/{name}")
    return {"model_path": run.save(model, tokenizer, name), "params": count_params(model),
            "corpus_rows": len(rows), "final_loss": metrics["final_loss"], **_in_sync(model)}


def base_policy(run, stage) -> dict[str, Any]:
    return _pretrained_or_tiny(run, run.cfg.policy, "base", stage, run.cfg.run.seed)


def rl_step(round_: int, source: str):
    def fn(run, stage) -> dict[str, Any]:
        from selfdistill.stages.rl import train_rl

        cfg = run.cfg
        model, tokenizer = run.load(run.done(source)["model_path"], cfg.policy.dtype, train=True)
        model = with_lora(model, cfg.policy)
        rows = [t.to_row(cfg.tasks.prompt_format) for t in run.split.train]
        out = train_rl(model, tokenizer, rows, cfg.rl, cfg.rewards, run.stage_dir(f"r{round_}.rl"),
                       seed=cfg.run.seed + 100 * round_, stage=stage, device=run.device,
                       run_name=f"{cfg.run.name}/r{round_}.rl")
        model = merged(model)
        out.update(_in_sync(model), **_sandbox(cfg.rewards))
        out["model_path"] = run.save(model, tokenizer, f"r{round_}-rl", run.stage_dir(f"r{round_}.rl"))
        return out

    return fn


def collect_step(round_: int, source: str):
    def fn(run, stage) -> dict[str, Any]:
        from selfdistill.stages.collect import collect_round

        cfg = run.cfg
        model, tokenizer = run.load(run.done(source)["model_path"], cfg.policy.dtype)
        out = collect_round(model, tokenizer, run.split.train, run.store, ccfg=cfg.collect, rcfg=cfg.rewards,
                            round_=round_, seed=cfg.run.seed, model_name=f"policy-r{round_}-rl",
                            prompt_format=cfg.tasks.prompt_format, stage=stage)
        return {**out, **_sandbox(cfg.rewards)}

    return fn


def sft_step(round_: int, source: str):
    def fn(run, stage) -> dict[str, Any]:
        from selfdistill.stages.sft import rows_from_traces, train_sft

        cfg = run.cfg
        model, tokenizer = run.load(run.done(source)["model_path"], cfg.policy.dtype, train=True)
        traces = run.store.iter(round=round_ if cfg.sft.traces == "current" else None, min_reward=cfg.collect.min_reward)
        rows = rows_from_traces([t for t in traces if t.round <= round_], cfg.tasks.prompt_format)
        if not rows:  # nothing passed the filters: the RL'd policy goes on unchanged
            log.warning("round %d: no traces to self-distill on; SFT skipped", round_)
            return {"skipped": True, "rows": 0, "model_path": run.done(source)["model_path"]}
        model = with_lora(model, cfg.policy)
        out = train_sft(model, tokenizer, rows, cfg.sft, run.stage_dir(f"r{round_}.sft"), seed=cfg.run.seed + round_,
                        stage=stage, device=run.device, run_name=f"{cfg.run.name}/r{round_}.sft", kernels=_kernels(cfg))
        model = merged(model)
        out.update(_in_sync(model))
        out["model_path"] = run.save(model, tokenizer, f"r{round_}-sft", run.stage_dir(f"r{round_}.sft"))
        return out

    return fn


def student_base(scfg):
    def fn(run, stage) -> dict[str, Any]:
        return _pretrained_or_tiny(run, scfg, f"student-{scfg.name}-base", stage, run.cfg.run.seed + 7)

    return fn


def student_collect_step(name: str):
    """Student ``name`` samples its own traces on the training prompts (the collect stage: same sampling,
    rewards and filters as the policy's), so it can teach the next student of a chain by its sequences."""
    def fn(run, stage) -> dict[str, Any]:
        from selfdistill.stages.collect import collect_round

        cfg = run.cfg
        model, tokenizer = run.load(run.done(f"distill.{name}")["model_path"], model_config(cfg, name).dtype)
        out = collect_round(model, tokenizer, run.split.train, run.student_store(name), ccfg=cfg.collect,
                            rcfg=cfg.rewards, round_=0, seed=cfg.run.seed + 13, model_name=f"student-{name}",
                            prompt_format=cfg.tasks.prompt_format, stage=stage)
        return {**out, **_sandbox(cfg.rewards)}

    return fn


def model_config(cfg, name: str):
    """The model section of ``name``: a student's own, or the policy's (base, policy rounds, ``policy``)."""
    return next((s for s in cfg.distill.students if s.name == name), cfg.policy)


def distill_step(scfg, teacher: str, traces_from: str = "policy"):
    """Distil ``teacher`` (a step key) into student ``scfg``; the traces are the policy's, or with
    ``traces_from`` a student's name, that student's own (`student_collect_step`)."""
    def fn(run, stage) -> dict[str, Any]:
        from selfdistill.registries import DISTILL_METHODS

        cfg = run.cfg
        method = DISTILL_METHODS.get(cfg.distill.method, "distill.method")
        base_path = run.done(f"student.{scfg.name}.base")["model_path"]
        store = run.store if traces_from == "policy" else run.student_store(traces_from)
        about = {"teacher": run.done(teacher)["model_path"], "teacher_key": teacher, "method": cfg.distill.method,
                 "traces_from": traces_from}
        if next(store.iter(min_reward=cfg.distill.min_reward), None) is None:
            # nothing passed the filters: the student stays at its base (as SFT does), the run goes on to eval
            log.warning("distill.%s: no traces from %s with reward >= %s; the student stays at its base",
                        scfg.name, traces_from, cfg.distill.min_reward)
            return {"skipped": True, "rows": 0, "model_path": base_path, **about}
        student, tokenizer = run.load(base_path, scfg.dtype, train=True)
        student = with_lora(student, scfg)
        teacher_name = "policy" if scfg.teacher == "policy" else scfg.teacher
        out = method(student, tokenizer, teacher=about["teacher"], store=store, dcfg=cfg.distill,
                     out_dir=run.stage_dir(f"distill.{scfg.name}"), seed=cfg.run.seed + 11, stage=stage,
                     device=run.device, run_name=f"{cfg.run.name}/distill.{scfg.name}",
                     prompt_format=cfg.tasks.prompt_format, kernels=_kernels(cfg),
                     teacher_dtype=model_config(cfg, teacher_name).dtype)
        student = merged(student)
        out.update(_in_sync(student))
        out["model_path"] = run.save(student, tokenizer, f"student-{scfg.name}",
                                     trained_in=run.stage_dir(f"distill.{scfg.name}"))
        out.update(about)
        return out

    return fn


def eval_step(name: str, role: str, round_: int | None, source: str):
    def fn(run, stage) -> dict[str, Any]:
        from selfdistill.stages.evaluate import evaluate_model

        cfg = run.cfg
        dtype = model_config(cfg, name).dtype if role == "student" else cfg.policy.dtype
        model, tokenizer = run.load(run.done(source)["model_path"], dtype)
        row = evaluate_model(model, tokenizer, run.split.eval, ecfg=cfg.eval, rcfg=cfg.rewards, seed=cfg.run.seed + 5,
                             prompt_format=cfg.tasks.prompt_format, name=name)
        examples = row.pop("examples")
        stage.table("eval/samples", ["kind", "prompt", "completion", "reward"], examples)
        stage.summary({k: v for k, v in row.items() if isinstance(v, int | float)})
        log.info("eval %s: pass@1 %s (math %s, code %s) maj@%d %s, %d infrastructure failures", name,
                 _pct(row["accuracy"]), _pct(row["accuracy_math"]), _pct(row["accuracy_code"]), row["k"],
                 _pct(row["maj_at_k"]), row["infra_failures"])
        return {"model": name, "role": role, "round": round_, **row, "model_path": run.done(source)["model_path"],
                **_sandbox(cfg.rewards)}

    return fn


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def report_step(eval_keys: list[str], final: str):
    def fn(run, stage) -> dict[str, Any]:
        from selfdistill.report import write_report

        rows = [run.done(k) for k in eval_keys]
        paths = write_report(run, rows, final_policy_key=final)
        stage.summary({"final_accuracy": next((r["accuracy"] for r in rows if r["model_path"] == run.done(final)["model_path"]), None)})
        return {"files": [str(p) for p in paths]}

    return fn
