"""String-level normalisation of an answer and the exact number reader (the fast path).

Everything here is plain string work (no sympy, no parser): it runs in the trainer process in
microseconds. ``normalize`` maps spellings that mean the same to one string; ``read_number``
turns integers, decimals, ``a/b``, ``\\frac{a}{b}``, mixed numbers, thousands separators and
scientific notation into an exact :class:`fractions.Fraction`; the splitters find the top-level
structure (lists, brackets, unions, equations) without evaluating anything.

List separators are unified before anything else: ``\\text{ and }`` / `` and ``, ``;`` (when the
answer has no comma), ``(0;1;2)`` tuples and ``p=5,q=2;p=7,q=2`` solution groups become commas;
braces around the whole answer (``{1,2,3}``) are grouping, and ``\\\\frac`` written with a doubled
backslash (doubly escaped JSON) is read as ``\\frac``. ``0,111`` (a lone 0 then a comma) is a
decimal comma.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from fractions import Fraction

from rewards.math.guards import MAX_ANSWER_CHARS, MAX_DIGITS, MAX_SCI_EXPONENT

_REMOVE = [
    r"\\left(?![a-zA-Z])",
    r"\\right(?![a-zA-Z])",
    r"\\displaystyle",
    r"\\textstyle",
    r"\\[bB]igg?[lr]?(?![a-zA-Z])",
    r"(?<!\\)\\[,;:! ]",
    r"\\q?quad(?![a-zA-Z])",
    r"~",
    r"\\limits",
]
_REMOVE_RE = re.compile("|".join(_REMOVE))
_REPLACE = [
    (re.compile(r"\\[dt]frac(?![a-zA-Z])"), r"\\frac"),
    (re.compile(r"\\(?:le|leqslant)(?![a-zA-Z])"), r"\\leq"),
    (re.compile(r"\\(?:ge|geqslant)(?![a-zA-Z])"), r"\\geq"),
    (re.compile(r"\\neq?(?![a-zA-Z])"), r"\\neq"),
    (re.compile("≠|!="), r"\\neq"),
    (re.compile("≤|<="), r"\\leq"),
    (re.compile("≥|>="), r"\\geq"),
    (re.compile("π"), r"\\pi"),
    (re.compile("∞"), r"\\infty"),
    (re.compile(r"\\(?:mathrm|mathbf|mathit|boldsymbol|bm|operatorname)\{(e|i|pi)\}"), r"\1"),
    (re.compile(r"\\emptyset|\\varnothing|\\\{\s*\\\}"), r"\\emptyset"),
    (re.compile(r"\s*\{\s*,\s*\}\s*"), ","),  # 14{,}916 and 14 {, }916
    (re.compile(r"\\sqrt\s*\(([^()]*)\)"), r"\\sqrt{\1}"),  # \sqrt(2) as written by models (Math-Verify #41)
    (re.compile(r"\\frac\s*(\d)\s*(\d)"), r"\\frac{\1}{\2}"),  # \frac12
    (re.compile(r"\\frac\s*(\d)\s*\{"), r"\\frac{\1}{"),  # \frac1{2}
    (re.compile(r"\\frac\s*(\{[^{}]*\})\s*(\d)"), r"\\frac\1{\2}"),  # \frac{1}2
    (re.compile(r"\\sqrt\s*(\d+|[a-zA-Z])(?![\d])"), r"\\sqrt{\1}"),  # \sqrt2, \sqrt x
    (re.compile(r"\\(?:dots|ldots|cdots)"), "..."),
    (
        re.compile(r"\[\s*\\begin\{array\}\{[^{}]*\}(.*?)\\end\{array\}\s*\]", re.S),
        r"\\begin{bmatrix}\1\\end{bmatrix}",
    ),
    (
        re.compile(r"\(\s*\\begin\{array\}\{[^{}]*\}(.*?)\\end\{array\}\s*\)", re.S),
        r"\\begin{pmatrix}\1\\end{pmatrix}",
    ),
    (re.compile(r"\\(?:cdot|times)\s*(?=\d)"), r"\\times "),
]
_DEGREE = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°|\\degree(?![a-zA-Z])|\^\s*\{\s*\\text\{o\}\s*\}")
_PERCENT = re.compile(r"\\?%$")
_TEXT = re.compile(r"\\(?:text|textbf|textit|mbox|mathrm|textrm|mathbf)\s*\{([^{}]*)\}")
_SYMBOL_UNIT = re.compile(r"^[€£¥]?\s*(-?[\d.,]*\d)\s*(?:[€£¥]|[a-zA-Z]{1,3}[²³])$")
_UNIT_TAIL = re.compile(r"^(.*?[\d}])\s*(?:[a-zA-Z]{1,12}\.?(?:\s+[a-zA-Z]{1,12}\.?)*)(?:\^\{?\d\}?)?$")


@dataclass(frozen=True)
class Norm:
    """A normalised answer: ``text`` plus the marks stripped from it."""

    text: str
    percent: bool = False
    degree: bool = False


def _strip_wrappers(s: str) -> str:
    s = s.strip()
    changed = True
    while changed and s:
        changed = False
        for a, b in (("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"), ("**", "**")):
            if len(s) >= len(a) + len(b) and s.startswith(a) and s.endswith(b):
                s = s[len(a) : len(s) - len(b)].strip()
                changed = True
        if s.endswith(".") and not s.endswith("..."):
            s, changed = s[:-1].rstrip(), True
        if s.startswith("\\boxed{") and s.endswith("}"):
            s, changed = s[7:-1].strip(), True
        if s.startswith("{") and s.endswith("}") and _closes_at_end(s):  # {1,2,3}: grouping braces
            s, changed = s[1:-1].strip(), True
    return s


def _closes_at_end(s: str) -> bool:
    """True when the ``{`` at ``s[0]`` is closed by the ``}`` at ``s[-1]`` (escaped braces skipped)."""
    depth = 0
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i == len(s) - 1
        i += 1
    return False


_ESCAPED_COMMAND = re.compile(r"\\\\(?=[a-zA-Z])")  # \\frac written with a doubled backslash
_AND = re.compile(r"\s*(?:\\(?:text|mbox|textrm)\{\s*and\s*\}|(?<![A-Za-z\\])and(?![A-Za-z]))\s*")
_SEMI_TUPLE = re.compile(r"\(([^(),;]*(?:;[^(),;]*)+)\)")


def _separators(s: str) -> str:
    """Spellings of a list separator become ``,``: "and", ``;`` (when no comma is used), ``(0;1;2)``."""
    if "and" in s:
        s = _AND.sub(",", s)
    if ";" in s:
        if "," not in s:
            return s.replace(";", ",")
        groups = [g.split(",") for g in s.split(";")]
        if all(len(g) > 1 and all(x.count("=") == 1 for x in g) for g in groups):  # p=5,q=2;p=7,q=2
            return ",".join("(" + ",".join(x.split("=")[1].strip() for x in g) + ")" for g in groups)
        s = _SEMI_TUPLE.sub(lambda m: "(" + m.group(1).replace(";", ",") + ")", s)
    return s


def _unwrap_text(s: str) -> str:
    """``\\text{cm}`` after a value is a unit (dropped); ``\\text{...}`` around everything is kept as text."""
    whole = _TEXT.fullmatch(s)
    if whole:
        return whole.group(1).strip()
    # drop unit words in \text{} that follow math content, keep other \text{} contents
    s = re.sub(
        r"(?<=[\d}])\s*\\(?:text|mbox|mathrm|textrm)\s*\{\s*[a-zA-Z][a-zA-Z .]*\}(?:\^\{?\d\}?)?\s*$", "", s
    )
    return _TEXT.sub(lambda m: m.group(1), s)


@functools.lru_cache(maxsize=1 << 16)
def normalize(answer: str) -> Norm:
    """Canonical spelling of one answer (cached). Idempotent; never raises."""
    if len(answer) > 4 * MAX_ANSWER_CHARS:  # never compared (see guards); keep every step linear
        return Norm(answer.strip())
    s = _strip_wrappers(answer)
    if "\\\\" in s and "\\begin" not in s:  # \\left( \\frac... from doubly escaped JSON
        s = _strip_wrappers(_ESCAPED_COMMAND.sub(lambda m: "\\", s))
    if "and" in s or ";" in s:
        s = _separators(s)
    if "\\" in s or "~" in s:
        s = _REMOVE_RE.sub("", s)
        for pattern, repl in _REPLACE:
            s = pattern.sub(repl, s)
    elif not s.isascii() or "=" in s or "{" in s:
        for pattern, repl in _REPLACE:
            s = pattern.sub(repl, s)
    degree = "\\circ" in s or "°" in s or "\\degree" in s
    if degree:
        degree = bool(_DEGREE.search(s))
        s = _DEGREE.sub("", s)
    s = _unwrap_text(s.strip()) if "\\" in s else s.strip()
    s = s.replace("\\$", "").replace("$", "").strip()
    percent = bool(_PERCENT.search(s))
    s = _PERCENT.sub("", s).strip()
    if not s.isascii():  # 1,000.99€, 12 m²: a currency sign or a squared unit after a number
        m = _SYMBOL_UNIT.match(s)
        s = m.group(1) if m else s
    m = _UNIT_TAIL.match(s)
    if m and " " in s and read_number(m.group(1)) is not None:  # "5 cm", "12 dollars"
        s = m.group(1)
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"\s*([=<>,+\-*/^(){}\[\]|])\s*", r"\1", s)
    s = s.rstrip(".").strip()
    return Norm(s, percent, degree)


# -- exact numbers ---------------------------------------------------------------------------
_INT = r"\d+"
_THOUSANDS = r"\d{1,3}(?:,\d{3})+"
_DEC = r"(?:\d+\.\d*|\.\d+)"
_NUM_RE = re.compile(rf"^(-|\+)?({_THOUSANDS}(?:\.\d+)?|{_DEC}|{_INT})$")
_FRAC_RE = re.compile(r"^(-|\+)?\\frac\{(-?\d+)\}\{(-?\d+)\}$")
_SLASH_RE = re.compile(r"^(-|\+)?(\d+)/(\d+)$")
_MIXED_RE = re.compile(r"^(-)?(\d+)\\frac\{(\d+)\}\{(\d+)\}$")
_SCI_RE = re.compile(
    r"^(-|\+)?(\d+(?:\.\d*)?|\.\d+)(?:e|E|\\times10\^|\\cdot10\^|\*10\^|\\times 10\^)\{?([+-]?\d+)\}?$"
)


@dataclass(frozen=True)
class Number:
    """An exact value; ``places`` is the number of decimals written (None: not a decimal literal)."""

    value: Fraction
    places: int | None = None


def _decimal(text: str) -> Number:
    text = text.replace(",", "")
    places = len(text.split(".", 1)[1]) if "." in text else None
    return Number(Fraction(text if not text.endswith(".") else text[:-1]), places)


_DECIMAL_COMMA = re.compile(r"^(-)?(\d+),(\d{1,2}|\d{4,})$")


def decimal_comma(s: str) -> Number | None:
    """``1000,99`` read with a decimal comma; None unless one comma is followed by other than 3 digits.

    Only the caller knows when this reading applies (the other side is a decimal with a point):
    on its own ``2,3`` is the list of 2 and 3.
    """
    m = _DECIMAL_COMMA.match(s.strip())
    if not m:
        return None
    n = _decimal(f"{m.group(2)}.{m.group(3)}")
    return Number(-n.value, n.places) if m.group(1) else n


@functools.lru_cache(maxsize=1 << 16)
def read_number(s: str, *, thousands: bool = True) -> Number | None:
    """Exact value of a plain numeric answer, or None when ``s`` is not one. Never evaluates powers."""
    s = s.replace(" ", "")
    if not s or len(s) > MAX_DIGITS + 20:
        return None
    if s.startswith(("0,", "-0,")) and s.count(",") == 1 and s.replace("-", "").replace(",", "").isdigit():
        s = s.replace(",", ".")  # 0,111 is a decimal comma: a thousands group never follows a lone 0
    m = _NUM_RE.match(s)
    if m:
        body = m.group(2)
        if "," in body and not thousands:
            return None
        n = _decimal(body)
        return Number(-n.value, n.places) if m.group(1) == "-" else n
    m = _FRAC_RE.match(s) or _SLASH_RE.match(s)
    if m:
        num, den = int(m.group(2)), int(m.group(3))
        if den == 0:
            return None
        v = Fraction(num, den)
        return Number(-v if m.group(1) == "-" else v)
    m = _MIXED_RE.match(s)
    if m and int(m.group(4)) != 0:
        v = int(m.group(2)) + Fraction(int(m.group(3)), int(m.group(4)))
        return Number(-v if m.group(1) else v)
    m = _SCI_RE.match(s)
    if m:
        exp = int(m.group(3))
        if abs(exp) > MAX_SCI_EXPONENT:
            return None
        v = _decimal(m.group(2)).value * Fraction(10) ** exp
        places = None
        return Number(-v if m.group(1) == "-" else v, places)
    return None


# -- top-level structure ---------------------------------------------------------------------
_OPEN = {"(": ")", "[": "]", "{": "}"}
_BRACKET_PAIRS = [("\\{", "\\}"), ("\\langle", "\\rangle"), ("(", ")"), ("[", "]"), ("(", "]"), ("[", ")")]


def _depth_scan(s: str):
    """Yield (index, char, depth_before) over ``s``; treats \\{ \\} \\langle \\rangle as brackets."""
    depth = 0
    i, n = 0, len(s)
    while i < n:
        if s.startswith("\\{", i) or s.startswith("\\langle", i):
            yield i, "open", depth
            depth += 1
            i += 2 if s[i + 1] == "{" else 7
            continue
        if s.startswith("\\}", i) or s.startswith("\\rangle", i):
            depth -= 1
            yield i, "close", depth
            i += 2 if s[i + 1] == "}" else 7
            continue
        c = s[i]
        if c in "([{":
            yield i, c, depth
            depth += 1
        elif c in ")]}":
            depth -= 1
            yield i, c, depth
        else:
            yield i, c, depth
        i += 1


def split_top(s: str, sep: str) -> list[str]:
    """Split on ``sep`` (a single char or a command like ``\\cup``) at bracket depth 0."""
    if sep not in s:
        return [s.strip()]
    parts, last = [], 0
    if len(sep) == 1:
        for i, c, d in _depth_scan(s):
            if c == sep and d == 0:
                parts.append(s[last:i])
                last = i + 1
    else:
        for i, _c, d in _depth_scan(s):
            if d == 0 and s.startswith(sep, i) and not s[i + len(sep) : i + len(sep) + 1].isalpha():
                parts.append(s[last:i])
                last = i + len(sep)
    parts.append(s[last:])
    return [p.strip() for p in parts]


def brackets(s: str) -> tuple[str, str, str] | None:
    """``(open, inner, close)`` when one bracket pair encloses all of ``s`` (interval ends may mix)."""
    for o, c in _BRACKET_PAIRS:
        if s.startswith(o) and s.endswith(c) and len(s) >= len(o) + len(c):
            # the opening bracket must close only at the very end
            for i, _ch, d in _depth_scan(s):
                if d == 0 and i > 0 and i < len(s) - len(c):
                    return None
            return o, s[len(o) : len(s) - len(c)], c
    return None


_MATRIX_RE = re.compile(
    r"^\\begin\{([pbvBV]?matrix|smallmatrix|array)\}(?:\{[^{}]*\})?(.*)\\end\{\1\}$", re.DOTALL
)


def matrix_rows(s: str) -> list[list[str]] | None:
    """Rows of a ``pmatrix``/``bmatrix``/``matrix``/``array`` body, or None."""
    m = _MATRIX_RE.match(s)
    if not m or "\\begin{" in m.group(2):  # A + B: two matrices, not one
        return None
    rows = [r for r in re.split(r"\\\\", m.group(2)) if r.strip()]
    return [[c.strip() for c in r.split("&")] for r in rows]
