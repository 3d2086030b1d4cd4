"""The eval stage's pieces: maj@k voting, each kind's voting key, per-kind columns, memory, a real eval row."""

from __future__ import annotations

import pytest
from test_stages import math_tasks

from selfdistill.config import EvalConfig, RewardConfig
from selfdistill.stages.evaluate import answer_key, evaluate_model, kind_columns, majority_correct, memory_mb


def test_majority_votes_over_non_empty_keys_and_first_seen_wins_ties():
    assert majority_correct(["7", "8", "7"], [True, False, True]) is True
    assert majority_correct(["8", "7", "7"], [False, True, True]) is True
    assert majority_correct(["8", "7"], [False, True]) is False  # tie: "8" was seen first
    assert majority_correct([None, None, "3"], [True, True, False]) is False  # no-answer samples do not vote
    assert majority_correct([None, None], [True, True]) is False


def test_voting_keys_come_from_the_kind():
    assert answer_key("math", "so <think>x</think> \\boxed{ 4 2 }") == "42"
    assert answer_key("math", "no box here") is None
    code = "```python\ndef f(x):\n    return  x+1\n```"
    assert answer_key("code", code) == "def f(x): return x+1"
    with pytest.raises(Exception, match="unknown task kind 'poem'"):
        answer_key("poem", "roses")


def test_every_registered_kind_gets_a_column():
    assert kind_columns({"math": 0.5}) == {"accuracy_math": 0.5, "accuracy_code": None}


def test_eval_row_on_a_tiny_model(tiny_dense, tokenizer):
    tasks = math_tasks(3)
    row = evaluate_model(
        tiny_dense,
        tokenizer,
        tasks,
        ecfg=EvalConfig(num_samples=3, max_new_tokens=4, batch_size=9),
        rcfg=RewardConfig(weights={"math": 1.0}),
        seed=0,
        prompt_format="plain",
        name="t",
    )
    assert row["k"] == 3 and row["n_problems"] == 3 and row["temperature"] == 0.7
    assert row["params"] == sum(p.numel() for p in tiny_dense.parameters())
    assert row["accuracy"] == row["accuracy_math"] == row["accuracy_by_kind"]["math"]
    assert row["accuracy_code"] is None and 0.0 <= row["maj_at_k"] <= 1.0
    assert row["format_rate"] == 1.0  # no format reward configured: everything counts as formatted
    assert row["memory_mb"] == pytest.approx(memory_mb(tiny_dense)) and row["tokens_per_s"] > 0
    assert [e[1] for e in row["examples"]] == [t.prompt for t in tasks]
