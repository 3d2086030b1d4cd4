"""Reward statuses reach RL, collect, eval and the report; the sandbox's isolation layers are logged and enforced.

An infrastructure failure (a math worker that died, a sandbox that failed) is not a wrong answer: RL leaves the
sample out (reward None), collect keeps no trace of it, eval counts it apart from pass@1.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap

import pytest

from rewards.common import Status
from rewards.pool import DeadlinePool
from selfdistill.config import CollectConfig, RewardConfig
from selfdistill.configio import ConfigError
from selfdistill.rewarding import Scores, score_completions
from selfdistill.tasks.base import Task

LOG2 = "so \\boxed{\\log_2 8}"  # needs sympy: goes to the worker pool


class DyingPool(DeadlinePool):
    """A real worker pool whose workers die on every task (exit code 3), as an OOM-killed worker would."""

    def map(self, fn, arg_tuples, deadline_s=None):
        return super().map(os._exit, [(3,)] * len(arg_tuples), deadline_s)


@pytest.fixture
def dying_math_pool(monkeypatch):
    import rewards.math as rm

    pool = DyingPool(1, 10.0)
    monkeypatch.setattr(rm, "_POOL", pool)
    yield pool
    pool.close()


def test_math_infrastructure_failure_is_left_out_of_rl_not_scored_zero(dying_math_pool):
    from rewards.math import math_reward

    assert math_reward(["q"], [LOG2], answer=["3"], kind=["math"]) == [None]


def test_scores_carry_the_status_and_none_for_infrastructure_failures(dying_math_pool):
    rcfg = RewardConfig(weights={"math": 1.0, "format": 0.2})
    scores = score_completions(
        rcfg,
        ["q", "q"],
        [LOG2, "\\boxed{4}"],
        {"kind": ["math", "math"], "answer": ["3", "3"], "tests": ["", ""]},
    )
    assert scores.correct == [None, 0.0]
    assert scores.status == [Status.INFRA_ERROR, Status.FAIL] and scores.infra_failures == 1


def test_real_statuses_without_failures():
    rcfg = RewardConfig(weights={"math": 1.0})
    scores = score_completions(
        rcfg,
        ["q"] * 3,
        ["\\boxed{3}", "\\boxed{4}", "no answer"],
        {"kind": ["math"] * 3, "answer": ["3"] * 3, "tests": [""] * 3},
    )
    assert scores.correct == [1.0, 0.0, 0.0]
    assert scores.status == [Status.PASS, Status.FAIL, Status.NO_ANSWER]


def _scores(correct: list[float | None]) -> Scores:
    n = len(correct)
    status = [Status.INFRA_ERROR if c is None else Status.PASS if c == 1.0 else Status.FAIL for c in correct]
    return Scores(
        correct=correct,
        status=[str(s) for s in status],
        parts=[{} for _ in range(n)],
        formatted=[True] * n,
        total=[0.0] * n,
    )


def test_collect_keeps_no_trace_whose_correctness_nobody_could_judge():
    from selfdistill.stages.collect import filter_samples

    task = Task("m-1", "math", "1+2?", answer="3")
    completions = ["<think>1+2=3</think> \\boxed{3}", "<think>x</think> \\boxed{3}"]
    kept, why = filter_samples(
        task, completions, _scores([None, 1.0]), 0, CollectConfig(min_reward=0.0, require_format=False)
    )
    assert kept == [1] and why == {"infra_error": 1}


def test_eval_counts_infrastructure_failures_apart_from_wrong_answers():
    from selfdistill.stages.evaluate import accuracy_figures

    tasks = [Task("c-1", "code", "f", tests={"x": 1}), Task("c-2", "code", "g", tests={"x": 1})]
    code = "```python\ndef f(x):\n    return x\n```"
    completions = [[code, code], [code, code]]
    # task 1: one right, one the sandbox failed on; task 2: one wrong, one the sandbox failed on
    figures = accuracy_figures(tasks, completions, _scores([1.0, None, 0.0, None]))
    assert figures["infra_failures"] == 2
    assert figures["accuracy"] == 0.5 and figures["accuracy_code"] == 0.5  # 1 of the 2 judged, not 1 of 4
    assert figures["maj_at_k"] == 0.5
    all_failed = accuracy_figures(tasks[:1], completions[:1], _scores([None, None]))
    assert (
        all_failed["accuracy"] is None
        and all_failed["maj_at_k"] is None
        and all_failed["infra_failures"] == 2
    )


def test_report_row_and_table_show_infrastructure_failures():
    from selfdistill.report import eval_keys, summarize

    assert "infra_failures" in eval_keys()
    rows = [
        {"model": "base", "role": "base", "accuracy": None, "params": 10},
        {"model": "p", "role": "policy", "accuracy": 0.5, "params": 10},
    ]
    assert "policy_gain_points" not in summarize(rows, "p")  # no made-up gain from an unknown accuracy


# --- sandbox isolation layers ---------------------------------------------------------------------------------------


def test_sandbox_layer_names_are_validated():
    with pytest.raises(
        ConfigError, match="rewards.sandbox_layers: unknown layer.*'seccom'.*choose from: process"
    ):
        RewardConfig(sandbox_layers=["seccom"])


def test_code_reward_starts_with_its_layers_logged_and_recorded(caplog):
    from rewards.sandbox.probe import available_layers
    from selfdistill.rewarding import reward_func, sandbox_layers

    required = [x for x, ok in available_layers().items() if ok and x in ("process", "seccomp")]
    rcfg = RewardConfig(weights={"code": 1.0}, sandbox_layers=required)
    with caplog.at_level(logging.INFO, logger="selfdistill.rewarding"):
        reward_func(rcfg, "code")
    active = sandbox_layers(rcfg)
    assert active is not None and set(required) <= set(active)
    assert any(
        "active isolation layers" in r.getMessage() and ", ".join(active) in r.getMessage()
        for r in caplog.records
    )


_AS_NOBODY = textwrap.dedent("""
    import os
    from selfdistill.config import RewardConfig
    from selfdistill.configio import ConfigError
    from selfdistill.rewarding import check_sandbox_layers, reward_func
    from rewards.code import CodeReward
    from rewards.sandbox.client import SandboxUnavailable
    if os.geteuid() == 0:  # imports first: the interpreter's files may not be readable by nobody
        os.setgid(65534); os.setuid(65534)  # now a machine without root: no uid layer
    rcfg = RewardConfig(weights={"code": 1.0}, sandbox_layers=["seccomp", "uid"])
    try:
        check_sandbox_layers(rcfg)
    except ConfigError as e:
        print("CONFIG:", e)
    try:
        reward_func(rcfg, "code")
    except SandboxUnavailable as e:
        print("SANDBOX:", e)
""")


def test_a_required_layer_the_machine_lacks_refuses_to_start():
    """Without root the uid layer is missing: requiring it stops the run before any work, naming the layer."""
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "HOME": "/tmp"}
    out = subprocess.run(
        [sys.executable, "-c", _AS_NOBODY], capture_output=True, text=True, env=env, cwd="/tmp", timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "CONFIG: rewards.sandbox_layers: required sandbox layer(s) uid missing" in out.stdout
    assert (
        "needs root" in out.stdout and "SANDBOX:" in out.stdout and "uid" in out.stdout.split("SANDBOX:")[1]
    )


def test_report_records_the_active_layers(tmp_path):
    from selfdistill.config import load_config
    from selfdistill.pipeline import Run, plan
    from selfdistill.report import sandbox_section

    cfg = load_config(
        None,
        [
            f"run.output_dir={tmp_path}",
            "tracking.report_to=none",
            "run.device=cpu",
            "rewards.sandbox_layers=[process]",
            "pipeline.preset=rounds",  # a plan with r1.rl (the demo's round 1 has no RL)
        ],
    )
    run = Run(cfg)
    run.finish("r1.rl", {"sandbox_layers": ["process", "seccomp", "landlock"]})
    run.finish("eval.base", {"sandbox_layers": ["process", "seccomp"]})
    section = sandbox_section(run, tuple(s.key for s in plan(cfg)))
    assert section == {
        "required": ["process"],
        "layers": ["process", "seccomp"],
        "active": {"r1.rl": ["process", "seccomp", "landlock"], "eval.base": ["process", "seccomp"]},
    }
