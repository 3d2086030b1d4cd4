"""The embedded default end to end (slow: minutes). Run with `pytest -m slow tests/selfdistill/test_demo.py`.

Checks what the demo achieves on a fresh run directory (seed 0; the 3-seed figures are in
docs/benchmarks.md): the final policy at least 20 points above the base on held-out pass@1 and at
least 10 points above it on math alone; the best student keeps at least 90% of the policy's pass@1
and of its math with at most 1/3 of its parameters; the report has every documented key, W&B
offline runs exist, and re-running resumes instantly with the same evaluation rows.
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
    base, final, student = rows["base"], rows[s["final_policy"]], rows[s["best_student"]]
    assert s["policy_gain_points"] >= 20, s
    assert final["accuracy_math"] - base["accuracy_math"] >= 0.10, (base, final)
    assert s["student_retention"] >= 0.9 and s["student_param_ratio"] <= 1 / 3, s
    assert student["accuracy_math"] >= 0.9 * final["accuracy_math"], (student, final)
    assert rows["base"]["role"] == "base" and report["split"]["overlap"] == 0
    for name in ("report.md", "rl_reward.png", "accuracy.png"):
        assert (run_dir / name).stat().st_size > 0
    assert list((run_dir / "wandb").glob("offline-run-*"))
    again = subprocess.run(cmd, check=True, timeout=600, capture_output=True, text=True)
    assert (
        "skip" in again.stderr and json.loads((run_dir / "report.json").read_text())["eval"] == report["eval"]
    )
