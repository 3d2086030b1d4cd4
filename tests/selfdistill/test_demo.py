"""The embedded default end to end (slow: minutes). Run with `pytest -m slow tests/selfdistill/test_demo.py`.

Checks the issue's promises on a fresh run directory: the loop learns (final policy >= base +
15 points), the best student keeps >= 90% of the policy with <= 1/3 of its parameters, the
report has every documented key, W&B offline runs exist, and re-running resumes instantly.
"""

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_demo_learns_and_resumes(tmp_path):
    cmd = [sys.executable, "-m", "selfdistill.cli", "run", f"run.output_dir={tmp_path}"]
    subprocess.run(cmd, check=True, timeout=1800)
    run_dir = tmp_path / "demo"
    report = json.loads((run_dir / "report.json").read_text())
    rows = {r["model"]: r for r in report["eval"]}
    for row in report["eval"]:
        assert {
            "model",
            "role",
            "round",
            "params",
            "accuracy",
            "accuracy_math",
            "accuracy_code",
            "maj_at_k",
        } <= set(row)
        assert row["k"] >= 4 and row["temperature"] >= 0.6
    s = report["summary"]
    assert s["policy_gain_points"] >= 15, s
    assert s["student_retention"] >= 0.9 and s["student_param_ratio"] <= 1 / 3, s
    assert rows["base"]["role"] == "base" and report["split"]["overlap"] == 0
    for name in ("report.md", "rl_reward.png", "accuracy.png"):
        assert (run_dir / name).stat().st_size > 0
    assert list((run_dir / "wandb").glob("offline-run-*"))
    again = subprocess.run(cmd, check=True, timeout=600, capture_output=True, text=True)
    assert (
        "skip" in again.stderr and json.loads((run_dir / "report.json").read_text())["eval"] == report["eval"]
    )
