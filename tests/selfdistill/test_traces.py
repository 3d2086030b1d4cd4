"""Trace store: schema, dedupe, immutable shards, atomic writes under SIGKILL, export."""

import json
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from selfdistill.traces import Trace, TraceStore, trace_id


def make(i: int, round_: int = 1, reward: float = 1.0) -> Trace:
    return Trace(
        prompt=f"{i}+1=?",
        completion=f"<think>{i}+1</think>\\boxed{{{i + 1}}}",
        reward=reward,
        kind="math",
        task_id=f"t{i}",
        round=round_,
        model="m",
        rewards={"math": reward},
        sampling={"seed": 0},
    )


def test_schema_fields_and_hashes():
    t = make(1)
    assert t.trace_id == trace_id(t.prompt, t.completion) and len(t.prompt_hash) == 64 and t.created_at > 0
    with pytest.raises(TypeError):
        Trace(prompt=None, completion="x", reward=0, kind="math", task_id="", round=1, model="m")


def test_dedupe_within_and_across_shards(tmp_path):
    store = TraceStore(tmp_path)
    assert store.append([make(1), make(1), make(2)], "a") == 2
    assert store.append([make(2), make(3)], "b") == 1
    reopened = TraceStore(tmp_path)
    assert len(reopened) == 3
    assert [t.task_id for t in reopened.iter()] == ["t1", "t2", "t3"]


def test_shards_are_immutable_and_filters(tmp_path):
    store = TraceStore(tmp_path)
    store.append([make(1, 1, 1.0), make(2, 2, 0.5)], "x")
    with pytest.raises(FileExistsError):
        store.append([make(9)], "x")
    assert [t.task_id for t in store.iter(round=2)] == ["t2"]
    assert [t.task_id for t in store.iter(min_reward=1.0)] == ["t1"]
    assert store.has_shard("x") and not store.has_shard("y")
    assert store.stats() == {"total": 2, "by_round": {1: 1, 2: 1}, "by_kind": {"math": 2}, "shards": 1}


def test_empty_shard_marks_chunk_done(tmp_path):
    store = TraceStore(tmp_path)
    assert store.append([], "r1-collect-00000") == 0
    assert store.has_shard("r1-collect-00000") and len(store) == 0


def test_export_to_datasets(tmp_path):
    store = TraceStore(tmp_path)
    store.append([make(i) for i in range(4)], "s")
    ds = store.to_dataset()
    assert ds.num_rows == 4 and {"prompt", "completion", "reward", "trace_id", "round"} <= set(
        ds.column_names
    )
    assert json.loads(ds[0]["rewards"]) == {"math": 1.0}


def test_export_mixes_rendered_prompt_kinds(tmp_path):
    """Traces from before rendered prompts (None), plain (text) and chat (messages) ones export in one dataset."""
    store = TraceStore(tmp_path)
    chat = [{"role": "user", "content": "q"}]
    extra = [
        Trace(
            prompt=p,
            completion="\\boxed{1}",
            reward=1.0,
            kind="math",
            task_id="t",
            round=1,
            model="m",
            rendered_prompt=r,
        )
        for p, r in (("q", chat), ("p", "p"))
    ]
    store.append([make(1), *extra], "s")
    ds = store.to_dataset()
    assert sorted(map(json.loads, ds["rendered_prompt"]), key=str) == sorted([None, chat, "p"], key=str)


def test_corrupt_shard_is_reported_with_location(tmp_path):
    store = TraceStore(tmp_path)
    store.append([make(1)], "ok")
    (tmp_path / "bad.jsonl").write_text("{broken\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:1: corrupt trace"):
        list(TraceStore(tmp_path).iter())


WRITER = textwrap.dedent("""
    import sys
    from selfdistill.traces import Trace, TraceStore
    store = TraceStore(sys.argv[1])
    for s in range(10_000):
        traces = [Trace(prompt=f"p{s}-{i}", completion="c" * 200, reward=1.0, kind="math", task_id="t",
                        round=1, model="m") for i in range(50)]
        store.append(traces, f"shard-{s:05d}")
        print(s, flush=True)
""")


@pytest.mark.parametrize("delay", [0.8, 1.3])
def test_sigkill_never_leaves_a_partial_shard(tmp_path, delay):
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    proc.stdout.readline()  # at least one shard is complete
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = TraceStore(tmp_path)  # opening cleans a half-written temporary shard
    assert not list(tmp_path.glob("*.tmp"))
    shards = store.shards()
    assert shards
    for shard in shards:  # every visible shard is whole
        lines = shard.read_text().splitlines()
        assert len(lines) == 50 and all(json.loads(line)["completion"] == "c" * 200 for line in lines)
    assert len(store) == 50 * len(shards)


def test_reading_records_the_shards_whose_traces_were_used(tmp_path):
    store = TraceStore(tmp_path)
    store.append([make(1, round_=1)], "r1-collect-00000")
    store.append([make(2, round_=2)], "r2-collect-00000")
    fresh = TraceStore(tmp_path)
    with fresh.reading() as read:
        fresh.append([make(3, round_=3)], "r3-collect-00000")  # reading every id to dedupe is not a use
        assert read == set()
        assert [t.round for t in fresh.iter(round=2)] == [2]
    assert read == {str(tmp_path / "r2-collect-00000.jsonl")} and fresh.read_shards is None


def test_reading_records_the_shards_the_arrow_dataset_keeps(tmp_path):
    """SFT and distillation read the store as an Arrow dataset (`to_dataset`), not through `iter`: their reads
    must reach the W&B lineage too, and only the shards whose rows pass the filter count."""
    store = TraceStore(tmp_path)
    for r in (1, 2, 3):
        store.append([make(10 * r, round_=r), make(10 * r + 1, round_=r)], f"r{r}-collect-00000")
    with store.reading() as read:
        ds = store.to_dataset(rounds=[1, 3])
    assert sorted(ds["round"]) == [1, 1, 3, 3]
    assert read == {str(tmp_path / f"r{r}-collect-00000.jsonl") for r in (1, 3)}
    with store.reading() as read:
        assert store.to_dataset(min_reward=99.0).num_rows == 0
    assert read == set()
