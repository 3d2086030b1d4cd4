"""A tiny LaTeX arithmetic parser, evaluated exactly or with complex floats: the symbolic fast path.

Most answers that the exact reader cannot settle are ordinary arithmetic: ``2\\sqrt{2}``,
``\\frac{3\\pi}{4}``, ``(x+1)(x+2)``. Sending each through the ANTLR grammar and sympy costs
5-40 ms; evaluating them with a 60-line recursive-descent parser costs microseconds.

How two answers are compared (:func:`numeric_equal`), exact where it can be, relative where it must:

* **exact**: two constants built from rational numbers with ``+ - * /`` and integer powers are
  evaluated as :class:`fractions.Fraction` and compared exactly (``10^{20}+1`` != ``10^{20}``,
  ``2^{-40}`` != ``2^{-41}``), at any magnitude the guards allow;
* **relative** (anything irrational, or with variables): complex doubles at 3 fixed sample points
  (each variable its own value; constants need one point) -- probabilistic identity testing. Equal
  when every point agrees to ``REL_TOL`` (1e-12) *relative* to the larger value; there is no
  absolute floor, so two tiny values are never equal just because both are small. A value is only
  trusted when the doubles can represent it: an intermediate result outside ``[1e-4, 1e9]`` in
  magnitude (but not exactly 0; ``\\cos(10^{-5})`` is within 1e-10 of 1), a sum whose smaller term
  is under 1e-4 of the larger (a hidden perturbation) or that cancels to under 1e-4 of its terms
  (lost digits), or a literal with more
  than 12 significant digits makes the answer *delicate*: None, and sympy decides with exact
  numbers and arbitrary exponents (:mod:`rewards.math.symbolic`). Signs are compared like any
  other part of the value (``-x`` vs ``x`` differ relatively by 2). What remains: two irrational
  answers whose values differ by less than 1e-12 relative *without* any of those signs (say
  ``\\sqrt2`` times a product of near-1 rationals that multiply to 1 - 1e-14) are called equal.

Anything outside the grammar (functions other than sqrt/sin/cos/tan/ln/log/exp, subscripts,
sets, relations ...) returns None and goes to sympy.

Grammar: numbers, single-letter variables, ``e``, ``i``, ``\\pi``, ``+ - * / ^``, ``\\cdot``,
``\\times``, ``\\div``, implicit products, ``( )``, ``{ }``, ``\\frac{a}{b}``, ``\\sqrt[n]{a}``.
Callers must run :func:`rewards.math.guards.check` first (it bounds exponents and nesting).
"""

from __future__ import annotations

import cmath
import functools
import re
from collections.abc import Callable
from fractions import Fraction

_TOKEN = re.compile(r"\s*(\d+\.\d*|\.\d+|\d+|\\[a-zA-Z]+|[a-zA-Z]|[-+*/^(){}\[\]])")
_FUNCS: dict[str, Callable[[complex], complex]] = {
    "\\sqrt": cmath.sqrt,
    "\\sin": cmath.sin,
    "\\cos": cmath.cos,
    "\\tan": cmath.tan,
    "\\ln": cmath.log,
    "\\log": cmath.log,
    "\\exp": cmath.exp,
}
_POINTS = [0.7123 + 0.1301j, -1.3371 + 0.2213j, 2.1719 - 0.4183j]
Node = Callable[[dict], complex]

REL_TOL = 1e-12  # two doubles closer than this, relative to the larger, are the same value
_LOW, _HIGH = 1e-4, 1e9  # magnitudes doubles carry faithfully here (beyond: "delicate", sympy decides)
_MAX_SIG_DIGITS = 12  # a literal with more significant digits is delicate (a double rounds it)
_EXACT = "\x00exact"  # env key: evaluate with Fractions (raises _Inexact on anything irrational)
_MAX_EXACT_BITS = 1 << 16  # an exact power larger than this many bits is left to sympy


class _Unsupported(Exception):
    pass


class _Inexact(Exception):
    """Exact evaluation met something irrational (or too big): use the float path."""


class _Delicate(ArithmeticError):
    """A double cannot be trusted here (see the module docstring): defer to sympy."""


def _checked(x: complex, *operands: complex) -> complex:
    """``x`` when its magnitude is one doubles carry faithfully, else :class:`_Delicate`. Exactly 0 is
    kept only when an operand was 0 (``0 \\cdot \\pi``), not when it underflowed (``e^{-1000}``)."""
    if x != 0:
        m = abs(x)
        if not _LOW <= m <= _HIGH:
            raise _Delicate(m)
    elif all(o != 0 for o in operands):
        raise _Delicate(0)
    return x


def _add(a: Node, b: Node, sign: int) -> Node:
    def node(v: dict) -> complex:
        x, y = a(v), b(v)
        if _EXACT in v:
            return x + y if sign > 0 else x - y
        out = x + y if sign > 0 else x - y
        big, small = (abs(x), abs(y)) if abs(x) >= abs(y) else (abs(y), abs(x))
        if small and (small < _LOW * big or abs(out) < _LOW * big):  # hidden perturbation / lost digits
            raise _Delicate(small)
        return out

    return node


def _mul(a: Node, b: Node) -> Node:
    def node(v: dict) -> complex:
        x, y = a(v), b(v)
        return x * y if _EXACT in v else _checked(x * y, x, y)

    return node


def _div(a: Node, b: Node) -> Node:
    def node(v: dict) -> complex:
        x, y = a(v), b(v)
        return x / y if _EXACT in v else _checked(x / y, x)

    return node


def _pow(base: Node, exp: Node) -> Node:
    def node(v: dict) -> complex:
        b, e = base(v), exp(v)
        if _EXACT in v:
            if not (isinstance(e, Fraction) and e.denominator == 1):
                raise _Inexact("non-integer power")
            if (
                b not in (0, 1, -1)
                and abs(e) * max(b.numerator.bit_length(), b.denominator.bit_length()) > _MAX_EXACT_BITS
            ):
                raise _Inexact("power too large")
            return b**e
        return _checked(b**e, b)

    return node


def _neg(a: Node) -> Node:
    return lambda v: -a(v)


def _func(fn: Callable[[complex], complex], arg: Node) -> Node:
    def node(v: dict) -> complex:
        if _EXACT in v:
            raise _Inexact("function")
        x = arg(v)
        return _checked(fn(x), x)

    return node


def _irrational(value: complex) -> Node:
    def node(v: dict) -> complex:
        if _EXACT in v:
            raise _Inexact("irrational constant")
        return value

    return node


def _literal(tok: str) -> Node:
    digits = tok.replace(".", "").lstrip("0")
    exact = Fraction(tok)
    val = complex(float(tok))
    delicate = len(digits.rstrip("0")) > _MAX_SIG_DIGITS or (exact != 0 and not _LOW <= abs(val) <= _HIGH)

    def node(v: dict) -> complex:
        if _EXACT in v:
            return exact
        if delicate:
            raise _Delicate(tok)
        return val

    return node


def _tokens(s: str) -> list[str]:
    out, pos = [], 0
    s = s.strip()
    while pos < len(s):
        m = _TOKEN.match(s, pos)
        if not m:
            raise _Unsupported(s[pos:])
        out.append(m.group(1))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.t, self.i = tokens, 0
        self.vars: set[str] = set()

    def peek(self) -> str | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise _Unsupported(f"expected {expected}")
        self.i += 1
        return tok

    def expr(self) -> Node:
        node = self.term()
        while self.peek() in ("+", "-"):
            op, rhs = self.take(), self.term()
            node = _add(node, rhs, 1 if op == "+" else -1)
        return node

    def term(self) -> Node:
        node = self.unary()
        while True:
            tok = self.peek()
            if tok in ("*", "\\cdot", "\\times"):
                self.take()
                node = _mul(node, self.unary())
            elif tok in ("/", "\\div"):
                self.take()
                node = _div(node, self.unary())
            elif tok is not None and (
                tok[0].isalnum() or tok in ("(", "{", "\\frac", "\\pi") or tok in _FUNCS or tok[0] == "."
            ):
                node = _mul(node, self.power())  # implicit product: 2x, 2\sqrt{2}, (x+1)(x+2)
            else:
                return node

    def unary(self) -> Node:
        if self.peek() == "-":
            self.take()
            return _neg(self.unary())
        if self.peek() == "+":
            self.take()
        return self.power()

    def power(self) -> Node:
        base = self.atom()
        if self.peek() == "^":
            self.take()
            exp = self.group() if self.peek() in ("{", "(") else self.atom()
            return _pow(base, exp)
        return base

    def group(self) -> Node:
        open_ = self.take()
        close = {"{": "}", "(": ")", "[": "]"}[open_]
        node = self.expr()
        self.take(close)
        return node

    def atom(self) -> Node:
        tok = self.peek()
        if tok is None:
            raise _Unsupported("end of input")
        if tok in ("{", "("):
            return self.group()
        self.take()
        if tok[0].isdigit() or tok[0] == ".":
            return _literal(tok)
        if tok == "\\pi":
            return _irrational(cmath.pi)
        if tok == "\\frac":
            num, den = self.group(), self.group()
            return _div(num, den)
        if tok == "\\sqrt" and self.peek() == "[":
            self.take("[")
            n = self.expr()
            self.take("]")
            arg = self.group()
            return _root(arg, n)
        if tok in _FUNCS:
            fn = _FUNCS[tok]
            arg = self.group() if self.peek() in ("{", "(") else self.power()
            return _func(fn, arg)
        if len(tok) == 1 and tok.isalpha():
            if tok == "e":
                return _irrational(cmath.e)
            if tok == "i":
                return _irrational(1j)
            self.vars.add(tok)
            return lambda v: v[tok]
        raise _Unsupported(tok)


def _root(arg: Node, n: Node) -> Node:
    def node(v: dict) -> complex:
        if _EXACT in v:
            raise _Inexact("root")
        x = arg(v)
        return _checked(x ** (1 / n(v)), x)

    return node


@functools.lru_cache(maxsize=1 << 12)
def compile_expr(s: str) -> tuple[Node, frozenset[str]] | None:
    """(evaluator, variable names) for ``s``, or None when ``s`` is outside the grammar (cached:
    one comparison asks for the variables, the exact value and the float values of each side)."""
    try:
        p = _Parser(_tokens(s))
        node = p.expr()
        if p.peek() is not None:
            return None
        return node, frozenset(p.vars)
    except (_Unsupported, RecursionError, KeyError, ValueError):
        return None


def _close(a: complex, b: complex) -> bool:
    """Relative closeness: no absolute floor (0 equals only 0)."""
    return abs(a - b) <= REL_TOL * max(abs(a), abs(b))


_ERRORS = (ZeroDivisionError, OverflowError, ValueError, TypeError)  # _Delicate is an ArithmeticError


def values(s: str, names: list[str]) -> list[complex | None] | None:
    """Values of ``s`` at the sample points (None where undefined or delicate), or None if unparseable."""
    got = compile_expr(s)
    if got is None:
        return None
    node, _ = got
    out: list[complex | None] = []
    for k, point in enumerate(_POINTS):
        env = {name: point + 0.37 * j * (k + 1) for j, name in enumerate(names)}
        try:
            out.append(complex(node(env)))
        except (*_ERRORS, ArithmeticError):
            out.append(None)
    return out


def exact(s: str) -> Fraction | None:
    """Exact value of a variable-free rational expression (``2^{-40}``, ``\\frac{1}{3}+10^{20}``), else None."""
    got = compile_expr(s)
    if got is None or got[1]:
        return None
    try:
        v = got[0]({_EXACT: True})
    except (_Inexact, ZeroDivisionError, OverflowError, ValueError, TypeError, RecursionError):
        return None
    return v if isinstance(v, Fraction) else None


def constant(s: str) -> complex | None:
    """Value of a variable-free expression as a double, or None (outside the grammar, undefined, delicate)."""
    got = compile_expr(s)
    if got is None or got[1]:
        return None
    try:
        v = complex(got[0]({}))
    except (*_ERRORS, ArithmeticError):
        return None
    return v if cmath.isfinite(v) else None


def real_value(s: str) -> Fraction | float | None:
    """A variable-free real expression's value: exact (Fraction) when rational, else a trusted double, else None."""
    ev = exact(s)
    if ev is not None:
        return ev
    v = constant(s)
    return None if v is None or abs(v.imag) > 1e-12 * abs(v) else v.real


def variables(s: str) -> frozenset[str] | None:
    got = compile_expr(s)
    return None if got is None else got[1]


def numeric_equal(pred: str, ref: str) -> bool | None:
    """True/False exactly (rational constants) or by evaluation at the sample points; None when
    either side is outside the grammar or a double cannot be trusted (see the module docstring)."""
    pv, rv = variables(pred), variables(ref)
    if pv is None or rv is None:
        return None
    names = sorted(pv | rv)
    if not names:
        ea, eb = exact(pred), exact(ref)
        if ea is not None and eb is not None:
            return ea == eb
    a, b = values(pred, names), values(ref, names)
    if a is None or b is None:
        return None
    if not names and (a[0] is None or b[0] is None):
        return None  # undefined or delicate: sympy decides
    points = [
        (x, y)
        for x, y in zip(a, b)
        if x is not None and y is not None and cmath.isfinite(x) and cmath.isfinite(y)
    ]
    if not names:
        points = points[:1]
    if not points:
        return None
    if any(not _close(x, y) for x, y in points):
        return False
    return True if (len(points) >= 2 or not names) else None


def constant_ratio(a: str, b: str) -> complex | bool | None:
    """``a / b`` when it is one nonzero constant at every sample point (``2x+2y-2`` vs ``x+y-1``: 2);
    False when the ratio varies or one side vanishes where the other does not; None when unknown.

    Used for equations (``lhs - rhs`` proportional) and linear relations (positive ratio).
    """
    va, vb = variables(a), variables(b)
    if va is None or vb is None or va != vb or not va:
        return None
    names = sorted(va)
    xa, xb = values(a, names), values(b, names)
    if xa is None or xb is None or any(v is None or not cmath.isfinite(v) for v in xa + xb):
        return None
    if any((x == 0) != (y == 0) for x, y in zip(xa, xb)):
        return False
    ratios = [x / y for x, y in zip(xa, xb) if y != 0]
    if len(ratios) < 2:
        return None
    return ratios[0] if all(_close(r, ratios[0]) for r in ratios) else False
