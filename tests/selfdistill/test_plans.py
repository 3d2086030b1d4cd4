"""The plan as data (`pipeline.preset` / `pipeline.stages`): each preset's steps, every class of invalid plan,
per-stage overrides, external trace sets, and the `rounds` preset against the plan built before stages existed.

No model runs here; `test_r1_resume.py` (slow) runs the r1 preset end to end with SIGKILLs.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from selfdistill.config import load_config
from selfdistill.configio import ConfigError
from selfdistill.planning import apply_overrides, format_stages, plan, stages_of
from selfdistill.stages.steps import ACTIONS, config_of, has_training_data, training_data
from selfdistill.traces import Trace, TraceStore, external_rows

GOLDEN = Path(__file__).parent / "data" / "rounds_plan_before_stages.json"


def _cfg(*overrides: str):
    return load_config(None, list(overrides))


def _custom(stages: str, *more: str):
    """A config whose plan is ``stages`` (a YAML flow list; the demo's preset cleared)."""
    return _cfg("pipeline.preset=null", f"pipeline.stages={stages}", *more)


def _plain(value):
    """A step field as JSON holds it (tuples as lists)."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


# --- rounds: the plan existing run directories were made with -------------------------------------


@pytest.mark.parametrize("case", sorted(json.loads(GOLDEN.read_text())))
def test_rounds_preset_is_the_plan_before_stages(case):
    """Same steps, keys, order, actions, names, rounds and config fingerprint as the plan `run.rounds` built before
    `pipeline.stages` (GOLDEN: captured by running the plan code of the commit before, on these configs), so
    existing run directories resume. The one change: SFT and distill
    steps now list the collect steps whose traces they read (the old plan named only the current round's, though
    SFT read every round's so far), with those traces' store rounds."""
    old = json.loads(GOLDEN.read_text())[case]
    cfg = load_config(
        "/dev/null", old["overrides"]
    )  # the schema's defaults: GOLDEN does not follow demo.yaml
    assert cfg.fingerprint() == old["fingerprint"]
    new = plan(cfg)
    assert [s.key for s in new] == [s["key"] for s in old["steps"]]
    for step, was in zip(new, old["steps"]):
        for f in ("action", "command", "round", "name"):
            assert _plain(getattr(step, f)) == was[f], (step.key, f)
        inputs, params = _plain(step.inputs), _plain(step.params)
        if step.action in ("sft", "distill") and step.params.get("traces_from", "policy") == "policy":
            collects = [inputs.pop("traces")] if isinstance(inputs["traces"], str) else inputs.pop("traces")
            rounds = params.pop("trace_rounds")
            assert collects == [f"r{r}.collect" for r in rounds]
            last = step.round or cfg.run.rounds  # distill: every round
            want = (
                [last] if step.action == "sft" and cfg.sft.traces == "current" else list(range(1, last + 1))
            )
            assert rounds == want, step.key
            was["inputs"].pop("traces", None)  # the old plan's SFT named only the current round's collect
        params.pop("steps", None)  # the report's new list of the plan
        assert inputs == was["inputs"] and params == was["params"], step.key


def test_rounds_is_the_default_and_ignored_rounds_elsewhere():
    # the config's default; the demo's is rft_rounds
    assert stages_of(_cfg("pipeline.preset=null"))[0] == "rounds"
    assert stages_of(_cfg())[0] == "rft_rounds"
    assert [s.key for s in plan(_cfg("pipeline.preset=rounds"))] == [
        s.key for s in plan(_cfg("pipeline.preset=null"))
    ]
    # run.rounds drives the rounds preset only
    assert [s.key for s in plan(_cfg("pipeline.preset=r1", "run.rounds=1"))] == [
        s.key for s in plan(_cfg("pipeline.preset=r1", "run.rounds=5"))
    ]


# --- the rft_rounds preset (the demo's) --------------------------------------------------------


def test_rft_rounds_fine_tunes_the_previous_policy_on_the_rl_policys_traces():
    steps = plan(_cfg("pipeline.preset=rft_rounds", "run.rounds=3", "eval.rl_checkpoints=true"))
    _check_order(steps)
    by = {s.key: s for s in steps}
    assert [s.key for s in steps][:10] == [
        "base",
        "r1.collect",
        "r1.sft",
        "r2.rl",
        "r2.collect",
        "r2.sft",
        "r3.rl",
        "r3.collect",
        "r3.sft",
        "student.student-dense.base",
    ]
    assert by["r1.collect"].inputs == {"policy": "base"} and by["r1.collect"].round == 1  # no RL in round 1
    assert by["r1.sft"].inputs == {"policy": "base", "traces": "r1.collect"}
    assert by["r2.rl"].inputs == {"policy": "r1.sft"}
    assert by["r2.collect"].inputs == {"policy": "r2.rl"} and by["r2.collect"].round == 2
    # the RL'd policy explores; the previous round's policy is fine-tuned on what it found
    assert by["r2.sft"].inputs == {"policy": "r1.sft", "traces": ("r1.collect", "r2.collect")}
    assert by["r3.sft"].inputs == {"policy": "r2.sft", "traces": ("r1.collect", "r2.collect", "r3.collect")}
    assert by["distill.student-dense"].inputs["teacher"] == "r3.sft"
    evals = [s.key for s in steps if s.action == "eval"]
    assert evals == [
        "eval.base",
        "eval.policy-r1",
        "eval.policy-r2-rl",
        "eval.policy-r2",
        "eval.policy-r3-rl",
        "eval.policy-r3",
        "eval.student-dense",
    ]
    assert by["report"].inputs["final"] == "r3.sft" and by["report"].inputs["rl"] == ("r2.rl", "r3.rl")
    current = {s.key: s for s in plan(_cfg("pipeline.preset=rft_rounds", "sft.traces=current"))}
    assert current["r3.sft"].inputs == {"policy": "r2.sft", "traces": "r3.collect"}


# --- the r1 and r1_zero presets ---------------------------------------------------------------


def _check_order(steps):
    keys = [s.key for s in steps]
    assert len(keys) == len(set(keys))
    for i, s in enumerate(steps):
        assert s.action in ACTIONS, s
        assert all(k in keys[:i] for k in s.needs), f"{s.key} reads a step that runs after it"


def test_r1_preset_steps_inputs_and_order():
    steps = plan(_cfg("pipeline.preset=r1"))
    _check_order(steps)
    by = {s.key: s for s in steps}
    assert [s.key for s in steps] == [
        "base",
        "r1-zero",
        "cold-start",
        "cold-start-sft",
        "reasoning-rl",
        "rejection",
        "rejection-sft",
        "final-rl",
        "student.student-dense.base",
        "distill.student-dense",
        "eval.base",
        "eval.r1-zero",
        "eval.cold-start-sft",
        "eval.reasoning-rl",
        "eval.rejection-sft",
        "eval.final-rl",
        "eval.student-dense",
        "report",
    ]
    assert by["r1-zero"].inputs == {"policy": "base"}  # R1-Zero: pure RL from the base
    assert by["cold-start"].inputs == {"policy": "r1-zero"} and by["cold-start"].round == 1
    # both SFTs start from the base model, not from the RL'd one
    assert by["cold-start-sft"].inputs == {"policy": "base", "traces": "cold-start"}
    assert by["reasoning-rl"].inputs == {"policy": "cold-start-sft"}
    assert by["rejection"].inputs == {"policy": "reasoning-rl"} and by["rejection"].round == 2
    assert by["rejection-sft"].inputs == {"policy": "base", "traces": ("rejection", "cold-start")}
    assert by["rejection-sft"].params["trace_rounds"] == (2, 1)
    assert by["final-rl"].inputs == {"policy": "rejection-sft"}
    assert by["distill.student-dense"].inputs == {
        "student": "student.student-dense.base",
        "teacher": "final-rl",
        "traces": ("rejection", "cold-start"),
    }
    # RL seeds and trace keys differ per stage: the n-th stage of a kind has round n
    assert [by[k].round for k in ("r1-zero", "reasoning-rl", "final-rl")] == [1, 2, 3]
    assert by["cold-start"].name == "policy-r1-zero"  # the traces' model field
    roles = {s.name: s.params["role"] for s in steps if s.action == "eval"}
    assert roles == {
        "base": "base",
        "r1-zero": "policy",
        "cold-start-sft": "policy",
        "reasoning-rl": "policy",
        "rejection-sft": "policy",
        "final-rl": "policy",
        "student-dense": "student",
    }
    report = steps[-1]
    assert report.inputs["final"] == "final-rl" and report.inputs["rl"] == (
        "r1-zero",
        "reasoning-rl",
        "final-rl",
    )
    assert report.inputs["collect"] == ("cold-start", "rejection")
    assert [s.key for s in report.params["steps"]] == [s.key for s in steps[:-1]]


def test_r1_zero_preset():
    steps = plan(_cfg("pipeline.preset=r1_zero"))
    _check_order(steps)
    assert [s.key for s in steps] == [
        "base",
        "r1-zero",
        "zero-traces",
        "student.student-dense.base",
        "distill.student-dense",
        "eval.base",
        "eval.r1-zero",
        "eval.student-dense",
        "report",
    ]
    by = {s.key: s for s in steps}
    assert by["distill.student-dense"].inputs["teacher"] == "r1-zero"
    assert by["distill.student-dense"].inputs["traces"] == "zero-traces"
    assert steps[-1].inputs["final"] == "r1-zero"


def test_r1_preset_with_a_progressive_chain():
    """Students of a chain learn from the previous student's own traces (sequence methods), as in rounds."""
    steps = plan(_cfg("pipeline.preset=r1", "distill.students=[{name: mid}, {name: small, teacher: mid}]"))
    by = {s.key: s for s in steps}
    assert by["distill.mid"].inputs["teacher"] == "final-rl"
    assert by["distill.small"].inputs == {
        "student": "student.small.base",
        "teacher": "distill.mid",
        "traces": "collect.mid",
    }
    assert by["collect.mid"].action == "student_collect"


def test_custom_plan_sft_first_then_rl_with_defaults():
    """SFT before RL, names defaulted to <kind><n>, an eval of one model named by the plan."""
    steps = plan(
        _custom(
            "[{kind: rl}, {kind: collect, model: rl1}, {kind: sft, traces: [collect1]}, "
            "{kind: rl, model: sft1}, {kind: eval, model: rl2, name: final}]"
        )
    )
    by = {s.key: s for s in steps}
    assert by["sft1"].inputs == {"policy": "base", "traces": "collect1"}
    assert by["rl2"].inputs == {"policy": "sft1"} and by["rl2"].round == 2
    assert [s.key for s in steps if s.action == "eval"] == ["eval.final"] and by["eval.final"].round == 2
    assert steps[-1].inputs["final"] == "rl2" and steps[-1].inputs["distill"] == ()


def test_config_prints_the_resolved_plan(capsys):
    from selfdistill.cli import main

    assert main(["config", "pipeline.preset=r1"]) == 0
    out = capsys.readouterr().out
    assert (
        "# plan: r1" in out
        and "#   5  sft      rejection-sft        model=base, traces=[rejection, cold-start]" in out
    )
    assert main(["config", "--plan", "pipeline.preset=r1_zero"]) == 0
    stages, steps = capsys.readouterr().out.split("\nsteps:\n")
    assert stages.splitlines()[0] == "plan: r1_zero" and len(stages.splitlines()) == 5
    assert [line.split()[1] for line in steps.splitlines()] == [
        s.key for s in plan(_cfg("pipeline.preset=r1_zero"))
    ]


# --- invalid plans: each rejected with the stage's index and what is allowed --------------------


INVALID = [
    (
        "[{kind: rlx}, {kind: eval}]",
        r"pipeline.stages\[0\].kind: unknown stage kind 'rlx'; choose one of: "
        r"collect, distill, eval, rl, sft",
    ),
    (
        "[{kind: rl, model: later}, {kind: rl, name: later}, {kind: eval}]",
        r"pipeline.stages\[0\] \(rl\): model 'later' is made by no earlier stage; choose one of: base$",
    ),
    (
        "[{kind: rl}, {kind: sft, model: rl_1, traces: [x]}, {kind: eval}]",
        r"pipeline.stages\[1\] \(sft\): model 'rl_1' is made by no earlier stage; choose one of: base, rl1",
    ),
    (
        "[{kind: rl}, {kind: collect, model: rl1}, {kind: rl, model: collect1}, {kind: eval}]",
        r"pipeline.stages\[2\] \(rl\): model 'collect1' is traces \(stage 1 \(collect\)\), not a model; "
        r"choose one of: base, rl1",
    ),
    (
        "[{kind: rl}, {kind: sft, traces: [c]}, {kind: collect, model: rl1, name: c}, {kind: eval}]",
        r"pipeline.stages\[1\] \(sft\): traces 'c' is collected by no earlier stage; choose from the earlier collect "
        r"stages: none",
    ),
    (
        "[{kind: rl}, {kind: collect, model: rl1}, {kind: sft, traces: [rl1]}, {kind: eval}]",
        r"pipeline.stages\[2\] \(sft\): traces 'rl1' is a model \(stage 0 \(rl\)\), not traces; choose from the "
        r"earlier collect stages: collect1",
    ),
    (
        "[{kind: rl, name: a}, {kind: rl, name: a}, {kind: eval}]",
        r"pipeline.stages\[1\] \(rl\): output name 'a' is already made by stage 0 \(rl\)",
    ),
    ("[{kind: rl, name: base}, {kind: eval}]", r"pipeline.stages\[0\] \(rl\): name 'base' is not allowed"),
    (
        "[{kind: rl, name: eval.x}, {kind: eval}]",
        r"pipeline.stages\[0\] \(rl\): name 'eval.x' is not allowed",
    ),
    (
        "[{kind: rl, name: student-dense}, {kind: collect, model: student-dense}, "
        "{kind: distill, model: student-dense, traces: [collect1]}, {kind: eval}]",
        r"pipeline.stages\[2\] \(distill\): output name 'student-dense' is already made by stage 0 \(rl\)",
    ),
    (
        "[{kind: rl}, {kind: collect, model: rl1}, {kind: distill, model: rl1, traces: [collect1]}, "
        "{kind: rl, model: student-dense}, {kind: eval}]",
        r"pipeline.stages\[3\] \(rl\): model 'student-dense' is a student \(stage 2 \(distill\)\); rl stages start "
        r"from the policy's models; choose one of: base, rl1",
    ),
    (
        "[{kind: rl}, {kind: collect, model: rl1}, {kind: distill, model: rl1, traces: [collect1]}, "
        "{kind: distill, model: rl1, traces: [collect1]}, {kind: eval}]",
        r"pipeline.stages\[3\] \(distill\): output name 'student-dense' is already made by stage 2 \(distill\)",
    ),
    ("[{kind: sft}, {kind: eval}]", r"pipeline.stages\[0\] \(sft\): needs traces to train on"),
    (
        "[{kind: rl}, {kind: collect, model: rl1}, {kind: rl, traces: [collect1]}, {kind: eval}]",
        r"pipeline.stages\[2\] \(rl\): rl stages train on no traces",
    ),
    (
        "[{kind: distill, name: students, traces: [x]}, {kind: eval}]",
        r"pipeline.stages\[0\] \(distill\): a distill stage makes the students of distill.students",
    ),
    (
        "[{kind: rl}, {kind: eval, name: everything}]",
        r"pipeline.stages\[1\] \(eval\): an eval of every model",
    ),
    ("[{kind: rl}]", r"pipeline.stages: the plan evaluates no model"),
    (
        "[{kind: rl, name: a.b}, {kind: rl, name: a-b}, {kind: eval}]",
        r"two steps share the model directory 'a-b'",
    ),
    (
        "[{kind: rl, overrides: {sft: {max_steps: 2}}}, {kind: eval}]",
        r"pipeline.stages\[0\].overrides: rl stages may override rl, rewards; got 'sft'",
    ),
    (
        "[{kind: rl, overrides: {rl: {max_stepz: 2}}}, {kind: eval}]",
        r"unknown key pipeline.stages\[0\].overrides.rl.max_stepz; allowed keys in pipeline.stages\[0\].overrides.rl",
    ),
    (
        "[{kind: rl, overrides: {rl: {max_steps: -1}}}, {kind: eval}]",
        r"pipeline.stages\[0\].overrides.rl: rl.max_steps: must be >= 0, got -1",
    ),
    (
        "[{kind: rl, overrides: {rl: {algorithm: ppo2}}}, {kind: eval}]",
        r"pipeline.stages\[0\].overrides: rl.algorithm: unknown RL algorithm 'ppo2'",
    ),
    (
        "[{kind: rl}, {kind: collect, model: rl1}, {kind: distill, model: rl1, traces: [collect1], "
        "overrides: {distill: {students: []}}}, {kind: eval}]",
        r"pipeline.stages\[2\].overrides.distill.students: the students are the run's",
    ),
    (
        "[{kind: sft, external: [{path: x.jsonl, kind: maths}]}, {kind: eval}]",
        r"pipeline.stages\[0\].external\[0\].kind: unknown task kind 'maths'",
    ),
]


@pytest.mark.parametrize("stages, error", INVALID, ids=[e[1][:40] for e in INVALID])
def test_invalid_plan_is_rejected_with_stage_and_choices(stages, error):
    with pytest.raises(ConfigError, match=error):
        _custom(stages)


def test_preset_and_stages_conflict_and_unknown_preset():
    with pytest.raises(
        ConfigError, match=r"pipeline: give a preset or stages, not both \(preset='r1' and 1 stages\)"
    ):
        _custom("[{kind: eval}]", "pipeline.preset=r1")
    with pytest.raises(
        ConfigError,
        match="pipeline.preset: unknown pipeline preset 'r2'; choose one of: r1, r1_zero, rft_rounds, rounds",
    ):
        _cfg("pipeline.preset=r2")


def test_invalid_plan_is_a_config_error_on_the_command_line(capsys):
    from selfdistill.cli import main

    argv = [
        "config",
        "pipeline.preset=null",
        "pipeline.stages=[{kind: sft, model: nope, traces: [x]}, {kind: eval}]",
    ]
    assert main(argv) == 2
    assert "pipeline.stages[0] (sft): model 'nope' is made by no earlier stage" in capsys.readouterr().err


# --- per-stage overrides --------------------------------------------------------------------------


def test_per_stage_overrides_reach_only_their_steps():
    cfg = _custom(
        "[{kind: rl, overrides: {rl: {max_steps: 10, algorithm: grpo}, rewards: {weights: {math: 1.0}}}}, "
        "{kind: collect, model: rl1, overrides: {collect: {min_reward: 0.5}}}, "
        "{kind: distill, model: rl1, traces: [collect1], overrides: {distill: {sft: {max_steps: 3}}}}, "
        "{kind: rl, model: rl1}, {kind: eval}]",
        "rl.max_steps=40",
    )
    by = {s.key: s for s in plan(cfg)}
    run = SimpleNamespace(cfg=cfg)
    rl1, rl2 = config_of(run, by["rl1"]), config_of(run, by["rl2"])
    assert (rl1.rl.max_steps, rl1.rl.algorithm, rl1.rewards.weights) == (10, "grpo", {"math": 1.0})
    assert rl1.rl.learning_rate == cfg.rl.learning_rate  # the rest of the section is the run's
    assert (rl2.rl.max_steps, rl2.rl.algorithm) == (40, cfg.rl.algorithm)  # another stage: the run's settings
    assert config_of(run, by["collect1"]).collect.min_reward == 0.5
    distill = config_of(run, by["distill.student-dense"]).distill
    # nested sections merge: distill.sft keeps its other settings
    assert distill.sft.max_steps == 3 and distill.sft.learning_rate == cfg.distill.sft.learning_rate
    assert config_of(run, by["student.student-dense.base"]) is cfg  # no overrides: the run's config itself
    # overrides change the fingerprint: a run directory made without them does not resume with them
    assert (
        cfg.fingerprint()
        != _custom(
            "[{kind: rl}, {kind: collect, model: rl1}, {kind: distill, model: rl1, "
            "traces: [collect1]}, {kind: rl, model: rl1}, {kind: eval}]",
            "rl.max_steps=40",
        ).fingerprint()
    )


def test_apply_overrides_without_overrides_is_identity():
    cfg = _cfg()
    assert apply_overrides(cfg, {}) is cfg


# --- trace sets: the store's per-stage keys and external rows -------------------------------------


def _trace(i: int, round_: int) -> Trace:
    return Trace(
        prompt=f"{i}+{round_}=?",
        completion=f"<think>x</think>\\boxed{{{i}}}",
        reward=1.0,
        kind="math",
        task_id=f"t{i}",
        round=round_,
        model="m",
    )


def test_sft_reads_only_the_collect_stages_it_names_and_external_rows(tmp_path, tokenizer):
    data = tmp_path / "extra.jsonl"
    data.write_text("".join(json.dumps({"q": f"ext {i}", "a": f"answer {i}"}) + "\n" for i in range(3)))
    cfg = _custom(
        "[{kind: rl}, {kind: collect, model: rl1, name: a}, {kind: collect, model: rl1, name: b}, "
        "{kind: collect, model: rl1, name: c}, "
        f"{{kind: sft, traces: [c, a], external: [{{path: '{data}', prompt_field: q, completion_field: a, "
        "n: 2}]}, {kind: eval}]",
        "tasks.prompt_format=chat",
    )
    store = TraceStore(tmp_path / "traces")
    for r in (1, 2, 3):  # the collect stages a, b, c store their traces as rounds 1, 2, 3
        store.append([_trace(i, r) for i in range(2)], f"r{r}-collect-00000")
    sft = next(s for s in plan(cfg) if s.action == "sft")
    assert sft.inputs["traces"] == ("c", "a") and sft.params["trace_rounds"] == (3, 1)
    rows = store.rows("chat", rounds=sft.params["trace_rounds"]) + external_rows(
        sft.params["external"], "chat"
    )
    prompts = [r["prompt"][0]["content"].split("\n")[0] for r in rows]  # chat: one user message each
    assert prompts == [
        "0+1=?",
        "1+1=?",
        "0+3=?",
        "1+3=?",
        "ext 0",
        "ext 1",
    ]  # round 2 (stage b) left out; n: 2
    assert rows[4]["prompt"][0]["role"] == "user" and rows[4]["completion"] == "answer 0"  # rendered as chat
    assert sorted(store.to_dataset(rounds=(3, 1))["round"]) == [1, 1, 3, 3]
    # what the SFT step trains on: those traces tokenised (cached) and the external rows, one dataset
    run = SimpleNamespace(store=store)
    assert has_training_data(run, sft)
    dataset = training_data(run, sft, tokenizer, 256, "plain")  # the char tokenizer has no chat template
    assert dataset.num_rows == 6 and {"input_ids", "labels"} <= set(dataset.column_names)
    only_b = next(
        s
        for s in plan(
            _custom(
                "[{kind: rl}, {kind: collect, model: rl1, name: a}, "
                "{kind: collect, model: rl1, name: b}, {kind: sft, traces: [b]}, "
                "{kind: eval}]"
            )
        )
        if s.action == "sft"
    )
    assert training_data(run, only_b, tokenizer, 256, "plain").num_rows == 2
    empty = TraceStore(tmp_path / "empty")
    assert not has_training_data(SimpleNamespace(store=empty), only_b)  # no traces: the SFT step is skipped


def test_external_rows_name_the_missing_column(tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text(json.dumps({"prompt": "p", "answer": "x"}) + "\n")
    spec = {
        "type": "jsonl",
        "path": str(data),
        "split": "train",
        "subset": None,
        "prompt_field": "prompt",
        "completion_field": "completion",
        "kind": "math",
        "n": 0,
    }
    with pytest.raises(
        ConfigError,
        match=r"bad.jsonl:1: 'completion' must be a non-empty string \(columns "
        r"present: \['answer', 'prompt'\]\)",
    ):
        external_rows([spec], "plain")
    with pytest.raises(ConfigError, match="trace set file not found"):
        external_rows([{**spec, "path": str(tmp_path / "none.jsonl")}], "plain")


def test_external_parquet_set(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "sft.parquet"
    pq.write_table(pa.table({"prompt": ["1+1=?", "2+2=?"], "completion": ["2", "4"]}), path)
    spec = {
        "type": "parquet",
        "path": str(path),
        "split": "train",
        "subset": None,
        "prompt_field": "prompt",
        "completion_field": "completion",
        "kind": "math",
        "n": 0,
    }
    assert external_rows([spec], "plain") == [
        {"prompt": "1+1=?", "completion": "2"},
        {"prompt": "2+2=?", "completion": "4"},
    ]


def test_stage_list_prints_itself():
    text = format_stages(_cfg("pipeline.preset=r1_zero"))
    assert text.splitlines() == [
        "plan: r1_zero",
        "  0  rl       r1-zero              model=base",
        "  1  collect  zero-traces          model=r1-zero",
        "  2  distill                       model=r1-zero, traces=[zero-traces]",
        "  3  eval                          model=every model",
    ]
