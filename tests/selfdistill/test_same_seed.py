"""The same seed twice gives the same figures (issue 17): two fresh runs of the embedded demo's plan (rft_rounds,
two rounds: rejection-sampling fine-tuning, then RL with dynamic sampling and difficulty filtering, collect and
SFT; the merged student), shortened, in two directories (pre-training included), must write identical
evaluation rows to report.json. Slow (about two minutes on one core):
`pytest -m slow tests/selfdistill/test_same_seed.py`.

Only the throughput column is left out of the comparison: tokens/s is a timing, not a result.
"""

import json
import subprocess
import sys

import pytest
from test_resume import TINY_RUN, _env

TIMINGS = frozenset({"tokens_per_s"})
# the resume tests' short settings on the demo's own plan, two rounds so that RL runs
SHORT = [o for o in TINY_RUN if not o.startswith(("pipeline.preset=", "run.rounds="))] + [
    "run.rounds=2",
    "tasks.eval_max=20",
    "eval.num_samples=2",
]


def _eval_rows(out) -> list[dict]:
    report = json.loads((out / "r" / "report.json").read_text())
    return [{k: v for k, v in row.items() if k not in TIMINGS} for row in report["eval"]]


@pytest.mark.slow
def test_same_seed_twice_gives_identical_report_rows(tmp_path):
    rows = []
    for name in ("first", "second"):
        out, log = tmp_path / name, tmp_path / f"{name}.log"
        cmd = [sys.executable, "-m", "selfdistill.cli", "run", *SHORT, f"run.output_dir={out}"]
        proc = subprocess.run(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=_env(), timeout=900)
        assert proc.returncode == 0, log.read_text()[-3000:]
        rows.append(_eval_rows(out))
    models = [r["model"] for r in rows[0]]
    assert models == ["base", "policy-r1", "policy-r2", "student-dense"], models
    assert len({(r["accuracy"], r["format_rate"]) for r in rows[0]}) > 1, "every model scored the same"
    assert rows[0] == rows[1]
