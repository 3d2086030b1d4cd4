"""scripts/exp_distill.py's bookkeeping: combined tables label each row by student and overrides, references
are reused only when evaluated the same way (the experiment itself runs real models: docs/distillation.md)."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("exp_distill", ROOT / "scripts" / "exp_distill.py")
exp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(exp)


def _row(method, seed, acc, peak=None, path=None):
    row = {"method": method, "seed": seed, "accuracy": acc, "params": 10, "maj_at_k": acc}
    row.update({"tokens_per_s": 1.0, "memory_mb": 1.0, "train_s": None if seed is None else 5.0})
    row.update({"accuracy_math": acc, "accuracy_code": acc, "eval_peak_mb": peak, "model_path": path})
    return row


def _output(
    tmp_path, name, student, overrides, rows, eval_tasks=64, align_loss="nmse", progressive_loss=None
):
    distill = {"hidden_align_weight": 0.0, "hidden_align_loss": align_loss}
    if progressive_loss is not None:  # outputs before the setting existed have no key
        distill["progressive_loss"] = progressive_loss
    meta = {"overrides": overrides, "eval_tasks": eval_tasks, "traces": 40, "distill": distill}
    if student is not None:
        meta["student"] = student
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"meta": meta, "rows": rows}))
    return path


def test_combine_labels_rows_and_keeps_measured_references(tmp_path):
    old = _output(  # written before --student-base: no student in meta, no measured memory
        tmp_path, "old", None, [],
        [_row("teacher", None, 0.4), _row("student base", None, 0.0), _row("sft", 0, 0.3),
         _row("hidden_align", 0, 0.0), _row("progressive_experts", 0, 0.1)],
        align_loss="mse",
    )  # fmt: skip
    new = _output(
        tmp_path, "new", "cut", ["distill.attention_align_weight=1.0", "run.threads=1"],
        [_row("teacher", None, 0.4, 900.0), _row("student base", None, 0.0, 300.0), _row("logit_kd", 1, 0.2),
         _row("progressive_experts", 1, 0.2)],
        progressive_loss="nmse",
    )  # fmt: skip
    rows = exp.combine([old, new])
    labels = [r["method"] for r in rows]
    assert labels == [
        "teacher", "smol-26l: student base", "smol-26l: sft", "smol-26l: hidden_align (mse)",
        "smol-26l: progressive_experts (mse)", "cut: student base",
        "cut: logit_kd [distill.attention_align_weight=1.0]",
        "cut: progressive_experts (nmse) [distill.attention_align_weight=1.0]",
    ]  # fmt: skip
    assert rows[0]["eval_peak_mb"] == 900.0  # the reference with measured memory replaces the one without
    summary = exp.summarise(rows, rows[0]["accuracy"])
    assert summary[2]["retention"] == pytest.approx(0.75)
    assert "| – |" in exp.table(summary)  # missing measurements print as a dash


def test_combine_refuses_outputs_evaluated_differently(tmp_path):
    a = _output(tmp_path, "a", "x", [], [_row("teacher", None, 0.4)])
    b = _output(tmp_path, "b", "x", [], [_row("teacher", None, 0.4)], eval_tasks=8)
    with pytest.raises(SystemExit, match="differs from .* in eval_tasks"):
        exp.combine([a, b])


def test_references_are_reused_only_under_the_same_evaluation(tmp_path):
    meta = {"run_dir": "runs/r", "eval_tasks": 64, "eval": {"num_samples": 4}, "threads": 1}
    path = tmp_path / "ref.json"
    rows = [_row("teacher", None, 0.4, 900.0, "runs/r/models/t"), _row("sft", 0, 0.3, 1.0, "x")]
    path.write_text(json.dumps({"meta": meta, "rows": rows}))
    assert list(exp.reusable_references(path, meta)) == ["runs/r/models/t"]
    with pytest.raises(SystemExit, match="evaluated differently \\(eval differ\\)"):
        exp.reusable_references(path, {**meta, "eval": {"num_samples": 8}})
