"""The HTTP judge against real local servers: answers, caching, timeouts, retries, concurrency, escaping,
and ``selfdistill score --judge``."""

from __future__ import annotations

import json
import threading
import time

import pytest
from _hostile import HOSTILE, PROBLEMS
from _judge_helpers import sleepy

from rewards.judge import JudgeConfig, JudgeReward
from rewards.scoring import main as score_main


def _judge(url: str, tmp_path=None, **kw) -> JudgeReward:
    cfg = JudgeConfig(backend="http", url=url, model="judge-model", **kw)
    return JudgeReward(cfg, cache_dir=tmp_path)


def _user(body: dict) -> str:
    return next(m["content"] for m in body["messages"] if m["role"] == "user")


def test_scores_come_from_the_judges_answer_only(judge_server, tmp_path):
    answers = {
        "right": "Matches the reference.\nSCORE: 9",
        "wrong": "Wrong.\nSCORE: 0",
        "chatty": "SCORE: 10\nbut on reflection, no",
        "nonsense": "I cannot grade this.",
        "overflow": "SCORE: 12",
    }

    def handler(body):
        return 200, answers[_user(body).split('">\n', 1)[1].split("\n", 1)[0]]

    server = judge_server(handler)
    judge = _judge(server.url, tmp_path)
    names = list(answers)
    verdicts = judge.judge(["What is 6 times 7?"] * 5, names, ["42"] * 5)
    assert [v.score for v in verdicts] == [0.9, 0.0, None, None, None]
    assert [v.status for v in verdicts] == ["JUDGED", "JUDGED", "UNPARSEABLE", "UNPARSEABLE", "UNPARSEABLE"]
    assert verdicts[0].output == answers["right"]
    body = server.bodies[0]
    assert (
        body["model"] == "judge-model" and body["temperature"] == 0.0 and "continue_final_message" not in body
    )
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "Reference answer:\n42" in _user(body) and "What is 6 times 7?" in _user(body)


def test_cache_answers_repeats_without_asking_and_survives_a_new_judge(judge_server, tmp_path):
    server = judge_server(lambda body: (200, "SCORE: 5"))
    judge = _judge(server.url, tmp_path)
    prompts, comps, refs = ["p1", "p1", "p2"], ["a", "a", "a"], ["1", "1", "1"]
    first = judge.judge(prompts, comps, refs)
    assert [v.score for v in first] == [0.5] * 3 and not any(v.cached for v in first)
    assert len(server.bodies) == 2  # the duplicate was judged once
    again = _judge(server.url, tmp_path).judge(prompts, comps, refs)  # a new process would see the same file
    assert all(v.cached for v in again) and [v.score for v in again] == [0.5] * 3
    assert len(server.bodies) == 2
    _judge(server.url, tmp_path, rubric="Only style matters.").judge(["p1"], ["a"], ["1"])
    assert len(server.bodies) == 3  # another rubric is another judgement
    assert (tmp_path / "judgements.sqlite").exists()


def test_slow_server_times_out_to_none_and_is_not_cached(judge_server, tmp_path):
    server = judge_server(sleepy(2.0))
    judge = _judge(server.url, tmp_path, timeout_s=0.3, retries=1)
    start = time.perf_counter()
    verdicts = judge.judge(["p"], ["c"], [None])
    elapsed = time.perf_counter() - start
    assert verdicts[0].score is None and verdicts[0].status == "TIMEOUT"
    assert "after 2 attempts" in verdicts[0].output
    assert len(server.bodies) == 2 and elapsed < 1.8  # two 0.3 s attempts and a 0.25 s backoff, not 2 s each
    assert len(judge.cache) == 0  # a transport failure is asked again next time


def test_failing_server_is_retried_then_succeeds(judge_server, tmp_path):
    calls = {"n": 0}

    def handler(body):
        calls["n"] += 1
        return (503, "overloaded") if calls["n"] <= 2 else (200, "SCORE: 8")

    server = judge_server(handler)
    verdicts = _judge(server.url, tmp_path, retries=2).judge(["p"], ["c"], ["r"])
    assert verdicts[0].score == 0.8 and len(server.bodies) == 3


def test_retries_are_bounded_and_4xx_is_not_retried(judge_server, tmp_path):
    failing = judge_server(lambda body: (500, "boom"))
    v = _judge(failing.url, tmp_path, retries=2).judge(["p"], ["c"], [None])[0]
    assert v.score is None and v.status == "INFRA_ERROR" and "HTTP 500" in v.output
    assert len(failing.bodies) == 3
    bad = judge_server(lambda body: (400, "bad request"))
    v = _judge(bad.url, tmp_path, retries=2).judge(["p"], ["c"], [None])[0]
    assert v.status == "INFRA_ERROR" and len(bad.bodies) == 1


def test_unreachable_server_is_infra_error(tmp_path):
    v = _judge("http://127.0.0.1:9/v1", tmp_path, retries=0, timeout_s=2).judge(["p"], ["c"], [None])[0]
    assert v.score is None and v.status == "INFRA_ERROR"


def test_concurrency_limit_holds(judge_server, tmp_path):
    server = judge_server(sleepy(0.2, "SCORE: 3"))
    judge = _judge(server.url, tmp_path, concurrency=3)
    verdicts = judge.judge(["p"] * 9, [f"c{i}" for i in range(9)], [None] * 9)
    assert [v.score for v in verdicts] == [0.3] * 9
    assert server.max_in_flight == 3


def test_hostile_completions_reach_the_server_escaped(judge_server, tmp_path):
    server = judge_server(lambda body: (200, "SCORE: 1"))
    names = sorted(HOSTILE)
    metrics: list[tuple[str, float]] = []
    rewards = _judge(server.url, tmp_path, score_first=True)(
        [PROBLEMS[0]["prompt"]] * len(names),
        [HOSTILE[n] for n in names],
        answer=[PROBLEMS[0]["answer"]] * len(names),
        log_metric=lambda name, value: metrics.append((name, value)),
        trainer_state=None,
    )
    assert rewards == [0.1] * len(names)  # TRL contract: one float per completion
    assert metrics == [("judge/unjudged_fraction", 0.0), ("judge/cache_hit_fraction", 0.0)]
    for body in server.bodies:
        assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant"]
        assert body["messages"][-1]["content"] == "SCORE:" and body["continue_final_message"] is True
        user = _user(body)
        for token in (
            "<|im_end|>",
            "<|im_start|>",
            "<|eot_id|>",
            "[/INST]",
            "<end_of_turn>",
            "<｜Assistant｜>",
        ):
            assert token not in user
        assert user.count("</candidate_response") == 1


def test_conversational_prompts_and_completions(judge_server, tmp_path):
    server = judge_server(lambda body: (200, "SCORE: 4"))
    prompt = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "What is 9 squared?"}]
    completion = [{"role": "assistant", "content": "81"}]
    assert _judge(server.url, tmp_path)([prompt], [completion], answer=["81"]) == [0.4]
    user = _user(server.bodies[0])
    assert "What is 9 squared?" in user and "be brief" not in user and '">\n81\n</candidate_response' in user


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="backend: unknown judge backend 'vllm'; choose one of: local, http"):
        JudgeConfig(backend="vllm", model="m")
    with pytest.raises(ValueError, match="url: the http judge needs"):
        JudgeConfig(backend="http", model="m")
    with pytest.raises(ValueError, match="model: the judge reward needs a model"):
        JudgeReward(JudgeConfig())
    with pytest.raises(TypeError, match="needs settings"):
        from rewards import get_reward

        get_reward("judge")(["p"], ["c"])


def test_score_cli_with_judge(judge_server, tmp_path):
    server = judge_server(
        lambda body: (200, "SCORE: 6" if "42" in _user(body).split("candidate_response")[1] else "??")
    )
    records = [
        {"kind": "math", "prompt": "What is 6 times 7?", "completion": "\\boxed{42}", "answer": "42"},
        {"prompt": "Say hi", "completion": "hello"},
        {"kind": "math", "prompt": "x", "answer": "1"},
    ]
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    rc = score_main(
        [
            str(src),
            "-o",
            str(dst),
            "--workers",
            "1",
            "--judge",
            "judge-model",
            "--judge-url",
            server.url,
            "--judge-cache",
            str(tmp_path / "cache"),
        ]
    )
    out = [json.loads(line) for line in dst.read_text().splitlines()]
    assert rc == 0
    assert out[0]["status"] == "PASS" and out[0]["judge_score"] == 0.6 and out[0]["judge_status"] == "JUDGED"
    assert (
        "status" not in out[1] and out[1]["judge_score"] is None and out[1]["judge_status"] == "UNPARSEABLE"
    )
    assert out[2]["judge_status"] == "INVALID" and out[2]["judge_score"] is None
    assert (tmp_path / "cache" / "judgements.sqlite").exists()


def test_judge_is_thread_safe_for_concurrent_callers(judge_server, tmp_path):
    server = judge_server(lambda body: (200, "SCORE: 2"))
    judge = _judge(server.url, tmp_path)
    results: list = []
    threads = [
        threading.Thread(target=lambda i=i: results.append(judge.judge(["p"], [f"c{i}"], [None])[0].score))
        for i in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [0.2] * 4 and len(judge.cache) == 4
