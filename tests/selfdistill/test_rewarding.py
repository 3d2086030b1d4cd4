"""selfdistill.rewarding: the rewards config section turned into TRL reward functions."""

from selfdistill.config import RewardConfig
from selfdistill.rewarding import build_reward_funcs, score_completions

PROSE = "Adding them up, the final answer is 42."


def test_math_text_fallback_comes_from_the_config_and_is_per_function():
    cols = {"answer": ["42"], "kind": ["math"]}
    strict = RewardConfig(weights={"math": 1.0})
    lenient = RewardConfig(weights={"math": 1.0}, math_text_fallback=True)
    assert score_completions(strict, ["q"], [PROSE], cols).correct == [0.0]
    assert score_completions(lenient, ["q"], [PROSE], cols).correct == [1.0]
    assert score_completions(strict, ["q"], [PROSE], cols).correct == [0.0]  # no global switch left behind
    (fn,), _ = build_reward_funcs(lenient)
    assert fn.__name__ == "math_reward"  # TRL logs rewards by function name
