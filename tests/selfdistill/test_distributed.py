"""Rank helpers, and a real two-process job (torchrun, gloo on CPU) through the whole pipeline.

The fast tests check the single-process behaviour every caller relies on (no-ops, identity
collectives, sharding that partitions and restores order). The slow test launches
``torchrun --nproc_per_node 2 -m selfdistill.cli run ...`` on the tiny models and checks what
only a real job can show: both ranks trained identical replicas in every training step (the
per-rank parameter digests recorded by rank 0), collect sampled every prompt exactly once across
the ranks, each rank wrote its own shard of every chunk and the store holds each trace exactly once,
eval ran split across the ranks, and a collect resumed after losing one rank's shard redoes exactly
that share and writes the same traces again.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from selfdistill import distributed as dist


def test_single_process_defaults(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    assert (dist.rank(), dist.world_size(), dist.local_rank()) == (0, 1, 0)
    assert dist.is_main_process() and not dist.is_distributed()
    dist.init("cpu")  # no process group in a single process
    dist.barrier()
    assert dist.broadcast({"a": 1}) == {"a": 1}
    assert dist.gather(3) == [3]
    assert dist.shard([1, 2, 3]) == [1, 2, 3]
    assert dist.device_for("cuda") == "cuda"


def test_rank_from_launcher_environment(monkeypatch):
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert not dist.is_main_process() and dist.is_distributed()
    assert dist.shard(list(range(10))) == [3, 7]
    assert dist.device_for("cuda") == "cuda:1" and dist.device_for("cpu") == "cpu"


@pytest.mark.parametrize("n, world", [(0, 2), (1, 2), (7, 2), (10, 3), (5, 8)])
def test_shard_partitions_and_unshard_restores_order(monkeypatch, n, world):
    items = list(range(n))
    parts = []
    monkeypatch.setenv("WORLD_SIZE", str(world))
    for r in range(world):
        monkeypatch.setenv("RANK", str(r))
        parts.append(dist.shard(items))
    assert sorted(x for p in parts for x in p) == items  # each item on exactly one rank
    assert dist.unshard(parts) == items


def test_param_digest_sees_one_changed_weight(tiny_dense):
    import torch

    before = dist.param_digest(tiny_dense)
    assert dist.param_digest(tiny_dense) == before
    with torch.no_grad():
        next(tiny_dense.parameters()).view(-1)[0] += 1e-6
    assert dist.param_digest(tiny_dense) != before


TWO_RANK_RUN = [
    "run.rounds=1",
    "pipeline.preset=rounds",  # RL in round 1 (the demo starts with rejection-sampling fine-tuning)
    "run.name=ddp",
    "tracking.report_to=none",
    "tasks.sources.0.n=200",
    "tasks.sources.1.n=100",
    "tasks.eval_max=4",
    "eval.num_samples=1",
    "policy.bootstrap.steps=20",
    "policy.bootstrap.corpus_size=400",
    "policy.bootstrap.batch_size=16",
    "rl.max_steps=3",
    "rl.prompts_per_step=2",
    "rl.num_generations=4",
    "collect.num_prompts=21",
    "collect.chunk_size=10",
    "collect.k=2",
    "collect.min_reward=0",
    "collect.require_format=false",
    "collect.max_per_prompt=2",
    "sft.max_steps=3",
    "sft.batch_size=8",
    "distill.sft.max_steps=2",
    "distill.sft.batch_size=8",
    "distill.min_reward=0",
    "distill.students.0.bootstrap.steps=3",
    "distill.students.0.bootstrap.corpus_size=100",
    "distill.students.0.bootstrap.batch_size=8",
]


def _free_port() -> int:
    """A TCP port nobody listens on now (a fixed one collides with other jobs on a shared machine)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_rank_torchrun_job_stays_in_sync_and_stores_each_trace_once(tmp_path):
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "WANDB_MODE": "offline",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    launch = [torchrun, "--nproc_per_node", "2", "--master_port", str(_free_port()), "-m", "selfdistill.cli"]
    proc = subprocess.run(
        [*launch, "run", *TWO_RANK_RUN, f"run.output_dir={tmp_path}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    run = tmp_path / "ddp"

    def state(key: str) -> dict:
        return json.loads((run / "state" / f"{key}.json").read_text())

    for key in ("base", "r1.rl", "r1.sft", "student.student-dense.base", "distill.student-dense"):
        digests = state(key).get("rank_digests")
        assert digests is not None and len(digests) == 2, f"{key}: no per-rank digests recorded"
        assert digests[0] == digests[1], f"{key}: ranks diverged"
    assert state("r1.sft").get("rows", 0) > 0, "SFT ran on no traces"

    collect = state("r1.collect")
    assert collect["sampled"] == 21 * 2  # every prompt sampled once, on one rank
    traces = run / "traces"
    expected = [f"r1-collect-{c:05d}-rank{r:04d}of0002.jsonl" for c in range(3) for r in range(2)]
    assert (
        sorted(p.name for p in traces.glob("*.jsonl")) == expected
    )  # each rank wrote its own share of each chunk
    shards = {
        p.name: [json.loads(line) for line in p.read_text().splitlines()]
        for p in sorted(traces.glob("*.jsonl"))
    }
    ids = [t["trace_id"] for lines in shards.values() for t in lines]
    assert ids and len(ids) == len(set(ids)) == collect["kept"] == collect["store_total"], (
        "a trace missing or stored twice"
    )
    for name, lines in shards.items():  # rank r sampled with seed = chunk seed * 2 + r
        assert {t["sampling"]["seed"] % 2 for t in lines} <= {int(name.split("-rank")[1][:4])}, name
    assert all(shards[n] for n in expected[:2]), "a rank wrote nothing for a full chunk"
    assert state("eval.base")["n_problems"] == 4 and (run / "report.json").exists()

    # resume inside the round: one rank's shard of chunk 1 lost, the collect step redone on two ranks
    lost = traces / expected[3]
    before = [t["trace_id"] for t in shards[lost.name]]
    lost.unlink()
    (run / "state" / "r1.collect.json").unlink()
    launch[4] = str(_free_port())
    proc = subprocess.run(
        [*launch, "collect", "--round", "1", *TWO_RANK_RUN, f"run.output_dir={tmp_path}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    resumed = state("r1.collect")
    assert (
        resumed["chunks_resumed"] == 2 and resumed["sampled"] == len(range(1, 10, 2)) * 2
    )  # only rank 1's share
    assert [json.loads(line)["trace_id"] for line in lost.read_text().splitlines()] == before
    assert resumed["store_total"] == collect["store_total"]


RANK_SCRIPT = """
import os, sys, time
from selfdistill import distributed as dist
dist.init("cpu", timeout_s=3)
if dist.rank() == 0:
    time.sleep(15)  # never reaches the barrier in time
    sys.exit(0)
start = time.perf_counter()
try:
    dist.barrier()
    print("BARRIER PASSED")
except Exception as exc:
    print(f"FAILED after {time.perf_counter() - start:.1f} s: {type(exc).__name__}")
"""


@pytest.mark.slow
def test_process_group_timeout_comes_from_the_config_value(tmp_path):
    """`run.dist_timeout_s` reaches the process group: a rank left waiting fails after it, not after torch's 30 min."""
    env = {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(_free_port()),
        "WORLD_SIZE": "2",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]
        ),
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RANK_SCRIPT],
            env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in (0, 1)
    ]
    out1, err1 = procs[1].communicate(timeout=120)
    procs[0].communicate(timeout=120)
    assert "FAILED after" in out1, out1 + err1[-2000:]
    assert (
        float(out1.split("FAILED after ")[1].split(" s")[0]) < 12
    )  # 3 s timeout (+ load), well before rank 0 wakes
