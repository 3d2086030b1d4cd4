"""The plain-text fallback: the final answer of a completion that boxes nothing.

Used only when the config allows it (``text_fallback=True``), for scoring other models' outputs
offline; RL rewards never use it (a model under RL learns to game any lenient reader).

Policy, in order (the first step that yields an answer wins):

1. **Where.** The *conclusion*: the sentence that follows the last answer phrase ("final answer",
   "the answer is", "Answer:", "answer ="); if the completion has none, the last sentence that
   opens with a conclusion word (Therefore, Thus, Hence, So, In conclusion, Finally, "We find
   that" ...; one that ends with a colon announces the next sentence, which is read instead);
   if none either, the completion's last sentence, when it holds a math span or is the whole
   completion of at most :data:`MAX_ONE_SENTENCE` characters (never the last number of a long
   text). A math span followed by a capitalised
   word ends a sentence too (flattened outputs: ``$y = 6$ So, the pair is ...``); an ellipsis
   does not. Chat-template residue (``<|im_start|>user`` ...) and the courtesy "I hope it is
   correct." are cut off first.
2. **Which part.** A conclusion of the form "<subject> is <value>" is read after its last " is "
   (``The largest $n$ is 34`` -> ``34``), unless nothing stands there ("$x>5$ is the solution").
3. **What.** In that part, math spans (``$..$``, ``$$..$$``, ``\\(..\\)``, ``\\[..\\]``) first; with no
   span, after an answer phrase, a short formula-like remainder as is (``(0, 1)``, ``x = 3``, ``B``);
   otherwise plain numbers (``12,000,023``, ``7.78``, ``100%``) that stand alone: the ``1`` of
   ``1/a`` or the ``2`` of ``2^m`` is part of an expression, not an answer.
4. **How many.** One candidate is the answer. Several joined only by "and" or commas are a list
   (``$12$ and $13$`` -> ``12, 13``); several joined by "or" keep the "or" so the verifier calls the
   hedge ``AMBIGUOUS``; several different values in one sentence otherwise are a list too, which
   a one-value reference rejects. Nothing found: no answer.

Everything is a linear scan over at most the last :data:`MAX_TAIL` characters.
"""

from __future__ import annotations

import bisect
import re

MAX_TAIL = 4000  # the conclusion is near the end; a 1 MB completion costs no more than this
MAX_ONE_SENTENCE = 300  # a whole completion this short may state its answer as a bare number
_CHAT_RESIDUE = re.compile(r"<\|im_(?:start|end)\|>|<\|endoftext\|>|<\|eot_id\|>|</s>")
_COURTESY = re.compile(r"\s*I hope (?:it|this) is correct\.?", re.IGNORECASE)
_PHRASE = re.compile(
    r"(?:final\s+answer|the\s+answer|\banswer)\b(?:\s+(?:to\s+[^.:$]{0,60}?)?(?:is|was|would\s+be|will\s+be))?\s*[:=]?\s*",
    re.IGNORECASE,
)
_CONCLUDE = re.compile(
    r"^(?:therefore|thus|hence|so|in\s+conclusion|in\s+summary|finally|consequently|we\s+(?:find|get|have|conclude|obtain)\s+that)\b[\s,:]*",
    re.IGNORECASE,
)
_SPAN_OPEN = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))
# A number standing alone: not part of a word, a power, a fraction with a letter or a product
# (``1/a``, ``2^m``, ``2 * x``): such a number is a piece of an expression, not the answer.
_NUMBER = re.compile(
    r"(?<![\w.^/_\\])-?(?:\d+/\d+|\d[\d,]*(?:\.\d+)?|\.\d+)(?:\s*(?:\\?%|percent\b))?"
    r"(?![\w^/(*]|\s*[-+*/^×·]\s*[\w(\\])"
)
_OPERATOR_BEFORE = re.compile(r"[-+*/^×·]\s*$")
_WORDY = re.compile(r"(?<!\\)\b[a-zA-Z]{4,}\b")  # an English word, not a \command
_CAPITAL_NEXT = re.compile(r"\s+[A-Z][a-z]")
_IS = re.compile(r"\s(?:is|are|equals|was)\s|\b(?:it|that|which)'s\s", re.IGNORECASE)
_ORS = re.compile(r"^\s*(?:or|,\s*or)\s*$", re.IGNORECASE)


def math_spans(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, content)`` of every closed math span, left to right, in one pass."""
    out: list[tuple[int, int, str]] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and not text.startswith(("\\(", "\\["), i):
            i += 2  # an escaped char (\$) or a command: never opens a span
            continue
        if c not in "$\\":
            i += 1
            continue
        a, b = next(pair for pair in _SPAN_OPEN if text.startswith(pair[0], i))
        end = _closer(text, b, i + len(a), inline=a in ("$", "\\("))
        if end < 0:  # never closed: not a span (a currency sign, a truncated formula)
            i += len(a)
            continue
        out.append((i, end + len(b), text[i + len(a) : end].strip()))
        i = end + len(b)
    return out


def _closer(text: str, closer: str, start: int, *, inline: bool) -> int:
    """Index of ``closer`` after ``start`` that is not escaped (``\\$``); -1 if none.

    An inline span (``$..$``, ``\\(..\\)``) does not cross a line break, as LaTeX readers expect.
    """
    j = start
    while True:
        j = text.find(closer, j)
        if j < 0:
            return -1
        if inline and "\n" in text[start:j]:
            return -1
        if closer == "$" and j > 0 and text[j - 1] == "\\":
            j += 1
            continue
        return j


def _sentence_end(text: str, start: int, spans: list[tuple[int, int, str]]) -> int:
    """Index just past the sentence that begins at ``start`` (a period inside math or a number does not end it)."""
    k = bisect.bisect_right([b for _, b, _ in spans], start)  # first span that ends after start
    i = start
    n = len(text)
    while i < n:
        while k < len(spans) and spans[k][1] <= i:
            k += 1
        if k < len(spans) and spans[k][0] <= i < spans[k][1]:
            i = spans[k][1]
            if i > start and _CAPITAL_NEXT.match(text, i):  # "... $y = 6$ So, the pair": flattened text
                return i
            continue
        c = text[i]
        if c == "\n" and text.startswith("\n\n", i):
            return i
        if c in ".!?" and (i + 1 == n or text[i + 1].isspace()) and not text.startswith("..", i - 1):
            return i  # (an ellipsis "..." does not end a sentence)
        i += 1
    return n


def _sentence_starts(text: str, spans: list[tuple[int, int, str]]) -> list[int]:
    """Start index of every sentence (after ``. ``/``! ``/``? ``/blank line, outside math)."""
    starts, i = [0], 0
    while True:
        end = _sentence_end(text, i, spans)
        if end >= len(text):
            return starts
        i = end + 1
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return starts
        starts.append(i)


def _clean(text: str) -> str:
    tail = text[-MAX_TAIL:]
    m = _CHAT_RESIDUE.search(tail)
    if m:
        tail = tail[: m.start()]
    return _COURTESY.sub("", tail).rstrip()


def _join(pieces: list[tuple[int, int, str]], text: str) -> str | None:
    """One answer string from several candidates: a list, or an explicit hedge."""
    values = list(dict.fromkeys(p[2] for p in pieces if p[2]))
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    gaps = [text[a[1] : b[0]] for a, b in zip(pieces, pieces[1:])]
    if any(_ORS.match(g) for g in gaps):
        return " or ".join(values)
    return ", ".join(values)


def _candidates(part: str, after_phrase: bool) -> str | None:
    spans = math_spans(part)
    if spans:
        return _join(spans, part)
    bare = part.strip().split("\n", 1)[0].strip("*").strip()  # a bare answer does not run past its line
    if after_phrase and bare and len(bare) <= 60 and not _WORDY.search(bare):
        return bare.rstrip(".").strip()
    nums = [
        (m.start(), m.end(), m.group().replace(" ", ""))
        for m in _NUMBER.finditer(part)
        if not _OPERATOR_BEFORE.search(part[max(0, m.start() - 3) : m.start()])
    ]
    return _join(nums, part) if nums else None


def _read(sentence: str, after_phrase: bool) -> str | None:
    """The value a conclusion sentence states (steps 2-4 of the policy)."""
    sentence = sentence.strip().rstrip(".").strip()
    cut = _CONCLUDE.match(sentence)
    if cut:
        sentence = sentence[cut.end() :]
    spans = math_spans(sentence)
    is_at = [m.end() for m in _IS.finditer(sentence) if not any(a <= m.start() < b for a, b, _ in spans)]
    if is_at:
        got = _candidates(sentence[is_at[-1] :], after_phrase=True)
        if got:
            return got
        before = sentence[: is_at[-1]]  # "$x > 5$ is the solution": only a formula stands there
        return _join(math_spans(before), before)
    return _candidates(sentence, after_phrase)


def prose_answer(text: str) -> str | None:
    """The final answer stated in prose (policy above), or None when there is none.

    At most two sentences are read: the later of (the one after the last answer phrase, the last
    concluding sentence), then the last sentence if it comes after that. An earlier conclusion
    deep in the reasoning is never used when the final statement says nothing.
    """
    text = _clean(text)
    if not text.strip():
        return None
    spans = math_spans(text)
    sentences = [(s, _sentence_end(text, s, spans)) for s in _sentence_starts(text, spans)]
    tries: list[tuple[int, str, bool]] = []  # (where, sentence, after an answer phrase)
    phrase = next(
        (
            m
            for m in reversed(list(_PHRASE.finditer(text)))
            if not any(a <= m.start() < b for a, b, _ in spans)
        ),
        None,
    )
    if phrase is not None:  # placed at the start of its sentence
        where = max(s for s, _ in sentences if s <= phrase.start())
        tries.append((where, text[phrase.end() : _sentence_end(text, phrase.end(), spans)], True))
    k = next(
        (k for k in reversed(range(len(sentences))) if _CONCLUDE.match(text[slice(*sentences[k])])), None
    )
    if k is not None:
        s, e = sentences[k]
        if text[s:e].rstrip().endswith(":") and k + 1 < len(
            sentences
        ):  # "Therefore, we factor $P$ as follows:"
            s, e = sentences[k + 1]  # announces the sentence that states it
        tries.append((s, text[s:e], False))
    if tries:  # the final statement only; "Thus $x<2$ is our answer.": phrase and conclusion share it
        last = max(t[0] for t in tries)
        for where, sentence, after in tries:
            got = _read(sentence, after) if where == last else None
            if got:
                return got
    s, e = sentences[-1]
    if tries and s <= max(t[0] for t in tries):
        return None  # the stated conclusion gives no value
    if (len(sentences) > 1 or len(text) > MAX_ONE_SENTENCE) and not math_spans(text[s:e]):
        return None  # a plain number at the end of a long text is not an answer (no last-number fallback)
    return _read(text[s:e], after_phrase=False)
