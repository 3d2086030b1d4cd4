"""Property-based fuzzing of the math verifier (``rewards.math.verify``), at every magnitude.

Each example is a value of known meaning written twice: a *rewrite* (the same value spelled
another way: fraction <-> decimal where exact, ``\\frac``/``\\dfrac``/``/``, reordered sums and
products, shuffled sets, tuple/interval ends rewritten) must PASS; a *mutation* (off by a factor,
a sign, an added term, a swapped tuple element, an open/closed interval end, an exponent off by
one) must not. Labels come from construction with exact arithmetic, never from a grader. No call
may take 2 s. Magnitudes run from 1e-300 to 1e300 (and 2^{-1000}), where a float comparison with
an absolute tolerance calls different numbers equal.

Run: ``python -m pytest tests/fuzz/test_fuzz_math.py -q`` (seeded, fast);
``-m slow`` for the 10,000-example variants (see ``_fuzz.py``).
"""

from __future__ import annotations

import random
import time
from fractions import Fraction

import hypothesis.strategies as st
import pytest
from _fuzz import fast, slow
from hypothesis import example, given

from rewards.common import Status
from rewards.math.verify import verify

MAX_CALL_S = 2.0
SQUAREFREE = (2, 3, 5, 6, 7, 10)


@pytest.fixture(scope="module", autouse=True)
def _sympy_imported():
    """Import sympy and the LaTeX parser once, so the 2 s bound times verification, not imports."""
    from rewards.math.symbolic import warm_up

    warm_up()


def judged(pred: str, ref: str) -> Status:
    """The verdict for ``\\boxed{pred}`` against ``ref``, asserting the 2 s bound.

    The bound is on this process's CPU time (the in-process verifier, sympy included), so that a
    machine shared with other jobs does not turn a 0.3 s call into a false "over 2 s".
    """
    t0 = time.process_time()
    _, status = verify(f"The answer is $\\boxed{{{pred}}}$.", ref)
    took = time.process_time() - t0
    assert took < MAX_CALL_S, f"{pred!r} vs {ref!r} took {took:.2f} s of CPU"
    return status


def assert_pass(pred: str, ref: str) -> None:
    assert judged(pred, ref) == Status.PASS, f"false negative: {pred!r} is {ref!r}"


def assert_not_pass(pred: str, ref: str) -> None:
    assert judged(pred, ref) != Status.PASS, f"false positive: {pred!r} is not {ref!r}"


# -- spelling a rational value --------------------------------------------------------------------
def decimal(v: Fraction) -> str | None:
    """The exact decimal of ``v`` when it terminates (and is short enough to write), else None."""
    q, n = v.denominator, 0
    while q % 10 == 0 or q % 2 == 0 or q % 5 == 0:
        if q % 10 == 0:
            q //= 10
        elif q % 2 == 0:
            q //= 2
        else:
            q //= 5
        n += 1
    if q != 1 or n > 60:
        return None
    digits = str(abs(v.numerator) * 10**n // v.denominator).rjust(n + 1, "0")
    body = digits if n == 0 else f"{digits[:-n]}.{digits[-n:]}"
    return ("-" if v < 0 else "") + body


def spellings(v: Fraction) -> list[str]:
    """Ways to write ``v`` exactly."""
    p, q, neg = abs(v.numerator), v.denominator, v < 0
    sign = "-" if neg else ""
    out = []
    if q == 1:
        out += [f"{sign}{p}", f"{sign}\\frac{{{2 * p}}}{{2}}", f"{sign}{p}.0"]
    else:
        out += [
            f"{sign}\\frac{{{p}}}{{{q}}}",
            f"{sign}\\dfrac{{{p}}}{{{q}}}",
            f"{sign}{p}/{q}",
            f"{sign}\\frac{{{3 * p}}}{{{3 * q}}}",
            f"\\frac{{{'-' if neg else ''}{p}}}{{{q}}}",
        ]
    d = decimal(v)
    if d is not None:
        out.append(d)
    return out


def canonical(v: Fraction) -> str:
    return spellings(v)[0]


rationals = st.builds(Fraction, st.integers(-(10**6), 10**6), st.integers(1, 2000))
nonzero_rationals = rationals.filter(lambda v: v != 0)


def signed_terms(terms: list[tuple[Fraction, str]]) -> str:
    """``[(2, ""), (-3, "\\sqrt{2}")]`` -> ``2 - 3\\sqrt{2}`` (coefficients spelled at random by the caller)."""
    out = ""
    for k, (coef, body) in enumerate(terms):
        mag = canonical(abs(coef)) if body == "" or abs(coef) != 1 else ""
        text = f"{mag}{body}" if body else mag
        if k == 0:
            out = ("-" if coef < 0 else "") + text
        else:
            out += (" - " if coef < 0 else " + ") + text
    return out


# -- rationals: every spelling passes, every mutation fails ---------------------------------------
@st.composite
def rational_cases(draw):
    v = draw(rationals)
    forms = spellings(v)
    pred = draw(st.sampled_from(forms))
    mutation = draw(st.sampled_from(["factor", "sign", "plus_one", "reciprocal"]))
    if mutation == "factor":
        w = v * draw(st.sampled_from([2, 3, Fraction(1, 2), 10, Fraction(1, 10)]))
    elif mutation == "sign":
        w = -v
    elif mutation == "plus_one":
        w = v + 1
    else:
        w = 1 / v if v != 0 else Fraction(1)
    return v, pred, w


def check_rational(case) -> None:
    v, pred, w = case
    ref = canonical(v)
    assert_pass(pred, ref)
    if w != v:
        assert_not_pass(_middle(spellings(w)), ref)


def _middle(forms: list[str]) -> str:
    return forms[len(forms) // 2]


test_rationals = fast(60)(given(rational_cases())(check_rational))
test_rationals_slow = slow(given(rational_cases())(check_rational), of=7)


# -- magnitudes 1e-300 .. 1e300: scientific notation, powers, irrational multiples ----------------
@st.composite
def magnitude_cases(draw):
    """A value m * 10^k (m a short decimal, |k| <= 300), written several ways, and a mutation."""
    mant = Fraction(draw(st.integers(1, 9999)), 10 ** draw(st.integers(0, 3)))
    k = draw(st.integers(-300, 300))
    neg = draw(st.booleans())
    v = (-1 if neg else 1) * mant * Fraction(10) ** k
    m = decimal(mant)
    s = "-" if neg else ""
    forms = [
        f"{s}{m}\\times10^{{{k}}}",
        f"{s}{m}\\cdot 10^{{{k}}}",
        f"{s}{m}e{k}",
        f"{s}{m}E{k}",
        f"{s}\\frac{{{m}}}{{10^{{{-k}}}}}",
        f"{s}{m}\\times 10^{{{k}}}",
    ]
    d = decimal(v)
    if d is not None and abs(k) <= 40:
        forms.append(d)
    ref = f"{s}{m}\\times10^{{{k}}}"
    pred = draw(st.sampled_from(forms))
    mutation = draw(st.sampled_from(["double", "half", "exponent", "sign", "last_digit"]))
    if mutation == "double":
        bad = f"{s}{decimal(mant * 2)}\\times10^{{{k}}}"
    elif mutation == "half":
        bad = f"{s}\\frac{{{m}}}{{2}}\\cdot 10^{{{k}}}"
    elif mutation == "exponent":
        bad = f"{s}{m}\\times10^{{{k + draw(st.sampled_from([-1, 1]))}}}"
    elif mutation == "sign":
        bad = f"{'' if neg else '-'}{m}\\times10^{{{k}}}"
    else:
        bad = f"{s}{decimal(mant + Fraction(1, 1000))}\\times10^{{{k}}}"
    return ref, pred, bad


def check_magnitude(case) -> None:
    ref, pred, bad = case
    assert_pass(pred, ref)
    assert_not_pass(bad, ref)


test_magnitudes = fast(60)(
    example(("1.5\\times10^{-20}", "1.5e-20", "3\\times10^{-20}"))(  # the report: off by 2, both tiny
        example(("1\\times10^{-300}", "1e-300", "2\\times10^{-300}"))(
            given(magnitude_cases())(check_magnitude)
        )
    )
)
test_magnitudes_slow = slow(given(magnitude_cases())(check_magnitude), of=7)


@st.composite
def power_cases(draw):
    """``2^{-k}`` / ``10^{k}`` (k up to 1000, far outside doubles) against spellings and neighbours."""
    base = draw(st.sampled_from([2, 3, 10]))
    k = draw(st.integers(1, 1000))
    neg_exp = draw(st.booleans())
    e = -k if neg_exp else k
    ref = f"{base}^{{{e}}}"
    if neg_exp:
        forms = [
            f"\\frac{{1}}{{{base}^{{{k}}}}}",
            f"{base}^{{-{k}}}",
            f"\\left(\\frac{{1}}{{{base}}}\\right)^{{{k}}}",
        ]
        if base in (2, 10):
            forms.append(f"{decimal(Fraction(1, base))}^{{{k}}}")
    else:
        forms = [f"{base}^{{{k}}}", f"\\frac{{1}}{{{base}^{{-{k}}}}}", f"{base}\\cdot{base}^{{{k - 1}}}"]
    pred = draw(st.sampled_from(forms))
    bad = draw(
        st.sampled_from(
            [
                f"{base}^{{{e + 1}}}",
                f"{base}^{{{e - 1}}}",
                f"2\\cdot{base}^{{{e}}}",
                f"-{base}^{{{e}}}",
                f"{base}^{{{e}}}+1",
            ]
        )
    )
    return ref, pred, bad


test_powers = fast(40)(
    example(("2^{-1000}", "\\frac{1}{2^{1000}}", "2^{-999}"))(
        example(("10^{20}", "10\\cdot10^{19}", "10^{20}+1"))(given(power_cases())(check_magnitude))
    )
)
test_powers_slow = slow(given(power_cases())(check_magnitude), of=7)


@st.composite
def irrational_magnitude_cases(draw):
    """An irrational value c * 10^k (c = pi, e, sqrt(n)) at |k| <= 300, and a mutation of it.

    The ``plus`` mutation adds 10^{k-25}: a difference of 1e-25 relative, which only an exact
    (symbolic) comparison sees.
    """
    c = draw(st.sampled_from(["\\pi", "\\sqrt{2}", "\\sqrt{3}", "e"]))
    k = draw(st.integers(-300, 300))
    ref = f"{c}\\cdot 10^{{{k}}}"
    forms = [
        f"10^{{{k}}}{c}" if c != "e" else f"10^{{{k}}}\\cdot e",
        f"\\frac{{{c}}}{{10^{{{-k}}}}}",
        f"{c}\\times 10^{{{k}}}",
        f"\\frac{{2{c}}}{{2\\cdot 10^{{{-k}}}}}",
    ]
    pred = draw(st.sampled_from(forms))
    bad = draw(
        st.sampled_from(
            [
                f"2{c}\\cdot 10^{{{k}}}",
                f"-{c}\\cdot 10^{{{k}}}",
                f"{c}\\cdot 10^{{{k + 1}}}",
                f"{c}\\cdot 10^{{{k}}}+10^{{{k - 25}}}",
                f"\\frac{{{c}}}{{2}}\\cdot 10^{{{k}}}",
            ]
        )
    )
    return ref, pred, bad


test_irrational_magnitudes = fast(15)(
    example(("\\pi\\cdot 10^{30}", "10^{30}\\pi", "\\pi\\cdot 10^{30}+10^{5}"))(
        given(irrational_magnitude_cases())(check_magnitude)
    )
)
test_irrational_magnitudes_slow = slow(given(irrational_magnitude_cases())(check_magnitude), of=7)


# -- expressions: reordered sums and products ------------------------------------------------------
@st.composite
def surd_cases(draw):
    """a + b sqrt(c): reordered, respelled; mutated by a factor, a sign, an added term, a swap."""
    a, b = draw(nonzero_rationals), draw(nonzero_rationals)
    c = draw(st.sampled_from(SQUAREFREE))
    root = f"\\sqrt{{{c}}}"
    ref = signed_terms([(a, ""), (b, root)])
    order = draw(st.sampled_from(["ab", "ba", "frac"]))
    if order == "ab":
        pred = signed_terms([(a, ""), (b, root)])
    elif order == "ba":
        pred = signed_terms([(b, root), (a, "")])
    else:  # (a q + b q sqrt c) / q with the common denominator
        q = a.denominator * b.denominator
        pred = f"\\frac{{{signed_terms([(a * q, ''), (b * q, root)])}}}{{{q}}}"
    mutation = draw(st.sampled_from(["factor", "sign", "plus", "swap"]))
    if mutation == "factor":
        bad = signed_terms([(2 * a, ""), (2 * b, root)])
    elif mutation == "sign":
        bad = signed_terms([(-a, ""), (-b, root)])
    elif mutation == "plus":
        bad = signed_terms([(a + 1, ""), (b, root)]) if a + 1 != 0 else signed_terms([(b, root)]) + " + 1"
    else:
        bad = signed_terms([(b, ""), (a, root)]) if a != b else signed_terms([(a, ""), (b + 1, root)])
    return ref, pred, bad


test_surds = fast(50)(given(surd_cases())(check_magnitude))
test_surds_slow = slow(given(surd_cases())(check_magnitude), of=7)


@st.composite
def product_cases(draw):
    """k pi / q written as ``\\frac{k\\pi}{q}``, ``\\frac{k}{q}\\pi``, ``\\pi\\cdot\\frac{k}{q}``; mutated."""
    v = draw(nonzero_rationals)
    p, q, s = abs(v.numerator), v.denominator, "-" if v < 0 else ""
    ref = f"{s}\\frac{{{p}\\pi}}{{{q}}}"
    pred = draw(
        st.sampled_from(
            [
                f"{s}\\frac{{{p}}}{{{q}}}\\pi",
                f"{s}\\pi\\cdot\\frac{{{p}}}{{{q}}}",
                f"{s}\\frac{{\\pi {p}}}{{{q}}}",
                f"{s}\\dfrac{{{p}\\pi}}{{{q}}}",
            ]
        )
    )
    bad = draw(
        st.sampled_from(
            [
                f"{s}\\frac{{{2 * p}\\pi}}{{{q}}}",
                f"{'' if s else '-'}\\frac{{{p}\\pi}}{{{q}}}",
                f"{s}\\frac{{{p}\\pi}}{{{q}}}+1",
                f"{s}\\frac{{{p}}}{{{q}}}",
            ]
        )
    )
    return ref, pred, bad


test_products = fast(40)(given(product_cases())(check_magnitude))
test_products_slow = slow(given(product_cases())(check_magnitude), of=7)


# -- structures: tuples, sets, intervals ---------------------------------------------------------
@st.composite
def structure_cases(draw):
    kind = draw(st.sampled_from(["tuple", "set", "interval"]))
    rnd = random.Random(draw(st.integers(0, 2**32)))
    if kind == "interval":
        lo, hi = sorted(draw(st.lists(rationals, min_size=2, max_size=2, unique=True)))
        o, c = draw(st.sampled_from(["(", "["])), draw(st.sampled_from([")", "]"]))
        ref = f"{o}{canonical(lo)}, {canonical(hi)}{c}"
        pred = f"\\left{o}{rnd.choice(spellings(lo))}, {rnd.choice(spellings(hi))}\\right{c}"
        flip = {"(": "[", "[": "(", ")": "]", "]": ")"}
        bad = rnd.choice(
            [
                f"{flip[o]}{canonical(lo)}, {canonical(hi)}{c}",
                f"{o}{canonical(lo)}, {canonical(hi)}{flip[c]}",
                f"{o}{canonical(lo)}, {canonical(hi + 1)}{c}",
                f"{o}{canonical(2 * lo - hi)}, {canonical(hi)}{c}",
            ]
        )
        return ref, pred, bad
    items = draw(st.lists(rationals, min_size=2, max_size=5, unique=True))
    if kind == "tuple":
        ref = "(" + ", ".join(canonical(v) for v in items) + ")"
        pred = "(" + ", ".join(rnd.choice(spellings(v)) for v in items) + ")"
        i, j = rnd.sample(range(len(items)), 2)
        swapped = list(items)
        swapped[i], swapped[j] = swapped[j], swapped[i]
        bad = "(" + ", ".join(canonical(v) for v in swapped) + ")"
        return ref, pred, bad
    ref = "\\{" + ", ".join(canonical(v) for v in items) + "\\}"
    shuffled = list(items)
    rnd.shuffle(shuffled)
    pred = "\\{" + ", ".join(rnd.choice(spellings(v)) for v in shuffled) + "\\}"
    changed = list(items)
    k = rnd.randrange(len(items))
    changed[k] = max(items) + 1
    bad = "\\{" + ", ".join(canonical(v) for v in changed) + "\\}"
    return ref, pred, bad


test_structures = fast(50)(given(structure_cases())(check_magnitude))
test_structures_slow = slow(given(structure_cases())(check_magnitude), of=7)


# -- the magnitude families swept deterministically: 0 FP and 0 FN ------------------------------
def _sci(k: int) -> tuple[str, str, list[str]]:
    return (
        f"3\\times10^{{{k}}}",
        f"3e{k}",
        [f"6\\times10^{{{k}}}", f"3\\times10^{{{k + 1}}}", f"-3\\times10^{{{k}}}"],
    )


def _pow2(k: int) -> tuple[str, str, list[str]]:
    return (
        f"2^{{{k}}}",
        f"\\frac{{1}}{{2^{{{-k}}}}}",
        [f"2^{{{k + 1}}}", f"3\\cdot 2^{{{k}}}", f"2^{{{k}}}+1"],
    )


def _pi(k: int) -> tuple[str, str, list[str]]:
    return (
        f"\\pi\\cdot10^{{{k}}}",
        f"\\frac{{\\pi}}{{10^{{{-k}}}}}",
        [f"2\\pi\\cdot10^{{{k}}}", f"\\pi\\cdot10^{{{k}}}+10^{{{k - 25}}}", f"-\\pi\\cdot10^{{{k}}}"],
    )


FAMILIES = {"m*10^k": _sci, "2^k": _pow2, "pi*10^k": _pi}  # exponent -> (reference, rewrite, mutations)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_magnitude_families_sweep(family):
    """Every 15th exponent from -300 to 300 (2^k: -1000 to 1000): each rewrite passes, each mutation fails."""
    ks = range(-1000, 1001, 50) if family == "2^k" else range(-300, 301, 15)
    fp, fn = [], []
    for k in ks:
        ref, good, bads = FAMILIES[family](k)
        if judged(good, ref) != Status.PASS:
            fn.append((good, ref))
        fp += [(b, ref) for b in bads if judged(b, ref) == Status.PASS]
    assert not fp and not fn, {"false positives": fp[:5], "false negatives": fn[:5]}


@pytest.mark.parametrize(
    "pred,ref,want",
    [
        # regression cases: each was scored wrongly before the relative/exact comparison (issue 18)
        ("10^{-300}", "2\\cdot 10^{-300}", False),
        ("2^{-1000}", "2^{-999}", False),
        ("10^{20}", "10^{20}+1", False),
        ("\\pi\\cdot10^{30}+1", "\\pi\\cdot 10^{30}", False),
        ("\\sqrt{2}+10^{-12}", "\\sqrt2", False),
        ("\\cos(10^{-8})", "1", False),
        ("x>10^{-12}", "x>2\\cdot10^{-12}", False),
        ("e^{-1000}", "0", False),
        ("10^{-300}", "0", False),
        ("\\sin(\\pi)", "0", True),
        ("10^{400}", "10^{400}", True),
        ("\\frac{\\sqrt{2}}{10^{300}}", "\\sqrt{2}\\cdot10^{-300}", True),
        ("x\\cdot 10^{-15}", "\\frac{x}{10^{15}}", True),
        ("x\\cdot 10^{-15}", "2x\\cdot10^{-15}", False),
        (
            "\\frac{\\pi}{1000}",
            "0.00",
            False,
        ),  # a zero decimal reference: only zero, not all that rounds to it
        ("-\\frac{\\pi}{100}", "0.0", False),
        ("\\frac{\\pi}{10^{7}}", "0.000", False),
        (
            "\\frac{\\sqrt{2}}{100}",
            "0.01",
            True,
        ),  # the documented rounding rule (a decimal reference, an irrational answer)
        ("\\frac{\\pi}{10^{7}}", "0.0000003", True),
    ],
)
def test_magnitude_regressions(pred, ref, want):
    assert (judged(pred, ref) == Status.PASS) is want
