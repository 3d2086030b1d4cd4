"""The plan as data, typed step outputs, resuming a run directory written in the old state layout, the report.

No model is trained here: every step but the report is marked done by hand-written state files (the flat JSON
layout the pipeline has always written), so `run_pipeline` resumes straight into the report.
"""

from __future__ import annotations

import json

import pytest
from _run_helpers import finished_run

from selfdistill.config import load_config
from selfdistill.pipeline import Run, run_pipeline
from selfdistill.planning import COMMANDS, StepOutput, format_plan, plan
from selfdistill.stages.steps import ACTIONS


def test_plan_lists_every_step_once_after_its_inputs():
    steps = plan(load_config(None, ["run.rounds=2", "pipeline.preset=rounds", "eval.rl_checkpoints=true"]))
    keys = [s.key for s in steps]
    assert len(keys) == len(set(keys))
    assert keys[:7] == ["base", "r1.rl", "r1.collect", "r1.sft", "r2.rl", "r2.collect", "r2.sft"]
    for i, s in enumerate(steps):
        assert s.action in ACTIONS and s.command in COMMANDS, s
        assert all(k in keys[:i] for k in s.needs), f"{s.key} reads a step that runs after it: {s.needs}"
    by_key = {s.key: s for s in steps}
    assert by_key["r2.rl"].inputs == {"policy": "r1.sft"}
    # sft.traces=all: round 2's SFT reads every round's traces so far (store rounds 1 and 2)
    assert by_key["r2.sft"].inputs == {"policy": "r2.rl", "traces": ("r1.collect", "r2.collect")}
    assert by_key["r2.sft"].params["trace_rounds"] == (1, 2)
    assert by_key["distill.student-dense"].inputs == {
        "student": "student.student-dense.base",
        "teacher": "r2.sft",
        "traces": ("r1.collect", "r2.collect"),
    }
    assert [s.key for s in steps if s.command == "eval"] == [
        "eval.base",
        "eval.policy-r1-rl",
        "eval.policy-r1",
        "eval.policy-r2-rl",
        "eval.policy-r2",
        "eval.student-dense",
    ]
    report = steps[-1]
    assert report.key == "report" and report.inputs["final"] == "r2.sft"
    assert report.inputs["rl"] == ("r1.rl", "r2.rl") and report.inputs["collect"] == (
        "r1.collect",
        "r2.collect",
    )
    assert report.params["timed"] == tuple(keys[:-1])


def test_plan_of_a_progressive_chain_reads_the_previous_student():
    cfg = load_config(None, ["distill.students=[{name: mid}, {name: small, teacher: mid}]"])
    by_key = {s.key: s for s in plan(cfg)}
    assert by_key["distill.small"].inputs["teacher"] == "distill.mid"
    assert by_key["distill.mid"].inputs["teacher"] == "r3.sft"


def test_plan_prints_itself():
    text = format_plan(plan(load_config()))
    lines = text.splitlines()
    assert len(lines) == len(plan(load_config()))
    # the demo's rft_rounds plan: round 2 fine-tunes round 1's policy (not its RL'd one) on both rounds' traces
    assert "r2.sft" in lines[5] and "policy=r1.sft, traces=[r1.collect, r2.collect]" in lines[5]
    assert lines[-1].split()[1] == "report" and "final=r3.sft" in lines[-1]


def test_step_output_round_trips_the_flat_state_layout():
    old = {
        "steps": 8,
        "history": [{"step": 1, "reward": 0.5}],
        "model_path": "/m/r1-rl",
        "seconds": 3.0,
        "cpu_seconds": 2.5,
    }
    out = StepOutput.from_json(old)
    assert (
        out.model_path == "/m/r1-rl"
        and out.seconds == 3.0
        and out.metrics == {"steps": 8, "history": old["history"]}
    )
    assert out.to_json() == old
    assert StepOutput.from_json({"files": ["a"]}).to_json() == {"files": ["a"]}  # no model, no timings


def test_old_state_files_resume_into_the_report(tmp_path, caplog):
    cfg = finished_run(tmp_path)
    with caplog.at_level("INFO"):
        report = run_pipeline(cfg)
    skipped = {r.getMessage() for r in caplog.records if r.getMessage().startswith("skip ")}
    assert skipped == {f"skip {s.key} (done)" for s in plan(cfg)[:-1]}  # only the report ran
    assert report == json.loads((cfg.run_dir / "report.json").read_text())
    rows = {r["model"]: r for r in report["eval"]}
    assert list(rows) == ["base", "policy-r1", "student-dense"]
    assert rows["policy-r1"]["accuracy_math"] == 0.75 and rows["policy-r1"]["accuracy_code"] == 0.25
    assert rows["policy-r1"]["accuracy_by_kind"] is None  # not in rows written before it existed
    s = report["summary"]
    assert s["final_policy"] == "policy-r1" and s["policy_gain_points"] == pytest.approx(25.0)
    assert (
        s["best_student"] == "student-dense"
        and s["student_retention"] == 1.0
        and s["student_param_ratio"] == 0.25
    )
    assert report["chain"][0]["teacher"] == "policy-r1" and report["chain"][0]["speedup"] == pytest.approx(
        0.25
    )
    assert report["rl"] == [
        {
            "round": 1,
            "stage": "r1.rl",
            "history": [
                {"step": 1, "reward": 0.25, "loss": 0.1},
                {"step": 2, "moe/routing_change_rate": 0.0},
            ],
        }
    ]
    assert report["collect"] == [
        {
            "round": 1,
            "stage": "r1.collect",
            "sampled": 16,
            "kept": 5,
            "sample_accuracy": 0.3125,
            "seconds": 5.0,
            "cpu_seconds": 4.0,
        }
    ]
    assert report["stages"]["r1.rl"] == 20.0 and report["wall_time_s"] == pytest.approx(
        10 + 20 + 5 + 3 + 1 + 2 + 6
    )
    # the plan, in order, with what each step read and left
    plan_rows = {p["step"]: p for p in report["plan"]}
    assert [p["step"] for p in report["plan"]] == [s.key for s in plan(cfg)[:-1]]
    assert plan_rows["r1.sft"]["inputs"] == {"policy": "r1.rl", "traces": "r1.collect"}
    assert plan_rows["r1.sft"]["output"] == "models/r1-sft" and plan_rows["r1.sft"]["seconds"] == 3.0
    assert plan_rows["r1.collect"]["output"] == "5 traces (store round 1)"
    assert plan_rows["eval.policy-r1"]["output"] == "pass@1 50.0%"
    md = (cfg.run_dir / "report.md").read_text()
    assert "| 4 | r1.sft | sft | policy = r1.rl; traces = r1.collect | models/r1-sft | 3.0 |" in md
    assert "| policy-r1 | policy | 1 | 4,000 | 50.0% | 75.0% | 25.0% |" in md
    for png in ("rl_reward.png", "accuracy.png"):
        assert (cfg.run_dir / png).stat().st_size > 1000
    done = Run(cfg).done("report")
    assert (
        isinstance(done, StepOutput)
        and done.metrics["files"][0].endswith("report.json")
        and done.seconds >= 0
    )


def test_config_command_prints_the_plan(capsys):
    from selfdistill.cli import main

    assert main(["config", "--plan", "run.rounds=1"]) == 0
    lines = capsys.readouterr().out.split("\nsteps:\n")[1].splitlines()
    assert [line.split()[1] for line in lines] == [s.key for s in plan(load_config(None, ["run.rounds=1"]))]
