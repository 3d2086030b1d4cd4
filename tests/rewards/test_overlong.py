"""DAPO's soft overlong penalty: the piecewise-linear length reward, its contract and its config wiring."""

import pytest

from rewards import get_reward
from rewards.overlong import default_cache_tokens, overlong_penalty


@pytest.mark.parametrize(
    ("n", "expected"), [(0, 0.0), (36, 0.0), (37, -1 / 12), (42, -0.5), (48, -1.0), (60, -1.0)]
)
def test_penalty_is_zero_then_linear_to_minus_one(n, expected):
    assert overlong_penalty(n, 48, 12) == pytest.approx(expected)


def test_penalty_rejects_impossible_windows():
    with pytest.raises(ValueError, match="0 < cache_tokens <= max_tokens"):
        overlong_penalty(3, 8, 9)
    with pytest.raises(ValueError, match="0 < cache_tokens <= max_tokens"):
        overlong_penalty(3, 0, 0)


def test_reward_uses_token_counts_not_characters():
    f = get_reward("overlong")
    ids = [[1] * 4, [1] * 7, [1] * 8]
    # the texts' lengths disagree with the token counts on purpose
    assert f(["p"] * 3, ["a" * 50, "", "xy"], completion_ids=ids, max_tokens=8, cache_tokens=4) == [
        0.0,
        -0.75,
        -1.0,
    ]
    assert default_cache_tokens(48) == 12 and default_cache_tokens(2) == 1
    assert f(["p"], ["x"], completion_ids=[[1] * 48], max_tokens=48) == [-1.0]  # default window


def test_reward_without_token_ids_does_not_apply_and_without_a_limit_fails():
    f = get_reward("overlong")
    assert f(["p", "q"], ["a", "b"]) == [None, None]  # collect/eval/score: no token lengths
    with pytest.raises(ValueError, match="rewards.overlong_max_tokens"):
        f(["p"], ["a"], completion_ids=[[1]])
    with pytest.raises(ValueError, match="1 completion_ids for 2 completions"):
        f(["p", "q"], ["a", "b"], completion_ids=[[1]], max_tokens=4)


def test_config_settings_reach_the_reward():
    from selfdistill.config import RewardConfig
    from selfdistill.rewarding import build_reward_funcs, score_completions

    rcfg = RewardConfig(weights={"overlong": 0.5}, overlong_max_tokens=10, overlong_cache_tokens=5)
    (f,), weights = build_reward_funcs(rcfg)
    assert weights == [0.5] and f(["p"], ["x"], completion_ids=[[0] * 8]) == [pytest.approx(-0.6)]
    scores = score_completions(rcfg, ["p"], ["x"], {"kind": ["math"], "answer": ["1"], "tests": [""]})
    assert scores.parts == [{}] and scores.total == [0.0]  # outside RL the penalty does not apply
