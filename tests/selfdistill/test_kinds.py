"""A third task kind, added in one place (`register_kind`) with its own reward, runs through collect, eval and
the report: the stages and the report loop over the task-kind registry and never spell a kind's name."""

from __future__ import annotations

import json

import pytest
from _run_helpers import finished_run

from rewards.registry import register_reward, unregister_reward
from selfdistill.config import CollectConfig, EvalConfig, RewardConfig
from selfdistill.pipeline import Run, run_pipeline
from selfdistill.planning import StepOutput
from selfdistill.stages.collect import collect_round
from selfdistill.stages.evaluate import evaluate_model
from selfdistill.tasks.base import Task
from selfdistill.tasks.kinds import TASK_KINDS, TaskKind, get_kind, register_kind
from selfdistill.traces import TraceStore
from selfdistill.tracking import NullStage

LONG = "100000"  # no completion is this long: tasks with this reference are never solved


def length_reward(prompts, completions, answer=None, kind=None, **kwargs):
    """The third kind's reward: 1.0 when the completion has at least ``int(answer)`` characters."""
    return [float(len(c) >= int(a)) if k == "length" else None for c, a, k in zip(completions, answer, kind)]


def length_vote(completion: str) -> str:
    return str(len(completion) // 4)


@pytest.fixture
def length_kind():
    register_reward("length", f"{__name__}:length_reward")
    kind = register_kind(
        TaskKind(
            "length", reward="length", reference="answer", instruction="Write anything.", vote=length_vote
        )
    )
    yield kind
    TASK_KINDS.unregister("length")
    unregister_reward("length")


def length_tasks(n: int) -> list[Task]:
    """Half solved by any completion (reference 0 characters), half by none."""
    return [
        Task(f"length-{i}", "length", f"write {i}:", answer="0" if i % 2 == 0 else LONG) for i in range(n)
    ]


RCFG = RewardConfig(weights={"math": 1.0, "length": 1.0})


def test_a_third_kind_is_collected_by_its_own_reward(length_kind, tiny_dense, tokenizer, tmp_path):
    store = TraceStore(tmp_path / "traces")
    ccfg = CollectConfig(
        num_prompts=6,
        k=2,
        max_new_tokens=6,
        min_reward=1.0,
        require_format=False,
        max_per_prompt=2,
        chunk_size=6,
        batch_size=16,
    )
    out = collect_round(
        tiny_dense,
        tokenizer,
        length_tasks(6),
        store,
        ccfg=ccfg,
        rcfg=RCFG,
        round_=1,
        seed=0,
        model_name="m",
        prompt_format="plain",
        stage=NullStage(),
    )
    assert out["sampled"] == 12 and out["sample_accuracy"] == 0.5
    traces = list(store.iter())
    assert all(
        t.kind == "length" and t.reward == 1.0 and int(t.task_id.split("-")[1]) % 2 == 0 for t in traces
    )
    assert out["kept"] == len(traces) and out.get("incorrect") == 6  # every sample of the unsolvable half


def test_a_third_kind_is_evaluated_and_reported(length_kind, tiny_dense, tokenizer, tmp_path):
    from test_stages import math_tasks  # procedural math tasks

    assert get_kind("length").instruction == "Write anything."
    tasks = length_tasks(6) + math_tasks(4)
    ecfg = EvalConfig(num_samples=2, max_new_tokens=6, batch_size=16)
    row = evaluate_model(
        tiny_dense, tokenizer, tasks, ecfg=ecfg, rcfg=RCFG, seed=0, prompt_format="plain", name="t"
    )
    assert list(row["accuracy_by_kind"]) == ["math", "length"]  # registry order, kinds present only
    assert row["accuracy_length"] == row["accuracy_by_kind"]["length"] == 0.5
    assert row["accuracy_code"] is None  # registered, but no code task in this eval set
    math = row["accuracy_by_kind"]["math"]
    assert row["accuracy"] == pytest.approx((6 * 0.5 + 4 * math) / 10)
    assert row["maj_at_k"] >= 0.3  # the solvable half wins its vote whatever the key

    cfg = finished_run(tmp_path)  # a one-round run directory, every step but the report finished
    run = Run(cfg)
    path = run.done("eval.policy-r1").model_path
    row.pop("examples")
    run.finish(
        "eval.policy-r1",
        StepOutput(
            path, {"model": "policy-r1", "role": "policy", "round": 1, **row}, seconds=4.0, cpu_seconds=4.0
        ),
    )
    report = run_pipeline(cfg)
    rows = {r["model"]: r for r in report["eval"]}
    assert rows["policy-r1"]["accuracy_length"] == 0.5 and rows["base"]["accuracy_length"] is None
    assert rows["policy-r1"]["accuracy_by_kind"] == row["accuracy_by_kind"]
    assert json.loads((cfg.run_dir / "report.json").read_text())["eval"][1]["accuracy_length"] == 0.5
    md = (cfg.run_dir / "report.md").read_text()
    assert "| model | role | round | params | pass@1 | math | code | length | maj@k |" in md
    assert "| 50.0% |" in md.split("| policy-r1 |")[1].splitlines()[0]
