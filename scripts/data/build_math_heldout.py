"""Build ``scripts/data/math_heldout.jsonl``: a held-out math-verifier set of real model outputs.

Source: the CHAMP dataset (PyPI ``champ-dataset==1.0.0``, MIT licence; Mao et al. 2024): 270
competition problems with plain-text reference answers and conversations by four models
(GPT-3.5, GPT-4, GPT-4 Turbo, PaLM 2 Medium) under 18 prompt settings. Nothing in it was used to
write the rules in ``rewards/math``; this script never changes those rules.

**Completion.** In every CHAMP conversation the model first solves the problem, then the user
asks "Now, summarize the answer above in one sentence ..." and the model answers in one
sentence. The ``completion`` is the model's solution turn and its summary turn, verbatim, joined
by a blank line (nothing added: no boxes, no "answer is"). Conversations cut off by the length
limit (``error`` set on either turn) and completions over :data:`MAX_CHARS` are left out.

**Sample (sealed seed).** :data:`SEED` was fixed before any verifier was run on CHAMP and is
not to be changed after looking at results. Problems are shuffled; problem ``k`` gets the
``k mod 6``-th pair of models (so every model gets the same number of problems), and the first
:data:`N_EXTRA` problems a third model (cycling through the four); for each (problem, model)
one of its non-truncated prompt settings is drawn at random. 270 x 2 + 60 = 600 items, 150 per
model, every problem 2 or 3 times.

**Labels.** Our verifier (``text_fallback=True``: CHAMP responses are free text) and Math-Verify
(``parse``/``verify`` as in ``scripts/bench_math.py``) grade every item. Where they agree the
verdict is the label (``label_how: agree``); a random 10% of agreements (seeded) was read by
hand (:data:`HANDCHECK`: ``True`` = verdict confirmed, else the corrected label and why).
Every disagreement was read by hand and decided in :data:`ADJUDICATED` (``label_how:
adjudicated``, ``note`` says why). Labels found wrong later are fixed in :data:`CORRECTED`
(``label_how: corrected``). ``cls`` is the shape of the reference answer
(:func:`classify`), not of anything a verifier did.

Run::

    pip download --no-deps champ-dataset==1.0.0 -d /tmp/champ
    python scripts/data/build_math_heldout.py --champ /tmp/champ/champ_dataset-1.0.0-py3-none-any.whl
    python scripts/data/build_math_heldout.py --pending   # items still to be read by hand
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import tempfile
import zipfile
from itertools import combinations
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).with_name("math_heldout.jsonl")
SEED = 314159  # sealed: fixed before the first look at any verdict; never re-drawn
MODELS = ("GPT-3.5", "GPT-4", "GPT-4 Turbo", "PaLM 2 Medium")
N_EXTRA = 60
MAX_CHARS = 12_000  # completions longer than this are left out (keeps the file under ~2 MB)
HANDCHECK_FRAC = 0.10
SUMMARY_PROMPT = "Now, summarize the answer above in one sentence"

# id -> (label, note): every disagreement between the two graders, read by hand.
ADJUDICATED: dict[str, tuple[int, str]] = {
    "P_Polynomial_12|GPT-3.5|Direct C w/o H": (0, "says at least 2 multiple roots; reference 0 roots"),
    "P_Number-Theory_58|GPT-4|0-Shot": (1, "summary: only possible value is 0"),
    "P_Inequality_3|GPT-4 Turbo|1/3 Soln": (1, "summary: smallest value is 1/3"),
    "P_Number-Theory_50|GPT-4 Turbo|5-Shot": (1, "summary: 21978"),
    "P_Inequality_23|GPT-4 Turbo|0-Shot": (1, "summary: minimum is 0"),
    "P_Number-Theory_24|GPT-4|Name C w/ H": (1, "summary: 2^32+1 mod 641 is 0"),
    "P_Polynomial_30|GPT-4|5-Shot": (1, "summary: n mod k is 0"),
    "P_Inequality_1|GPT-4 Turbo|No C w/ H": (1, "summary: interval [-1, 1]"),
    "P_Polynomial_20|GPT-4|Direct C w/ H": (1, "summary: f(x) = 0"),
    "P_Inequality_17|GPT-4 Turbo|Example C w/ H": (1, "summary: s = 1-(1/2)^(1/n), equal to reference"),
    "P_Polynomial_36|GPT-4 Turbo|Problem C w/ H": (1, "summary: a = -4"),
    "P_Polynomial_28|GPT-4 Turbo|No C w/ H": (
        0,
        "summary (2n+3)/(n+2) differs from reference ((-1)^(n+1)+n+1)/(n+2)",
    ),
    "P_Combinatorics_10|GPT-3.5|Direct C w/ H": (1, "summary: 2^(n-1)"),
    "P_Inequality_24|GPT-3.5|Misleading C w/o H": (1, "summary: smallest value 0"),
    "P_Inequality_24|GPT-4|5-Shot": (1, "summary: smallest value 0"),
    "P_Sequence_42|GPT-4|Problem C w/ H": (1, "summary: 601"),
    "P_Sequence_42|GPT-4 Turbo|Root C w/o H": (1, "summary: 601"),
    "P_Polynomial_33|GPT-4 Turbo|Root C w/ H": (1, "summary: the possible value is 0"),
    "P_Polynomial_33|GPT-4|Root C w/ H": (1, "summary: the possible value is 0"),
    "P_Inequality_13|GPT-4 Turbo|No C w/o H": (1, "summary: -9"),
    "P_Inequality_13|GPT-3.5|Direct C w/o H": (1, "summary: -9"),
    "P_Number-Theory_12|GPT-4|Direct C w/o H": (
        0,
        "lists 00, 01, 05 and 76 as the two-digit answers; reference 76 only",
    ),
    "P_Sequence_21|GPT-4 Turbo|1/3 Soln": (1, "summary: 2500"),
    "P_Number-Theory_79|GPT-3.5|Name C w/ H": (1, "summary: p mod 1979 is 0"),
    "P_Number-Theory_79|GPT-4 Turbo|Direct C w/ H": (1, "summary: p mod 1979 = 0"),
    "P_Number-Theory_52|GPT-4 Turbo|1/3 Soln": (1, "summary: 0"),
    "P_Number-Theory_52|GPT-4|Misleading C w/o H": (1, "summary: possible values ... are 0"),
    "P_Inequality_38|GPT-3.5|Name C w/o H": (1, "summary: 0"),
    "P_Inequality_38|GPT-4|Direct C w/ H": (1, "summary: 0"),
    "P_Number-Theory_78|GPT-4 Turbo|Direct C w/o H": (1, "summary: only possible value is 0"),
    "P_Combinatorics_4|GPT-4|Root C w/o H": (1, "summary: 76"),
    "P_Polynomial_34|GPT-4|Example C w/ H": (1, "summary: 0"),
    "P_Number-Theory_66|GPT-3.5|Problem C w/ H": (1, "summary: possible value is 0"),
    "P_Number-Theory_73|GPT-4 Turbo|Misleading C w/o H": (1, "summary: 0"),
    "P_Sequence_27|GPT-4 Turbo|Root C w/ H": (
        0,
        "says it cannot be determined; MV took a number from the restated question",
    ),
    "P_Polynomial_44|GPT-4|5-Shot": (1, "summary: only possible value is 0"),
    "P_Polynomial_44|GPT-4 Turbo|Direct C w/o H": (1, "summary: possible values are 0"),
    "P_Polynomial_40|GPT-4 Turbo|2/3 Soln": (1, "summary: -3"),
    "P_Combinatorics_26|GPT-3.5|Misleading C w/ H": (1, "summary: 239"),
    "P_Number-Theory_42|GPT-4 Turbo|No C w/ H": (1, "summary: at least 50 questions"),
    "P_Inequality_27|GPT-3.5|Misleading C w/o H": (1, "summary: 0"),
    "P_Inequality_27|GPT-4|Misleading C w/o H": (1, "summary: 0"),
    "P_Polynomial_6|GPT-4 Turbo|Root C w/o H": (1, "summary: (2, 1) and (1, 2)"),
    "P_Sequence_46|GPT-4|1/3 Soln": (1, "summary: there are no ways; reference 0 (no such selection)"),
    "P_Inequality_26|GPT-4|No C w/ H": (1, "summary: 0"),
    "P_Inequality_46|GPT-3.5|Example C w/ H": (1, "summary: 1/n"),
    "P_Inequality_46|PaLM 2 Medium|Example C w/ H": (
        0,
        "summary n/4; MV took 1/n from the 'achieved when x_i = 1/n' clause",
    ),
    "P_Polynomial_23|GPT-4 Turbo|Direct C w/ H": (1, "summary: 7"),
    "P_Inequality_49|GPT-4|Example C w/ H": (1, "summary: 0"),
    "P_Polynomial_18|GPT-4 Turbo|Root C w/o H": (
        0,
        "says x^8+x^4+1 is irreducible; reference is a factorisation",
    ),
    "P_Polynomial_3|GPT-4|Problem C w/o H": (1, "summary: at most 0 integer-valued zeros"),
    "P_Combinatorics_30|GPT-4 Turbo|Root C w/o H": (1, "summary: 2,001,000"),
    "P_Inequality_16|GPT-3.5|Misleading C w/o H": (1, "summary: 3/2"),
    "P_Polynomial_9|GPT-4|Problem C w/o H": (1, "summary: 5"),
    "P_Polynomial_9|GPT-4 Turbo|2/3 Soln": (1, "summary: 5"),
    "P_Number-Theory_37|GPT-4 Turbo|Problem C w/o H": (1, "summary: 0"),
    "P_Number-Theory_67|GPT-4|1/3 Soln": (1, "summary: n = 1"),
    "P_Polynomial_1|PaLM 2 Medium|Problem C w/ H": (1, "summary: 0"),
    "P_Sequence_20|GPT-4|Direct C w/ H": (1, "summary: 89"),
    "P_Sequence_20|GPT-4 Turbo|Problem C w/ H": (1, "summary: a_10 = 89"),
    "P_Sequence_10|GPT-4|No C w/ H": (1, "summary: 3"),
    "P_Number-Theory_20|GPT-3.5|Misleading C w/ H": (1, "summary: possible values are 0"),
    "P_Inequality_25|GPT-4|Problem C w/o H": (
        0,
        "summary: 22 values; MV took 100 from the restated set {1..100}",
    ),
    "P_Inequality_48|GPT-4 Turbo|No C w/o H": (1, "summary: holds for all 100 values"),
    "P_Inequality_48|PaLM 2 Medium|1/3 Soln": (1, "summary: 100 values"),
    "P_Inequality_36|GPT-3.5|Name C w/ H": (1, "summary: -1"),
    "P_Inequality_36|GPT-4 Turbo|Misleading C w/ H": (1, "summary: -1"),
    "P_Sequence_39|GPT-4|Name C w/ H": (1, "summary: all the first 100 numbers are integers"),
    "P_Sequence_39|GPT-4 Turbo|Direct C w/ H": (
        0,
        "says it cannot be determined by hand; MV took 100 from the restated question",
    ),
    "P_Inequality_15|GPT-4 Turbo|Example C w/o H": (1, "summary: 0"),
    "P_Inequality_15|PaLM 2 Medium|Problem C w/o H": (1, "summary: 0"),
    "P_Number-Theory_56|GPT-3.5|Root C w/ H": (1, "summary: possible values ... are 0"),
    "P_Inequality_8|GPT-3.5|Name C w/o H": (1, "summary: 0"),
    "P_Inequality_8|PaLM 2 Medium|Example C w/ H": (1, "summary: smallest value 0"),
    "P_Combinatorics_37|GPT-4|Root C w/ H": (0, "summary n(n+1)(2n+1)/6 - 1, off by one from the reference"),
    "P_Number-Theory_27|PaLM 2 Medium|Example C w/o H": (
        0,
        "self-contradictory chain 2^1980 = 2 = 0 (mod 1982)",
    ),
    "P_Inequality_12|GPT-3.5|1/3 Soln": (0, "summary n + (n-1)/4 + ... + 1/n^2, not sum 1/k"),
    "P_Inequality_12|GPT-4|Example C w/ H": (0, "summary n/1^2 + (n-1)/2^2 + ... + 1/n^2, not sum 1/k"),
    "P_Inequality_4|GPT-4|Misleading C w/ H": (1, "summary: 2"),
    "P_Inequality_43|GPT-3.5|Misleading C w/o H": (0, "summary 1/a; reference 1"),
    "P_Sequence_50|GPT-4 Turbo|Misleading C w/ H": (1, "summary: all 100 terms are integers"),
    "P_Sequence_28|GPT-4 Turbo|Example C w/ H": (1, "summary: 0"),
    "P_Polynomial_48|GPT-4 Turbo|5-Shot": (1, "summary: 23"),
    "P_Inequality_39|GPT-3.5|Root C w/ H": (1, "summary: 900"),
    "P_Inequality_39|GPT-4|Root C w/o H": (1, "summary: 900"),
    "P_Combinatorics_38|GPT-3.5|Problem C w/ H": (1, "summary: 240"),
    "P_Polynomial_17|GPT-3.5|Direct C w/ H": (1, "summary: 0"),
    "P_Inequality_5|GPT-4|Example C w/ H": (1, "summary: 1"),
    "P_Inequality_5|GPT-4 Turbo|Root C w/ H": (1, "summary: 1"),
    "P_Inequality_42|GPT-4 Turbo|2/3 Soln": (1, "summary: 3"),
    "P_Inequality_50|GPT-3.5|Direct C w/ H": (0, "summary -c^4 - b^4; reference 0"),
    "P_Inequality_50|GPT-4|5-Shot": (1, "summary: 0"),
    "P_Polynomial_10|GPT-3.5|Name C w/ H": (0, "gives a family of polynomials, not 0"),
    "P_Polynomial_10|PaLM 2 Medium|1/3 Soln": (0, "lists 0, x, x^2, ..., x^(n-1); reference 0 only"),
    "P_Inequality_47|GPT-4|Problem C w/o H": (1, "summary: 8"),
    "P_Inequality_19|PaLM 2 Medium|Misleading C w/o H": (1, "summary: at most two of the inequalities"),
}

# id -> True (agreement verdict confirmed by reading) or (corrected label, note).
HANDCHECK: dict[str, bool | tuple[int, str]] = {
    "P_Number-Theory_39|GPT-4 Turbo|5-Shot": True,
    "P_Number-Theory_58|PaLM 2 Medium|Name C w/ H": True,
    "P_Number-Theory_29|GPT-3.5|Example C w/ H": True,
    "P_Number-Theory_49|GPT-4 Turbo|Example C w/o H": (1, "summary says 'Yes, ...'; reference Yes"),
    "P_Sequence_18|GPT-3.5|Name C w/ H": (1, "summary: limit exists and equals 4"),
    "P_Polynomial_11|GPT-4|0-Shot": True,
    "P_Number-Theory_24|GPT-3.5|Direct C w/o H": True,
    "P_Sequence_30|PaLM 2 Medium|Name C w/o H": True,
    "P_Polynomial_30|PaLM 2 Medium|Root C w/ H": (
        1,
        "says n=kq, i.e. n mod k = 0 (loose wording, judged correct)",
    ),
    "P_Inequality_24|PaLM 2 Medium|Example C w/o H": True,
    "P_Polynomial_16|PaLM 2 Medium|Problem C w/o H": True,
    "P_Inequality_37|GPT-3.5|Example C w/o H": True,
    "P_Number-Theory_11|GPT-3.5|5-Shot": True,
    "P_Number-Theory_11|GPT-4|Name C w/ H": True,
    "P_Number-Theory_12|PaLM 2 Medium|Root C w/ H": True,
    "P_Number-Theory_79|PaLM 2 Medium|No C w/ H": True,
    "P_Sequence_48|PaLM 2 Medium|2/3 Soln": True,
    "P_Number-Theory_66|GPT-4|Example C w/ H": True,
    "P_Number-Theory_73|GPT-3.5|Name C w/ H": (
        1,
        "says the value is a multiple of 323, i.e. residue 0 (loose wording, judged correct)",
    ),
    "P_Number-Theory_2|GPT-4|No C w/ H": (1, "summary says 'No, ...'; reference No"),
    "P_Number-Theory_36|PaLM 2 Medium|Example C w/ H": True,
    "P_Polynomial_40|PaLM 2 Medium|Name C w/ H": True,
    "P_Combinatorics_20|GPT-4 Turbo|No C w/ H": True,
    "P_Number-Theory_6|PaLM 2 Medium|Example C w/ H": True,
    "P_Polynomial_29|PaLM 2 Medium|Example C w/o H": True,
    "P_Number-Theory_16|GPT-4 Turbo|Direct C w/o H": (1, "summary: there is no such n; reference No"),
    "P_Number-Theory_72|PaLM 2 Medium|Problem C w/ H": True,
    "P_Inequality_40|GPT-4 Turbo|Example C w/o H": (
        1,
        "summary: at most two inequalities; reference '2 inequalities'",
    ),
    "P_Combinatorics_21|GPT-4|1/3 Soln": True,
    "P_Combinatorics_11|GPT-3.5|Name C w/o H": True,
    "P_Combinatorics_11|PaLM 2 Medium|Direct C w/o H": True,
    "P_Polynomial_7|GPT-3.5|1/3 Soln": True,
    "P_Number-Theory_22|GPT-3.5|Example C w/ H": True,
    "P_Number-Theory_22|GPT-4 Turbo|No C w/ H": (1, "summary: 3^105+4^105 modulo 7 is 0; reference 0"),
    "P_Combinatorics_14|GPT-4 Turbo|Name C w/ H": True,
    "P_Combinatorics_18|GPT-4|Direct C w/ H": (1, "summary: 5050 triples; reference 5050"),
    "P_Number-Theory_54|PaLM 2 Medium|0-Shot": True,
    "P_Polynomial_25|PaLM 2 Medium|Direct C w/o H": True,
    "P_Combinatorics_17|GPT-4|Example C w/ H": (1, "summary: such a polyhedron cannot exist; reference No"),
    "P_Combinatorics_35|GPT-3.5|No C w/o H": True,
    "P_Polynomial_13|GPT-4|Root C w/ H": (1, "summary: a = 3 and b = -4; reference a=3, b=-4"),
    "P_Sequence_50|PaLM 2 Medium|Problem C w/o H": True,
    "P_Inequality_20|PaLM 2 Medium|Example C w/o H": True,
    "P_Combinatorics_1|PaLM 2 Medium|Root C w/ H": True,
    "P_Combinatorics_25|GPT-3.5|Problem C w/ H": True,
    "P_Combinatorics_25|GPT-4 Turbo|Misleading C w/o H": (1, "summary: n!; reference n!"),
    "P_Inequality_6|PaLM 2 Medium|Misleading C w/o H": True,
    "P_Number-Theory_7|GPT-3.5|Name C w/o H": True,
    "P_Inequality_28|GPT-3.5|Root C w/ H": True,
    "P_Number-Theory_60|GPT-4|Root C w/o H": (1, "summary: x = 3; reference 3 is the only possible value"),
}


# Labels corrected after the set was built (session 3). Both verifiers had rejected these
# responses, so they were unchecked "agree" rows; the prose fallback of a later verifier version
# accepted them, and reading each by hand showed the response states the reference answer.
# Applied after everything else, so the labels do not depend on which verifier version re-runs
# the build.
CORRECTED: dict[str, tuple[int, str]] = {
    "P_Inequality_29|GPT-3.5|Name C w/o H": (
        1,
        "states the reference in prose: " + "'the smallest value of the expression is 2^(m+1)'",
    ),
    "P_Inequality_29|GPT-4|0-Shot": (
        1,
        "states the reference in prose: " + "'the smallest value ... is 2 * 2^m' = 2^(m+1)",
    ),
    "P_Combinatorics_10|GPT-4 Turbo|1/3 Soln": (
        1,
        "states the reference in prose: " + "'the number of sequences ... is 2^(n-1)'",
    ),
    "P_Inequality_11|GPT-4 Turbo|Direct C w/ H": (
        1,
        "states the reference in prose: " + "'the smallest value ... as an expression of n is 2^n'",
    ),
    "P_Polynomial_21|GPT-4 Turbo|5-Shot": (
        1,
        "states the reference in prose: " + "'are a = 3, b = -7, and c = 4'",
    ),
    "P_Combinatorics_9|GPT-4|2/3 Soln": (
        1,
        "states the reference in prose: " + "'the sum of all subset reciprocal products ... is n'",
    ),
    "P_Combinatorics_19|GPT-4|Direct C w/ H": (
        1,
        "states the reference in prose: " + "'n*2^(n-1) + n*(n-1)*2^(n-2)' = n(n+1)2^(n-2)",
    ),
    "P_Number-Theory_74|GPT-4 Turbo|Direct C w/o H": (
        1,
        "states the reference in prose: " + "'the only positive integer value of x ... is x = 3'",
    ),
    "P_Combinatorics_31|GPT-4|Direct C w/ H": (
        1,
        "states the reference in prose: " + "'there are 120 possible results'",
    ),
    "P_Combinatorics_6|GPT-4 Turbo|Root C w/o H": (
        1,
        "states the reference in prose: " + "'the number of ways ... is 2^(n-1)'",
    ),
    "P_Inequality_4|GPT-3.5|Name C w/ H": (
        1,
        "states the reference in prose: " + "'the smallest value of (x^2+2)/sqrt(x^2+1) for real x is 2'",
    ),
}


def classify(ref: str) -> str:
    """Shape of a CHAMP reference answer."""
    r = ref.strip()
    if re.fullmatch(r"(?i)(yes|no)\b.*", r):
        return "yes/no"
    if re.fullmatch(r"-?\d+", r):
        return "integer"
    if re.search(r"or equivalently|or an equivalent", r):
        return "expression"
    head = re.split(r"\s*\(", r)[0] if re.fullmatch(r"-?\d+ \(.*\)", r) else r
    if re.fullmatch(r"-?\d+ \w+", head) or re.fullmatch(r"-?\d+", head):
        return "number+words"
    if re.search(r"=|\band\b|,", head) and not re.search(r"[A-Za-z]{4,}", head.replace("and", "")):
        return "tuple/list"
    if re.search(r"[A-Za-z]{3,}", re.sub(r"sqrt|floor|sum_|C\(", "", head)):
        return "verbal"
    return "expression"


def _champ_json(src: str | None) -> dict:
    if src is None:
        tmp = tempfile.mkdtemp(prefix="champ-")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "champ-dataset==1.0.0", "-d", tmp],
            check=True,
        )
        src = str(next(Path(tmp).iterdir()))
    p = Path(src)
    if p.is_dir():
        p = next(p.rglob("v0.json"))
    if p.suffix == ".json":
        return json.loads(p.read_text())
    if p.suffix == ".whl" or p.suffix == ".zip":
        with zipfile.ZipFile(p) as z:
            name = next(n for n in z.namelist() if n.endswith("dataset_files/v0.json"))
            return json.loads(z.read(name))
    import tarfile

    with tarfile.open(p) as t:
        m = next(m for m in t.getmembers() if m.name.endswith("dataset_files/v0.json"))
        return json.loads(t.extractfile(m).read())  # type: ignore[union-attr]


def _completion(messages: list[dict]) -> str | None:
    """Solution turn + summary turn, verbatim; None if truncated or malformed."""
    if any(m.get("error") for m in messages):
        return None
    k = max(
        (i for i, m in enumerate(messages) if m["role"] == "User" and m["text"].startswith(SUMMARY_PROMPT)),
        default=-1,
    )
    if k < 1 or k + 1 >= len(messages):
        return None
    sol, summ = messages[k - 1], messages[k + 1]
    if not (sol["role"].startswith("Model.") and summ["role"].startswith("Model.")):
        return None
    if not sol["text"].strip() or not summ["text"].strip():
        return None
    return sol["text"].rstrip() + "\n\n" + summ["text"].strip()


def sample(data: dict) -> list[dict]:
    rng = random.Random(SEED)
    problems = sorted(data["problems"])
    rng.shuffle(problems)
    pairs = list(combinations(MODELS, 2))
    rows = []
    for k, pid in enumerate(problems):
        p = data["problems"][pid]
        models = list(pairs[k % len(pairs)])
        if k < N_EXTRA:
            rest = [m for m in MODELS if m not in models]
            models.append(rest[(k // len(pairs)) % len(rest)])
        for model in models:
            options = []
            for key in sorted(p["conversations"]):
                m, setting = key.split("|")
                if m != model:
                    continue
                c = _completion(p["conversations"][key]["messages"])
                if c is not None and len(c) <= MAX_CHARS:
                    options.append((setting, c))
            if not options:
                continue
            setting, completion = rng.choice(options)
            rows.append(
                {
                    "id": f"{pid}|{model}|{setting}",
                    "source": f"champ/{model}",
                    "cls": classify(p["_answer"]),
                    "problem": p["_text"],
                    "completion": completion,
                    "answer": p["_answer"],
                }
            )
    return rows


def grade(rows: list[dict]) -> None:
    """Add ``ours`` (text_fallback=True) and ``mv`` verdicts to each row."""
    sys.path.insert(0, str(ROOT / "scripts"))
    sys.path.insert(0, str(ROOT))
    import bench_math

    from rewards.math import judge_batch
    from rewards.pool import DeadlinePool

    pool = DeadlinePool(1, 1.0, initializer="rewards.math.symbolic:warm_up", spares=1)
    mv_pool = DeadlinePool(1, 10.0, initializer="bench_math:mv_warm", spares=0)
    ours = judge_batch(
        [r["completion"] for r in rows], [r["answer"] for r in rows], pool=pool, text_fallback=True
    )
    mv = mv_pool.map(bench_math.mv_task, [(r["completion"], r["answer"]) for r in rows])
    for r, o, m in zip(rows, ours, mv):
        r["ours"] = int(o.reward >= 0.5)
        r["mv"] = int(m.ok and m.value[0] >= 0.5)
    pool.close()
    mv_pool.close()


def label(rows: list[dict]) -> list[dict]:
    """Apply agreements, HANDCHECK and ADJUDICATED; returns the items still to read."""
    agree = [r for r in rows if r["ours"] == r["mv"]]
    rng = random.Random(SEED + 1)
    checked = {r["id"] for r in rng.sample(agree, round(HANDCHECK_FRAC * len(agree)))}
    todo = []
    for r in rows:
        r["note"], r["hand_checked"] = "", False
        if r["ours"] == r["mv"]:
            r["label"], r["label_how"] = r["ours"], "agree"
            r["hand_checked"] = r["id"] in checked
            if r["id"] in checked:
                hc = HANDCHECK.get(r["id"])
                if hc is None:
                    todo.append(r)
                elif hc is not True:
                    r["label"], r["note"] = hc[0], "agreement corrected by hand: " + hc[1]
        else:
            r["label_how"] = "adjudicated"
            if r["id"] in ADJUDICATED:
                r["label"], r["note"] = ADJUDICATED[r["id"]]
            else:
                r["label"] = -1
                todo.append(r)
        if r["id"] in CORRECTED:
            r["label"], r["note"] = CORRECTED[r["id"]]
            r["label_how"], r["hand_checked"] = "corrected", True
    return todo


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--champ", default=None, help="CHAMP wheel/sdist/dir/v0.json (default: pip download it)")
    ap.add_argument("--pending", action="store_true", help="print the items still to be read by hand")
    ap.add_argument("--cache", default=None, help="reuse/save graded rows here (JSON), to skip re-grading")
    args = ap.parse_args(argv)
    if args.cache and Path(args.cache).exists():
        rows = json.loads(Path(args.cache).read_text())
    else:
        rows = sample(_champ_json(args.champ))
        grade(rows)
        if args.cache:
            Path(args.cache).write_text(json.dumps(rows))
    todo = label(rows)
    if args.pending:
        for r in todo:
            tail = r["completion"][-700:]
            print(
                f"=== {r['id']} ours={r['ours']} mv={r['mv']} [{r['label_how']}]\nREF: {r['answer']}\nEND: {tail}\n"
            )
        print(f"# {len(todo)} to read", file=sys.stderr)
        return 0
    if todo:
        print(f"{len(todo)} items not yet read by hand; run with --pending", file=sys.stderr)
        return 1
    keys = (
        "id",
        "source",
        "cls",
        "problem",
        "completion",
        "answer",
        "label",
        "label_how",
        "note",
        "hand_checked",
        "ours",
        "mv",
    )
    with OUT.open("w") as f:
        for r in rows:
            f.write(json.dumps({k: r[k] for k in keys}, ensure_ascii=False) + "\n")
    n_adj = sum(r["label_how"] == "adjudicated" for r in rows)
    n_hc = sum(r.get("hand_checked", False) for r in rows)
    n_fix = sum(r["note"].startswith("agreement corrected") for r in rows)
    print(
        f"wrote {len(rows)} items to {OUT} ({OUT.stat().st_size / 1e6:.2f} MB): agree {len(rows) - n_adj}, "
        f"adjudicated {n_adj}, agreements hand-checked {n_hc} (corrected {n_fix})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
