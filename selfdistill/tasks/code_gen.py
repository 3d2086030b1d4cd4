"""Procedural code tasks (seeded): write a small Python function from an English spec.

Each template pairs a spec with a reference expression and a trusted Python implementation
that computes the expected outputs (no generated code is ever executed here). Tests are
call-based (``{"fn_name": "f", "cases": [{"args": [...], "expected": ...}]}``), graded by the
sandboxed code reward. `worked_solution` writes the ``<think>`` plan and a ```python block,
optionally with a realistic mistake (wrong operator, off-by-one constant, max for min ...).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from selfdistill.tasks.base import Task, draw_distinct

N_CASES = 4


@dataclass(frozen=True)
class Template:
    name: str
    arg: str  # "x" (int), "xs" (list of int) or "s" (str)
    spec: str  # with {a} and {b} placeholders
    expr: str  # reference expression with {a} and {b}
    fn: Callable  # trusted implementation fn(value, a, b)
    wrong: tuple[str, ...]  # mistaken expressions with {a} and {b}
    consts: int  # how many constants the template uses (0, 1 or 2)


TEMPLATES = [
    Template("add", "x", "x plus {a}", "x+{a}", lambda x, a, b: x + a, ("x-{a}", "x*{a}", "x+{a1}"), 1),
    Template("sub", "x", "x minus {a}", "x-{a}", lambda x, a, b: x - a, ("x+{a}", "{a}-x", "x-{a1}"), 1),
    Template("mul", "x", "x times {a}", "x*{a}", lambda x, a, b: x * a, ("x+{a}", "x*{a1}", "x**{a}"), 1),
    Template(
        "muladd",
        "x",
        "x times {a} plus {b}",
        "x*{a}+{b}",
        lambda x, a, b: x * a + b,
        ("x*({a}+{b})", "x+{a}*{b}", "x*{a}+{b1}"),
        2,
    ),
    Template(
        "mulsub",
        "x",
        "x times {a} minus {b}",
        "x*{a}-{b}",
        lambda x, a, b: x * a - b,
        ("x*({a}-{b})", "x*{a}+{b}", "x*{a1}-{b}"),
        2,
    ),
    Template(
        "sq",
        "x",
        "x squared plus {a}",
        "x*x+{a}",
        lambda x, a, b: x * x + a,
        ("x*2+{a}", "x*x-{a}", "x*x+{a1}"),
        1,
    ),
    Template(
        "sum",
        "xs",
        "the sum of xs plus {a}",
        "sum(xs)+{a}",
        lambda xs, a, b: sum(xs) + a,
        ("sum(xs)", "len(xs)+{a}", "sum(xs)+{a1}"),
        1,
    ),
    Template(
        "max",
        "xs",
        "the largest of xs plus {a}",
        "max(xs)+{a}",
        lambda xs, a, b: max(xs) + a,
        ("min(xs)+{a}", "max(xs)", "max(xs)+{a1}"),
        1,
    ),
    Template(
        "min",
        "xs",
        "the smallest of xs times {a}",
        "min(xs)*{a}",
        lambda xs, a, b: min(xs) * a,
        ("max(xs)*{a}", "min(xs)+{a}", "min(xs)*{a1}"),
        1,
    ),
    Template(
        "len",
        "xs",
        "the length of xs times {a}",
        "len(xs)*{a}",
        lambda xs, a, b: len(xs) * a,
        ("sum(xs)*{a}", "len(xs)+{a}", "len(xs)*{a1}"),
        1,
    ),
    Template(
        "first",
        "xs",
        "the first item of xs plus {a}",
        "xs[0]+{a}",
        lambda xs, a, b: xs[0] + a,
        ("xs[-1]+{a}", "xs[1]+{a}", "xs[0]+{a1}"),
        1,
    ),
    Template(
        "last",
        "xs",
        "the last item of xs times {a}",
        "xs[-1]*{a}",
        lambda xs, a, b: xs[-1] * a,
        ("xs[0]*{a}", "xs[-1]+{a}", "xs[-1]*{a1}"),
        1,
    ),
    Template(
        "rep", "s", "s repeated {a} times", "s*{a}", lambda s, a, b: s * a, ("s*{a1}", "s+s", "s*{a}+s"), 1
    ),
    Template(
        "upper",
        "s",
        "s in upper case plus {a} dots",
        "s.upper()+'.'*{a}",
        lambda s, a, b: s.upper() + "." * a,
        ("s.lower()+'.'*{a}", "s.upper()+'.'*{a1}", "s+'.'*{a}"),
        1,
    ),
]


def _fill(expr: str, a: int, b: int) -> str:
    return expr.format(a=a, b=b, a1=a + 1, b1=b + 1)


def _inputs(arg: str, rng: random.Random) -> list:
    if arg == "x":
        return [rng.randint(-9, 20) for _ in range(N_CASES)]
    if arg == "xs":
        return [[rng.randint(-9, 20) for _ in range(rng.randint(1, 5))] for _ in range(N_CASES)]
    return ["".join(rng.choice("abcdxyz") for _ in range(rng.randint(1, 4))) for _ in range(N_CASES)]


def make_code_task(rng: random.Random, difficulty: int) -> Task:
    tpl = rng.choice(TEMPLATES)
    hi = 10 * difficulty + 9
    a, b = rng.randint(2, hi), rng.randint(1, hi)
    if tpl.consts == 0:
        a = b = 0
    elif tpl.consts == 1:
        b = 0
    spec = tpl.spec.format(a=a, b=b)
    cases = [{"args": [v], "expected": tpl.fn(v, a, b)} for v in _inputs(tpl.arg, rng)]
    return Task(
        "",
        "code",
        f"f({tpl.arg}): {spec}",
        tests={"fn_name": "f", "cases": cases},
        source=f"code:{tpl.name}:{a}:{b}",
    )


def generate_code_tasks(src, seed: int) -> list[Task]:
    """``src.n`` distinct code tasks drawn with ``seed``."""
    rng = random.Random(f"code-{seed}-{src.difficulty}")
    return draw_distinct(src.n, lambda n_so_far, attempt: make_code_task(rng, src.difficulty))


def worked_solution(task: Task, rng: random.Random, mistake: bool = False) -> str:
    """A ``<think>`` plan and a fenced function; with ``mistake`` the expression is wrong."""
    _, name, a, b = task.source.split(":")
    tpl = next(t for t in TEMPLATES if t.name == name)
    expr = _fill(rng.choice(tpl.wrong) if mistake else tpl.expr, int(a), int(b))
    return f"<think>{expr}</think>```python\ndef f({tpl.arg}):\n    return {expr}\n```"
