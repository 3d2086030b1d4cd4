"""Collect stage: rejection-sample the policy's own traces into the trace store.

For each training prompt (a seeded subset per round), sample ``k`` completions, score them
with the same rewards RL uses, and keep those that are correct (correctness reward >=
``min_reward``), well formed (format reward 1, when required), scored at least
``judge_min_score`` by the judge (when set; see `judge_scores`), not degenerate and not
duplicates, at most ``max_per_prompt`` per prompt. Prompts are processed in chunks of
``chunk_size``; each chunk becomes one immutable shard named ``r<round>-collect-<chunk>``, or under
N processes one shard per rank (``...-rank0001of0002``, `traces.shard_name`): every rank samples,
scores and writes its own share of the chunk, and only trace ids and counts cross ranks.
Sampling is seeded per chunk (and rank), so a run killed mid-collect and resumed (with the same
number of processes) redoes only the unfinished shards and produces exactly the traces an
uninterrupted run would.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from typing import Any

from selfdistill import distributed as dist
from selfdistill.generation import sample
from selfdistill.rewarding import reward_func, score_completions
from selfdistill.rl_options.difficulty import Observation, merge_observations, observations
from selfdistill.tasks.base import Task
from selfdistill.traces import Trace, TraceStore, shard_name


def select_prompts(train: list[Task], num_prompts: int, seed: int, round_: int) -> list[Task]:
    rng = random.Random(f"collect-{seed}-{round_}")
    pool = list(train)
    rng.shuffle(pool)
    return pool[: min(num_prompts, len(pool))]


def is_degenerate(completion: str) -> bool:
    """Empty, or a single character repeated over most of the text (a common collapse)."""
    text = completion.strip()
    if not text:
        return True
    most = Counter(text).most_common(1)[0][1]
    return len(text) > 20 and most / len(text) > 0.5


def judge_scores(
    rcfg, ccfg, prompts: list, completions: list[str], answers: list, scores
) -> list[float | None] | None:
    """The judge's score per completion when ``collect.judge_min_score`` is set (else None).

    When ``judge`` is an RL reward its scores are already in ``scores.parts``; otherwise only the
    completions that pass the correctness and format filters are judged (the judge is the costly
    part), and their scores are added to ``scores.parts`` so the traces record them.
    """
    if ccfg.judge_min_score is None:
        return None
    if "judge" in rcfg.weights:
        return [p.get("judge") for p in scores.parts]
    todo = [
        i
        for i in range(len(completions))
        if scores.correct[i] is not None
        and scores.correct[i] >= ccfg.min_reward
        and (scores.formatted[i] or not ccfg.require_format)
    ]
    judged: list[float | None] = [None] * len(completions)
    values = reward_func(rcfg, "judge")(
        [prompts[i] for i in todo], [completions[i] for i in todo], answer=[answers[i] for i in todo]
    )
    for i, v in zip(todo, values):
        judged[i] = v
        if v is not None:
            scores.parts[i]["judge"] = v
    return judged


def filter_samples(
    task: Task, completions: list[str], scores, offset: int, ccfg, judged: list[float | None] | None = None
) -> tuple[list[int], Counter]:
    """Indices (into the flat batch) of the completions kept for ``task``, and why others were dropped.

    ``judged``: the judge's score per flat completion when collect filters on it (None = no judge filter).
    """
    kept: list[int] = []
    seen: set[str] = set()
    why: Counter = Counter()
    for j, completion in enumerate(completions):
        i = offset + j
        if scores.correct[i] is None:  # the sandbox/verifier failed: nobody knows whether it is right
            why["infra_error"] += 1
        elif scores.correct[i] < ccfg.min_reward:
            why["incorrect"] += 1
        elif ccfg.require_format and not scores.formatted[i]:
            why["malformed"] += 1
        elif judged is not None and judged[i] is None:
            why["judge_unscored"] += 1
        elif judged is not None and judged[i] < ccfg.judge_min_score:
            why["judge_low"] += 1
        elif is_degenerate(completion):
            why["degenerate"] += 1
        elif completion in seen:
            why["duplicate"] += 1
        elif len(kept) >= ccfg.max_per_prompt:
            why["over_cap"] += 1
        else:
            seen.add(completion)
            kept.append(i)
    return kept, why


# long function: the per-rank chunk loop with its resume and id exchange; to split (debt noted 2026-11-30)
def collect_round(
    model,
    tokenizer,
    train: list[Task],
    store: TraceStore,
    *,
    ccfg,
    rcfg,
    round_: int,
    seed: int,
    model_name: str,
    prompt_format: str,
    stage,
    gcfg=None,
    observe: Callable[[str, list[Observation]], None] | None = None,
) -> dict[str, Any]:
    """Fill the store with round ``round_``'s traces; returns counts (resumes finished chunks).

    ``observe(chunk, observations)``: called on every rank with each chunk's name (``r<round>-collect-<c>``) and
    every rank's per-prompt correctness counts, before any rank writes its shard of the chunk (the pass-rate
    store of difficulty filtering); chunks resumed from disk are not observed again."""
    tasks = select_prompts(train, ccfg.num_prompts, seed, round_)
    chunks = [tasks[i : i + ccfg.chunk_size] for i in range(0, len(tasks), ccfg.chunk_size)]
    totals: Counter = Counter()
    examples: list[list[Any]] = []
    for c, chunk in enumerate(chunks):
        base = f"r{round_}-collect-{c:05d}"
        # rank 0's view, so every rank takes the same chunks (and joins the same collectives)
        todo = dist.broadcast(
            store.missing_ranks(base, dist.world_size()) if dist.is_main_process() else None
        )
        if not todo:
            totals["chunks_resumed"] += 1
            continue
        chunk_seed = seed * 1_000_003 + round_ * 1009 + c
        mine = dist.shard(list(range(len(chunk)))) if dist.rank() in todo else []  # this rank's task indices
        part = _collect_tasks(
            [chunk[i] for i in mine],
            mine,
            model,
            tokenizer,
            ccfg=ccfg,
            rcfg=rcfg,
            round_=round_,
            seed=chunk_seed * dist.world_size() + dist.rank(),
            model_name=model_name,
            prompt_format=prompt_format,
            progress=f"collect r{round_} chunk {c + 1}/{len(chunks)}",
            gcfg=gcfg,
        )
        obs = part.pop("observations")
        if observe is not None:  # before any rank writes its shard: a resumed chunk is not counted twice
            observe(base, merge_observations(dist.gather(obs)))
        traces = [t for _, kept in part.pop("kept") for t in kept]  # task order
        added = _append_share(
            store, traces, shard_name(base, dist.rank(), dist.world_size()), dist.rank() in todo
        )
        for p in dist.gather(
            {**part, "added": added, "offered": len(traces)}
        ):  # counts only, never completions
            totals.update(p["why"])
            totals["sampled"] += p["sampled"]
            totals["accuracy_sum"] += p["accuracy_sum"]
            totals["kept"] += p["added"]
            totals["duplicate_in_store"] += p["offered"] - p["added"]
        examples += [[t.kind, t.prompt, t.completion, t.reward] for t in traces][: max(0, 20 - len(examples))]
        stage.log(
            {"collect/kept": totals["kept"], "collect/sampled": totals["sampled"], "collect/chunk": c + 1}
        )
    if examples:
        stage.table("collect/sample_traces", ["kind", "prompt", "completion", "reward"], examples)
    sampled = totals["sampled"]
    out = {k: v for k, v in totals.items() if k != "accuracy_sum"}
    judged = sampled - totals["infra_error"]  # samples whose correctness the sandbox/verifier could tell
    out["sample_accuracy"] = totals["accuracy_sum"] / judged if judged else None
    if dist.is_main_process():  # other ranks' outputs are dropped (rank 0 records the step)
        out["store_total"] = len(store)
        out["store_round"] = store.to_dataset(round=round_).num_rows
        # the files of this round's traces, every rank's shards (its dataset artifact, W&B lineage)
        out["shards"] = [str(p) for p in sorted(store.root.glob(f"r{round_}-collect-*.jsonl"))]
    stage.summary(out)
    return out


def _append_share(store: TraceStore, traces: list[Trace], shard: str, write: bool) -> int:
    """Store this rank's ``traces`` as its own ``shard`` (when ``write``); returns how many were new.

    Only trace ids cross ranks: a trace that a lower rank also holds is left to that rank, and every rank
    remembers what the others stored, so each trace is stored once at any world size.
    """
    per_rank = dist.gather([t.trace_id for t in traces])
    lower = {tid for ids in per_rank[: dist.rank()] for tid in ids}
    added = store.append([t for t in traces if t.trace_id not in lower], shard) if write else 0
    store.remember(tid for r, ids in enumerate(per_rank) if r != dist.rank() for tid in ids)
    return added


# long function: sample, score, filter, judge in one pass over a chunk; to split (debt noted 2026-11-30)
def _collect_tasks(
    tasks: list[Task],
    index: list[int],
    model,
    tokenizer,
    *,
    ccfg,
    rcfg,
    round_: int,
    seed: int,
    model_name: str,
    prompt_format: str,
    progress: str,
    gcfg=None,
) -> dict[str, Any]:
    """Sample, score and filter ``tasks`` (``index``: their positions in the chunk); picklable result."""
    why: Counter = Counter()
    kept_by_task: list[tuple[int, list[Trace]]] = []
    if not tasks:  # a chunk smaller than the world leaves some ranks idle
        return {"kept": kept_by_task, "why": why, "sampled": 0, "accuracy_sum": 0.0, "observations": []}
    rows = [t.to_row(prompt_format) for t in tasks]
    samples = sample(
        model,
        tokenizer,
        [r["prompt"] for r in rows],
        n=ccfg.k,
        temperature=ccfg.temperature,
        top_p=ccfg.top_p,
        max_new_tokens=ccfg.max_new_tokens,
        batch_size=ccfg.batch_size,
        seed=seed,
        progress=progress,
        backend=gcfg.backend if gcfg else "auto",
        settings=gcfg,
    )
    flat_prompts = [r["prompt"] for r in rows for _ in range(ccfg.k)]
    flat = [comp for comps in samples.completions for comp in comps]
    columns = {key: [r[key] for r in rows for _ in range(ccfg.k)] for key in ("kind", "answer", "tests")}
    scores = score_completions(rcfg, flat_prompts, flat, columns)
    judged = judge_scores(rcfg, ccfg, flat_prompts, flat, columns["answer"], scores)
    sampling = {
        "temperature": ccfg.temperature,
        "top_p": ccfg.top_p,
        "max_new_tokens": ccfg.max_new_tokens,
        "seed": seed,
        "k": ccfg.k,
        "backend": samples.backend,
    }
    for t_idx, (task, comps) in enumerate(zip(tasks, samples.completions)):
        kept, reasons = filter_samples(task, comps, scores, t_idx * ccfg.k, ccfg, judged)
        why.update(reasons)
        kept_by_task.append(
            (
                index[t_idx],
                [
                    Trace(
                        prompt=task.prompt,
                        completion=flat[i],
                        reward=scores.correct[i],
                        kind=task.kind,
                        task_id=task.task_id,
                        round=round_,
                        model=model_name,
                        rewards=scores.parts[i],
                        status=scores.status[i],
                        sampling=sampling,
                        rendered_prompt=rows[t_idx]["prompt"],
                    )
                    for i in kept
                ],
            )
        )
    obs = observations([t.task_id for t in tasks for _ in range(ccfg.k)], scores.correct)
    return {
        "kept": kept_by_task,
        "why": why,
        "sampled": len(flat),
        "accuracy_sum": float(sum(c or 0.0 for c in scores.correct)),
        "observations": obs,
    }
