"""A tiny LaTeX arithmetic parser evaluated with complex floats: the symbolic fast path.

Most answers that the exact reader cannot settle are ordinary arithmetic: ``2\\sqrt{2}``,
``\\frac{3\\pi}{4}``, ``(x+1)(x+2)``. Sending each through the ANTLR grammar and sympy costs
5-40 ms; evaluating them with a 60-line recursive-descent parser costs microseconds. Two answers
are *equal* when they agree to 1e-11 relative at 3 fixed sample points (each variable its own
value; constants need just one point) -- probabilistic identity testing -- and *different* when
they disagree at any point where both are defined (values above 1e9 are left to sympy:
doubles cannot separate n from n+1 there). Anything outside the grammar (functions other
than sqrt/sin/cos/tan/ln/log/exp, subscripts, sets, relations ...) returns None and goes to sympy.

Grammar: numbers, single-letter variables, ``e``, ``i``, ``\\pi``, ``+ - * / ^``, ``\\cdot``,
``\\times``, ``\\div``, implicit products, ``( )``, ``{ }``, ``\\frac{a}{b}``, ``\\sqrt[n]{a}``.
Callers must run :func:`rewards.math.guards.check` first (it bounds exponents and nesting).
"""

from __future__ import annotations

import cmath
import re
from collections.abc import Callable

_TOKEN = re.compile(r"\s*(\d+\.\d*|\.\d+|\d+|\\[a-zA-Z]+|[a-zA-Z]|[-+*/^(){}\[\]])")
_FUNCS: dict[str, Callable[[complex], complex]] = {
    "\\sqrt": cmath.sqrt, "\\sin": cmath.sin, "\\cos": cmath.cos, "\\tan": cmath.tan,
    "\\ln": cmath.log, "\\log": cmath.log, "\\exp": cmath.exp,
}
_POINTS = [0.7123 + 0.1301j, -1.3371 + 0.2213j, 2.1719 - 0.4183j]
Node = Callable[[dict], complex]


class _Unsupported(Exception):
    pass


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
            node = (lambda a, b: lambda v: a(v) + b(v))(node, rhs) if op == "+" else (lambda a, b: lambda v: a(v) - b(v))(node, rhs)
        return node

    def term(self) -> Node:
        node = self.unary()
        while True:
            tok = self.peek()
            if tok in ("*", "\\cdot", "\\times"):
                self.take()
                rhs = self.unary()
                node = (lambda a, b: lambda v: a(v) * b(v))(node, rhs)
            elif tok in ("/", "\\div"):
                self.take()
                rhs = self.unary()
                node = (lambda a, b: lambda v: a(v) / b(v))(node, rhs)
            elif tok is not None and (tok[0].isalnum() or tok in ("(", "{", "\\frac", "\\pi") or tok in _FUNCS or tok[0] == "."):
                rhs = self.power()  # implicit product: 2x, 2\sqrt{2}, (x+1)(x+2)
                node = (lambda a, b: lambda v: a(v) * b(v))(node, rhs)
            else:
                return node

    def unary(self) -> Node:
        if self.peek() == "-":
            self.take()
            inner = self.unary()
            return lambda v: -inner(v)
        if self.peek() == "+":
            self.take()
        return self.power()

    def power(self) -> Node:
        base = self.atom()
        if self.peek() == "^":
            self.take()
            exp = self.group() if self.peek() in ("{", "(") else self.atom()
            return lambda v: base(v) ** exp(v)
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
            val = complex(float(tok))
            return lambda v: val
        if tok == "\\pi":
            return lambda v: cmath.pi
        if tok == "\\frac":
            num, den = self.group(), self.group()
            return lambda v: num(v) / den(v)
        if tok == "\\sqrt" and self.peek() == "[":
            self.take("[")
            n = self.expr()
            self.take("]")
            arg = self.group()
            return lambda v: arg(v) ** (1 / n(v))
        if tok in _FUNCS:
            fn = _FUNCS[tok]
            arg = self.group() if self.peek() in ("{", "(") else self.power()
            return lambda v: fn(arg(v))
        if len(tok) == 1 and tok.isalpha():
            if tok == "e":
                return lambda v: cmath.e
            if tok == "i":
                return lambda v: 1j
            self.vars.add(tok)
            return lambda v: v[tok]
        raise _Unsupported(tok)


def compile_expr(s: str) -> tuple[Node, set[str]] | None:
    """(evaluator, variable names) for ``s``, or None when ``s`` is outside the grammar."""
    try:
        p = _Parser(_tokens(s))
        node = p.expr()
        if p.peek() is not None:
            return None
        return node, p.vars
    except (_Unsupported, RecursionError, KeyError):
        return None


_BIG = 1e9  # beyond this, doubles cannot tell n from n+1 reliably: leave it to sympy


def _close(a: complex, b: complex) -> bool:
    return abs(a - b) <= 1e-11 * max(abs(a), abs(b), 1e-12)


def values(s: str, names: list[str]) -> list[complex | None] | None:
    """Values of ``s`` at the sample points (None where undefined), or None if unparseable."""
    got = compile_expr(s)
    if got is None:
        return None
    node, _ = got
    out: list[complex | None] = []
    for k, point in enumerate(_POINTS):
        env = {name: point + 0.37 * j * (k + 1) for j, name in enumerate(names)}
        try:
            out.append(complex(node(env)))
        except (ZeroDivisionError, OverflowError, ValueError, TypeError):
            out.append(None)
    return out


def constant(s: str) -> complex | None:
    """Value of a variable-free expression, or None."""
    got = compile_expr(s)
    if got is None or got[1]:
        return None
    try:
        v = complex(got[0]({}))
    except (ZeroDivisionError, OverflowError, ValueError, TypeError):
        return None
    return v if cmath.isfinite(v) else None


def variables(s: str) -> set[str] | None:
    got = compile_expr(s)
    return None if got is None else got[1]


def numeric_equal(pred: str, ref: str) -> bool | None:
    """True/False by evaluation at the sample points; None when either side is outside the grammar."""
    pv, rv = variables(pred), variables(ref)
    if pv is None or rv is None:
        return None
    names = sorted(pv | rv)
    a, b = values(pred, names), values(ref, names)
    if a is None or b is None:
        return None
    points = [(x, y) for x, y in zip(a, b) if x is not None and y is not None and cmath.isfinite(x) and cmath.isfinite(y)]
    if not names:
        points = points[:1]
    if not points or any(max(abs(x), abs(y)) > _BIG for x, y in points):
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
    if any(max(abs(x), abs(y)) > _BIG for x, y in zip(xa, xb)):
        return None
    if any((abs(x) < 1e-12) != (abs(y) < 1e-12) for x, y in zip(xa, xb)):
        return False
    ratios = [x / y for x, y in zip(xa, xb) if abs(y) >= 1e-12]
    if len(ratios) < 2:
        return None
    return ratios[0] if all(_close(r, ratios[0]) for r in ratios) else False
