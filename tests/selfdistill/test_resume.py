"""Fault tolerance: Trainer checkpoints, their compatibility check, and SIGKILL-then-resume of a real run.

The fast tests check the checkpoint helpers on directories laid out as HF's Trainer writes them.
The slow test kills a `selfdistill run` subprocess with SIGKILL during RL (after its first
checkpoint) and again during collect (after its first shard), resumes it with the same command,
and compares the result with an uninterrupted run on the same seed: the same RL weights and the
same traces, in the same order, none lost or duplicated.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from selfdistill.checkpoints import check_compatible, complete_checkpoints, latest_checkpoint, save_args
from selfdistill.configio import ConfigError

# --- checkpoint helpers -----------------------------------------------------------------------


def _fake_checkpoint(
    root: Path, step: int, *, complete: bool = True, ranks: int = 1, batch: int = 8, model: dict | None = None
) -> Path:
    ckpt = root / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    (ckpt / "config.json").write_text(json.dumps(model or {"model_type": "qwen3_moe", "hidden_size": 32}))
    for r in range(ranks):
        (ckpt / (f"rng_state_{r}.pth" if ranks > 1 else "rng_state.pth")).write_bytes(b"")
    if complete:
        (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": step, "train_batch_size": batch}))
    return ckpt


def test_latest_checkpoint_skips_incomplete_and_sorts_numerically(tmp_path):
    assert latest_checkpoint(tmp_path / "missing") is None
    _fake_checkpoint(tmp_path, 2)
    _fake_checkpoint(tmp_path, 10)
    _fake_checkpoint(tmp_path, 12, complete=False)  # killed while saving
    (tmp_path / "checkpoint-x").mkdir()
    assert [p.name for p in complete_checkpoints(tmp_path)] == ["checkpoint-2", "checkpoint-10"]
    assert latest_checkpoint(tmp_path).name == "checkpoint-10"


def test_checkpoint_killed_while_writing_its_state_is_skipped(tmp_path):
    """The Trainer writes trainer_state.json in place: a SIGKILL mid-write leaves it empty or cut off."""
    _fake_checkpoint(tmp_path, 2)
    (_fake_checkpoint(tmp_path, 4) / "trainer_state.json").write_text("")
    (_fake_checkpoint(tmp_path, 6) / "trainer_state.json").write_text('{"global_step": 6, "train_ba')
    assert [p.name for p in complete_checkpoints(tmp_path)] == ["checkpoint-2"]


def test_compatible_checkpoint_passes(tmp_path):
    ckpt = _fake_checkpoint(tmp_path, 4, ranks=2)
    check_compatible(
        ckpt, model_config={"model_type": "qwen3_moe", "hidden_size": 32}, per_device_batch=8, world_size=2
    )


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"model_config": {"model_type": "qwen3_moe", "hidden_size": 64}}, "model hidden_size=32 (now 64)"),
        ({"per_device_batch": 16}, "per-device batch 8 (now 16)"),
        ({"world_size": 4}, "world size 1 (now 4)"),
    ],
)
def test_incompatible_checkpoint_names_the_difference(tmp_path, kwargs, needle):
    ckpt = _fake_checkpoint(tmp_path, 4)
    args = {
        "model_config": {"model_type": "qwen3_moe", "hidden_size": 32},
        "per_device_batch": 8,
        "world_size": 1,
    }
    with pytest.raises(ConfigError) as exc:
        check_compatible(ckpt, **{**args, **kwargs})
    assert needle in str(exc.value) and "delete" in str(exc.value)


def test_save_args():
    assert save_args(0, 2) == {"save_strategy": "no"}
    assert save_args(5, 1) == {"save_strategy": "steps", "save_steps": 5, "save_total_limit": 1}


def test_incompatible_checkpoint_stops_a_real_trainer(tmp_path, tiny_moe, tokenizer):
    """A checkpoint of another shape in the stage's work dir fails with the clear error, not a load crash."""
    from selfdistill.config import SFTConfig
    from selfdistill.stages.sft import train_sft
    from selfdistill.tracking import NullStage

    _fake_checkpoint(tmp_path, 1, batch=2, model={"model_type": "qwen3_moe", "hidden_size": 999})
    rows = [{"prompt": "1+1=", "completion": "2"}] * 4
    sft = SFTConfig(epochs=1, batch_size=2, max_steps=2, save_steps=1, gradient_checkpointing=False)
    with pytest.raises(ConfigError, match="model hidden_size=999 \\(now 32\\)"):
        train_sft(
            tiny_moe, tokenizer, rows, sft, tmp_path, seed=0, stage=NullStage(), device="cpu", run_name="t"
        )


# --- SIGKILL and resume -----------------------------------------------------------------------

TINY_RUN = [
    "run.rounds=1",
    "pipeline.preset=rounds",  # RL in round 1 (the demo starts with rejection-sampling fine-tuning)
    "run.name=r",
    "tracking.report_to=none",
    "tasks.sources.0.n=200",
    "tasks.sources.1.n=100",
    "tasks.eval_max=5",
    "eval.num_samples=1",
    "policy.bootstrap.steps=150",
    "policy.bootstrap.corpus_size=2000",
    "policy.bootstrap.batch_size=32",
    "rl.max_steps=8",
    "rl.save_steps=2",
    "rl.prompts_per_step=2",
    "rl.num_generations=4",
    # keep every well-sampled completion so the store holds traces even from a barely trained policy
    "collect.num_prompts=40",
    "collect.chunk_size=10",
    "collect.min_reward=0",
    "collect.require_format=false",
    "sft.max_steps=4",
    "sft.save_steps=2",
    "distill.sft.max_steps=2",
    "distill.min_reward=0",
    "distill.students.0.bootstrap.steps=5",
    "distill.students.0.bootstrap.corpus_size=200",
]


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "WANDB_MODE": "offline",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


def _start(out: Path, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "selfdistill.cli", "run", *TINY_RUN, f"run.output_dir={out}"]
    return subprocess.Popen(cmd, stdout=log.open("a"), stderr=subprocess.STDOUT, env=_env())


def _written(path: Path) -> bool:
    """``path`` exists and, for JSON, is whole (the Trainer writes trainer_state.json in place, not atomically)."""
    if not path.exists():
        return False
    if path.suffix != ".json":
        return True
    try:
        json.loads(path.read_text())
        return True
    except (OSError, ValueError):
        return False


def _kill_when(proc: subprocess.Popen, ready: Path, log: Path, timeout: float = 600) -> None:
    """SIGKILL ``proc`` as soon as ``ready`` is written."""
    deadline = time.monotonic() + timeout
    while not _written(ready):
        assert proc.poll() is None, (
            f"run ended (rc {proc.returncode}) before {ready} appeared:\n{log.read_text()[-3000:]}"
        )
        assert time.monotonic() < deadline, f"{ready} did not appear in {timeout} s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _finish(out: Path, log: Path) -> None:
    proc = _start(out, log)
    assert proc.wait(timeout=900) == 0, log.read_text()[-3000:]


def _trace_ids(run_dir: Path) -> list[str]:
    ids = [
        json.loads(line)["trace_id"]
        for shard in sorted((run_dir / "traces").glob("*.jsonl"))
        for line in shard.read_text().splitlines()
    ]
    return ids


@pytest.mark.slow
def test_sigkill_during_rl_and_collect_then_resume_matches_uninterrupted(tmp_path):
    from selfdistill.distributed import param_digest
    from selfdistill.models.loading import load_model

    ref, broken = tmp_path / "ref", tmp_path / "broken"
    ref_log, log = tmp_path / "ref.log", tmp_path / "broken.log"
    _finish(ref, ref_log)

    run = broken / "r"
    # Start from the reference's finished base step (a resume, as after a crash later on): the slow
    # tiny pre-training runs once, and both runs go into RL from the same weights.
    (run / "state").mkdir(parents=True)
    shutil.copy(ref / "r" / "state" / "base.json", run / "state" / "base.json")
    proc = _start(broken, log)
    _kill_when(proc, run / "work" / "r1.rl" / "checkpoint-2" / "trainer_state.json", log)
    assert not (run / "state" / "r1.rl.json").exists(), "the kill came after RL finished"
    proc = _start(broken, log)
    _kill_when(proc, run / "traces" / "r1-collect-00000.jsonl", log)
    assert not (run / "state" / "r1.collect.json").exists(), "the kill came after collect finished"
    assert (run / "state" / "r1.rl.json").exists()
    _finish(broken, log)

    text = log.read_text()
    assert "resuming from" in text and "checkpoint-" in text  # RL continued from its checkpoint
    collect = json.loads((run / "state" / "r1.collect.json").read_text())
    assert collect.get("chunks_resumed", 0) >= 1  # collect kept the shard written before the kill

    ref_ids, ids = _trace_ids(ref / "r"), _trace_ids(run)
    assert ids, "the run kept no traces: the comparison would be empty"
    assert len(ids) == len(set(ids)), "a trace was stored twice"
    assert ids == ref_ids, "resumed run's traces differ from the uninterrupted run's"
    digests = [param_digest(load_model(d / "r" / "models" / "r1-rl")[0]) for d in (ref, broken)]
    assert digests[0] == digests[1], "RL resumed from a checkpoint ended with different weights"
    assert not list((run / "work" / "r1.rl").glob("checkpoint-*")), "finished stage left its checkpoints"
