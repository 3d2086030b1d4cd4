"""Build ``scripts/data/math_dev.jsonl`` from Math-Verify's own test suite (sdist, Apache-2.0/MIT).

Every ``@pytest.mark.parametrize("gold,pred,expected", [...])`` list in the sdist's ``tests/``
is read with ``ast`` (never imported or executed). Each triple becomes
``{"cls", "completion", "answer", "label", "source"}``: the gold (``$``-delimiters stripped) is
the reference; a prediction that has a ``\\boxed`` is used as is, a prediction that is one math
span (``$...$``/``\\(...\\)``/bare) is boxed; free-text predictions are counted and left out
(our policy needs a box). ``cls`` comes from the reference's shape (:func:`classify`).

Run::

    pip download --no-deps --no-binary :all: math-verify==0.9.0 -d /tmp/mv && tar xzf /tmp/mv/*.tar.gz -C /tmp/mv
    python scripts/data/build_math_dev.py /tmp/mv/math_verify-0.9.0/tests
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

OUT = Path(__file__).with_name("math_dev.jsonl")


def classify(ref: str) -> str:
    """Answer class of a reference, from its shape only."""
    r = ref.replace(" ", "")
    checks = [
        ("matrix", r"\\begin\{[pbv]?matrix"), ("interval", r"^[\[(].*,.*[\])]$.*(?<![^\]])|\\cup|\\infty"),
        ("inequality", r"\\[lg]eq?|<|>"), ("equation", r"="), ("set", r"^\\\{"), ("percent", r"%"),
        ("degrees", r"\\circ|°"), ("tuple", r"^\(.*,.*\)$"), ("list", r","), ("choice", r"^\(?[A-E]\)?$"),
        ("text", r"\\text|^[A-Za-z]{2,}$"), ("complex", r"(?<![a-z\\])i(?![a-z])"),
        ("integer", r"^-?\d+$"), ("decimal", r"^-?\d*\.\d+$"), ("fraction", r"^-?\\[dt]?frac\{-?\d+\}\{\d+\}$|^-?\d+/\d+$"),
        ("constant", r"\\sqrt|\\pi|\be\b|\\log|\\ln|\\sin|\\cos|\\tan"), ("symbolic", r"[a-zA-Z]"),
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
            if not (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "parametrize" and len(node.args) >= 2):
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
                if isinstance(expected, (int, float, bool)) and isinstance(gold, str) and isinstance(pred, str):
                    yield path.name, gold, pred, int(bool(expected))


def main(argv: list[str]) -> int:
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
        kept.append({"cls": classify(ref), "completion": completion, "answer": ref, "label": label,
                     "source": f"math-verify-0.9.0/tests/{fname}"})
    with OUT.open("w") as f:
        for row in kept:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(kept)} triples to {OUT} ({skipped} free-text predictions left out)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
