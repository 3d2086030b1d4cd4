"""Tiny models, the local tokenizer and the bootstrap corpus of worked solutions."""

from types import SimpleNamespace

import pytest

from rewards.math import verify
from selfdistill.config import BootstrapConfig, TinyModelConfig
from selfdistill.models.bootstrap import bootstrap_corpus
from selfdistill.models.tiny import build_tiny, count_params
from selfdistill.tasks import math_gen
from selfdistill.tasks.base import prompt_hash


def test_tokenizer_round_trip_and_markers(tokenizer):
    text = (
        "f(xs): the sum of xs plus 3<think>sum(xs)+3</think>```python\ndef f(xs):\n    return sum(xs)+3\n```"
    )
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text
    assert len(ids) < len(text)  # markers are single tokens
    assert tokenizer.convert_ids_to_tokens(tokenizer("<think>", add_special_tokens=False)["input_ids"]) == [
        "<think>"
    ]
    assert tokenizer.padding_side == "left" and tokenizer.eos_token_id != tokenizer.pad_token_id


@pytest.mark.parametrize("arch", ["qwen3_moe", "qwen2", "llama"])
def test_tiny_architectures_build_and_generate(arch, tokenizer):
    import torch

    model = build_tiny(
        TinyModelConfig(
            arch=arch, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=32, num_experts=4
        ),
        tokenizer,
        seed=0,
    )
    assert model.config.vocab_size == len(tokenizer)
    enc = tokenizer(["1+2-3=?"], return_tensors="pt")
    out = model.generate(**enc, max_new_tokens=4, do_sample=False)
    assert out.shape == (1, enc["input_ids"].shape[1] + 4)
    if arch == "qwen3_moe":
        assert not model.config.output_router_logits  # True crashes generate in transformers 5.23
    torch.manual_seed(0)


def test_student_is_a_fraction_of_the_policy(tokenizer):
    policy = build_tiny(TinyModelConfig(), tokenizer, 0)
    student = build_tiny(TinyModelConfig(arch="qwen2", intermediate_size=192), tokenizer, 0)
    assert count_params(student) <= count_params(policy) / 3


def test_bootstrap_corpus_mix_mistakes_and_no_held_out_prompt():
    boot = BootstrapConfig(corpus_size=2000, mistake_rate=0.4)
    held_out = {
        prompt_hash(t.prompt)
        for t in math_gen.generate_math_tasks(SimpleNamespace(n=300, difficulty=1), 1000)[:50]
    }
    rows = bootstrap_corpus(boot, {"math": 3, "code": 1}, seed=0, exclude=held_out)
    assert not {prompt_hash(r["prompt"]) for r in rows} & held_out
    math_rows = [r for r in rows if r["prompt"].endswith("=?")]
    assert 0.7 < len(math_rows) / len(rows) < 0.8
    tasks = {t.prompt: t for t in math_gen.generate_math_tasks(SimpleNamespace(n=1000, difficulty=1), 1000)}
    graded = [
        verify(r["completion"], tasks[r["prompt"]].answer)[0] for r in math_rows[:300] if r["prompt"] in tasks
    ]
    wrong = 1 - sum(graded) / len(graded)
    assert 0.3 < wrong < 0.5  # ~mistake_rate of the worked solutions are wrong


def test_bootstrap_needs_procedural_tasks():
    with pytest.raises(ValueError, match="procedural math or code"):
        bootstrap_corpus(BootstrapConfig(corpus_size=10), {"other": 5}, 0, set())
