"""The trace store at scale: per-rank shards, the memory-mapped Arrow view, the tokenised cache SFT reads.

What a run with many traces and many ranks relies on: a chunk is done only when every rank's shard of it
exists (and a chunk half-written by another world size is refused, not silently mixed), writers that only
exchange ids still store each trace once, the Arrow view returns exactly what `iter` returns (dedupe and
filters included) without parsing the JSON again, and the tokenised dataset equals `tokenize_rows` on the
same traces, is built once and is rebuilt when the shards, tokenizer or settings change.
"""

from __future__ import annotations

import json

import pytest

from selfdistill.stages.sft import rows_from_traces, tokenize_rows, tokenize_traces
from selfdistill.traces import Trace, TraceStore, shard_name


def make(i: int, round_: int = 1, reward: float = 1.0, **kw) -> Trace:
    return Trace(
        prompt=f"{i}+1=?",
        completion=f"<think>{i}+1</think>\\boxed{{{i + 1}}}",
        reward=reward,
        kind="math",
        task_id=f"t{i}",
        round=round_,
        model="m",
        rewards={"math": reward},
        sampling={"seed": i},
        **kw,
    )


def test_shard_names_keep_single_process_stores_and_sort_by_chunk_then_rank():
    assert shard_name("r1-collect-00003") == "r1-collect-00003"
    names = [shard_name(f"r1-collect-{c:05d}", r, 12) for c in (0, 1) for r in (0, 2, 11)]
    assert sorted(names) == names and names[2] == "r1-collect-00000-rank0011of0012"


def test_a_chunk_is_done_when_every_rank_of_one_world_wrote_it(tmp_path):
    store = TraceStore(tmp_path)
    assert store.missing_ranks("c0", 2) == [0, 1]
    store.append([make(1)], shard_name("c0", 1, 2))
    assert store.missing_ranks("c0", 2) == [0]
    store.append([], shard_name("c0", 0, 2))  # an empty share still marks the rank done
    assert store.missing_ranks("c0", 2) == []
    assert store.missing_ranks("c0", 3) == []  # done by a 2-process run: a 3-process resume skips it
    store.append([make(2)], "c1")  # written by a single process
    assert store.missing_ranks("c1", 4) == []


def test_a_chunk_half_written_by_another_world_size_is_refused(tmp_path):
    store = TraceStore(tmp_path)
    store.append([make(1)], shard_name("c0", 0, 2))
    with pytest.raises(
        RuntimeError, match=r"c0 .*partly written by a 2-process run; resume it with 2 processes \(now 4\)"
    ):
        store.missing_ranks("c0", 4)


def test_writers_that_exchange_ids_store_each_trace_once(tmp_path):
    """Two writers (ranks) with their own store objects: ids remembered from the other keep appends unique."""
    a, b = TraceStore(tmp_path), TraceStore(tmp_path, clean=False)
    assert a.append([make(1), make(2)], shard_name("c0", 0, 2)) == 2
    b.remember([make(1).trace_id, make(2).trace_id])
    assert b.append([make(2), make(3)], shard_name("c0", 1, 2)) == 1
    a.remember(
        [make(2).trace_id, make(3).trace_id]
    )  # what b offered and stored in chunk 0 (collect gathers ids)
    assert a.append([make(3), make(4)], shard_name("c1", 0, 2)) == 1
    ids = [
        json.loads(line)["trace_id"]
        for p in sorted(tmp_path.glob("*.jsonl"))
        for line in p.read_text().splitlines()
    ]
    assert len(ids) == len(set(ids)) == 4


def test_arrow_view_equals_iter_with_dedupe_and_filters(tmp_path):
    store = TraceStore(tmp_path)
    store.append([make(1, 1, 1.0), make(2, 1, 0.0), make(3, 2, 1.0)], "a")
    (tmp_path / "b.jsonl").write_text(
        "".join(  # a second writer's shard repeating a trace (dedupe on read)
            json.dumps(Trace.from_json(json.loads(line)).__dict__) + "\n"
            for line in (tmp_path / "a.jsonl").read_text().splitlines()[:1]
        )
    )
    store.append([make(4, 3, 1.0)], "c")
    for select in ({}, {"round": 1}, {"min_reward": 1.0}, {"max_round": 2}, {"round": 2, "min_reward": 0.5}):
        ds = store.to_dataset(**select)
        assert ds["trace_id"] == [
            t.trace_id
            for t in store.iter(**{k: v for k, v in select.items() if k != "max_round"})
            if t.round <= select.get("max_round", 99)
        ], select
    ds = store.to_dataset()
    assert ds.cache_files and all(
        f["filename"].endswith(".arrow") for f in ds.cache_files
    )  # memory-mapped files
    assert json.loads(ds[0]["sampling"]) == {"seed": 1} and ds.num_rows == 4


def test_arrow_copy_follows_a_rewritten_shard(tmp_path):
    store = TraceStore(tmp_path)
    store.append([make(1)], "a")
    key = store.arrow_key()
    assert store.to_dataset()["task_id"] == ["t1"]
    (tmp_path / "a.jsonl").unlink()
    store = TraceStore(tmp_path)
    store.append([make(7), make(8)], "a")
    assert store.to_dataset()["task_id"] == ["t7", "t8"] and store.arrow_key() != key
    assert TraceStore(tmp_path).to_dataset(round=5).num_rows == 0
    empty = TraceStore(tmp_path / "empty").to_dataset()
    assert empty.num_rows == 0 and "trace_id" in empty.column_names


def _mixed_store(root, chat: bool = True) -> TraceStore:
    """Plain, chat (or a second plain) and schema-1 (no rendered prompt) traces, one below the reward bar."""
    store = TraceStore(root)
    second = [{"role": "user", "content": "What is 2+3? Think, then box."}] if chat else "2+1=?"
    store.append(
        [make(1, rendered_prompt="1+1=?"), make(2, rendered_prompt=second), make(3), make(4, reward=0.0)], "a"
    )
    return store


@pytest.mark.parametrize("prompt_format", ["plain", "chat"])
def test_tokenised_traces_equal_tokenize_rows(tmp_path, bpe_tokenizer, prompt_format):
    store = _mixed_store(tmp_path)
    ds = tokenize_traces(bpe_tokenizer, store, 96, prompt_format, min_reward=1.0)
    expected = tokenize_rows(bpe_tokenizer, rows_from_traces(store.iter(min_reward=1.0), prompt_format), 96)
    assert (
        ds["input_ids"] == expected["input_ids"] and ds["labels"] == expected["labels"] and ds.num_rows == 3
    )


def test_tokenised_cache_is_built_once_and_keyed_by_contents_and_settings(tmp_path, bpe_tokenizer, tokenizer):
    store = _mixed_store(tmp_path, chat=False)  # the char tokenizer below has no chat template
    first = tokenize_traces(bpe_tokenizer, store, 96, "plain")
    [path] = {f["filename"] for f in first.cache_files}
    built = sorted((tmp_path / ".arrow" / "tokenized").iterdir())
    again = tokenize_traces(bpe_tokenizer, TraceStore(tmp_path), 96, "plain")
    assert {f["filename"] for f in again.cache_files} == {path} and again["input_ids"] == first["input_ids"]
    assert sorted((tmp_path / ".arrow" / "tokenized").iterdir()) == built  # loaded, not rebuilt
    others = {
        "max_length": tokenize_traces(bpe_tokenizer, store, 64, "plain"),
        "tokenizer": tokenize_traces(tokenizer, store, 96, "plain"),
        "filter": tokenize_traces(bpe_tokenizer, store, 96, "plain", min_reward=1.0),
    }
    store.append([make(9)], "b")
    others["new shard"] = tokenize_traces(bpe_tokenizer, store, 96, "plain")
    files = {name: {f["filename"] for f in ds.cache_files} for name, ds in others.items()}
    assert all(f != {path} for f in files.values()) and len({min(f) for f in files.values()}) == 4, files
    assert others["new shard"].num_rows == 5


def test_tokenised_traces_name_the_problem(tmp_path, bpe_tokenizer):
    with pytest.raises(ValueError, match="has none to train on"):
        tokenize_traces(bpe_tokenizer, TraceStore(tmp_path), 96, "plain")
    store = _mixed_store(tmp_path)
    with pytest.raises(ValueError, match="fills max_length=2; raise sft.max_length"):
        tokenize_traces(bpe_tokenizer, store, 2, "chat")
