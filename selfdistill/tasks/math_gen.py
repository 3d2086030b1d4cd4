"""Procedural math tasks (seeded) and worked solutions with realistic mistakes.

Three families, short enough for a character-level tiny model:

* ``arith``: two-step integer arithmetic, ``12+7-5=?`` -> ``\\boxed{14}``
* ``frac``:  fraction sums, ``2/6+3/6=?`` -> ``\\boxed{5/6}`` (unlike denominators above difficulty 1)
* ``linear``: ``3x+5=20, x=?`` -> ``\\boxed{5}``

`worked_solution(task, rng, mistake)` writes ``<think>steps</think>\\boxed{answer}``; with
``mistake=True`` one step contains an error a student would make (a slipped carry, adding
numerators and denominators, a sign error when moving a term) and the final answer follows
from it. The bootstrap corpus mixes both, so the pre-trained policy solves some tasks but not
all, which gives RL something to sharpen.
"""

from __future__ import annotations

import random
from fractions import Fraction

from selfdistill.tasks.base import Task, draw_distinct

FAMILIES = ("arith", "frac", "linear")


def generate_math_tasks(src, seed: int) -> list[Task]:
    """``src.n`` distinct math tasks drawn with ``seed`` (families in equal shares)."""
    rng = random.Random(f"math-{seed}-{src.difficulty}")

    def make(n_so_far: int, attempt: int) -> Task:  # families in turn, a random one every 7th try
        family = FAMILIES[n_so_far % len(FAMILIES)] if attempt % 7 else rng.choice(FAMILIES)
        return MAKERS[family](rng, src.difficulty)

    return draw_distinct(src.n, make)


def _hi(difficulty: int) -> int:
    """Largest operand: single digits at difficulty 1 (what a tiny character model can learn in minutes)."""
    return 9 if difficulty <= 1 else 20 * difficulty


def make_arith(rng: random.Random, difficulty: int) -> Task:
    a, b, c = (rng.randint(1, _hi(difficulty)) for _ in range(3))
    op1, op2 = rng.choice("+-"), rng.choice("+-*") if difficulty > 1 else rng.choice("+-")
    expr = f"{a}{op1}{b}{op2}{c}"
    return Task(
        "", "math", f"{expr}=?", answer=str(_eval_left_to_right(a, op1, b, op2, c)), source="math:arith"
    )


def make_frac(rng: random.Random, difficulty: int) -> Task:
    """Difficulty 1: a shared denominator (add the tops, then reduce); above: unlike denominators."""
    d1 = rng.randint(2, 9 if difficulty <= 1 else 4 + 2 * difficulty)
    d2 = d1 if difficulty <= 1 else rng.randint(2, 4 + 2 * difficulty)
    n1, n2 = rng.randint(1, d1 - 1), rng.randint(1, d2 - 1)
    total = Fraction(n1, d1) + Fraction(n2, d2)
    return Task("", "math", f"{n1}/{d1}+{n2}/{d2}=?", answer=_fmt(total), source="math:frac")


def make_linear(rng: random.Random, difficulty: int) -> Task:
    a, x, b = (
        rng.randint(2, 2 + 3 * difficulty),
        rng.randint(-5, 9 * difficulty),
        rng.randint(1, _hi(difficulty)),
    )
    sign = rng.choice("+-")
    c = a * x + b if sign == "+" else a * x - b
    return Task("", "math", f"{a}x{sign}{b}={c}, x=?", answer=str(x), source="math:linear")


MAKERS = {"arith": make_arith, "frac": make_frac, "linear": make_linear}


def _eval_left_to_right(a: int, op1: str, b: int, op2: str, c: int) -> int:
    first = _apply(a, op1, b)
    if op2 == "*":  # precedence: b*c first
        return _apply(a, op1, b * c)
    return _apply(first, op2, c)


def _apply(x: int, op: str, y: int) -> int:
    return x + y if op == "+" else x - y if op == "-" else x * y


def _fmt(q: Fraction) -> str:
    return str(q.numerator) if q.denominator == 1 else f"{q.numerator}/{q.denominator}"


def _slip(value: int, rng: random.Random) -> int:
    """A plausible arithmetic slip: off by one or by ten (a dropped or extra carry)."""
    return value + rng.choice([-10, -1, 1, 10])


def worked_solution(task: Task, rng: random.Random, mistake: bool = False) -> str:
    """``<think>...</think>\\boxed{...}`` for ``task``; with ``mistake`` one step is wrong."""
    family = task.source.split(":")[1]
    return SOLVERS[family](task.prompt, rng, mistake)


def _solve_arith(prompt: str, rng: random.Random, mistake: bool) -> str:
    expr = prompt.removesuffix("=?")
    a, op1, b, op2, c = _split_expr(expr)
    if op2 == "*":
        bc = b * c
        bc_shown = _slip(bc, rng) if mistake else bc
        result = _apply(a, op1, bc_shown)
        return f"<think>{b}*{c}={bc_shown} {a}{op1}{bc_shown}={result}</think>\\boxed{{{result}}}"
    first = _apply(a, op1, b)
    wrong_step = rng.randint(0, 1) if mistake else -1
    first_shown = _slip(first, rng) if wrong_step == 0 else first
    result = _apply(first_shown, op2, c)
    result = _slip(result, rng) if wrong_step == 1 else result
    return f"<think>{a}{op1}{b}={first_shown} {first_shown}{op2}{c}={result}</think>\\boxed{{{result}}}"


def _split_expr(expr: str) -> tuple[int, str, int, str, int]:
    ops = [i for i, ch in enumerate(expr) if ch in "+-*" and i > 0]
    i, j = ops[0], ops[1]
    return int(expr[:i]), expr[i], int(expr[i + 1 : j]), expr[j], int(expr[j + 1 :])


def _solve_frac(prompt: str, rng: random.Random, mistake: bool) -> str:
    left, right = prompt.removesuffix("=?").split("+")
    n1, d1 = map(int, left.split("/"))
    n2, d2 = map(int, right.split("/"))
    if mistake and rng.random() < 0.5:  # the classic: add tops and bottoms
        wrong = Fraction(n1 + n2, d1 + d2)
        return f"<think>{n1}/{d1}+{n2}/{d2}={n1 + n2}/{d1 + d2}</think>\\boxed{{{_fmt(wrong)}}}"
    den = d1 if d1 == d2 else d1 * d2
    num1, num2 = (n1, n2) if d1 == d2 else (n1 * d2, n2 * d1)
    total = num1 + num2
    if mistake:
        total = total + rng.choice([-1, 1])
    return f"<think>{num1}/{den}+{num2}/{den}={total}/{den}</think>\\boxed{{{_fmt(Fraction(total, den))}}}"


def _solve_linear(prompt: str, rng: random.Random, mistake: bool) -> str:
    body = prompt.removesuffix(", x=?")
    lhs, rhs = body.split("=")
    a_str, rest = lhs.split("x")
    a, sign, b, c = int(a_str), rest[0], int(rest[1:]), int(rhs)
    moved = c - b if sign == "+" else c + b
    if mistake and rng.random() < 0.6:  # sign error when moving the constant
        moved = c + b if sign == "+" else c - b
    elif mistake:
        moved = _slip(moved, rng)
    x = Fraction(moved, a)
    return f"<think>{a}x={moved} x={moved}/{a}</think>\\boxed{{{_fmt(x)}}}"


SOLVERS = {"arith": _solve_arith, "frac": _solve_frac, "linear": _solve_linear}
