"""Format reward: one think block with reasoning, then a non-empty answer."""

import pytest

from rewards.format import format_reward, is_well_formatted


@pytest.mark.parametrize(
    "text, ok",
    [
        ("<think>23+45=68</think>\\boxed{68}", True),
        ("  <think>\nreason\n</think>\n\nThe answer is 3.", True),
        ("<think></think>\\boxed{1}", False),  # empty reasoning
        ("<think>   </think>\\boxed{1}", False),
        ("<think>reason</think>   ", False),  # no answer
        ("reason</think>\\boxed{1}", False),  # no opening tag, prompt did not open it
        ("<think>a</think><think>b</think>\\boxed{1}", False),
        ("<think>a</think>\\boxed{1}</think>", False),
        ("<think>a <think> b</think> 1", False),
        ("\\boxed{1}", False),
        ("<think>never closed \\boxed{1}", False),
        ("answer first <think>a</think> 1", False),
    ],
)
def test_rule(text, ok):
    assert is_well_formatted(text) is ok


def test_prompt_that_opens_the_think_block():
    prompts = ["Solve 2+2. <think>", [{"role": "user", "content": "Solve. <think>\n"}], "Solve 2+2."]
    completions = ["2+2=4</think>\\boxed{4}", "2+2=4</think>\\boxed{4}", "2+2=4</think>\\boxed{4}"]
    assert format_reward(prompts, completions) == [1.0, 1.0, 0.0]
    # a completion that repeats the opening tag is still fine
    assert format_reward(["x <think>"], ["<think>r</think>4"]) == [1.0]


def test_conversation_completions_and_bad_types():
    conv = [[{"role": "assistant", "content": "<think>r</think>4"}], 17]
    assert format_reward(None, conv) == [1.0, 0.0]


def test_huge_input_is_fast():
    import time

    text = "<think>" + "{" * 1_000_000 + "</think>1"
    t = time.perf_counter()
    assert format_reward(None, [text]) == [1.0]
    assert time.perf_counter() - t < 2.0  # generous: the machine is shared
