"""One completion against one reference: extraction policy, guards, fast path, then a verdict.

:func:`judge` runs in the caller's process and decides everything that needs no sympy (in
microseconds); when only sympy can decide it returns a :class:`Pending` holding the two short
answer strings, which the caller sends to a pool worker (:func:`symbolic_task`).
:func:`verify` is the one-shot, in-process version (no pool, no deadline: for tests and tools).
"""

from __future__ import annotations

from dataclasses import dataclass

from rewards.common import Status
from rewards.math.compare import equivalent, lhs_dropped
from rewards.math.extract import extract, is_hedge, restates_prompt
from rewards.math.guards import MAX_ANSWER_CHARS, check
from rewards.math.normalize import brackets, normalize, read_number, split_top


@dataclass(frozen=True)
class Verdict:
    reward: float
    status: Status
    detail: str = ""


@dataclass(frozen=True)
class Pending:
    """Needs the symbolic check: ``equivalent(pred, ref, symbolic=True)`` in a worker."""

    pred: str
    ref: str


def _is_list(ref: str) -> bool:
    r = normalize(ref).text
    b = brackets(r)
    return b is None and len(split_top(r, ",")) > 1 and read_number(r) is None


def _contradiction(pred: str) -> bool:
    """``4 = 3``: an equality chain between different constants."""
    parts = split_top(normalize(pred).text, "=")
    if len(parts) < 2:
        return False
    values = [read_number(p) for p in parts]
    return all(v is not None for v in values) and len({v.value for v in values}) > 1


def _final_side(pred: str, ref: str) -> str:
    """``2+3=5`` -> ``5`` and ``x=3`` -> ``3`` when the reference is not an equation."""
    if "=" in ref:
        return pred
    text = normalize(pred).text
    parts = split_top(text, "=")
    if len(parts) < 2 or not parts[-1]:
        return pred
    dropped = lhs_dropped(text)
    return dropped if dropped != text else parts[-1]


def judge(completion: str, reference: str, prompt: str | None = None, *, text_fallback: bool = False) -> Verdict | Pending:
    """Verdict for one completion, or Pending when sympy is needed. Never raises on odd input."""
    if not isinstance(reference, str) or not reference.strip():
        return Verdict(0.0, Status.INVALID, f"reference must be a non-empty string, got {reference!r:.60}")
    if not isinstance(completion, str):
        return Verdict(0.0, Status.INVALID, f"completion must be a string, got {type(completion).__name__}")
    ex = extract(completion, text_fallback=text_fallback)
    if ex.status is not None:
        return Verdict(0.0, ex.status, ex.reason)
    boxes = [b for b in ex.answers if len(b) <= MAX_ANSWER_CHARS]
    if not boxes:
        return Verdict(0.0, Status.FAIL, f"answer longer than {MAX_ANSWER_CHARS} chars")
    if len(reference) > MAX_ANSWER_CHARS:
        return Verdict(0.0, Status.INVALID, f"reference longer than {MAX_ANSWER_CHARS} chars")
    distinct = list(dict.fromkeys(normalize(b).text for b in boxes))
    if len(distinct) > 1:
        if not _is_list(reference):
            return Verdict(0.0, Status.AMBIGUOUS, f"{len(distinct)} different boxed answers")
        pred = ", ".join(distinct)
    else:
        pred = boxes[-1]
    if is_hedge(pred) and not is_hedge(reference):
        return Verdict(0.0, Status.AMBIGUOUS, "hedged answer ('or')")
    if _contradiction(pred):
        return Verdict(0.0, Status.AMBIGUOUS, "equality between different values")
    if restates_prompt(pred, prompt) and normalize(pred).text != normalize(reference).text:
        return Verdict(0.0, Status.AMBIGUOUS, "answer restates the question")
    pred = _final_side(pred, reference)
    reason = check(pred)
    if reason:
        same = normalize(pred).text == normalize(reference).text
        return Verdict(1.0, Status.PASS) if same else Verdict(0.0, Status.FAIL, f"not evaluated: {reason}")
    eq = equivalent(pred, reference, symbolic=False)
    if eq is None:
        return Pending(pred, reference)
    return Verdict(1.0, Status.PASS) if eq else Verdict(0.0, Status.FAIL)


def symbolic_task(pred: str, ref: str) -> bool:
    """Pool task: the full comparison, sympy allowed. Module-level so it pickles by name."""
    return bool(equivalent(pred, ref, symbolic=True))


def verify(completion: str, reference: str, prompt: str | None = None, *, text_fallback: bool = False) -> tuple[float, Status]:
    """``(reward, status)`` for one completion, computed in this process (no deadline)."""
    v = judge(completion, reference, prompt, text_fallback=text_fallback)
    if isinstance(v, Pending):
        ok = symbolic_task(v.pred, v.ref)
        return (1.0, Status.PASS) if ok else (0.0, Status.FAIL)
    return v.reward, v.status
