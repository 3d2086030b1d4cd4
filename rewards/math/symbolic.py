"""The sympy part of the comparison. Runs only inside pool workers (it can be slow; they can be killed).

Parsing uses ``latex2sympy2_extended`` (ANTLR grammar, unevaluated sympy) after our own
normalisation, with symbol case kept (``A`` != ``a``). ``i`` and ``e`` are read as the imaginary
unit and Euler's number. Every string passes :func:`rewards.math.guards.check` first.

Equivalence:

* constants, exact where they can be: two rational values (``2^{-1000}``, ``10^{300}+1``) compare
  as sympy Rationals, exactly. Otherwise the *difference* is evaluated with ``evalf``, which
  raises its working precision until the result has significant digits (sympy numbers have
  arbitrary exponents: 1e-400 and 1e400 neither underflow nor overflow): a difference with digits
  is a real difference (``\\pi 10^{30} + 1`` vs ``\\pi 10^{30}``), one with none is zero. A side
  written with a decimal (a binary float in sympy) is only as exact as its digits: then equal
  means within ``FLOAT_REL`` (1e-12) *relative* to the larger value. There is no absolute
  tolerance anywhere: 0 equals only 0. The decimal tolerance of :mod:`rewards.math.compare`
  applies to decimal predictions and decimal references (also computed with sympy numbers);
* expressions with symbols: equal values at 4 fixed rational points (each symbol its own value,
  two negative) by the same difference test, ignoring points where either side is undefined (at
  least 2 must remain). This is probabilistic identity testing; a counterexample needs two
  different expressions agreeing at all the points, which the fixed irrational-looking points
  make unlikely;
* sets / intervals / unions: sympy equality after evaluation;
* relations: a relation reference matches a relation or an interval prediction describing the
  same solution set (``x > 3`` ~ ``(3, \\infty)``), not the reverse (Math-Verify's asymmetry);
* equations: ``lhs - rhs`` of both proportional (``2x + 2y = 2`` ~ ``x + y = 1``).
"""

from __future__ import annotations

import functools
from fractions import Fraction

import sympy
from latex2sympy2_extended import latex2sympy
from latex2sympy2_extended.latex2sympy2 import ConversionConfig
from latex2sympy2_extended.math_normalization import NormalizationConfig

from rewards.math.guards import check

_NORM = NormalizationConfig(
    basic_latex=True, units=True, malformed_operators=True, nits=True, boxed="none", equations=False
)
_CONV = ConversionConfig(interpret_as_mixed_fractions=True, lowercase_symbols=False)
_POINTS = [Fraction(7123, 10000), Fraction(-13371, 10000), Fraction(21719, 10000), Fraction(-4183, 10000)]
_CONSTANTS = {"i": sympy.I, "e": sympy.E}


class Unsafe(ValueError):
    """The string tripped a guard and was not parsed."""


@functools.lru_cache(maxsize=4096)
def parse(latex: str):
    """sympy object for one normalised LaTeX answer (cached). Raises on guard trips and parse errors."""
    reason = check(latex)
    if reason:
        raise Unsafe(reason)
    expr = latex2sympy(latex, normalization_config=_NORM, conversion_config=_CONV)
    if isinstance(expr, sympy.Basic):
        subs = {
            s: _CONSTANTS[s.name]
            for s in expr.free_symbols
            if isinstance(s, sympy.Symbol) and s.name in _CONSTANTS
        }
        if subs:
            expr = expr.xreplace(subs)
    return expr


FLOAT_REL = (
    1e-12  # relative tolerance when a side holds a decimal (a sympy Float): its digits are all we know
)
_DIGITS = 30  # significant digits asked of evalf


def _value(expr, at: dict | None = None):
    """A finite sympy number for ``expr`` (at ``at``), or None when it is undefined or infinite."""
    v = expr.xreplace(at) if at else expr
    v = sympy.N(v, _DIGITS)
    return v if v.is_number and v.is_finite is not False and not v.has(sympy.nan, sympy.zoo) else None


def _no_digits(x) -> bool:
    """``x`` (a real sympy number from evalf) is 0, or evalf found no significant digit of it."""
    return x == 0 or (isinstance(x, sympy.Float) and x._prec < 10)


def _is_zero(d) -> bool:
    re_, im_ = d.as_real_imag()
    return _no_digits(re_) and _no_digits(im_)


def _rational(expr):
    """``expr`` as a sympy Rational when it is one (only rationals, + - * / and integer powers), else None."""
    if (
        expr.has(sympy.Float)
        or expr.free_symbols
        or not all(isinstance(a, sympy.Rational) for a in expr.atoms(sympy.Number))
    ):
        return None
    try:
        v = expr.doit()
    except Exception:  # noqa: BLE001 - not a plain rational expression
        return None
    return v if isinstance(v, sympy.Rational) else None


def _has_float(*exprs) -> bool:
    return any(x.has(sympy.Float) for x in exprs)


def _relative_equal(va, vb) -> bool:
    """Relative comparison of two evaluated numbers: within ``FLOAT_REL`` of the larger (0 equals only 0)."""
    return bool(abs(va - vb) <= FLOAT_REL * max(abs(va), abs(vb)))


def _difference_is_zero(a, b) -> bool | None:
    """Exact-input test: does ``a - b`` evaluate to zero? evalf raises its working precision until the
    difference has significant digits (then it is a real difference) or gives up (then it is zero).
    None when the difference is not a finite number (a side undefined)."""
    d = sympy.N(a - b, 15)
    if not d.is_number or d.has(sympy.nan, sympy.zoo, sympy.oo, -sympy.oo):
        return None
    return _is_zero(d)


def _decimal_value(x):
    """The exact value of a decimal literal parsed as a sympy Float (``0.5`` -> 1/2), else None."""
    return sympy.Rational(str(x)) if isinstance(x, sympy.Float) else None


def _numbers_equal(a, b, decimal_places: int | None, ref_places: int | None) -> bool:
    ra, rb = _rational(a), _rational(b)
    if ra is not None and rb is not None:
        if ra == rb:
            return True
        if decimal_places is None and ref_places is None:
            return False  # two different exact rationals
    if decimal_places is None and ref_places is None and not _has_float(a, b):
        zero = _difference_is_zero(a, b)
        return bool(sympy.simplify(a - b) == 0) if zero is None else zero
    va, vb = _value(a), _value(b)
    if va is None or vb is None:
        return bool(sympy.simplify(a - b) == 0)
    real = abs(sympy.im(va)) <= FLOAT_REL * abs(va) and abs(sympy.im(vb)) <= FLOAT_REL * abs(vb)
    if decimal_places is not None and ref_places is None and real:
        if rb is not None and _terminates(rb):  # a terminating reference needs exact equality
            return (ra if ra is not None else _decimal_value(a)) == rb
        x, y = sympy.re(va), sympy.re(vb)
        return bool(
            abs(x - y) <= min(sympy.Rational(1, 10**decimal_places), abs(y) / 1000)
        ) or _relative_equal(va, vb)
    if ref_places is not None and decimal_places is None and real:
        if vb == 0:  # 0.00 has no significant digit to round to: only zero matches
            return _relative_equal(va, vb)
        return sympy.re(va).round(ref_places) == sympy.re(vb).round(ref_places)
    if _has_float(a, b):
        return _relative_equal(va, vb)
    zero = _difference_is_zero(a, b)
    return _relative_equal(va, vb) if zero is None else zero


def _terminates(r) -> bool:
    q = int(r.q)
    for f in (2, 5):
        while q % f == 0:
            q //= f
    return q == 1


def _sample_equal(a, b) -> bool:
    """Equal values at the sample points (see the module docstring); points where a side is undefined are skipped."""
    symbols = sorted(a.free_symbols | b.free_symbols, key=lambda s: s.name)
    floats = _has_float(a, b)
    checked = 0
    for k in range(len(_POINTS)):
        at = {
            s: sympy.Rational(_POINTS[(k + j) % len(_POINTS)]) + j * sympy.Rational(1, 7)
            for j, s in enumerate(symbols)
        }
        try:
            if floats:
                va, vb = _value(a, at), _value(b, at)
                same = None if va is None or vb is None else _relative_equal(va, vb)
            else:
                same = _difference_is_zero(a.xreplace(at), b.xreplace(at))
        except (TypeError, ValueError, ZeroDivisionError):
            continue
        if same is None:
            continue
        if not same:
            return False
        checked += 1
    return checked >= 2


def _is_set(x) -> bool:
    return isinstance(x, sympy.Set)


def expressions_equivalent(
    pred: str, ref: str, decimal_places: int | None = None, ref_places: int | None = None
) -> bool:
    """Symbolic equivalence of two normalised answers (see the module docstring)."""
    try:
        a, b = parse(pred), parse(ref)
    except Unsafe:
        return False
    except Exception:  # noqa: BLE001 - unparseable prediction: not equivalent
        return False
    if isinstance(a, str) or isinstance(b, str):
        return False
    if _is_set(a) or _is_set(b):
        return (
            _is_set(a)
            and _is_set(b)
            and bool(a == b or sympy.simplify(a.symmetric_difference(b)) == sympy.S.EmptySet)
        )
    a, b = (x.doit() if isinstance(x, sympy.matrices.expressions.MatrixExpr) else x for x in (a, b))  # A + B
    if isinstance(a, sympy.MatrixBase) or isinstance(b, sympy.MatrixBase):
        return (
            isinstance(a, sympy.MatrixBase)
            and isinstance(b, sympy.MatrixBase)
            and a.shape == b.shape
            and all(_expr_equal(x, y, None, None) for x, y in zip(a, b))
        )
    if isinstance(a, sympy.logic.boolalg.Boolean) or isinstance(b, sympy.logic.boolalg.Boolean):
        return bool(a == b)
    if not isinstance(a, sympy.Expr) or not isinstance(b, sympy.Expr):
        return bool(a == b)
    return _expr_equal(a, b, decimal_places, ref_places)


def _expr_equal(a, b, decimal_places, ref_places) -> bool:
    if a == b:
        return True
    if not a.free_symbols and not b.free_symbols:
        return _numbers_equal(a, b, decimal_places, ref_places)
    return _sample_equal(a, b)


def _as_solution_set(x):
    if _is_set(x):
        return x
    if isinstance(x, sympy.logic.boolalg.Boolean) and len(x.free_symbols) == 1:
        return x.as_set()
    return None


def relations_equivalent(pred: str, ref: str) -> bool:
    """A relation reference vs a relation or interval prediction with the same solution set."""
    try:
        a, b = parse(pred), parse(ref)
    except Exception:  # noqa: BLE001
        return False
    if isinstance(a, str) or isinstance(b, str):
        return False
    if a == b:
        return True
    if _is_set(b) and not _is_set(a):  # relation predicted for an interval reference: not accepted
        return False
    sa, sb = _as_solution_set(a), _as_solution_set(b)
    if sa is None or sb is None:
        return False
    if isinstance(b, sympy.logic.boolalg.Boolean) and isinstance(a, sympy.logic.boolalg.Boolean):
        if {s.name for s in a.free_symbols} != {s.name for s in b.free_symbols}:
            return False
    return bool(sa == sb)


def equations_equivalent(pred: str, ref: str) -> bool:
    """Two equations whose ``lhs - rhs`` differ by a nonzero constant factor."""
    try:
        a, b = parse(pred), parse(ref)
    except Exception:  # noqa: BLE001
        return False
    if not isinstance(a, sympy.Equality) or not isinstance(b, sympy.Equality):
        return False
    da, db = a.lhs - a.rhs, b.lhs - b.rhs
    if {s.name for s in da.free_symbols} != {s.name for s in db.free_symbols}:
        return False
    if not da.free_symbols:
        return False
    ratios = []
    symbols = sorted(da.free_symbols, key=lambda s: s.name)
    for k in range(len(_POINTS)):
        at = {
            s: sympy.Rational(_POINTS[(k + j) % len(_POINTS)]) + j * sympy.Rational(1, 7)
            for j, s in enumerate(symbols)
        }
        va, vb = _value(da, at), _value(db, at)
        if va is None or vb is None or _is_zero(vb):
            continue
        ratios.append(va / vb)
    if len(ratios) < 2 or _is_zero(ratios[0]):
        return False
    return all(abs(r - ratios[0]) <= 1e-10 * abs(ratios[0]) for r in ratios)


def warm_up() -> None:
    """Import and exercise the parser and the lazily imported sympy parts (solvers for ``as_set``,
    ``simplify``) once, so the first real task does not pay 100-500 ms for them."""
    for s in ("\\frac{1}{2}+x^2", "(1,2]", "x>3", "\\sqrt{2}"):
        try:
            parse(s)
        except Exception:  # noqa: BLE001
            pass
    for fn, a, b in (
        (relations_equivalent, "x>-1", "x<1"),
        (relations_equivalent, "[1,2]", "1\\leq|z|\\leq 2"),
        (equations_equivalent, "y=2x", "2y=4x"),
        (expressions_equivalent, "\\sec^2(y)", "\\tan^2(y)+1"),
    ):
        try:
            fn(a, b)
        except Exception:  # noqa: BLE001
            pass
