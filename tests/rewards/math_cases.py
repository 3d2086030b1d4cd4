"""Inputs for the math reward's tests and benchmark: adversarial completions and a generated set.

* :func:`adversarial_cases` -- 300+ completions built to hang or crash a verifier (power towers,
  huge factorials, 100k-digit numbers, thousands of nested braces, 1 MB completions, unclosed
  boxes, ``\\[`` floods). None of them should score 1.0 against its reference, and none may take
  longer than 2 s.
* :func:`generated_cases` -- the metamorphic set: per answer class, a reference plus
  meaning-preserving rewrites (label 1) and mutations (label 0), put into realistic templates.
  Labels come from how the rewrite was built, not from any grader.

Test and benchmark data, kept out of the library: used by ``tests/rewards/test_math_adversarial.py`` and
``scripts/bench_math.py`` (which puts ``tests/rewards`` on ``sys.path``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    cls: str
    completion: str
    answer: str
    label: int  # 1: the completion's answer is right
    source: str = ""
    mv_label: int | None = None  # Math-Verify's own expectation where issue 3's policy labels otherwise
    policy: str = ""  # why the policy's label differs from Math-Verify's (scripts/data/build_math_dev.py)
    prompt: str | None = None  # the question, where the set has it (restated-question check)


def _box(s: str) -> str:
    return f"<think>Let me work it out.</think>The answer is $\\boxed{{{s}}}$."


def adversarial_cases() -> list[Case]:
    """Inputs meant to hang, exhaust memory or crash; the reference is an ordinary answer."""
    out: list[Case] = []

    def add(kind: str, completion: str, answer: str = "3", label: int = 0) -> None:
        out.append(Case(f"adv/{kind}", completion, answer, label, "adversarial"))

    for b in range(2, 12):  # power towers
        add("tower", _box(f"{b}^{{{b}^{{{b}^{{{b}}}}}}}"))
        add("tower", _box(f"{b}^{b}^{b}^{b}"))
        add("tower", _box(f"{b}^{{{b}^{{{b}}}}}"))
        add("tower", _box(f"({b}^{{{b}}})^{{{b}^{{{b}^{b}}}}}"))
        add("tower", _box(f"{b}^{{10^{{10}}}}"))
    for n in (1000, 10000, 100000, 10**6, 10**9):  # factorials
        add("factorial", _box(f"{n}!"))
        add("factorial", _box(f"{n}!!"))
        add("factorial", _box(f"({n})!"))
        add("factorial", _box(f"\\Gamma({n})"))
        add("factorial", _box(f"24!\\times{n}!"))
        add("factorial", _box("((10)!)!"))
    for digits in (500, 5000, 50000, 100000):  # huge numbers
        add("digits", _box("9" * digits), answer="9" * 5)
        add("digits", _box("1" + "0" * digits), answer="1000")
        add("digits", _box("\\frac{" + "7" * digits + "}{3}"))
        add("digits", _box("0." + "3" * digits), answer="\\frac{1}{3}")
        add("digits", _box(f"1e{digits}"))
        add("digits", _box(f"10^{{{digits}}}"))
        add("digits", _box(f"2^{{{digits}}}\\cdot 3^{{{digits}}}"))
    for depth in (50, 500, 5000, 20000):  # nesting
        add("nesting", _box("{" * depth + "3" + "}" * depth), answer="4")  # grouping braces: it is 3
        add("nesting", _box("(" * depth + "3" + ")" * depth))
        add("nesting", _box("\\frac{" * depth + "1" + "}{2}" * depth))
        add("nesting", _box("\\sqrt{" * depth + "2" + "}" * depth))
        add("nesting", "\\boxed{" * depth + "3")
        add("nesting", "\\boxed{" * depth + "3" + "}" * (depth - 1), answer="4")  # inner boxes do close on 3
        add("nesting", _box("\\left(" * depth + "3" + "\\right)" * depth))
    big = "The computation goes on. " * 40000  # ~1 MB
    add("huge", f"<think>{big}</think>\\boxed{{4}}")
    add("huge", f"{big}\\boxed{{4}}")
    add("huge", "<think>" + big)
    add("huge", "\\boxed{" + big + "}")
    add("huge", "\\[" * 20000 + "3")
    add("huge", "\\boxed{" * 50000)
    add("huge", "$" * 1_000_000 + "\\boxed{4}")
    add("huge", "\\boxed{4}" * 100000)
    add("huge", "{" * 1_000_000)
    add("huge", "\\boxed{" + "1+" * 300000 + "1}")
    add("huge", "\\boxed{" + "x" * 1_000_000 + "}")
    for i in range(40):  # many distinct boxes / hedges
        add("hedge", " ".join(f"\\boxed{{{k}}}" for k in range(i + 2)))
        add("hedge", _box(" or ".join(str(k) for k in range(i + 2))))
    for expr in (
        "\\sum_{n=1}^{10^{9}} n",
        "\\prod_{k=1}^{10^6} k",
        "\\int_0^{10^{9}} e^{x^2} dx",
        "\\lim_{n\\to\\infty}(1+1/n)^{n^{n}}",
        "x^{x^{x^{x}}}",
        "\\sin(10^{100})",
        "\\zeta(10^{5})",
        "e^{e^{e^{e}}}",
        "\\tan(\\pi/2)",
        "1/0",
        "0^0",
        "\\infty-\\infty",
        "\\frac{0}{0}",
        "\\sqrt{-1}^{10^{6}}",
        "\\log(0)",
        "\\binom{10^{9}}{5\\cdot 10^8}",
        "\\left\\lfloor 10^{1000}\\pi \\right\\rfloor",
        "(1+i)^{10^{8}}",
        "\\begin{pmatrix}" + "&".join(["1"] * 500) + "\\end{pmatrix}",
        "\\overline{3}^{10^{9}}",
        "9^{9^{9}}",
        "99999^{99999}",
        "2^{2^{2^{2^{2}}}}",
        "1000!/999!",
        "\\Gamma(\\Gamma(10))",
        "10^{10^{-10^{10}}}",
    ):
        add("eval", _box(expr))
        add("eval", _box(f"{expr} = 3"))
        add("eval", _box(f"x = {expr}"))
    for junk in (
        "\\",
        "}",
        "{",
        "\\boxed",
        "\\boxed{}",
        "\\boxed{\\}",
        "\\fbox{",
        "\x00\x01",
        "\ud83d",
        "\\boxed{\\text{" + "}" * 5000,
    ):
        add("junk", junk)
        add("junk", _box(junk))
    return out


# -- the generated (metamorphic) set ----------------------------------------------------------
def _int_family(rng: random.Random) -> tuple[str, list[str], list[str]]:
    n = rng.randint(-999, 99999) or 7
    good = [
        str(n),
        f"{n:,}".replace(",", "{,}") if abs(n) >= 1000 else f"{n}.0",
        f"x = {n}",
        f"{n}\\text{{ units}}",
    ]
    bad = [str(n + 1), str(n - 1), str(-n) if n else "1", str(n * 10), f"{n} or {n + 1}"]
    return str(n), good, bad


def _frac_family(rng: random.Random) -> tuple[str, list[str], list[str]]:
    q = rng.choice([3, 4, 6, 7, 8, 9, 11, 12])
    p = rng.randint(1, 3 * q)
    while p % q == 0:
        p += 1
    s = rng.choice([1, -1])
    sign = "-" if s < 0 else ""
    ref = f"{sign}\\frac{{{p}}}{{{q}}}"
    good = [
        f"{sign}\\dfrac{{{p}}}{{{q}}}",
        f"{sign}{p}/{q}",
        f"\\frac{{{s * p}}}{{{q}}}",
        f"{sign}\\frac{{{2 * p}}}{{{2 * q}}}",
    ]
    val = s * p / q
    if q in (4, 8):
        good.append(repr(val))
    else:
        good.append(f"{val:.4f}")
    bad = [
        f"{sign}\\frac{{{q}}}{{{p}}}",
        f"{'' if s < 0 else '-'}\\frac{{{p}}}{{{q}}}",
        f"{sign}\\frac{{{p + 1}}}{{{q}}}",
    ]
    if abs(float(f"{val:.1f}") - val) > 1e-9:
        bad.append(f"{val:.1f}")
    return ref, good, bad


def _radical_family(rng: random.Random) -> tuple[str, list[str], list[str]]:
    a, b = rng.randint(2, 9), rng.choice([2, 3, 5, 6, 7])
    ref = f"{a}\\sqrt{{{b}}}"
    good = [
        f"{a}\\sqrt{b}",
        f"\\sqrt{{{a * a * b}}}",
        f"{a} \\cdot \\sqrt{{{b}}}",
        f"\\sqrt{{{b}}}\\cdot {a}",
    ]
    bad = [f"{a + 1}\\sqrt{{{b}}}", f"{a}\\sqrt{{{b + 1}}}", f"\\sqrt{{{a * b}}}", f"{a * b}"]
    return ref, good, bad


def _pi_family(rng: random.Random) -> tuple[str, list[str], list[str]]:
    p, q = rng.randint(1, 7), rng.choice([2, 3, 4, 6])
    ref = f"\\frac{{{p}\\pi}}{{{q}}}"
    good = [f"\\frac{{{p}}}{{{q}}}\\pi", f"{p}\\pi/{q}", f"\\dfrac{{{p} \\pi}}{{{q}}}"]
    bad = [f"\\frac{{{p + 1}\\pi}}{{{q}}}", f"\\frac{{{p}}}{{{q}}}", f"\\frac{{{q}\\pi}}{{{p + q}}}"]
    return ref, good, bad


def _percent_family(rng: random.Random) -> tuple[str, list[str], list[str]]:
    n = rng.randint(1, 99)
    ref = f"{n}\\%"
    good = [f"{n}", f"{n}%", f"{n} \\%"]
    bad = [f"{n + 1}\\%", f"{n * 10}\\%", f"{n + 5}"]
    return ref, good, bad


def _degree_family(rng: random.Random) -> tuple[str, list[str], list[str]]:
    n = rng.choice([15, 30, 45, 60, 72, 90, 108, 120, 135, 150])
    return f"{n}^\\circ", [f"{n}", f"{n}^{{\\circ}}", f"{n}°"], [f"{n + 1}^\\circ", f"{180 - n + 1}"]


def _tuple_family(rng: random.Random) -> tuple[str, list[str], list[str]]:
    a, b = rng.randint(-9, 9), rng.randint(-9, 9)
    while b == a:
        b += 1
    ref = f"({a}, {b})"
    good = [f"({a},{b})", f"\\left({a}, {b}\\right)", f"( {a} , {b} )"]
    bad = [f"({b}, {a})", f"({a}, {b + 1})", f"[{a}, {b}]", f"({a})"]
    return ref, good, bad


def _interval_family(rng: random.Random) -> tuple[str, list[str], list[str]]:
    a = rng.randint(-9, 5)
    b = a + rng.randint(1, 9)
    lo, hi = rng.choice(["(", "["]), rng.choice([")", "]"])
    ref = f"{lo}{a}, {b}{hi}"
    flip = {"(": "[", "[": "("}
    good = [f"\\left{lo}{a},{b}\\right{hi}", f"{lo} {a} , {b} {hi}"]
    bad = [f"{flip[lo]}{a}, {b}{hi}", f"{lo}{a}, {b + 1}{hi}", f"{lo}{b}, {a}{hi}"]
    return ref, good, bad


def _set_family(rng: random.Random) -> tuple[str, list[str], list[str]]:
    xs = rng.sample(range(-9, 10), 3)
    ref = ", ".join(map(str, xs))
    perm = xs[:]
    rng.shuffle(perm)
    good = [", ".join(map(str, perm)), ", ".join(map(str, reversed(xs)))]
    bad = [", ".join(map(str, xs[:2])), ", ".join(map(str, [xs[0], xs[1], xs[2] + 1]))]
    return ref, good, bad


def _matrix_family(rng: random.Random) -> tuple[str, list[str], list[str]]:
    m = [[rng.randint(-5, 5) for _ in range(2)] for _ in range(2)]
    body = "\\\\".join("&".join(map(str, r)) for r in m)
    ref = f"\\begin{{pmatrix}}{body}\\end{{pmatrix}}"
    good = [
        f"\\begin{{bmatrix}}{body}\\end{{bmatrix}}",
        f"\\begin{{pmatrix}} {body.replace('&', ' & ')} \\end{{pmatrix}}",
    ]
    t = "\\\\".join("&".join(str(m[j][i]) for j in range(2)) for i in range(2))
    m2 = [r[:] for r in m]
    m2[1][1] += 1
    b2 = "\\\\".join("&".join(map(str, r)) for r in m2)
    bad = [f"\\begin{{pmatrix}}{b2}\\end{{pmatrix}}"] + (
        [f"\\begin{{pmatrix}}{t}\\end{{pmatrix}}"] if m[0][1] != m[1][0] else []
    )
    return ref, good, bad


def _symbolic_family(rng: random.Random) -> tuple[str, list[str], list[str]]:
    a, b = rng.randint(1, 6), rng.randint(1, 6)
    ref = f"x^2 + {a + b}x + {a * b}"
    good = [f"(x+{a})(x+{b})", f"{a * b} + {a + b}x + x^2", f"x^{{2}}+{a + b}x+{a * b}"]
    bad = [f"(x+{a})(x+{b + 1})", f"x^2 + {a + b}x", f"(x-{a})(x-{b})"]
    return ref, good, bad


def _equation_family(rng: random.Random) -> tuple[str, list[str], list[str]]:
    m, c = rng.randint(1, 9), rng.randint(-9, 9)
    ref = f"y = {m}x + {c}" if c >= 0 else f"y = {m}x - {-c}"
    good = [f"y={m}x{c:+d}", f"{m}x{c:+d}=y", f"{2 * m}x {2 * c:+d} = 2y"]
    bad = [f"y = {m + 1}x {c:+d}", f"y = {m}x {c + 1:+d}"]
    return ref, good, bad


def _choice_family(rng: random.Random) -> tuple[str, list[str], list[str]]:
    letter = rng.choice("ABCDE")
    other = rng.choice([x for x in "ABCDE" if x != letter])
    return (
        letter,
        [f"({letter})", f"\\text{{({letter})}}", f"\\textbf{{{letter}}}"],
        [other, f"({other})", f"{letter} or {other}"],
    )


def _decimal_family(rng: random.Random) -> tuple[str, list[str], list[str]]:
    n = rng.randint(1, 9999) / 100
    ref = f"{n:.2f}"
    return (
        ref,
        [f"{n:.3f}", f"{n:.2f}\\text{{ m}}"],
        [f"{n + 0.01:.2f}", f"{n * 10:.2f}", f"{n:.1f}" if f"{n:.1f}0" != ref else f"{n + 1:.1f}"],
    )


FAMILIES = {
    "integer": _int_family,
    "fraction": _frac_family,
    "decimal": _decimal_family,
    "radical": _radical_family,
    "pi": _pi_family,
    "percent": _percent_family,
    "degrees": _degree_family,
    "tuple": _tuple_family,
    "interval": _interval_family,
    "unordered": _set_family,
    "matrix": _matrix_family,
    "symbolic": _symbolic_family,
    "equation": _equation_family,
    "choice": _choice_family,
}

_TEMPLATES = [
    "<think>{work}</think>The answer is $\\boxed{{{ans}}}$.",
    "<think>{work}</think>\\boxed{{{ans}}}",
    "<think>{work}</think>So we get $x$ and then the final answer is \\[\\boxed{{{ans}}}\\]",
    "<think>{work} Maybe \\boxed{{{ans}}}?</think>**Final answer:** $\\boxed{{{ans}}}$",
    "<think>{work}</think>We check it twice: $\\boxed{{{ans}}}$ and once more, $\\boxed{{{ans}}}$.",
]


def generated_cases(n_refs: int = 400, seed: int = 0) -> list[Case]:
    """``n_refs`` references spread over the families, each with all its rewrites and mutations."""
    rng = random.Random(seed)
    names = sorted(FAMILIES)
    out: list[Case] = []
    for k in range(n_refs):
        cls = names[k % len(names)]
        ref, good, bad = FAMILIES[cls](rng)
        for label, answers in ((1, good), (0, bad)):
            for ans in answers:
                work = rng.choice(["Compute step by step.", "Let 2+2=4, so 4.", "We try small cases first."])
                completion = rng.choice(_TEMPLATES).format(work=work, ans=ans)
                out.append(Case(cls, completion, ref, label, "generated"))
    return out


def note_cases() -> list[Case]:
    """Failure cases named in the research note (issue numbers of Math-Verify and other graders)."""
    rows = [
        ("\\boxed{0.0000001}", "0.0000002", 0, "MV#14 tiny values"),
        ("\\boxed{1e-10}", "2e-10", 0, "MV#14 tiny values"),
        ("\\boxed{1}", "1+\\frac{1}{\\mathrm{e}}", 0, "MV PR#82 1/e parsed as 1"),
        ("\\boxed{1+\\frac{1}{e}}", "1+\\frac{1}{\\mathrm{e}}", 1, "MV PR#82"),
        ("\\boxed{4\\sqrt(2)}", "4\\sqrt{2}", 1, "MV#41"),
        ("\\boxed{4\\sqrt(2)}", "4", 0, "MV#41"),
        ("\\boxed{\\frac{1}{\\sqrt{n}}}", "\\sqrt{1/n}", 1, "MV#64"),
        ("\\boxed{**73**}", "73", 1, "MV#76 markdown bold"),
        ("\\boxed{y = 2x}", "y=2x+1", 0, "MV#60 plain equations"),
        ("\\boxed{x + y = 2}", "x+y=2", 1, "MV#40 comparing equations"),
        ("\\boxed{25\\%}", "25", 1, "MV#61/#67 percent"),
        ("\\boxed{25\\%}", "0.25", 1, "MV#61/#67 percent"),
        ("\\boxed{100005}", "100000", 0, "Qwen rel_tol"),
        ("\\boxed{0.05}", "5", 0, "Qwen x100"),
        ("\\boxed{[1,2)}", "(1,2]", 0, "Qwen bracket type"),
        ("\\boxed{3 or 4}", "3", 0, "Visual-RFT#79 hedge"),
        ("\\boxed{A or B or C}", "A", 0, "Visual-RFT#79 hedge"),
        ("The numbers are 1, 2 and 61.", "61", 0, "verifiers#1028 any number"),
        ("\\boxed{2\\sqrt2}", "2\\sqrt{2}", 1, "parse_latex drops tokens"),
        ("\\boxed{2}", "2\\sqrt{2}", 0, "parse_latex drops tokens"),
        ("\\boxed{30^\\circ}", "30", 1, "parse_latex 30**circ"),
        ("\\boxed{\\tfrac34}", "\\frac{3}{4}", 1, "TRL malformed operators"),
        ("\\boxed{0.3333333}", "\\frac13", 1, "PRM800K repeating decimal"),
        ("\\boxed{\\{1,2\\}\\cup\\{3\\}}", "\\{1,2,3\\}", 1, "PRM800K unions"),
        (
            "\\boxed{123456789012345678901234567890}",
            "123456789012345678901234567890",
            1,
            "PRM800K big integers",
        ),
        (
            "\\boxed{123456789012345678901234567891}",
            "123456789012345678901234567890",
            0,
            "big integers off by one",
        ),
        ("\\boxed{(1,2)}", "(1,2)", 1, "lm-eval#4030 identical tuples"),
        (
            "\\boxed{\\begin{pmatrix}1&0\\\\0&1\\end{pmatrix}}",
            "\\begin{pmatrix}1&0\\\\0&1\\end{pmatrix}",
            1,
            "lm-eval#4030 matrices",
        ),
        ("\\boxed{4 = 3}", "3", 0, "issue 3: contradictory equality"),
        ("\\boxed{3}\\boxed{4}", "4", 0, "issue 3: two different boxes"),
    ]
    return [Case("note", c, a, lab, src) for c, a, lab, src in rows]
