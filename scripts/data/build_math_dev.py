"""Build the math dev sets from Math-Verify's own test suite (sdist, Apache-2.0/MIT).

Every ``@pytest.mark.parametrize("gold,pred,expected", [...])`` list in the sdist's ``tests/``
is read with ``ast`` (never imported or executed). Each triple becomes
``{"cls", "completion", "answer", "label", "source"}``.

* **Reference** (:func:`reference`): the gold's boxed answer; a gold with several distinct boxes
  (``\\boxed{1} and \\boxed{-2}``) is that list; a gold that is a whole solution with no box gives
  the final answer its conclusion states; otherwise the gold with its ``$`` delimiters stripped.
* **Completion**: a prediction with a ``\\boxed`` is used as is, and one that is a single math span
  is boxed: those go to ``math_dev.jsonl`` (scored with the default, boxed-only policy). Free-text
  predictions go to ``math_dev_prose.jsonl``, scored with ``text_fallback=True``.
* ``cls`` comes from the reference's shape (:func:`classify`).

**Labels follow issue 3's policy where it is explicit.** A few of Math-Verify's expectations
follow its own policy instead (the last side of an equality chain, text read past the last box).
Those rows carry ``label`` = the policy's verdict, ``mv_label`` = Math-Verify's expectation and
``policy`` = why (:data:`POLICY`); the benchmark reports accuracy against both.

Run::

    pip download --no-deps --no-binary :all: math-verify==0.9.0 -d /tmp/mv && tar xzf /tmp/mv/*.tar.gz -C /tmp/mv
    python scripts/data/build_math_dev.py /tmp/mv/math_verify-0.9.0/tests
    python scripts/data/build_math_dev.py --annotate     # re-apply POLICY to the existing file only
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from rewards.math.extract import find_boxes  # noqa: E402
from rewards.math.prose import prose_answer  # noqa: E402

OUT = Path(__file__).with_name("math_dev.jsonl")
PROSE_OUT = Path(__file__).with_name("math_dev_prose.jsonl")

_CHAIN = (
    "a boxed equality chain with a false link: issue 3's policy scores `\\boxed{4 = 3}` 0 (every side must "
    "equal the reference); Math-Verify reads only the last side"
)
_LAST_BOX = "the last box (255) is an intermediate value; issue 3's policy grades the last box, the text answer is not read"
_MEMBER = (
    "`-2 \\le x \\le 7` states `x \\in [-2,7]`: a constant-bounded chain on the named variable is accepted "
    "(Math-Verify's default rejects relation predictions for set golds, to stop restated inequalities)"
)
# (reference, end of the completion) -> (label under issue 3's policy, why it differs from
# Math-Verify's expectation). The row's ``label`` follows the policy; ``mv_label`` keeps Math-Verify's.
POLICY: dict[tuple[str, str], tuple[int, str]] = {
    ("x = 11", "\\boxed{x = 5+5+1 = 7 =11}"): (0, _CHAIN),
    ("x = 1/3", "\\boxed{x = 5+5+1 = 1/3 \\approx 11}"): (0, _CHAIN),
    ("z = 1 + 1 = 2", "\\boxed{z = 3+3 = 2}"): (0, _CHAIN),
    ("10455", "he final answer is $10,455$. I hope it is correct."): (0, _LAST_BOX),
    ("10/9", "Answer $ \\frac{1}{2} \\$ = \\frac{10}{9} $"): (0, _CHAIN),
    ("x \\in [-2,7]", "\\boxed{-2 \\\\le x \\\\le 7}"): (1, _MEMBER),
}
# Math-Verify's defaults (``verify``/the tests' ``compare_strings``): a parametrized row that sets
# an option to another value tests that option, not the configuration the benchmark runs.
MV_DEFAULTS = {"precision": 6, "strict": True, "allow_set_relation_comp": False}


def policy_label(answer: str, completion: str, label: int) -> tuple[int, str] | None:
    """(label, why) when issue 3's policy scores this row the other way from Math-Verify's test."""
    for (ref, tail), (want, why) in POLICY.items():
        if want != label and answer == ref and completion.endswith(tail):
            return want, why
    return None


def annotate(rows: list[dict]) -> list[dict]:
    """Apply :data:`POLICY`: ``label`` becomes the policy's, ``mv_label`` keeps the test's expectation."""
    out = []
    for row in rows:
        mv = row.pop("mv_label", row["label"])
        row = {k: v for k, v in row.items() if k not in ("policy", "dispute")}
        row["label"] = mv
        got = policy_label(row["answer"], row["completion"], mv)
        out.append({**row, "label": got[0], "mv_label": mv, "policy": got[1]} if got else row)
    return out


_LIST_GAP = re.compile(r"^[^A-Za-z]*$|,|\band\b")  # no words between boxes, or an "and"/comma


def reference(gold: str) -> str:
    """The answer a gold states.

    Its boxed answer; several distinct boxes joined by "and", commas or symbols only
    (``\\boxed{1} and \\boxed{-2}``, ``\\boxed{1},\\boxed{2}``) are that list, boxes with other words
    between them give the last one;
    a whole solution with no box gives the final answer its conclusion states; otherwise the gold
    with its ``$`` delimiters stripped.
    """
    boxes = [b.strip() for b in find_boxes(gold) if b.strip()]
    if boxes:
        spans, pos = [], 0
        for b in boxes:
            at = gold.find(b, pos)
            spans.append((at, at + len(b)))
            pos = at + len(b)
        gaps = [gold[end:start] for (_, end), (start, _) in zip(spans, spans[1:])]
        gaps = [re.sub(r"\\(?:boxed|fbox)|[{}]", "", g).strip() for g in gaps]
        if all(_LIST_GAP.search(g) for g in gaps):
            distinct = list(dict.fromkeys(boxes))
            return distinct[0] if len(distinct) == 1 else ", ".join(distinct)
        return boxes[-1]
    ref = _strip_math(gold)
    if len(ref) > 100:  # a whole solution: what its conclusion states
        return prose_answer(ref) or ref
    return ref


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
            options = names[3:]
            for row in rows:
                if any(MV_DEFAULTS.get(k, v) != v for k, v in zip(options, row[3:])):
                    continue  # tests a non-default Math-Verify option
                gold, pred, expected = row[:3]
                if (
                    isinstance(expected, (int, float, bool))
                    and isinstance(gold, str)
                    and isinstance(pred, str)
                ):
                    yield path.name, gold, pred, int(bool(expected))


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def main(argv: list[str]) -> int:
    if argv[:1] == ["--annotate"]:
        rows = annotate([json.loads(line) for line in OUT.read_text().splitlines() if line.strip()])
        _write(OUT, rows)
        print(f"{sum('policy' in r for r in rows)} of {len(rows)} rows labelled by policy in {OUT}")
        return 0
    test_dir = Path(argv[0] if argv else "/tmp/mv/math_verify-0.9.0/tests")
    boxed, prose = [], []
    for fname, gold, pred, label in triples(test_dir):
        ref = reference(gold)
        row = {
            "cls": classify(ref),
            "answer": ref,
            "label": label,
            "source": f"math-verify-0.9.0/tests/{fname}",
        }
        if "\\boxed" in pred:
            boxed.append({**row, "completion": pred})
        elif _single_span(pred):
            boxed.append({**row, "completion": f"\\boxed{{{_strip_math(pred)}}}"})
        else:
            prose.append({**row, "completion": pred})
    boxed, prose = annotate(boxed), annotate(prose)
    _write(OUT, boxed)
    _write(PROSE_OUT, prose)
    print(
        f"wrote {len(boxed)} boxed rows to {OUT} ({sum('policy' in r for r in boxed)} relabelled by policy)"
    )
    print(
        f"wrote {len(prose)} free-text rows to {PROSE_OUT} ({sum('policy' in r for r in prose)} relabelled by policy)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
