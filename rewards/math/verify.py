"""One completion against one reference: extraction policy, guards, fast path, then a verdict.

:func:`judge` runs in the caller's process and decides everything that needs no sympy (in
microseconds); when only sympy can decide it returns a :class:`Pending` holding the two short
answer strings, which the caller sends to a pool worker (:func:`symbolic_task`).
:func:`verify` is the one-shot, in-process version (no pool, no deadline: for tests and tools).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rewards.common import Status
from rewards.math.compare import equivalent, lhs_dropped
from rewards.math.extract import extract, is_hedge, or_as_list, restates_prompt
from rewards.math.guards import MAX_ANSWER_CHARS, check
from rewards.math.normalize import brackets, decimal_comma, normalize, read_number, split_top

MAX_BOXES = 20  # more distinct boxes than this is a hedge whatever the reference
_VAR_ONLY = re.compile(r"^(?:[a-zA-Z](?:_\{?\w+\}?)?|\([a-zA-Z](?:,[a-zA-Z])+\))$")  # x, a_1, (x,y)


@dataclass(frozen=True)
class Verdict:
    reward: float
    status: Status
    detail: str = ""


@dataclass(frozen=True)
class Pending:
    """Needs the symbolic check: every string in ``preds`` must equal ``ref`` (in a worker)."""

    preds: tuple[str, ...]
    ref: str


def _is_list(ref: str) -> bool:
    r = normalize(ref).text
    b = brackets(r)
    return b is None and len(split_top(r, ",")) > 1 and read_number(r) is None


def _reference_value(ref: str) -> str:
    """A reference written as a worked chain ending in a number (``z = 1 + 1 = 2``) means its last side.

    References are trusted, so unlike a prediction's chain its earlier sides are not checked.
    """
    if ref.count("=") < 2 or len(ref) > MAX_ANSWER_CHARS:
        return ref
    text = normalize(ref).text
    if len(split_top(text, ",")) > 1:  # a list of equations (AB=4,CD=5), not a chain
        return ref
    parts = split_top(text, "=")
    if len(parts) >= 3 and read_number(parts[-1]) is not None:
        return parts[-1]
    return ref


def _contradiction(pred: str) -> bool:
    """``4 = 3``: an equality chain between different constants."""
    parts = split_top(normalize(pred).text, "=")
    if len(parts) < 2:
        return False
    values = [read_number(p) for p in parts]
    return all(v is not None for v in values) and len({v.value for v in values}) > 1


def _sides(pred: str, ref: str) -> list[str]:
    """What must equal the reference: ``x=3`` -> ``[3]``; ``2+3=5`` -> ``[2+3, 5]`` (every side).

    Only when the reference is not itself an equation. Requiring every side (not just the last)
    stops ``\\boxed{<anything> = 3}`` from earning credit for a false equality.
    """
    if "=" in ref:
        return [pred]
    text = normalize(pred).text
    parts = split_top(text, "=")
    if len(parts) < 2 or not all(parts):
        return [pred]
    dropped = lhs_dropped(text)
    if dropped != text:
        return [dropped]
    return [p for p in parts if not _VAR_ONLY.match(p)]


def differs(pred: str, reference: str, how: str) -> Verdict:
    """The FAIL verdict for an answer that is not the reference, saying which and how it was decided."""
    return Verdict(
        0.0, Status.FAIL, f"answer {pred[:80]!r} is not equal to the reference {reference[:80]!r} ({how})"
    )


def _fast(pred: str, reference: str) -> Verdict | None:
    """Microsecond path: identical strings, or two plain numbers compared as exact Fractions."""
    if pred == reference.strip():
        return Verdict(1.0, Status.PASS)
    spaced = ", " in pred  # "32, 349" is a list, not a thousands separator
    p = read_number(pred.replace(" ", ""), thousands=not spaced)
    r = read_number(reference.strip().replace(" ", ""))
    if p is not None and r is not None and p.places is None and r.places is None:
        return Verdict(1.0, Status.PASS) if p.value == r.value else differs(pred, reference, "exact numbers")
    if (p is None) != (r is None) and (p or r).places:  # 1000,99 against 1000.99: a decimal comma
        other = decimal_comma(pred if p is None else reference.strip())
        if other is not None and other.value == (p or r).value:
            return Verdict(1.0, Status.PASS)
    return None


def judge(
    completion: str, reference: str, prompt: str | None = None, *, text_fallback: bool = False
) -> Verdict | Pending:
    """Verdict for one completion, or Pending when sympy is needed. Never raises on odd input."""
    if not isinstance(reference, str) or not reference.strip():
        return Verdict(0.0, Status.INVALID, f"reference must be a non-empty string, got {reference!r:.60}")
    if not isinstance(completion, str):
        return Verdict(0.0, Status.INVALID, f"completion must be a string, got {type(completion).__name__}")
    reference = _reference_value(reference)
    many_answers = is_hedge(reference) or _is_list(reference)  # "or" in a prediction lists them too
    if is_hedge(reference):  # "(11,7) or (7,11)": the reference lists every solution
        reference = or_as_list(reference)
    ex = extract(completion, text_fallback=text_fallback)
    if ex.status is not None:
        return Verdict(0.0, ex.status, ex.reason)
    raw = list(dict.fromkeys(ex.answers))  # dedupe before any normalisation: 100k equal boxes stay cheap
    if len(raw) == 1 and len(raw[0]) <= MAX_ANSWER_CHARS and not (prompt and restates_prompt(raw[0], prompt)):
        fast = _fast(raw[0], reference)
        if fast is not None:
            return fast
    boxes = [b for b in raw if len(b) <= MAX_ANSWER_CHARS]
    if not boxes:
        return Verdict(0.0, Status.FAIL, f"answer longer than {MAX_ANSWER_CHARS} chars")
    if len(reference) > MAX_ANSWER_CHARS:
        return Verdict(0.0, Status.INVALID, f"reference longer than {MAX_ANSWER_CHARS} chars")
    if len(boxes) > MAX_BOXES:
        return Verdict(0.0, Status.AMBIGUOUS, f"{len(boxes)} different boxed answers")
    distinct = list(dict.fromkeys(normalize(b).text for b in boxes))
    if len(distinct) > 1:  # boxes that are the same value spelled differently (3 and 3.0) agree
        distinct = [
            b for b in distinct[:-1] if equivalent(b, distinct[-1], symbolic=False) is not True
        ] + distinct[-1:]
    if len(distinct) > 1:
        if not _is_list(reference):
            return Verdict(0.0, Status.AMBIGUOUS, f"{len(distinct)} different boxed answers")
        pred = ", ".join(distinct)
    else:
        pred = ex.answers[-1]
    if is_hedge(pred):
        if not many_answers:
            return Verdict(0.0, Status.AMBIGUOUS, "hedged answer ('or')")
        pred = or_as_list(pred)  # "1 or 2" for the list "1, 2": the same solutions, compared as a list
    if _contradiction(pred):
        return Verdict(0.0, Status.AMBIGUOUS, "equality between different values")
    if restates_prompt(pred, prompt) and normalize(pred).text != normalize(reference).text:
        return Verdict(0.0, Status.AMBIGUOUS, "answer restates the question")
    undecided = []
    for side in _sides(pred, reference):
        reason = check(side)
        if reason:
            if normalize(side).text == normalize(reference).text:
                continue
            return Verdict(0.0, Status.FAIL, f"not evaluated: {reason}")
        eq = equivalent(side, reference, symbolic=False)
        if eq is False:
            return differs(side, reference, "fast path")
        if eq is None:
            undecided.append(side)
    return Pending(tuple(undecided), reference) if undecided else Verdict(1.0, Status.PASS)


def symbolic_task(preds: tuple[str, ...], ref: str) -> bool:
    """Pool task: the full comparison, sympy allowed. Module-level so it pickles by name.

    sympy raises on what it cannot decide (``NotImplementedError`` from ``as_set`` on a
    multivariate relation, ``TypeError`` on odd trees): that is "not shown equal", so False.
    """
    try:
        return all(equivalent(p, ref, symbolic=True) for p in preds)
    except Exception:  # noqa: BLE001 - undecidable for sympy: not equivalent
        return False


def verify(
    completion: str, reference: str, prompt: str | None = None, *, text_fallback: bool = False
) -> tuple[float, Status]:
    """``(reward, status)`` for one completion, computed in this process (no deadline)."""
    v = judge(completion, reference, prompt, text_fallback=text_fallback)
    if isinstance(v, Pending):
        ok = symbolic_task(v.preds, v.ref)
        return (1.0, Status.PASS) if ok else (0.0, Status.FAIL)
    return v.reward, v.status
