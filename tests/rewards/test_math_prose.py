"""The plain-text fallback (rewards.math.prose) and the comparison rules added with the prose dev set."""

from __future__ import annotations

import time

import pytest

from rewards.common import Status
from rewards.math.prose import math_spans, prose_answer
from rewards.math.verify import verify

PASS, FAIL, NONE, AMB = Status.PASS, Status.FAIL, Status.NO_ANSWER, Status.AMBIGUOUS


@pytest.mark.parametrize(
    "text, answer",
    [
        ("Final Answer: The final answer is $(0, 1)$. I hope it is correct.", "(0, 1)"),  # span, courtesy cut
        (
            "Final Answer: The final answer is 12,000,023. I hope it is correct. <|im_start|>user",
            "12,000,023",
        ),
        ("Final Answer: The largest $n$ is 34.", "34"),  # "<subject> is <value>": after the last "is"
        ("Therefore $x \\geq 5$ is the solution.", "x \\geq 5"),  # nothing after "is": the part before
        ("We find that $x \\lt 3$.", "x \\lt 3"),
        ("Thus $x <= 2$ is our answer.", "x <= 2"),  # the phrase and the conclusion share the sentence
        ("The answer is x = 3", "x = 3"),  # a short formula after the phrase, as written
        ("Answer \\( (9+1) \\)", "(9+1)"),
        (
            "Lots of work: $y = 8.8 - 2.8 = 6$ So, the ordered pair $(x, y)$ that solves it is $(7, 6)$.",
            "(7, 6)",
        ),
        ("The final answer is $12$ and $13$.", "12, 13"),  # joined by "and": a list
        ("The answer is $3$ or $4$.", "3 or 4"),  # the hedge is kept for the verifier
        ("Jane started growing Sphere 3 hours ago.", "3"),  # one sentence: its number
        ("the number is not 10 which is 1,000.99€", "1,000.99€"),
        ("not it's not 10 it's 1,000.99m²", "1,000.99m²"),  # "it's" read as "it is"
    ],
)
def test_prose_answer_reads_the_conclusion(text, answer):
    assert prose_answer(text) == answer


def test_only_the_final_statement_is_read():
    # the final statement names no value: an earlier "Therefore ... is 1" deep in the reasoning is not used
    text = "Therefore the remainder is 1. We continue. Final Answer: For all n in {1, 2, ..., 99}, n^4+4^n is prime."
    assert prose_answer(text) is None
    # a conclusion that announces the next sentence (colon) is read through to it
    assert prose_answer("Therefore, we can factor $P$ as follows:\n\n$$P = (x+1)(x-1)$$") == "P = (x+1)(x-1)"
    # a number inside an expression is not an answer: "1/a" is not 1, "2^m" is not 2
    assert prose_answer("So the largest value is 1/a, where a, b, and c are positive numbers.") is None
    assert prose_answer("Hence the total, counted with care and summed, is 2^m for every m.") is None
    assert prose_answer("The sum is 1 + 1/3 + ... + 1/7. So the value is 5.") == "5"  # "..." ends no sentence


def test_truncated_box_is_no_answer_even_with_the_fallback():
    assert verify("So the answer is \\boxed{\\boxed{3", "3", text_fallback=True) == (0.0, NONE)
    assert verify("\\[" * 200 + "3", "3", text_fallback=True) == (0.0, NONE)  # long garbage: no bare number


def test_no_last_number_fallback_in_a_long_text():
    assert prose_answer("We add 40 and 2 to get the total. Then we check it 42 times.") is None
    assert prose_answer("") is None and prose_answer("No numbers here at all.") is None


def test_math_spans_respect_escapes_and_line_breaks():
    assert [c for _, _, c in math_spans("cost \\$5 and $x+1$")] == ["x+1"]
    assert [c for _, _, c in math_spans("$ \\frac{1}{2} \\$ = 3 $")] == ["\\frac{1}{2} \\$ = 3"]
    assert math_spans("Answer $ \n 9 \n $") == []  # inline math does not cross a line break
    assert [c for _, _, c in math_spans("Answer $$ \n 9 \n $$")] == ["9"]  # display math may


@pytest.mark.parametrize(
    "text, ref, want",
    [
        ("The answer is $3$ or $4$.", "3", (0.0, AMB)),
        ("The answer is $3$ or $4$.", "3, 4", (1.0, PASS)),  # both solutions, as the list reference says
        ("The answer is $3$ or $5$.", "3, 4", (0.0, FAIL)),
        ("Thus the minimum error increases by 100%.", "100\\%", (1.0, PASS)),
        ("Final Answer: The final answer is $14 {, }916$. I hope it is correct.", "14916", (1.0, PASS)),
        ("Soucis : 2,74 $ a..", "2.74", (1.0, PASS)),  # decimal comma against a decimal reference
    ],
)
def test_fallback_verdicts(text, ref, want):
    assert verify(text, ref, text_fallback=True) == want


def test_fallback_stays_linear_on_huge_inputs():
    t = time.perf_counter()
    for text in ("$a$. " * 200_000, "answer: . " * 100_000, "\\( " * 300_000, "So it is 5. " * 100_000):
        verify(text, "5", text_fallback=True)
    assert time.perf_counter() - t < 5.0  # generous: each is ~10-60 ms; a quadratic scan takes minutes


@pytest.mark.parametrize(
    "pred, ref, label",
    [
        ("1000,99", "1000.99", 1),
        ("1.22", "1,22", 1),
        ("1000,98", "1000.99", 0),
        ("2,3", "2, 3", 1),
        ("2.3", "2, 3", 0),  # a list reference is still a list
        ("1,000", "1000", 1),  # three digits after the comma: a thousands separator
        ("x != 5", "x \\neq 5", 1),
        ("x ≠ 5", "x \\neq 5", 1),
        (
            "\\left[\\begin{array}{cc}1 & 2 \\\\3 & 4\\end{array}\\right]",
            "\\begin{pmatrix}1 & 2 \\\\3 & 4\\end{pmatrix}",
            1,
        ),
        (
            "\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix} + \\begin{pmatrix}5 & 6 \\\\ 7 & 8\\end{pmatrix}",
            "\\begin{pmatrix}6 & 8 \\\\ 10 & 12\\end{pmatrix}",
            1,
        ),
        (
            "\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix} + \\begin{pmatrix}5 & 6 \\\\ 7 & 8\\end{pmatrix}",
            "\\begin{pmatrix}6 & 8 \\\\ 10 & 13\\end{pmatrix}",
            0,
        ),
        ("0", "1 = \\zzz = x = 0", 1),
        ("1", "z = 1 + 1 = 2", 0),
        ("2", "z = 1 + 1 = 2", 1),  # a worked reference chain
        ("4, 5", "AB=4,CD=5", 1),  # a list of equations is not a chain
        ("1 \\text{ or } 2", "1, 2", 1),
        ("1 \\text{ or } 2", "2", 0),
    ],
)
def test_comparison_rules(pred, ref, label):
    reward, status = verify(f"\\boxed{{{pred}}}", ref)
    assert reward == float(label), (pred, ref, status)
