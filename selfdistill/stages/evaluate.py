"""Eval stage: held-out accuracy (pass@1 from samples, maj@k), size, speed and memory of a model.

pass@1 is estimated as the mean correctness over ``num_samples`` samples per problem at the
eval temperature (unbiased for pass@1). maj@k votes over the samples' keys (each kind's
`TaskKind.vote_key`: math the extracted ``\\boxed{}`` content, code the extracted program,
whitespace-normalised) and scores the winning answer. Correct means correctness reward >= 1
(all tests pass for code). Accuracy is also given per kind: ``accuracy_by_kind`` and, for every
registered kind, ``accuracy_<kind>`` (None when the eval set has none of it).
Samples the infrastructure could not judge (a sandbox or math-worker failure: correctness None)
are not wrong answers: they are counted in ``infra_failures`` and left out of pass@1 and maj@k
(numerator and denominator); a model whose every sample failed so has accuracy None.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from selfdistill.generation import sample
from selfdistill.models.tiny import count_params
from selfdistill.rewarding import Scores, score_completions
from selfdistill.tasks.base import Task
from selfdistill.tasks.kinds import get_kind, kinds


def answer_key(kind: str, completion: str) -> str | None:
    """What majority voting compares for a task of ``kind`` (its `TaskKind.vote_key`)."""
    return get_kind(kind).vote_key(completion)


def majority_correct(keys: list[str | None], correct: list[bool]) -> bool:
    """Correctness of the most common non-empty key (first seen wins ties)."""
    votes = Counter(k for k in keys if k is not None)
    if not votes:
        return False
    best = max(votes.items(), key=lambda kv: (kv[1], -keys.index(kv[0])))[0]
    return correct[keys.index(best)]


def memory_mb(model) -> float:
    """Peak CUDA memory when on GPU, else the weights' size (CPU RSS is process-wide)."""
    import torch

    device = next(model.parameters()).device
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20


def eval_seed(cfg) -> int:
    """The sampling seed of a run's evaluations: every model of the run is sampled with the same one."""
    return cfg.run.seed + 5


def evaluate_with_config(model, tokenizer, tasks: list[Task], cfg, name: str) -> dict[str, Any]:
    """`evaluate_model` with run config ``cfg``'s eval, reward and generation settings and `eval_seed`: what the
    pipeline's eval step runs, so a script that re-evaluates a model (scripts/exp_distill.py) reproduces it."""
    return evaluate_model(
        model,
        tokenizer,
        tasks,
        ecfg=cfg.eval,
        rcfg=cfg.rewards,
        seed=eval_seed(cfg),
        prompt_format=cfg.tasks.prompt_format,
        name=name,
        gcfg=cfg.generation,
    )


def evaluate_model(
    model, tokenizer, tasks: list[Task], *, ecfg, rcfg, seed: int, prompt_format: str, name: str, gcfg=None
) -> dict[str, Any]:
    """One report row (without model/role/round, which the caller adds) plus per-kind detail.

    Under a distributed launcher each rank samples and scores its share of the problems (`distributed.shard`);
    the per-problem results are gathered and every rank computes the same figures over all of them.
    tokens/s is the job's: all ranks' new tokens over the slowest rank's sampling time.
    """
    import torch

    from selfdistill import distributed as dist

    if next(model.parameters()).device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    n = ecfg.num_samples
    mine = dist.shard(list(range(len(tasks))))  # this rank's problems
    rows = [tasks[i].to_row(prompt_format) for i in mine]
    samples = sample(
        model,
        tokenizer,
        [r["prompt"] for r in rows],
        n=n,
        temperature=ecfg.temperature,
        top_p=ecfg.top_p,
        max_new_tokens=ecfg.max_new_tokens,
        batch_size=ecfg.batch_size,
        seed=seed * dist.world_size() + dist.rank(),
        progress=f"eval {name}",
        backend=gcfg.backend if gcfg else "auto",
        settings=gcfg,
    )
    flat = [c for comps in samples.completions for c in comps]
    columns = {k: [r[k] for r in rows for _ in range(n)] for k in ("kind", "answer", "tests")}
    scores = score_completions(rcfg, [r["prompt"] for r in rows for _ in range(n)], flat, columns)
    parts = dist.gather(
        {
            "index": mine,
            "completions": samples.completions,
            "scores": scores,
            "new_tokens": samples.new_tokens,
            "seconds": samples.seconds,
        }
    )
    completions, scores = merge_parts(parts, n)
    seconds = max(p["seconds"] for p in parts)
    return {
        "params": count_params(model),
        **accuracy_figures(tasks, completions, scores),
        "tokens_per_s": sum(p["new_tokens"] for p in parts) / seconds if seconds > 0 else 0.0,
        "generation_backend": samples.backend,
        "memory_mb": memory_mb(model),
        "n_problems": len(tasks),
        "temperature": ecfg.temperature,
        "examples": [
            [tasks[i].kind, tasks[i].prompt, completions[i][0], scores.correct[i * n]]
            for i in range(min(8, len(tasks)))
        ],
    }


def merge_parts(parts: list[dict[str, Any]], n: int) -> tuple[list[list[str]], Scores]:
    """Per-rank results (problem indices, [problems][n] completions, task-major `Scores`) back in problem order."""
    from dataclasses import fields

    names = [f.name for f in fields(Scores)]  # every per-sample list of `Scores`
    by_index: dict[int, tuple[list[str], dict[str, list]]] = {}
    for part in parts:
        sc = part["scores"]
        for k, i in enumerate(part["index"]):
            window = slice(k * n, (k + 1) * n)
            by_index[i] = (part["completions"][k], {f: getattr(sc, f)[window] for f in names})
    order = sorted(by_index)
    completions = [by_index[i][0] for i in order]
    merged = {f: [v for i in order for v in by_index[i][1][f]] for f in names}
    return completions, Scores(**merged)


def accuracy_figures(tasks: list[Task], completions: list[list[str]], scores) -> dict[str, Any]:
    """pass@1 (overall and per kind), maj@k, format rate and infrastructure failures of ``completions``
    (``[num_tasks][k]``) scored flat in ``scores`` (`rewarding.Scores`, task-major).

    Samples the sandbox/verifier could not judge (correctness None) are left out of pass@1, maj@k and their
    denominators, and counted in ``infra_failures``; a figure with no judged sample is None.
    """
    n = len(completions[0]) if completions else 0
    per_kind: dict[str, list[float]] = {}
    maj: dict[str, list[bool]] = {}
    for i, task in enumerate(tasks):
        judged = [j for j in range(n) if scores.correct[i * n + j] is not None]
        correct = [scores.correct[i * n + j] >= 1.0 for j in judged]
        per_kind.setdefault(task.kind, []).extend(float(c) for c in correct)
        if judged:
            keys = [answer_key(task.kind, completions[i][j]) for j in judged]
            maj.setdefault(task.kind, []).append(majority_correct(keys, correct))
    by_kind = {k.name: _mean(per_kind[k.name]) for k in kinds() if k.name in per_kind}  # registry order
    return {
        "accuracy": _mean([c for v in per_kind.values() for c in v]),
        **kind_columns(by_kind),
        "accuracy_by_kind": by_kind,
        "maj_at_k": _mean([m for v in maj.values() for m in v]),
        "k": n,
        "infra_failures": scores.infra_failures,
        "format_rate": _mean([float(f) for f in scores.formatted]),
    }


def kind_columns(by_kind: dict[str, float | None]) -> dict[str, float | None]:
    """``accuracy_<kind>`` for every registered kind (None where the eval set has none of that kind)."""
    return {f"accuracy_{k.name}": by_kind.get(k.name) for k in kinds()}


def _mean(values: list[float] | None) -> float | None:
    return sum(values) / len(values) if values else None
