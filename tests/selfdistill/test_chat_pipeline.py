"""The whole loop in chat mode on pretrained-style checkpoints with a real BPE tokenizer (slow: about a minute).

    pytest -m slow tests/selfdistill/test_chat_pipeline.py

Random tiny models over SmolLM2's vocabulary, saved as plain HF checkpoints, go through `selfdistill run` as a
user's pretrained models would: RL, collect, SFT, a progressive sft chain of two students, eval, report.
"""

from __future__ import annotations

import json

import pytest

from selfdistill.models.loading import save_model


@pytest.mark.slow
def test_chat_run_with_a_chain_records_statuses_layers_and_whose_traces(
    tmp_path, bpe_moe, bpe_llama, bpe_tokenizer
):
    from selfdistill.cli import main

    policy = save_model(bpe_moe, bpe_tokenizer, tmp_path / "policy")
    student = save_model(bpe_llama, bpe_tokenizer, tmp_path / "student")
    students = (
        f"distill.students=[{{name: a, source: pretrained, path: {student}}}, "
        f"{{name: b, source: pretrained, path: {student}, teacher: a, dtype: bfloat16}}]"
    )
    code = main(
        [
            "run",
            f"run.output_dir={tmp_path}",
            "run.name=chat",
            "run.rounds=1",
            "pipeline.preset=rounds",  # RL in round 1 (the demo starts with rejection-sampling fine-tuning)
            "tracking.report_to=none",
            "tasks.prompt_format=chat",
            "tasks.sources.0.n=40",
            "tasks.sources.1.n=20",
            "tasks.eval_max=4",
            "policy.source=pretrained",
            f"policy.path={policy}",
            students,
            "distill.method=sft",
            "rl.max_steps=1",
            "rl.prompts_per_step=2",
            "rl.num_generations=2",
            "rl.max_completion_length=8",
            "collect.num_prompts=4",
            "collect.k=2",
            "collect.max_new_tokens=8",
            "collect.min_reward=0",
            "collect.require_format=false",
            "sft.max_steps=1",
            "sft.batch_size=4",
            "distill.min_reward=0",
            "distill.sft.max_steps=1",
            "distill.sft.batch_size=4",
            "eval.num_samples=1",
            "eval.max_new_tokens=8",
            "rewards.sandbox_layers=[process, seccomp]",
        ]
    )
    assert code == 0
    run = tmp_path / "chat"
    report = json.loads((run / "report.json").read_text())
    assert {"process", "seccomp"} <= set(report["sandbox"]["layers"]) and report["sandbox"]["required"]
    assert all("infra_failures" in row for row in report["eval"])
    chain = {c["student"]: c for c in report["chain"]}
    assert chain["a"]["traces_from"] == "policy" and chain["b"]["traces_from"] == "a"
    assert report["student_collect"] and report["student_collect"][0]["student"] == "a"
    state = json.loads((run / "state" / "distill.b.json").read_text())
    assert state["traces_from"] == "a"
    traces = [json.loads(line) for p in sorted((run / "traces").glob("*.jsonl")) for line in p.open()]
    assert traces and all(t["rendered_prompt"][0]["role"] == "user" for t in traces)
    assert all((t["status"] == "PASS") == (t["reward"] >= 1.0) for t in traces)
    by_name = {r["model"]: r for r in report["eval"]}
    assert by_name["b"]["memory_mb"] == pytest.approx(
        by_name["a"]["memory_mb"] / 2
    )  # students[1].dtype: bfloat16
