"""The r1 preset end to end on CPU, SIGKILLed inside four of its stages and resumed each time.

`selfdistill run configs/demo.yaml pipeline.preset=r1` with tiny step counts (R1_TINY) is killed while the
cold-start traces are collected (after their first shard), while the base is fine-tuned on them (after a
checkpoint), while the reasoning RL runs (after a checkpoint) and between two evals; the same command then
finishes the run. Every step of the plan runs to completion exactly once, in the plan's order; the resumed
stages continue from their shard or checkpoint; the traces are stored once each under their collect stage's
key; and the report lists the plan's steps in order with their inputs and outputs.

    python -m pytest tests/selfdistill/test_r1_resume.py -m slow
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from test_resume import _env, _kill_when, _trace_ids

from selfdistill.config import DEMO_CONFIG, load_config
from selfdistill.planning import plan

R1_TINY = [
    "pipeline.preset=r1",
    "run.name=r1",
    "tracking.report_to=none",
    "tasks.sources.0.n=200",
    "tasks.sources.1.n=100",
    "tasks.eval_max=5",
    "eval.num_samples=1",
    "policy.bootstrap.steps=150",
    "policy.bootstrap.corpus_size=2000",
    "policy.bootstrap.batch_size=32",
    "rl.max_steps=4",
    "rl.save_steps=2",
    "rl.prompts_per_step=2",
    "rl.num_generations=4",
    # keep every well-sampled completion so even a barely trained policy leaves traces to fine-tune on
    "collect.num_prompts=40",
    "collect.chunk_size=10",
    "collect.min_reward=0",
    "collect.require_format=false",
    "sft.max_steps=4",
    "sft.save_steps=2",
    "distill.sft.max_steps=2",
    "distill.min_reward=0",
    "distill.students.0.bootstrap.steps=5",
    "distill.students.0.bootstrap.corpus_size=200",
]


def _start(out: Path, log: Path):
    import subprocess

    cmd = [
        sys.executable,
        "-m",
        "selfdistill.cli",
        "run",
        str(DEMO_CONFIG),
        *R1_TINY,
        f"run.output_dir={out}",
    ]
    return subprocess.Popen(cmd, stdout=log.open("a"), stderr=subprocess.STDOUT, env=_env())


@pytest.mark.slow
def test_r1_preset_runs_every_stage_in_order_and_resumes_after_sigkills(tmp_path):
    cfg = load_config(DEMO_CONFIG, [*R1_TINY, f"run.output_dir={tmp_path}"])
    steps = plan(cfg)
    keys = [s.key for s in steps]
    run, log = tmp_path / "r1", tmp_path / "run.log"
    state = run / "state"

    kills = [  # (file whose appearance triggers the kill, the step it interrupts)
        (run / "traces" / "r1-collect-00000.jsonl", "cold-start"),
        (run / "work" / "cold-start-sft" / "checkpoint-2" / "trainer_state.json", "cold-start-sft"),
        (run / "work" / "reasoning-rl" / "checkpoint-2" / "trainer_state.json", "reasoning-rl"),
        (state / "eval.r1-zero.json", "eval.cold-start-sft"),
    ]
    for ready, step in kills:
        _kill_when(_start(tmp_path, log), ready, log)
        assert not (state / f"{step}.json").exists(), f"the kill came after {step} finished"
    proc = _start(tmp_path, log)
    assert proc.wait(timeout=1800) == 0, log.read_text()[-3000:]
    text = log.read_text()

    # every step finished once, in the plan's order, across the five processes
    finished = re.findall(r"✓ (\S+) in", text)
    assert finished == keys, f"finished {finished}\nplanned {keys}"
    assert all((state / f"{k}.json").exists() for k in keys)
    assert text.count("resuming from") >= 2  # the SFT and the RL stage went on from their checkpoints
    assert json.loads((state / "cold-start.json").read_text()).get("chunks_resumed", 0) >= 1

    # traces: stored once each, under the key of the collect stage that made them
    ids = _trace_ids(run)
    assert ids and len(ids) == len(set(ids)), "a trace was stored twice"
    by_round: dict[int, set[str]] = {}
    for shard in sorted((run / "traces").glob("*.jsonl")):
        for line in shard.read_text().splitlines():
            t = json.loads(line)
            by_round.setdefault(t["round"], set()).add(t["model"])
            assert shard.name.startswith(f"r{t['round']}-collect-")
    assert by_round == {1: {"policy-r1-zero"}, 2: {"policy-reasoning-rl"}}
    done = {k: json.loads((state / f"{k}.json").read_text()) for k in keys}
    # SFT of the base on the cold-start traces, then on the rejection-sampled ones with the cold-start ones
    # (store_round: all of a collect stage's traces; its `kept` counts those the resumed process added)
    cold, rejected = done["cold-start"]["store_round"], done["rejection"]["store_round"]
    assert done["cold-start-sft"]["rows"] == cold > done["cold-start"]["kept"] > 0
    assert done["rejection-sft"]["rows"] == cold + rejected
    assert done["distill.student-dense"]["teacher_key"] == "final-rl"

    # the report lists the plan's steps in order, each with its inputs and what it left
    report = json.loads((run / "report.json").read_text())
    listed = report["plan"]
    assert [p["step"] for p in listed] == keys[:-1]
    by = {p["step"]: p for p in listed}
    assert by["rejection-sft"]["inputs"] == {"policy": "base", "traces": ["rejection", "cold-start"]}
    assert by["rejection-sft"]["output"] == "models/rejection-sft"
    assert by["cold-start"]["output"] == f"{cold} traces (store round 1)"
    assert all(p["seconds"] is not None for p in listed)
    assert {r["model"] for r in report["eval"]} == {
        "base",
        "r1-zero",
        "cold-start-sft",
        "reasoning-rl",
        "rejection-sft",
        "final-rl",
        "student-dense",
    }
    assert report["summary"]["final_policy"] == "final-rl"
    md = (run / "report.md").read_text()
    assert (
        "| 7 | rejection-sft | sft | policy = base; traces = rejection, cold-start | models/rejection-sft |"
        in md
    )
