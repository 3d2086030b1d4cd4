"""Progressive distillation chains: the named teacher teaches.

With a sequence method (``sft``, ``hidden_align``) a student whose teacher is an earlier student trains on that
student's own sampled, reward-filtered traces (a ``collect.<teacher>`` step); with a logit method on its logits.
"""

from __future__ import annotations

import pytest

from selfdistill.config import load_config
from selfdistill.models.loading import save_model
from selfdistill.pipeline import Run, execute, plan
from selfdistill.traces import Trace

CHAIN = "distill.students=[{name: a, tiny: {arch: qwen2}}, {name: b, teacher: a, tiny: {arch: qwen2}}]"


def _cfg(tmp_path, method: str):
    return load_config(
        None,
        [
            f"run.output_dir={tmp_path}",
            "tracking.report_to=none",
            "run.device=cpu",
            "run.rounds=1",
            "pipeline.preset=rounds",  # RL in round 1 (the demo starts with rejection-sampling fine-tuning)
            CHAIN,
            f"distill.method={method}",
            "tasks.sources.0.n=40",
            "tasks.sources.1.n=20",
            "rewards.weights={math: 1.0}",
            "collect.num_prompts=4",
            "collect.k=2",
            "collect.max_new_tokens=8",
            "collect.min_reward=0",
            "collect.require_format=false",
            "collect.batch_size=16",
            "distill.min_reward=0",
            "distill.sft.max_steps=1",
            "distill.sft.batch_size=4",
            "distill.sft.max_length=96",
        ],
    )


@pytest.mark.parametrize(
    "method, collects", [("sft", True), ("hidden_align", True), ("logit_kd", False), ("on_policy", False)]
)
def test_plan_has_the_teacher_student_collect_its_own_traces_for_sequence_methods(tmp_path, method, collects):
    steps = {s.key: s for s in plan(_cfg(tmp_path, method))}
    assert "distill.a" in steps["distill.b"].needs  # the teacher is student a, whatever the method
    assert ("collect.a" in steps) == collects
    if collects:
        assert steps["collect.a"].needs == ["distill.a"] and "collect.a" in steps["distill.b"].needs
    assert not any(k.startswith("collect.b") for k in steps)  # b teaches nobody
    assert all(
        s.command != "collect" or s.round for s in steps.values()
    )  # `selfdistill collect` is the policy's


def test_sft_chain_student_learns_from_its_teacher_students_traces(tmp_path, tiny_dense, tokenizer):
    """Student b (teacher: student a, method sft) trains on the traces a sampled and its rewards kept, not on the
    policy's (before, every student trained on the policy's traces while the report named another teacher)."""
    cfg = _cfg(tmp_path, "sft")
    run = Run(cfg)
    teacher_a = save_model(tiny_dense, tokenizer, tmp_path / "a")
    run.finish("distill.a", {"model_path": str(teacher_a)})
    run.finish("student.b.base", {"model_path": str(save_model(tiny_dense, tokenizer, tmp_path / "b-base"))})
    run.finish("r1.sft", {"model_path": str(teacher_a)})
    # the policy's store holds traces too: the student must not train on these
    policy_traces = [
        Trace(
            prompt=f"policy prompt {i}",
            completion="\\boxed{1}",
            reward=1.0,
            kind="math",
            task_id=f"m-{i}",
            round=1,
            model="policy-r1-rl",
        )
        for i in range(7)
    ]
    run.store.append(policy_traces, "r1-collect-00000")
    steps = {s.key: s for s in plan(cfg)}

    collected = execute(run, steps["collect.a"])
    own = list(run.student_store("a").iter())
    assert collected["kept"] == len(own) > 0 and {t.model for t in own} == {"student-a"}
    assert {t.prompt for t in own}.isdisjoint(t.prompt for t in policy_traces)

    out = execute(run, steps["distill.b"])
    assert out["traces_from"] == "a" and out["teacher_key"] == "distill.a"
    assert out["rows"] == len(own) != len(policy_traces)
