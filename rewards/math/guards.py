"""Caps checked on an answer string *before* anything evaluates it.

sympy evaluates eagerly in places (``Pow`` of integers, ``factorial``, printing), so
``9^{9^{9^9}}`` or ``10000!`` can take hours or all memory. These checks are cheap string scans;
an answer that trips one is never parsed and is compared by exact string only (then FAIL with
the reason). The worker deadline in :mod:`rewards.pool` is the second line of defence.
"""

from __future__ import annotations

import re

MAX_ANSWER_CHARS = 1000  # an extracted answer longer than this is not parsed
MAX_DIGITS = 400  # longest digit run a number may have
MAX_SCI_EXPONENT = 400  # |b| in a x 10^b
MAX_NESTING = 24  # bracket/brace depth
MAX_POWER_DEPTH = 2  # ^ inside an exponent inside an exponent: a power tower
MAX_EXPONENT = 1000  # a literal integer exponent larger than this (base not 0/1)
MAX_FACTORIAL = 200  # n! with n larger than this
MAX_OPERATORS = 200  # count of \frac, \sqrt, ^, ! etc.
MAX_BOUND = 999  # a \sum / \prod / \binom / floor with a number above this (or a power) is not evaluated

# Never evaluated at all: integrals, limits and special functions whose cost has no cheap bound
# (sympy tries to integrate / take limits / evaluate zeta symbolically, which can take minutes).
# An answer that contains one is compared by normalised string only. Final answers of this kind
# are rare; a hang costs a worker (a kill and a 1-3 s restart).
_NEVER = re.compile(r"\\(?:int|iint|iiint|oint|lim|zeta|Gamma|operatorname\{(?:Li|li|Ei|erf)\})(?![a-zA-Z])")
_BIG_OPS = re.compile(r"\\(?:sum|prod|binom|lfloor|lceil)(?![a-zA-Z])")
_BIG_NUMBER = re.compile(r"\d{4,}|\d\s*\^|\\infty")  # > MAX_BOUND, a power, or infinity

_DIGIT_RUN = re.compile(r"\d{" + str(MAX_DIGITS + 1) + ",}")
_FACTORIAL = re.compile(r"(\d+)\s*!")
_EXPONENT = re.compile(r"\^\s*\{?\s*\(?\s*(\d+)")
_OPS = re.compile(r"\\frac|\\sqrt|\^|!|\\sum|\\prod|\\int|\\binom")


def _max_depth(s: str) -> int:
    depth = best = 0
    for c in s:
        if c in "([{":
            depth += 1
            if depth > best:
                best = depth
        elif c in ")]}":
            depth -= 1
    return best


def _power_depth(s: str) -> int:
    """How many ``^`` are nested inside one another's exponents (``a^{b^{c}}`` = 2)."""
    best = 0
    stack: list[int] = []  # for each open brace: the power depth that applies inside it
    current = 0
    pending_power = False
    for c in s:
        if c == "^":
            current_power = current + 1
            best = max(best, current_power)
            pending_power = True
            continue
        if c == "{":
            stack.append(current)
            if pending_power:
                current += 1
            pending_power = False
            continue
        if c == "}":
            current = stack.pop() if stack else 0
        pending_power = False
    return best


def check(answer: str) -> str | None:
    """The reason ``answer`` must not be evaluated, or None when it is safe to parse."""
    if len(answer) > MAX_ANSWER_CHARS:
        return f"answer has {len(answer)} chars (cap {MAX_ANSWER_CHARS})"
    if _DIGIT_RUN.search(answer):
        return f"number with more than {MAX_DIGITS} digits"
    if _max_depth(answer) > MAX_NESTING:
        return f"nesting deeper than {MAX_NESTING}"
    if len(_OPS.findall(answer)) > MAX_OPERATORS:
        return f"more than {MAX_OPERATORS} operators"
    depth = _power_depth(answer)
    if depth > MAX_POWER_DEPTH or re.search(r"\^\s*\d+\s*\^", answer):
        return "power tower"
    if depth == MAX_POWER_DEPTH and not re.search(r"[a-zA-Z]", re.sub(r"\\[a-zA-Z]+", "", answer)):
        return "numeric power tower"
    for m in _EXPONENT.finditer(answer):
        if int(m.group(1)) > MAX_EXPONENT:
            return f"exponent {m.group(1)} > {MAX_EXPONENT}"
    for m in _FACTORIAL.finditer(answer):
        if int(m.group(1)) > MAX_FACTORIAL:
            return f"factorial of {m.group(1)} > {MAX_FACTORIAL}"
    if "!!" in answer or re.search(r"[)}]\s*!", answer) or "\\Gamma" in answer:
        return "factorial of an expression"
    if "\\uparrow" in answer:
        return "arrow notation"
    m = _NEVER.search(answer)
    if m:
        return f"{m.group()} is never evaluated"
    if _BIG_OPS.search(answer) and _BIG_NUMBER.search(answer):
        return f"sum/product/binomial/floor with a bound over {MAX_BOUND} or a power"
    return None
