"""W&B lineage of an offline pipeline run, read back from the runs' transaction logs (``run-*.wandb``).

No server is involved: each stage's offline run directory holds its artifact records (outputs, and
inputs flagged ``use_after_commit``), which is exactly what ``wandb sync`` would send. A use is tied
to a produce by (artifact name, digest): the consumer rebuilds its producer's artifact, and W&B
resolves equal digests to the same version. The test checks the edges base -> RL -> traces -> SFT ->
student -> report exist, that no artifact is used before some run produced it, and that large models
go by reference.
"""

from __future__ import annotations

import pytest

from selfdistill import lineage
from selfdistill.config import load_config
from selfdistill.pipeline import run_pipeline

TINY_TRACKED = [
    "run.rounds=1",
    "pipeline.preset=rounds",  # RL in round 1 (the demo starts with rejection-sampling fine-tuning)
    "run.name=lin",
    "tracking.report_to=wandb",
    "tracking.mode=offline",
    "tasks.sources.0.n=60",
    "tasks.sources.1.n=30",
    "tasks.eval_max=2",
    "eval.num_samples=1",
    "eval.max_new_tokens=8",
    "policy.bootstrap.steps=10",
    "policy.bootstrap.corpus_size=200",
    "policy.bootstrap.batch_size=16",
    "rl.max_steps=1",
    "rl.prompts_per_step=2",
    "rl.num_generations=2",
    "rl.max_completion_length=8",
    "collect.num_prompts=6",
    "collect.chunk_size=3",
    "collect.k=2",
    "collect.max_new_tokens=8",
    "collect.min_reward=0",
    "collect.require_format=false",
    "sft.max_steps=1",
    "distill.sft.max_steps=1",
    "distill.min_reward=0",
    "distill.students.0.bootstrap.steps=2",
    "distill.students.0.bootstrap.corpus_size=50",
]


def _edges(runs: list[dict]) -> set[tuple[str, str, str]]:
    """(producer run, consumer run, artifact type) for every use that matches a logged (name, digest)."""
    producers = {(a["name"], a["digest"]): r["name"] for r in runs for a in r["logged"]}
    edges = set()
    for r in runs:
        for a in r["used"]:
            assert (a["name"], a["digest"]) in producers, f"{r['name']} uses {a['name']} that no run produced"
            edges.add((producers[(a["name"], a["digest"])], r["name"], a["type"]))
    return edges


@pytest.mark.slow
def test_offline_pipeline_records_lineage(tmp_path):
    cfg = load_config(None, [*TINY_TRACKED, f"run.output_dir={tmp_path}"])
    run_pipeline(cfg)
    runs = lineage.read_offline_runs(cfg.run_dir)
    assert all(r["complete"] for r in runs)
    by_name = {r["name"]: r for r in runs}
    student = cfg.distill.students[0].name
    expected_runs = {
        "lin/base",
        "lin/r1.rl",
        "lin/r1.collect",
        "lin/r1.sft",
        f"lin/student.{student}.base",
        f"lin/distill.{student}",
        "lin/report",
    }
    assert expected_runs <= set(by_name)
    produced = {(r["name"], a["type"]) for r in runs for a in r["logged"]}
    assert {
        ("lin/base", "model"),
        ("lin/r1.rl", "model"),
        ("lin/r1.collect", "dataset"),
        ("lin/r1.sft", "model"),
        (f"lin/distill.{student}", "model"),
        ("lin/report", "report"),
    } <= produced
    assert not by_name["lin/base"]["used"]  # the root of the graph
    assert not [
        a for r in runs if r["job_type"] == "eval" for a in r["logged"] if a["type"] == "model"
    ]  # eval makes none
    edges = _edges(runs)
    chain = [
        ("lin/base", "lin/r1.rl", "model"),
        ("lin/r1.rl", "lin/r1.collect", "model"),
        ("lin/r1.collect", "lin/r1.sft", "dataset"),
        ("lin/r1.rl", "lin/r1.sft", "model"),
        ("lin/r1.sft", f"lin/distill.{student}", "model"),
        ("lin/r1.collect", f"lin/distill.{student}", "dataset"),
        (f"lin/student.{student}.base", f"lin/distill.{student}", "model"),
        (f"lin/distill.{student}", "lin/report", "model"),
    ]
    for edge in chain:
        assert edge in edges, (edge, sorted(edges))
    traces = next(a for a in by_name["lin/r1.collect"]["logged"] if a["type"] == "dataset")
    assert sorted(p for p, _ in traces["entries"]) == ["r1-collect-00000.jsonl", "r1-collect-00001.jsonl"]


def test_large_models_go_by_reference_and_hub_ids_by_url(tmp_path, monkeypatch):
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"\0" * 2048)
    small = lineage.model_artifact("g", "r1.rl", str(model))
    assert small.files == (str(model),) and not small.refs
    monkeypatch.setattr(lineage, "COPY_MAX_BYTES", 1024)
    large = lineage.model_artifact("g", "r1.rl", str(model))
    assert large.refs == (model.resolve().as_uri(),) and not large.files
    hub = lineage.model_artifact("g", "base", "Qwen/Qwen3-30B-A3B")
    assert hub.refs == ("https://huggingface.co/Qwen/Qwen3-30B-A3B",) and hub.name == "g-base"
    assert lineage.artifact_name("demo run", "distill.student/x") == "demo-run-distill.student-x"


def test_offline_log_reader_rejects_other_files(tmp_path):
    bad = tmp_path / "run-x.wandb"
    bad.write_bytes(b"not a log")
    with pytest.raises(ValueError, match="not a W&B transaction log"):
        lineage.read_offline_run(bad)


def test_use_and_produce_in_offline_runs_match_by_digest(tmp_path):
    """Two tracked stages, no pipeline: what one produces the other uses, read back from the transaction logs."""
    from selfdistill.config import TrackingConfig
    from selfdistill.tracking import Tracker

    model = tmp_path / "m"
    model.mkdir()
    (model / "w.bin").write_bytes(b"weights")
    spec = lineage.model_artifact("g", "base", str(model))
    tracker = Tracker(TrackingConfig(mode="offline"), tmp_path, "g", {})
    with tracker.stage("base", "base") as stage:
        stage.produce(spec)
    with tracker.stage("r1.rl", "rl") as stage:
        stage.use(lineage.model_artifact("g", "base", str(model)))  # rebuilt, as the consumer does
    runs = {r["name"]: r for r in lineage.read_offline_runs(tmp_path)}  # waits for wandb to finish writing
    assert set(runs) == {"g/base", "g/r1.rl"}, runs
    (made,) = runs["g/base"]["logged"]
    (used,) = runs["g/r1.rl"]["used"]
    assert made["name"] == used["name"] == "g-base" and made["type"] == "model"
    assert made["digest"] == used["digest"] and [p for p, _ in made["entries"]] == ["w.bin"]
    assert not runs["g/base"]["used"] and not runs["g/r1.rl"]["logged"]
