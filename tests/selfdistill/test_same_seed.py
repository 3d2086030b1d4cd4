"""The same seed twice gives the same figures (issue 17): two fresh runs of the embedded demo, shortened, in two
directories (pre-training included), must write identical evaluation rows to report.json. Slow (about two
minutes on one core): `pytest -m slow tests/selfdistill/test_same_seed.py`.

Only the throughput column is left out of the comparison: tokens/s is a timing, not a result.
"""

import json
import subprocess
import sys

import pytest
from test_resume import TINY_RUN, _env

TIMINGS = frozenset({"tokens_per_s"})


def _eval_rows(out) -> list[dict]:
    report = json.loads((out / "r" / "report.json").read_text())
    return [{k: v for k, v in row.items() if k not in TIMINGS} for row in report["eval"]]


@pytest.mark.slow
def test_same_seed_twice_gives_identical_report_rows(tmp_path):
    rows = []
    for name in ("first", "second"):
        out, log = tmp_path / name, tmp_path / f"{name}.log"
        cmd = [sys.executable, "-m", "selfdistill.cli", "run", *TINY_RUN, f"run.output_dir={out}"]
        proc = subprocess.run(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=_env(), timeout=900)
        assert proc.returncode == 0, log.read_text()[-3000:]
        rows.append(_eval_rows(out))
    models = [r["model"] for r in rows[0]]
    assert "base" in models and any(r["role"] == "student" for r in rows[0]), models
    assert len({r["accuracy"] for r in rows[0]}) > 1, "every model scored the same: nothing was compared"
    assert rows[0] == rows[1]
