"""Eval split across ranks: each rank samples its share, the gathered figures equal a single process's."""

from types import SimpleNamespace

from selfdistill import distributed as dist
from selfdistill.config import EvalConfig, RewardConfig
from selfdistill.stages import evaluate
from selfdistill.tasks import code_gen, math_gen


def tasks():
    ns = SimpleNamespace(n=3, difficulty=1)
    return math_gen.generate_math_tasks(ns, 0) + code_gen.generate_code_tasks(ns, 0)


class Gathered(Exception):
    """Raised by the fake gather of a rank whose part is all the test needs."""


def evaluate_as(model, tok, monkeypatch, rank: int, world: int, gathered=None):
    """Evaluate as ``rank`` of ``world``; ``gathered``: every rank's part for gather to return (None: this
    rank's own; no ``gathered`` in a 2-rank job: stop at the gather and return this rank's part)."""
    seen = {}
    monkeypatch.setenv("WORLD_SIZE", str(world))
    monkeypatch.setenv("RANK", str(rank))

    def gather(obj):
        seen["part"] = obj
        if gathered is None and world > 1:
            raise Gathered
        return [obj] if gathered is None else [p if p is not None else obj for p in gathered]

    monkeypatch.setattr(dist, "gather", gather)
    ecfg = EvalConfig(num_samples=2, temperature=0.0, max_new_tokens=12, batch_size=8)
    rcfg = RewardConfig(weights={"math": 1.0, "code": 1.0, "format": 0.2})
    try:
        row = evaluate.evaluate_model(
            model, tok, tasks(), ecfg=ecfg, rcfg=rcfg, seed=0, prompt_format="plain", name="t"
        )
    except Gathered:
        row = None
    return row, seen["part"]


def test_two_ranks_share_the_problems_and_agree_with_one_process(tiny_dense, tokenizer, monkeypatch):
    alone, _ = evaluate_as(tiny_dense, tokenizer, monkeypatch, 0, 1)
    _, part1 = evaluate_as(tiny_dense, tokenizer, monkeypatch, 1, 2)
    assert part1["index"] == [1, 3, 5]  # rank 1 sampled only its share
    row0, part0 = evaluate_as(tiny_dense, tokenizer, monkeypatch, 0, 2, gathered=[None, part1])
    assert part0["index"] == [0, 2, 4]
    keys = (
        "accuracy",
        "accuracy_math",
        "accuracy_code",
        "maj_at_k",
        "format_rate",
        "infra_failures",
        "n_problems",
        "examples",
    )
    assert {k: row0[k] for k in keys} == {k: alone[k] for k in keys}  # greedy: the same text wherever sampled
    assert [e[2] for e in row0["examples"]] and row0["examples"][1][1] == tasks()[1].prompt
