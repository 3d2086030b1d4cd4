"""The judge inside selfdistill: its config section, the reward RL and collect build from it, and the
collect filter ``collect.judge_min_score`` (against a real local HTTP judge)."""

from __future__ import annotations

import pytest

from selfdistill.config import load_config
from selfdistill.configio import ConfigError
from selfdistill.rewarding import build_reward_funcs, score_completions
from selfdistill.stages.collect import filter_samples, judge_scores
from selfdistill.tasks.base import Task


def _cfg(tmp_path, *overrides: str):
    return load_config(None, [f"run.output_dir={tmp_path}", "run.name=j", *overrides])


@pytest.mark.parametrize(
    "overrides, needle",
    [
        (["rewards.weights={math: 1.0, judge: 0.5}"], "rewards.judge.model: the judge reward needs a model"),
        (["collect.judge_min_score=0.5"], "rewards.judge.model: the judge reward needs a model"),
        (["collect.judge_min_score=1.5"], "collect.judge_min_score: must be in [0, 1]"),
        (
            ["rewards.judge.backend=vllm"],
            "rewards.judge: backend: unknown judge backend 'vllm'; choose one of: local, http",
        ),
        (["rewards.judge.backend=http", "rewards.judge.model=m"], "rewards.judge: url: the http judge needs"),
        (["rewards.judge.timeout_s=0"], "rewards.judge: timeout_s: must be > 0"),
        (["rewards.judge.retries=-1"], "rewards.judge: retries: must be >= 0"),
        (["rewards.judge.colour=red"], "unknown key rewards.judge.colour"),
    ],
)
def test_judge_config_errors_name_the_key(tmp_path, overrides, needle):
    with pytest.raises(ConfigError) as err:
        _cfg(tmp_path, *overrides)
    assert needle in str(err.value)


def test_judge_section_at_defaults_keeps_the_fingerprint(tmp_path):
    plain = _cfg(tmp_path)
    judged = _cfg(tmp_path, "rewards.judge.retries=2")  # the default value: nothing changes
    assert plain.fingerprint() == judged.fingerprint()
    assert _cfg(tmp_path, "rewards.judge.rubric=terse").fingerprint() != plain.fingerprint()


def _http_cfg(tmp_path, url: str, *overrides: str):
    return _cfg(
        tmp_path,
        "rewards.judge.backend=http",
        f"rewards.judge.url={url}",
        "rewards.judge.model=judge",
        *overrides,
    )


def test_judge_weighted_in_rl_rewards_with_run_dir_cache(judge_server, tmp_path):
    server = judge_server(
        lambda body: (
            200,
            "SCORE: 10" if "The answer is \\boxed{42}" in body["messages"][1]["content"] else "SCORE: 2",
        )
    )
    cfg = _http_cfg(tmp_path, server.url, "rewards.weights={math: 1.0, judge: 0.5}")
    funcs, weights = build_reward_funcs(cfg.rewards)
    assert weights == [1.0, 0.5] and getattr(funcs[1], "__name__", None) == "judge"
    scores = score_completions(
        cfg.rewards,
        ["What is 6 times 7?"] * 2,
        ["The answer is \\boxed{42}", "\\boxed{41}"],
        {"kind": ["math", "math"], "answer": ["42", "42"], "tests": ["", ""]},
    )
    assert [p.get("judge") for p in scores.parts] == [1.0, 0.2]
    assert scores.total == [1.0 + 0.5 * 1.0, 0.0 + 0.5 * 0.2]
    assert (tmp_path / "j" / "judge_cache" / "judgements.sqlite").exists()


def test_collect_filter_judges_only_survivors_and_drops_low_and_unjudged(judge_server, tmp_path):
    answers = {"good": "SCORE: 9", "meh": "SCORE: 3", "mute": "no score here"}

    def handler(body):
        user = body["messages"][1]["content"]
        return 200, next(a for k, a in answers.items() if f"{k} \\boxed" in user)

    server = judge_server(handler)
    cfg = _http_cfg(
        tmp_path,
        server.url,
        "collect.judge_min_score=0.5",
        "collect.require_format=false",
        "rewards.weights={math: 1.0}",
    )
    task = Task(task_id="t", kind="math", prompt="What is 6 times 7?", answer="42")
    comps = [
        "good \\boxed{42}",
        "meh \\boxed{42}",
        "mute \\boxed{42}",
        "wrong \\boxed{41}",
        "good \\boxed{42}",
    ]
    prompts = [task.prompt] * len(comps)
    scores = score_completions(
        cfg.rewards, prompts, comps, {"kind": ["math"] * 5, "answer": ["42"] * 5, "tests": [""] * 5}
    )
    judged = judge_scores(cfg.rewards, cfg.collect, prompts, comps, ["42"] * 5, scores)
    assert judged == [0.9, 0.3, None, None, 0.9]
    assert len(server.bodies) == 3  # the wrong answer was never sent, the duplicate asked once
    assert (
        scores.parts[0]["judge"] == 0.9 and "judge" not in scores.parts[3]
    )  # traces record the judge's score
    kept, why = filter_samples(task, comps, scores, 0, cfg.collect, judged)
    assert kept == [0]
    assert why == {"judge_low": 1, "judge_unscored": 1, "incorrect": 1, "duplicate": 1}


def test_collect_without_judge_filter_is_unchanged(tmp_path):
    cfg = _cfg(tmp_path, "collect.require_format=false", "rewards.weights={math: 1.0}")
    assert judge_scores(cfg.rewards, cfg.collect, ["p"], ["c"], ["1"], None) is None
