"""Real training steps on tiny models: GRPO changes the policy, SFT learns, collect resumes exactly."""

import random
from types import SimpleNamespace

import pytest
import torch

from rewards.registry import register_reward
from selfdistill.config import CollectConfig, RewardConfig, RLConfig, SFTConfig
from selfdistill.kernels.hf import KernelSpec
from selfdistill.stages.collect import collect_round, is_degenerate
from selfdistill.stages.rl import train_rl
from selfdistill.stages.sft import tokenize_rows, train_sft
from selfdistill.tasks import math_gen
from selfdistill.traces import TraceStore
from selfdistill.tracking import NullStage


def digit_share(prompts, completions, **kwargs):
    """A reward that varies on random text, so GRPO's advantages are not all zero."""
    return [sum(ch.isdigit() for ch in c) / max(1, len(c)) for c in completions]


register_reward("digit_share", f"{__name__}:digit_share")


def math_tasks(n=8, seed=0):
    return math_gen.generate_math_tasks(SimpleNamespace(n=n, difficulty=1), seed)


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def test_grpo_step_changes_policy(tiny_moe, tokenizer, tmp_path):
    before = snapshot(tiny_moe)
    rows = [t.to_row() for t in math_tasks()]
    rl = RLConfig(
        max_steps=2,
        num_generations=4,
        prompts_per_step=2,
        max_completion_length=8,
        learning_rate=1e-2,
        logging_steps=1,
        algorithm="grpo",
    )
    out = train_rl(
        tiny_moe,
        tokenizer,
        rows,
        rl,
        RewardConfig(weights={"digit_share": 1.0, "math": 1.0}),
        tmp_path,
        seed=0,
        stage=NullStage(),
        device="cpu",
        run_name="t",
    )
    assert out["steps"] == 2 and out["history"] and "reward" in out["history"][0]
    changed = [k for k, v in tiny_moe.named_parameters() if not torch.equal(v, before[k])]
    assert "model.embed_tokens.weight" in changed and any("experts" in k for k in changed)


@pytest.mark.parametrize("kernels", ["eager", KernelSpec("fused", dw_accumulation="weight")])
def test_sft_step_learns(tiny_dense, tokenizer, tmp_path, kernels):
    rng = random.Random(0)
    rows = [{"prompt": t.prompt, "completion": math_gen.worked_solution(t, rng)} for t in math_tasks(16)]
    before = snapshot(tiny_dense)
    out = train_sft(
        tiny_dense,
        tokenizer,
        rows,
        SFTConfig(epochs=1, batch_size=8, max_steps=6, learning_rate=1e-2),
        tmp_path,
        seed=0,
        stage=NullStage(),
        device="cpu",
        run_name="t",
        kernels=kernels,
    )
    assert out["steps"] == 6 and out["final_loss"] < out["loss_curve"][0]
    assert all(not torch.equal(v, before[k]) for k, v in tiny_dense.named_parameters())


def test_sft_labels_mask_the_prompt(tokenizer):
    ds = tokenize_rows(tokenizer, [{"prompt": "1+1=?", "completion": "<think>2</think>\\boxed{2}"}], 64)
    ids, labels = ds[0]["input_ids"], ds[0]["labels"]
    n_prompt = len(tokenizer("1+1=?", add_special_tokens=False)["input_ids"])
    assert labels[:n_prompt] == [-100] * n_prompt and labels[n_prompt:] == ids[n_prompt:]
    assert ids[-1] == tokenizer.eos_token_id


def _collect(model, tokenizer, store, tasks):
    ccfg = CollectConfig(
        num_prompts=6,
        k=2,
        max_new_tokens=8,
        min_reward=0.0,
        require_format=False,
        max_per_prompt=2,
        chunk_size=2,
        batch_size=16,
    )
    return collect_round(
        model,
        tokenizer,
        tasks,
        store,
        ccfg=ccfg,
        rcfg=RewardConfig(weights={"math": 1.0}),
        round_=1,
        seed=0,
        model_name="m",
        prompt_format="plain",
        stage=NullStage(),
    )


def test_collect_resumes_to_identical_traces(tiny_moe, tokenizer, tmp_path):
    tasks = math_tasks(12)
    full = TraceStore(tmp_path / "full")
    _collect(tiny_moe, tokenizer, full, tasks)
    assert len(full.shards()) == 3
    interrupted = TraceStore(tmp_path / "cut")
    _collect(tiny_moe, tokenizer, interrupted, tasks)
    interrupted.shards()[-1].unlink()  # as if killed before the last chunk was written
    out = _collect(tiny_moe, tokenizer, TraceStore(tmp_path / "cut"), tasks)
    assert out["chunks_resumed"] == 2
    ids = lambda s: sorted(t.trace_id for t in TraceStore(s.root).iter())  # noqa: E731
    assert ids(interrupted) == ids(full) and len(ids(full)) > 0


def test_degenerate_filter():
    assert is_degenerate("") and is_degenerate("1111111111111111111111111")
    assert not is_degenerate("<think>1+1=2</think>\\boxed{2}")


def test_rl_history_keeps_the_off_policy_steps_and_their_routing_drift(tiny_moe, tokenizer, tmp_path):
    """With steps_per_generation=2 only a batch's first step logs rewards; the second step (trained on what the
    previous weights sampled) must still reach the history, with its routing-change rate (issue 6's metric)."""
    rows = [t.to_row() for t in math_tasks()]
    rl = RLConfig(
        max_steps=2,
        num_generations=4,
        prompts_per_step=2,
        max_completion_length=8,
        learning_rate=5e-2,
        logging_steps=1,
        algorithm="grpo",
        steps_per_generation=2,
        routing="measure",
    )
    out = train_rl(
        tiny_moe,
        tokenizer,
        rows,
        rl,
        RewardConfig(weights={"digit_share": 1.0}),
        tmp_path,
        seed=0,
        stage=NullStage(),
        device="cpu",
        run_name="t",
    )
    first, second = out["history"]
    assert "reward" in first and "reward" not in second
    assert first["moe/routing_change_rate"] == 0.0  # the weights that sampled are the weights trained
    assert second["moe/routing_change_rate"] > 0.0  # lr 5e-2 moved the router between sampling and training
