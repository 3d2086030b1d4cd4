"""Chat mode with a real BPE tokenizer and chat template: every stage trains on the prompt tokens it sampled with.

The models are random and tiny (`conftest.bpe_moe`, `conftest.bpe_llama`) over SmolLM2's 49,152-token vocabulary
and ChatML template. Sampling is recorded where it happens (the prompt rows `generate` receives), training where
it happens (the token rows the trained model's embedding sees), and the two are compared token for token.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from rewards.common import Status
from selfdistill.config import CollectConfig, DistillConfig, RewardConfig, RLConfig, SFTConfig
from selfdistill.generation import prompt_ids
from selfdistill.models.loading import save_model
from selfdistill.stages.collect import collect_round
from selfdistill.stages.sft import rows_from_traces, tokenize_rows
from selfdistill.tasks import math_gen
from selfdistill.tasks.base import INSTRUCTIONS, Task, render_prompt
from selfdistill.traces import Trace, TraceStore
from selfdistill.tracking import NullStage


def math_tasks(n: int, seed: int = 0):
    return math_gen.generate_math_tasks(SimpleNamespace(n=n, difficulty=1), seed)


class SampledPrompts:
    """The prompt token rows ``model.generate`` is called with (left padding removed by the attention mask)."""

    def __init__(self, model) -> None:
        self.rows: list[list[int]] = []
        original = model.generate

        def generate(*args, **kwargs):
            for ids, mask in zip(kwargs["input_ids"], kwargs["attention_mask"]):
                self.rows.append(ids[mask.bool()].tolist())
            return original(*args, **kwargs)

        model.generate = generate


class TrainedRows:
    """The token rows the model's embedding sees in training-mode forwards (what the loss is computed on)."""

    def __init__(self, model) -> None:
        self.rows: list[list[int]] = []

        def hook(module, args):
            if model.training:
                self.rows.extend(args[0].tolist())

        model.get_input_embeddings().register_forward_pre_hook(hook)


def _collect_chat(model, tokenizer, store, n_tasks=4):
    ccfg = CollectConfig(
        num_prompts=n_tasks,
        k=2,
        max_new_tokens=6,
        min_reward=0.0,
        require_format=False,
        max_per_prompt=2,
        chunk_size=n_tasks,
        batch_size=16,
    )
    return collect_round(
        model,
        tokenizer,
        math_tasks(n_tasks),
        store,
        ccfg=ccfg,
        rcfg=RewardConfig(weights={"math": 1.0}),
        round_=1,
        seed=0,
        model_name="policy",
        prompt_format="chat",
        stage=NullStage(),
    )


def _assert_trained_on_sampled(trained: list[list[int]], sampled: list[list[int]]) -> None:
    assert trained and sampled
    for row in trained:  # right-padded rows: the prompt is a prefix
        assert any(row[: len(p)] == p for p in sampled), "a trained row does not start with a sampled prompt"


@pytest.fixture
def chat_store(bpe_moe, bpe_tokenizer, tmp_path):
    """Traces the MoE policy sampled in chat mode, and the prompt rows it sampled them with."""
    recorder = SampledPrompts(bpe_moe)
    store = TraceStore(tmp_path / "traces")
    out = _collect_chat(bpe_moe, bpe_tokenizer, store)
    assert out["kept"] > 0
    return store, recorder.rows


def test_collect_records_the_rendered_prompt_and_the_real_status(chat_store, bpe_tokenizer):
    store, sampled = chat_store
    traces = list(store.iter())
    for t in traces:
        assert t.rendered_prompt == render_prompt(t, "chat")
        assert INSTRUCTIONS["math"] in t.rendered_prompt[0]["content"]
        assert prompt_ids(bpe_tokenizer, [t.rendered_prompt])[0] in sampled
        # the stored status is the math verdict's, consistent with the stored reward (not "PASS" for everything)
        assert t.status in set(Status) and (t.status == Status.PASS) == (t.reward >= 1.0)
    assert any(t.status != Status.PASS for t in traces)  # a random model's answers are not all right


def test_sft_trains_on_the_sampled_prompt_tokens(chat_store, bpe_llama, bpe_tokenizer, tmp_path):
    """Sequence distillation (the same SFT as the policy's self-SFT) on chat traces: prompt tokens as sampled."""
    from selfdistill.stages.distill import distill

    store, sampled = chat_store
    trained = TrainedRows(bpe_llama)
    dcfg = DistillConfig(min_reward=0.0, sft=SFTConfig(max_steps=2, batch_size=4, max_length=128))
    distill(
        "sft",
        bpe_llama,
        bpe_tokenizer,
        teacher="unused",
        store=store,
        dcfg=dcfg,
        out_dir=tmp_path / "sft",
        seed=0,
        stage=NullStage(),
        device="cpu",
        run_name="t",
        prompt_format="chat",
        kernels="eager",
    )
    _assert_trained_on_sampled(trained.rows, sampled)
    # and the loss is on the completion only: labels start right after the sampled prompt
    rows = rows_from_traces(store.iter(), "chat")
    ds = tokenize_rows(bpe_tokenizer, rows, 128)
    for row, example in zip(rows, ds):
        n = len(prompt_ids(bpe_tokenizer, [row["prompt"]])[0])
        assert example["labels"][:n] == [-100] * n and example["labels"][n] != -100


def test_logit_distillation_trains_on_the_sampled_prompt_tokens(
    chat_store, bpe_moe, bpe_llama, bpe_tokenizer, tmp_path
):
    from selfdistill.stages.distill import distill

    store, sampled = chat_store
    teacher = save_model(bpe_moe, bpe_tokenizer, tmp_path / "teacher")
    trained = TrainedRows(bpe_llama)
    dcfg = DistillConfig(
        method="logit_kd", min_reward=0.0, sft=SFTConfig(max_steps=2, batch_size=4, max_length=128)
    )
    distill(
        "logit_kd",
        bpe_llama,
        bpe_tokenizer,
        teacher=str(teacher),
        store=store,
        dcfg=dcfg,
        out_dir=tmp_path / "kd",
        seed=0,
        stage=NullStage(),
        device="cpu",
        run_name="t",
        prompt_format="chat",
        kernels="eager",
    )
    _assert_trained_on_sampled(trained.rows, sampled)


def test_chat_rl_step_samples_the_prompt_tokens_that_collect_and_sft_use(bpe_moe, bpe_tokenizer, tmp_path):
    from selfdistill.stages.rl import train_rl

    tasks = math_tasks(4)
    rows = [t.to_row("chat") for t in tasks]
    recorder = SampledPrompts(bpe_moe)
    rl = RLConfig(
        max_steps=1,
        num_generations=2,
        prompts_per_step=2,
        max_completion_length=4,
        logging_steps=1,
        algorithm="grpo",
        gradient_checkpointing=False,
    )
    out = train_rl(
        bpe_moe,
        bpe_tokenizer,
        rows,
        rl,
        RewardConfig(weights={"math": 1.0, "format": 0.2}),
        tmp_path,
        seed=0,
        stage=NullStage(),
        device="cpu",
        run_name="t",
    )
    assert out["steps"] == 1
    expected = prompt_ids(
        bpe_tokenizer, [r["prompt"] for r in rows]
    )  # what collect/eval sample and SFT trains on
    assert recorder.rows and all(row in expected for row in recorder.rows)
    # and they are the chat template's tokens with the task's instructions
    text = bpe_tokenizer.decode(recorder.rows[0])
    assert (
        text.startswith("<|im_start|>system")
        and INSTRUCTIONS["math"] in text
        and text.endswith("assistant\n")
    )


def test_schema_1_traces_train_on_the_prompt_they_were_sampled_with():
    """A store written before traces recorded their rendered prompt: rendering the stored prompt with its kind is
    what sampling did, so old stores still train on the sampled prompt."""
    old = Trace.from_json(
        {
            "prompt": "What is 2+3?",
            "completion": "\\boxed{5}",
            "reward": 1.0,
            "kind": "math",
            "task_id": "m-1",
            "round": 1,
            "model": "p",
            "status": "PASS",
            "schema": 1,
        }
    )
    assert old.rendered_prompt is None
    [row] = rows_from_traces([old], "chat")
    assert row["prompt"] == render_prompt(Task("m-1", "math", "What is 2+3?"), "chat")
    assert rows_from_traces([old], "plain")[0]["prompt"] == "What is 2+3?"


def test_plain_prompts_get_the_special_tokens_trl_gives_them(bpe_tokenizer):
    """Plain prompts are tokenized as TRL's GRPOTrainer does (``processing_class(text=...)``), chat prompts without
    added special tokens (the template writes them): one function serves sampling and training."""
    from selfdistill.generation import render

    chat = render_prompt(Task("m-1", "math", "What is 2+3?"), "chat")
    ids = prompt_ids(bpe_tokenizer, ["What is 2+3?", chat])
    assert ids[0] == bpe_tokenizer("What is 2+3?")["input_ids"]
    assert ids[1] == bpe_tokenizer(render(bpe_tokenizer, chat), add_special_tokens=False)["input_ids"]
    assert torch.tensor(ids[1]).numel() > torch.tensor(ids[0]).numel()
