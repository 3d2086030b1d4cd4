"""Build ``scripts/data/math_dev.jsonl`` from Math-Verify's own test suite (sdist, Apache-2.0/MIT).

Every ``@pytest.mark.parametrize("gold,pred,expected", [...])`` list in the sdist's ``tests/``
is read with ``ast`` (never imported or executed). Each triple becomes
``{"cls", "completion", "answer", "label", "source"}``: the gold (``$``-delimiters stripped) is
the reference; a prediction that has a ``\\boxed`` is used as is, a prediction that is one math
span (``$...$``/``\\(...\\)``/bare) is boxed; free-text predictions are counted and left out
(our policy needs a box). ``cls`` comes from the reference's shape (:func:`classify`).

**Disputed labels.** Some expectations in Math-Verify's tests follow Math-Verify's own policy
(last side of an equality chain, first-match extraction, a list accepted for one value) or have a
broken reference. Those rows stay in the set, labels unchanged, with a ``dispute`` field giving
the reason (:data:`DISPUTES`); the benchmark reports accuracy both on all rows and without them.

Run::

    pip download --no-deps --no-binary :all: math-verify==0.9.0 -d /tmp/mv && tar xzf /tmp/mv/*.tar.gz -C /tmp/mv
    python scripts/data/build_math_dev.py /tmp/mv/math_verify-0.9.0/tests
    python scripts/data/build_math_dev.py --annotate     # re-apply DISPUTES to the existing file only
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

OUT = Path(__file__).with_name("math_dev.jsonl")

_CHAIN = (
    "a boxed equality chain with a false link; our policy (issue 3: `\\boxed{4 = 3}` scores 0) needs every "
    "side to equal the reference, Math-Verify reads only the last side"
)
_LIST_FOR_ONE = "several values boxed for a one-value reference: a hedge under our policy (Math-Verify test relies on first match)"
_BROKEN = "the reference is a truncated or garbled fragment of a solution, not an answer"
# (reference, end of the completion) -> why the label is disputed. Matched exactly.
DISPUTES: dict[tuple[str, str], str] = {
    ("x = 11", "\\boxed{x = 5+5+1 = 7 =11}"): _CHAIN,
    ("x = 1/3", "\\boxed{x = 5+5+1 = 1/3 \\approx 11}"): _CHAIN,
    ("z = 1 + 1 = 2", "\\boxed{z = 3+3 = 2}"): _CHAIN,
    ("1 = \\zzz = x = 0", "\\boxed{0}"): "the reference itself is a false equality chain (1 = x = 0)",
    ("2", "$\\boxed{1,2}$"): _LIST_FOR_ONE,
    ("-2", "$\\boxed{-2,1}$."): _LIST_FOR_ONE,
    ("13", "\\boxed{{2, 3, 5, 7, 13}}"): _LIST_FOR_ONE,
    ("4", "\\boxed{{35 cm,4}}"): _LIST_FOR_ONE,
    (
        "1000.99",
        "\\boxed{1000,99}",
    ): "decimal comma vs a list: `1000,99` is a two-element list unless a locale is assumed",
    (
        "1,22",
        "\\boxed{1.22}",
    ): "reference `1,22` reads as a list of 1 and 22 unless a decimal-comma locale is assumed",
    (
        "10455",
        "he final answer is $10,455$. I hope it is correct.",
    ): "two different boxed intermediate values (200, 255), final answer only in text: AMBIGUOUS under our box policy",
    (
        "x \\in [-2,7]",
        "\\boxed{-2 \\\\le x \\\\le 7}",
    ): "a relation predicted for an interval reference: rejected by design (Math-Verify #10/#25 asymmetry)",
    (
        "(\\begin{pmatrix}\\frac{1}{3}\\\\ \\frac{1}{5} \\end{pmatrix})",
        "\\boxed{\\begin{pmatrix}0.33\\\\0.2 \\end{pmatrix}}",
    ): "0.33 for 1/3: two decimals, outside the documented tolerance (relative 1e-3)",
}
_BROKEN_PREFIXES = (
    "Let's assume the stock",
    "12\\text{ and }13}$",
    "W(n) = 1 \\\\text{ and ",
    "\n\\begin{pmatrix} 0 & 3",
)


def dispute(answer: str, completion: str, label: int) -> str | None:
    """Why this row's label is disputed, or None. Every entry of DISPUTES disputes a label of 1."""
    if answer.startswith(_BROKEN_PREFIXES):
        return _BROKEN
    if label != 1:
        return None
    for (ref, tail), why in DISPUTES.items():
        if answer == ref and completion.endswith(tail):
            return why
    return None


def annotate(rows: list[dict]) -> list[dict]:
    out = []
    for row in rows:
        row = {k: v for k, v in row.items() if k != "dispute"}
        why = dispute(row["answer"], row["completion"], row["label"])
        out.append({**row, "dispute": why} if why else row)
    return out


def classify(ref: str) -> str:
    """Answer class of a reference, from its shape only."""
    r = ref.replace(" ", "")
    checks = [
        ("matrix", r"\\begin\{[pbv]?matrix"),
        ("interval", r"^[\[(].*,.*[\])]$.*(?<![^\]])|\\cup|\\infty"),
        ("inequality", r"\\[lg]eq?|<|>"),
        ("equation", r"="),
        ("set", r"^\\\{"),
        ("percent", r"%"),
        ("degrees", r"\\circ|°"),
        ("tuple", r"^\(.*,.*\)$"),
        ("list", r","),
        ("choice", r"^\(?[A-E]\)?$"),
        ("text", r"\\text|^[A-Za-z]{2,}$"),
        ("complex", r"(?<![a-z\\])i(?![a-z])"),
        ("integer", r"^-?\d+$"),
        ("decimal", r"^-?\d*\.\d+$"),
        ("fraction", r"^-?\\[dt]?frac\{-?\d+\}\{\d+\}$|^-?\d+/\d+$"),
        ("constant", r"\\sqrt|\\pi|\be\b|\\log|\\ln|\\sin|\\cos|\\tan"),
        ("symbolic", r"[a-zA-Z]"),
    ]
    for name, pat in checks:
        if re.search(pat, r):
            return name
    return "other"


def _strip_math(s: str) -> str:
    s = s.strip()
    for a, b in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if s.startswith(a) and s.endswith(b) and len(s) > len(a) + len(b):
            return s[len(a) : -len(b)].strip()
    return s


def _single_span(s: str) -> bool:
    s = s.strip()
    if s.count("$") == 2 and s.startswith("$") and s.endswith("$"):
        return True
    if s.count("$") == 4 and s.startswith("$$") and s.endswith("$$"):
        return True
    return "$" not in s and len(s.split()) <= 3 and "answer" not in s.lower()


def triples(test_dir: Path):
    for path in sorted(test_dir.glob("test_*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and getattr(node.func, "attr", "") == "parametrize"
                and len(node.args) >= 2
            ):
                continue
            try:
                names = ast.literal_eval(node.args[0])
                rows = ast.literal_eval(node.args[1])
            except ValueError:
                continue
            names = [n.strip() for n in (names.split(",") if isinstance(names, str) else names)]
            if names[:3] != ["gold", "pred", "expected"]:
                continue
            for row in rows:
                gold, pred, expected = row[:3]
                if (
                    isinstance(expected, (int, float, bool))
                    and isinstance(gold, str)
                    and isinstance(pred, str)
                ):
                    yield path.name, gold, pred, int(bool(expected))


def main(argv: list[str]) -> int:
    if argv[:1] == ["--annotate"]:
        rows = annotate([json.loads(line) for line in OUT.read_text().splitlines() if line.strip()])
        OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        print(f"{sum('dispute' in r for r in rows)} of {len(rows)} rows disputed in {OUT}")
        return 0
    test_dir = Path(argv[0] if argv else "/tmp/mv/math_verify-0.9.0/tests")
    kept, skipped = [], 0
    for fname, gold, pred, label in triples(test_dir):
        if "\\boxed" in pred:
            completion = pred
        elif _single_span(pred):
            completion = f"\\boxed{{{_strip_math(pred)}}}"
        else:
            skipped += 1
            continue
        ref = _strip_math(gold)
        if "\\boxed" in ref:
            ref = re.sub(r"^.*\\boxed\{(.*)\}.*$", r"\1", ref, flags=re.S)
        kept.append(
            {
                "cls": classify(ref),
                "completion": completion,
                "answer": ref,
                "label": label,
                "source": f"math-verify-0.9.0/tests/{fname}",
            }
        )
    kept = annotate(kept)
    with OUT.open("w") as f:
        for row in kept:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(kept)} triples to {OUT} ({skipped} free-text predictions left out)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
