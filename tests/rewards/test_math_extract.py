"""The extraction policy of the math reward (rewards.math.extract), end to end through `verify`.

Each case is one rule of the documented policy: what counts as the answer, and which answers get
reward 0 with which status.
"""

import pytest

from rewards.common import Status
from rewards.math import extract, verify
from rewards.math.extract import find_boxes

PASS, FAIL, AMB, NONE = Status.PASS, Status.FAIL, Status.AMBIGUOUS, Status.NO_ANSWER


@pytest.mark.parametrize(
    "text, boxes",
    [
        ("a \\boxed{1} b \\boxed{2}", ["1", "2"]),
        ("\\fbox{7}", ["7"]),
        ("\\boxed{\\frac{1}{\\sqrt{2}}}", ["\\frac{1}{\\sqrt{2}}"]),  # nested braces
        ("\\boxed{\\{1,2\\}}", ["\\{1,2\\}"]),  # escaped braces do not close the box
        ("\\boxed 5.", ["5."]),
        ("\\boxed {12}", ["12"]),
        ("\\boxed{\\boxed{3}}", ["\\boxed{3}"]),  # outermost box only
        ("\\boxed{3", []),  # truncated: never closed
        ("\\boxedfoo{3}", []),  # another command
        ("\\boxed{4}" * 1000, ["4"] * 1000),
    ],
)
def test_find_boxes(text, boxes):
    assert find_boxes(text) == boxes


@pytest.mark.parametrize(
    "completion, ref, status",
    [
        ("<think>try \\boxed{2}</think>so \\boxed{5}", "5", PASS),  # boxes inside reasoning are ignored
        ("<think>\\boxed{5}</think>no box after the thinking", "5", NONE),
        ("<think>still thinking \\boxed{5}", "5", NONE),  # unclosed think: cut off
        ("\\fbox{7}", "7", PASS),
        ("\\boxed{\\dfrac{\\sqrt{2}}{2}}", "\\frac{1}{\\sqrt2}", PASS),
        ("\\boxed 5.", "5", PASS),
        ("\\boxed{3} first, but finally \\boxed{5}", "5", AMB),  # two different final boxes
        ("\\boxed{5} and again \\boxed{5}", "5", PASS),  # repeated box: same answer
        ("\\boxed{3} i.e. \\boxed{3.0}", "3", PASS),  # same value spelled differently
        ("\\boxed{3 or 4}", "3", AMB),
        ("\\boxed{3 \\text{ or } 4}", "4", AMB),
        ("\\boxed{3 \\lor 4}", "3", AMB),
        ("\\boxed{4 = 3}", "3", AMB),  # false equality
        ("\\boxed{2+3=5}", "5", PASS),  # true chain: every side equals the reference
        ("\\boxed{2+3=6}", "6", FAIL),  # a false side fails
        ("\\boxed{x = 5}", "5", PASS),
        ("\\boxed{2}, \\boxed{3}", "2, 3", PASS),  # a list reference: boxes are its elements
        ("\\boxed{1} and \\boxed{2} and \\boxed{3}", "{1,2,3}", PASS),
        ("\\boxed{1} and \\boxed{2}", "{1,2,3}", FAIL),
        ("no box at all, 42", "42", NONE),
        ("\\boxed{}", "42", NONE),
        ("", "42", NONE),
    ],
)
def test_policy(completion, ref, status):
    reward, got = verify(completion, ref)
    assert got == status, (completion, ref)
    assert reward == (1.0 if status == PASS else 0.0)


def test_restating_the_question_is_ambiguous():
    prompt = "Compute $23 + 45 - 7$."
    assert verify("\\boxed{23+45-7}", "61", prompt) == (0.0, AMB)
    assert verify("\\boxed{61}", "61", prompt) == (1.0, PASS)
    assert verify("\\boxed{23+45-7}", "61") == (1.0, PASS)  # without the prompt it is just arithmetic


def test_text_fallback_only_when_allowed():
    text = "So the final answer is 42."
    assert verify(text, "42") == (0.0, NONE)
    assert verify(text, "42", text_fallback=True) == (1.0, PASS)
    assert verify("Answer: $\\frac{1}{2}$.", "0.5", text_fallback=True) == (1.0, PASS)
    assert verify("The answer is 41.", "42", text_fallback=True) == (0.0, FAIL)
    assert verify("I think it is 42.", "42", text_fallback=True) == (
        1.0,
        PASS,
    )  # the whole completion states it
    long = "We add 40 and 2 to get the total. Then we check it 42 times."
    assert verify(long, "42", text_fallback=True) == (0.0, NONE)  # never a last-number fallback
    assert verify("answer is 1 \\boxed{42}", "42", text_fallback=True) == (1.0, PASS)  # a box wins


def test_extraction_reports_why():
    assert extract("<think>x").reason.startswith("unclosed <think>")
    assert extract("nothing").status == NONE
    ex = extract("\\boxed{1} \\boxed{2}")
    assert ex.status is None and ex.final == "2" and ex.answers == ("1", "2")
