"""Linear inequalities in one variable, compared without sympy (microseconds instead of ~100 ms).

Most inequality answers are linear in one variable: ``x > 3``, ``-2x + 4 \\leq 0``, or the
interval that solves them, ``(3, \\infty)``. Such a relation is a half-line, fully described by
(variable, root, direction, strict). :func:`compare_relation` reads both sides that way with the
float evaluator of :mod:`rewards.math.fastexpr` (linearity checked at four points) and returns
True/False; anything else (two relation signs, nonlinear, several variables, unions) returns
None and goes to sympy as before. The asymmetry of :mod:`rewards.math.symbolic` is kept: only a
*reference* relation is handled here (a relation predicted for an interval reference stays 0).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rewards.math.fastexpr import REL_TOL, compile_expr, constant
from rewards.math.normalize import brackets, split_top

_XS = (0.37, 1.91, -2.3, 3.7)
_TOL = 1e-9
_REL_RE = re.compile(r"\\leq|\\geq|\\neq|<|>|\\lt|\\gt")
_GREATER = {">": True, "\\gt": True, "\\geq": False}  # op -> strict
_LESS = {"<": True, "\\lt": True, "\\leq": False}
_INF = re.compile(r"^\+?\\infty$")
_NEG_INF = re.compile(r"^-\\infty$")


@dataclass(frozen=True)
class HalfLine:
    """``x > root`` (``upward``) or ``x < root``; ``strict`` False for >= / <=. ``var`` None for an interval."""

    var: str | None
    root: float
    upward: bool
    strict: bool


def _linear(expr: str) -> tuple[str, float, float] | None:
    """(variable, slope, root) when ``expr`` is a real linear function of one variable.

    Tolerances are relative to the values (no absolute floor): ``x - 10^{-12}`` is not ``x``. The
    root is ``-f(0)/slope`` when ``f(0)`` is defined (exact for ``3x \\geq 0``), so tiny roots keep
    their value; the float evaluator defers (None) where doubles could hide a difference.
    """
    got = compile_expr(expr)
    if got is None or len(got[1]) != 1:
        return None
    node, names = got
    name = next(iter(names))
    try:
        vals = [complex(node({name: complex(x)})) for x in _XS]
    except (ArithmeticError, ValueError, TypeError):  # ArithmeticError: undefined, overflow or delicate
        return None
    if any(abs(v.imag) > _TOL * abs(v) for v in vals):
        return None
    ys = [v.real for v in vals]
    scale = max(abs(y) for y in ys)
    rise = ys[1] - ys[0]
    if abs(rise) <= _TOL * scale:  # constant: not a relation in x
        return None
    slope = rise / (_XS[1] - _XS[0])
    for x, y in zip(_XS[2:], ys[2:]):
        if abs(ys[0] + slope * (x - _XS[0]) - y) > _TOL * scale:
            return None
    try:
        at0 = complex(node({name: 0j}))
    except (ArithmeticError, ValueError, TypeError):
        at0 = None
    root = (
        -at0.real / slope if at0 is not None and abs(at0.imag) <= _TOL * abs(at0) else _XS[0] - ys[0] / slope
    )
    return name, slope, root


def _same_root(a: float, b: float) -> bool:
    """Relative comparison of two roots (0 equals only 0), as tight as the evaluator's values."""
    return abs(a - b) <= REL_TOL * max(abs(a), abs(b))


def relation_half_line(s: str) -> HalfLine | None:
    """``-2x + 4 \\leq 0`` -> HalfLine("x", 2.0, upward=True, strict=False); None if not linear in one variable."""
    m = list(_REL_RE.finditer(s))
    if len(m) != 1:
        return None
    op, a, b = m[0].group(), s[: m[0].start()].strip(), s[m[0].end() :].strip()
    if not a or not b or op not in _GREATER and op not in _LESS:
        return None
    positive, strict = (f"({a})-({b})", _GREATER[op]) if op in _GREATER else (f"({b})-({a})", _LESS[op])
    lin = _linear(positive)  # the relation says: positive > 0 (or >= 0)
    if lin is None:
        return None
    name, slope, root = lin
    return HalfLine(name, root, slope > 0, strict)


def interval_half_line(s: str) -> HalfLine | None:
    """``(3, \\infty)`` / ``(-\\infty, 2]`` -> HalfLine; None for bounded intervals or anything else."""
    b = brackets(s)
    if b is None or b[0] not in "([" or b[2] not in ")]":
        return None
    ends = split_top(b[1], ",")
    if len(ends) != 2:
        return None
    lo, hi = ends
    if _INF.match(hi) and not _NEG_INF.match(lo):
        v = constant(lo)
        return None if v is None or abs(v.imag) > _TOL * abs(v) else HalfLine(None, v.real, True, b[0] == "(")
    if _NEG_INF.match(lo) and not _INF.match(hi):
        v = constant(hi)
        return (
            None if v is None or abs(v.imag) > _TOL * abs(v) else HalfLine(None, v.real, False, b[2] == ")")
        )
    return None


def compare_relation(pred: str, ref: str) -> bool | None:
    """A linear one-variable reference relation vs a relation or a half-line interval prediction."""
    r = relation_half_line(ref)
    if r is None:
        return None
    p = relation_half_line(pred) if _REL_RE.search(pred) else interval_half_line(pred)
    if p is None:
        return None
    if p.var is not None and p.var != r.var:
        return False
    return _same_root(p.root, r.root) and p.upward == r.upward and p.strict == r.strict
