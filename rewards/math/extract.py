"""Find the final answer in a completion, under one explicit policy.

Policy (what earns a chance at reward, and what does not):

1. **Reasoning is not the answer.** If the completion contains ``</think>``, only the text after
   the last ``</think>`` is searched. A completion that opens ``<think>`` and never closes it was
   cut off mid-thought: ``NO_ANSWER``.
2. **The answer is boxed.** Every ``\\boxed{...}``, ``\\boxed 5`` and ``\\fbox{...}`` (nested braces
   fine) is collected in order; a box whose brace never closes (truncated output) is ignored.
   The *last* box is the answer. Other boxes are allowed only if they say the same thing after
   normalisation; two different boxes are a hedge: ``AMBIGUOUS`` -- unless the reference is a
   list (``2, 3``), in which case distinct boxes are read as the elements of the list
   (:func:`join_boxes`).
3. **Hedges inside the box** (``3 or 4``, ``3 \\text{ or } 4``, ``\\lor``) are ``AMBIGUOUS`` unless
   the reference itself says "or". Equalities between different constants (``\\boxed{4 = 3}``)
   are ``AMBIGUOUS``; ``x = 3`` and ``2+3 = 5`` give their right-hand side (see ``compare``).
4. **Restating the question** (the box content, spaces removed, occurs verbatim in the prompt and
   contains an operator, e.g. ``\\boxed{23+45-7}``) is ``AMBIGUOUS``.
5. **No box, no answer**: ``NO_ANSWER``. Only when ``text_fallback=True`` is the answer stated
   in prose read instead, from the conclusion sentence only (:mod:`rewards.math.prose`: after
   the last "answer is"/"Answer:" phrase, else the last "Therefore ..." sentence). There is never
   a last-number-anywhere fallback: it is what RL learns to game
   (PrimeIntellect-ai/verifiers#1028).

Everything here is a linear scan: no backtracking regex, so a 1 MB completion or 50k unclosed
``\\boxed{`` costs milliseconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rewards.common import Status
from rewards.math.prose import prose_answer

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_BRACE_TOKEN = re.compile(r"\\.|[{}]", re.DOTALL)  # escaped chars (\{, \}) are skipped whole
_SIMPLE_BOX = re.compile(r"\\(?:boxed|fbox)\{((?:[^{}\\]|\\[^{}])*)\}")  # no braces, escaped or not


@dataclass(frozen=True)
class Extraction:
    """``answers`` are the box contents in order (last is final); empty when ``status`` says why."""

    answers: tuple[str, ...]
    status: Status | None  # None: extraction succeeded; otherwise NO_ANSWER / AMBIGUOUS
    reason: str = ""

    @property
    def final(self) -> str | None:
        return self.answers[-1] if self.answers else None


def answer_region(text: str) -> str | None:
    """The part of ``text`` that may hold the answer (after ``</think>``), or None if cut off."""
    close = text.rfind("</think>")
    if close >= 0:
        return text[close + len("</think>") :]
    if "<think>" in text:
        return None
    return text


def _brace_matches(text: str) -> dict[int, int]:
    """Map the index of every ``{`` that closes to the index of its ``}`` (escaped braces skipped).

    One linear pass, so reading any number of boxes costs O(len(text)) in total.
    """
    match: dict[int, int] = {}
    stack: list[int] = []
    for m in _BRACE_TOKEN.finditer(text):
        c = m.group()
        if c == "{":
            stack.append(m.start())
        elif c == "}" and stack:
            match[stack.pop()] = m.start()
    return match


def find_boxes(text: str) -> list[str]:
    """Contents of every closed ``\\boxed``/``\\fbox`` in ``text``, in order (nested boxes: outermost)."""
    out: list[str] = []
    if "\\boxed" not in text and "\\fbox" not in text:
        return out
    simple = _SIMPLE_BOX.findall(text)  # fast path (C speed): every box is \\boxed{no braces}
    if len(simple) == text.count("\\boxed") + text.count("\\fbox"):
        return simple
    starts = sorted(m.start() for cmd in _BOX_COMMANDS for m in re.finditer(re.escape(cmd), text))
    base = starts[0]  # braces before the first box cannot close a box
    match = {k + base: v + base for k, v in _brace_matches(text[base:]).items()}
    n = len(text)
    consumed = 0  # boxes nested inside an earlier box are part of it
    for pos in starts:
        if pos < consumed:
            continue
        cmd = "\\boxed" if text.startswith("\\boxed", pos) else "\\fbox"
        j = pos + len(cmd)
        if j < n and text[j].isalpha():  # \boxedfoo is another command
            continue
        while j < n and text[j] == " ":
            j += 1
        if j < n and text[j] == "{":
            end = match.get(j)
            if end is None:  # unclosed: truncated output
                continue
            out.append(text[j + 1 : end])
            consumed = end + 1
        elif j < n:  # \boxed 5 -> up to the next space, $, newline or command
            k = j
            while k < n and text[k] not in " $\n\\":
                k += 1
            if k > j:
                out.append(text[j:k])
                consumed = k
    return out


_HEDGE = re.compile(
    r"(?:\\text\{\s*or\s*\}|\\mbox\{\s*or\s*\}|\\lor\b|\\vee\b|(?<![A-Za-z\\])or(?![A-Za-z]))"
)


def is_hedge(answer: str) -> bool:
    """True when the answer offers alternatives ("3 or 4")."""
    return bool(_HEDGE.search(answer))


def or_as_list(answer: str) -> str:
    """A *reference* that says "A or B" lists every solution: ``A, B`` (a prediction saying it hedges)."""
    return _HEDGE.sub(",", answer)


def _squash(s: str) -> str:
    return re.sub(r"\s+|\$|\\[,;:! ]", "", s)


def restates_prompt(answer: str, prompt: str | None) -> bool:
    """True when the answer is an expression copied from the prompt (it contains an operator)."""
    if not prompt:
        return False
    a = _squash(answer)
    if len(a) < 3 or not re.search(r"[0-9a-z}][-+*/^]|\\times|\\cdot|\\div|\\frac", a):
        return False
    return a in _squash(prompt)


def extract(completion: str, *, text_fallback: bool = False) -> Extraction:
    """Apply the policy above to one completion (hedge/prompt checks are done by the verifier)."""
    region = answer_region(completion)
    if region is None:
        return Extraction((), Status.NO_ANSWER, "unclosed <think>: output was cut off")
    boxes = [b.strip() for b in find_boxes(region)]
    boxes = [b for b in boxes if b]
    if boxes:
        return Extraction(tuple(boxes), None)
    if "\\boxed" in region or "\\fbox" in region:  # a box was opened and never closed: cut off in the answer
        return Extraction((), Status.NO_ANSWER, "\\boxed{} never closed: output was cut off")
    if text_fallback:
        phrase = prose_answer(region)
        if phrase:
            return Extraction((phrase,), None)
    return Extraction((), Status.NO_ANSWER, "no \\boxed{} answer")
