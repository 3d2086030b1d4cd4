"""Is a predicted answer equivalent to the reference? String structure first, sympy last.

``equivalent(pred, ref, symbolic=False)`` returns True / False, or None when only a symbolic
check can tell (the caller then re-runs it with ``symbolic=True`` in a pool worker). The
*reference decides the class*: a reference list makes the prediction a list, a reference
integer makes ``1,000`` a thousands separator, a reference letter makes it multiple choice.

Rules, in order (each documented where it is implemented):

* exact string after :func:`normalize` -> equal;
* multiple choice: reference ``A``..``J`` (optionally ``(B)``, ``\\text{(B)}``): the prediction's
  leading letter must be the same;
* ``\\cup`` unions: same number of parts, matched in any order;
* matrices/vectors: same shape, cell by cell; a one-row or one-column matrix equals a tuple;
* brackets: ``\\{..\\}`` sets and bare lists are unordered (multiset match); ``(..)``, ``[..]``,
  ``(..]``, ``[..)`` keep order and the bracket kinds must be the same (so ``[1,2)`` != ``(1,2]``);
  a bare list may stand for a reference tuple of 3+ elements;
* ``x = 3`` vs ``3``: a single-variable left-hand side is dropped; two equations compare side
  by side, or symbolically as ``lhs - rhs`` up to a constant factor;
* percentages: ``X\\%`` equals ``X`` and ``X/100``; degrees (``^\\circ``) are dropped;
* numbers: exact (Fraction) equality. **Decimal tolerance**: a decimal prediction with d
  places matches a reference that is not a terminating decimal (``1/3``, ``\\sqrt 2``) when it is
  within one unit of its last place *and* within relative 1e-3 (so ``0.333`` = 1/3, ``0.3`` is
  not). A decimal reference with d places matches an irrational prediction that rounds to it;
  integer and terminating-decimal references need exact equality (``0.05`` != ``5``).
* words (``\\text{Monday}``): case-insensitive equality;
* otherwise (symbolic only): sympy, see :mod:`rewards.math.symbolic`.
"""

from __future__ import annotations

import re
from fractions import Fraction

from rewards.math.fastexpr import constant, numeric_equal
from rewards.math.normalize import Norm, Number, brackets, matrix_rows, normalize, read_number, split_top

_CHOICE_RE = re.compile(r"^\(?([A-J])\)?$")
_PRED_CHOICE_RE = re.compile(r"^\(?([A-J])\)?(?:[\s:.)]|$)")
_VAR_RE = re.compile(r"^(?:[a-zA-Z](?:_\{?\w+\}?)?|\\[a-zA-Z]+)$")
_REL_RE = re.compile(r"\\leq|\\geq|\\neq|<|>|\\lt|\\gt")
_WORD_RE = re.compile(r"^[A-Za-z][A-Za-z '\-]*$")


def _num_match(p: Number, r: Number) -> bool:
    """Exact, except the documented decimal tolerance for a non-terminating reference."""
    if p.value == r.value:
        return True
    if p.places is not None and r.places is None and not _terminates(r.value):
        return _close_decimal(p.value, p.places, r.value)
    return False


def _terminates(v: Fraction) -> bool:
    d = v.denominator
    for f in (2, 5):
        while d % f == 0:
            d //= f
    return d == 1


def _close_decimal(p: Fraction, places: int, r: float | Fraction) -> bool:
    diff = abs(Fraction(p) - Fraction(r))
    return places >= 1 and diff <= Fraction(1, 10**places) and diff <= abs(Fraction(r)) / 1000


def lhs_dropped(s: str) -> str:
    """``x=3`` -> ``3``; ``a=b=5`` -> ``5`` when the left sides are variables; else unchanged."""
    parts = split_top(s, "=")
    if len(parts) >= 2 and all(_VAR_RE.match(p) for p in parts[:-1]) and parts[-1]:
        return parts[-1]
    return s


def _all_or_none(results: list[bool | None]) -> bool | None:
    if any(r is False for r in results):
        return False
    if all(r is True for r in results):
        return True
    return None


def _match_unordered(ps: list[str], rs: list[str], symbolic: bool) -> bool | None:
    """Multiset match: every reference element used once. None if undecidable without sympy."""
    if len(ps) != len(rs):
        return False
    unknown = False
    used = [False] * len(rs)
    for p in ps:
        found = False
        for j, r in enumerate(rs):
            if used[j]:
                continue
            eq = equivalent(p, r, symbolic=symbolic)
            if eq:
                used[j] = found = True
                break
            if eq is None:
                unknown = True
        if not found:
            return None if unknown else False
    return True


def _match_ordered(ps: list[str], rs: list[str], symbolic: bool) -> bool | None:
    if len(ps) != len(rs):
        return False
    return _all_or_none([equivalent(p, r, symbolic=symbolic) for p, r in zip(ps, rs)])


def _compare_percent(p: Norm, r: Norm) -> bool | None:
    """``50\\%`` vs ``50`` or ``0.5``; ``0.5`` vs reference ``50\\%``."""
    pn, rn = read_number(p.text), read_number(r.text)
    if pn is None or rn is None:
        return None
    if p.percent and not r.percent:
        return _num_match(pn, rn) or pn.value / 100 == rn.value
    if r.percent and not p.percent:
        return _num_match(pn, rn) or pn.value == rn.value / 100
    return _num_match(pn, rn)


def _structural(p: str, r: str, symbolic: bool) -> bool | None | str:
    """Compare by structure; returns "skip" when neither side is structured."""
    if "\\cup" in r or "\\cup" in p:
        rp, pp = split_top(r, "\\cup"), split_top(p, "\\cup")
        if len(rp) > 1 or len(pp) > 1:
            return _match_unordered(pp, rp, symbolic)
    rm, pm = matrix_rows(r), matrix_rows(p)
    if rm is not None or pm is not None:
        return _compare_matrix(pm, rm, p, r, symbolic)
    rb, pb = brackets(r), brackets(p)
    r_items = split_top(rb[1], ",") if rb else split_top(r, ",")
    p_items = split_top(pb[1], ",") if pb else split_top(p, ",")
    r_is_seq = rb is not None and (len(r_items) > 1 or rb[0] == "\\{")
    p_is_seq = pb is not None and (len(p_items) > 1 or pb[0] == "\\{")
    if not r_is_seq and len(r_items) > 1:  # bare reference list: unordered
        if p_is_seq and pb[0] != "\\{":
            return False
        return _match_unordered(p_items, r_items, symbolic)
    if r_is_seq:
        if rb[0] == "\\{":  # set
            if p_is_seq and pb[0] != "\\{":
                return False
            return _match_unordered(list(dict.fromkeys(p_items)), list(dict.fromkeys(r_items)), symbolic)
        if p_is_seq:
            if (pb[0], pb[2]) != (rb[0], rb[2]):
                return False
            return _match_ordered(p_items, r_items, symbolic)
        if pb is None and len(p_items) == len(r_items) >= 3 and rb[0] == "(":
            return _match_ordered(p_items, r_items, symbolic)
        return False
    if p_is_seq or len(p_items) > 1:  # reference is a single value, prediction a list
        rn = read_number(r)
        if rn is not None and read_number(p) is not None:  # 1,000 thousands separator
            return None
        return False
    return "skip"


def _compare_matrix(pm, rm, p: str, r: str, symbolic: bool) -> bool | None:
    def as_rows(s: str, m):
        if m is not None:
            return m
        b = brackets(s)
        if b and b[0] in "([":
            return [[x] for x in split_top(b[1], ",")]
        return None

    pr, rr = as_rows(p, pm), as_rows(r, rm)
    if pr is None or rr is None:
        return False
    if len(pr) == 1 and len(rr) > 1 and all(len(x) == 1 for x in rr):  # row vector vs column vector
        pr = [[x] for x in pr[0]]
    if len(rr) == 1 and len(pr) > 1 and all(len(x) == 1 for x in pr):
        rr = [[x] for x in rr[0]]
    if [len(x) for x in pr] != [len(x) for x in rr]:
        return False
    return _match_ordered([c for row in pr for c in row], [c for row in rr for c in row], symbolic)


def _compare_equations(p: str, r: str, symbolic: bool) -> bool | None | str:
    rp, pp = split_top(r, "="), split_top(p, "=")
    if len(rp) == 1 and len(pp) == 1:
        return "skip"
    if len(rp) == 2 and len(pp) == 2:
        if rp[0] == pp[0]:
            return equivalent(pp[1], rp[1], symbolic=symbolic)
        if rp[0] == pp[1] and rp[1] == pp[0]:
            return True
        if not symbolic:
            return None
        from rewards.math.symbolic import equations_equivalent

        return equations_equivalent(p, r)
    if len(rp) == 2 and len(pp) == 1 and _VAR_RE.match(rp[0]):
        return equivalent(p, rp[1], symbolic=symbolic)
    return False if len(rp) == 1 and len(pp) > 1 else None


def _flip_relation(s: str) -> str:
    swap = {"<": ">", ">": "<", "\\leq": "\\geq", "\\geq": "\\leq"}
    m = list(_REL_RE.finditer(s))
    if len(m) != 1 or m[0].group() not in swap:
        return s
    a, b = s[: m[0].start()], s[m[0].end() :]
    return f"{b}{swap[m[0].group()]}{a}"


def equivalent(pred: str, ref: str, *, symbolic: bool = False) -> bool | None:
    """True/False, or None when only sympy can decide and ``symbolic`` is False."""
    p, r = normalize(pred), normalize(ref)
    if p.text == r.text and p.percent == r.percent:
        return True
    if not p.text or not r.text:
        return False
    if p.percent or r.percent:
        got = _compare_percent(p, r)
        if got is not None:
            return got
    pt, rt = p.text, r.text
    choice = _CHOICE_RE.match(rt)
    if choice:
        pc = _PRED_CHOICE_RE.match(pt)
        return bool(pc) and pc.group(1) == choice.group(1)
    pt_value = lhs_dropped(pt) if "=" not in rt else pt
    if pt_value != pt and pt_value == rt:
        return True
    pt = pt_value
    if _REL_RE.search(rt) or _REL_RE.search(pt):
        if _flip_relation(pt) == rt:
            return True
        if not symbolic:
            return None
        from rewards.math.symbolic import relations_equivalent

        return relations_equivalent(pt, rt)
    eq = _compare_equations(pt, rt, symbolic)
    if eq != "skip":
        return eq
    got = _structural(pt, rt, symbolic)
    if got != "skip":
        if got is None and read_number(rt) is not None:  # "1,000" against an integer
            pn = read_number(pt)
            return None if pn is None else _num_match(pn, read_number(rt))
        return got
    pn, rn = read_number(pt, thousands=False), read_number(rt, thousands=False)
    if pn is not None and rn is not None:
        return _num_match(pn, rn)
    if _WORD_RE.match(pt) and _WORD_RE.match(rt) and (len(pt) > 1 or len(rt) > 1):
        return pt.lower() == rt.lower()
    fast = _numeric(pt, rt, pn, rn)
    if fast is not None:
        return fast
    if not symbolic:
        return None
    from rewards.math.symbolic import expressions_equivalent

    return expressions_equivalent(pt, rt, decimal_places=_places(pt), ref_places=_places(rt))


def _numeric(pt: str, rt: str, pn: Number | None, rn: Number | None) -> bool | None:
    """Float evaluation (see :mod:`rewards.math.fastexpr`), with the decimal-tolerance rules."""
    if pn is not None and pn.places is not None and rn is None:  # 1.414 vs \sqrt{2}
        v = constant(rt)
        if v is None or abs(v.imag) > 1e-12 or abs(v.real) > 1e9:
            return None
        return _close_decimal(pn.value, pn.places, Fraction(v.real))
    if rn is not None and rn.places is not None and pn is None:  # \sqrt{2} vs 1.414
        v = constant(pt)
        if v is None or abs(v.imag) > 1e-12 or abs(v.real) > 1e9:
            return None
        return round(v.real, rn.places) == float(rn.value)
    return numeric_equal(pt, rt)


def _places(s: str) -> int | None:
    n = read_number(s, thousands=False)
    return n.places if n is not None else None
