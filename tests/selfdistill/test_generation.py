"""Sampling backends: greedy text equal across hf and paged, seeded samples reproducible within a backend,
backend choice and its errors, vLLM's argument mapping (without vLLM), and `selfdistill generate` -> `score`."""

import json
from types import SimpleNamespace

import pytest
import torch

from selfdistill.config import GenerationConfig
from selfdistill.configio import ConfigError
from selfdistill.generation import SamplingParams, SpecialTokens, resolve_backend, sample, sample_ids
from selfdistill.generation.core import cut_at_eos
from selfdistill.generation.vllm_offline import (
    INSTALL_HINT,
    VLLMBackend,
    checkpoint_dir,
    completion_ids,
    engine_kwargs,
    sampling_kwargs,
)

PROMPTS = ["What is 1+2?", "Compute 13*7, then box it.", "x", "def f(a, b):\n    return"]


def run(model, tok, backend, **kw):
    args = dict(n=3, temperature=0.0, max_new_tokens=16, batch_size=5, seed=0)
    return sample(model, tok, PROMPTS, **{**args, **kw}, backend=backend)


@pytest.mark.parametrize("which", ["tiny_moe", "tiny_dense"])
def test_greedy_text_is_the_same_on_hf_and_paged(which, tokenizer, request):
    model = request.getfixturevalue(which)
    hf, paged = run(model, tokenizer, "hf"), run(model, tokenizer, "paged")
    assert (hf.backend, paged.backend) == ("hf", "paged")
    assert hf.completions == paged.completions
    assert hf.new_tokens == paged.new_tokens > 0
    assert all(len(set(c)) == 1 and len(c) == 3 for c in hf.completions)  # greedy: the n copies agree


def test_paged_sampling_keeps_transformers_cache_logs_out_of_the_progress_bars(tiny_moe, tokenizer):
    """Continuous batching logs its cache sizing at INFO on its own stderr handler, on every call (each collect
    chunk), once the CLI has set the root level to INFO: those lines break the progress bars. Warnings still pass."""
    import logging

    cb_log = logging.getLogger("ContinuousBatchingLogger")
    cb_log.setLevel(logging.NOTSET)  # as transformers leaves it
    root = logging.getLogger()
    level, root.level = root.level, logging.INFO  # as the CLI sets it
    try:
        assert cb_log.isEnabledFor(logging.INFO)
        run(tiny_moe, tokenizer, "paged")
        assert not cb_log.isEnabledFor(logging.INFO) and cb_log.isEnabledFor(logging.WARNING)
    finally:
        root.setLevel(level)


@pytest.mark.parametrize("backend", ["hf", "paged"])
def test_same_seed_same_samples_within_a_backend(backend, tiny_moe, tokenizer):
    a = run(tiny_moe, tokenizer, backend, temperature=1.0, seed=7)
    b = run(tiny_moe, tokenizer, backend, temperature=1.0, seed=7)
    c = run(tiny_moe, tokenizer, backend, temperature=1.0, seed=8)
    assert a.completions == b.completions
    assert a.completions != c.completions
    assert len({t for per_prompt in a.completions for t in per_prompt}) > len(
        PROMPTS
    )  # samples of a prompt differ


@pytest.mark.parametrize("backend", ["hf", "paged"])
def test_sampling_leaves_the_callers_random_state_and_train_mode(backend, tiny_moe, tokenizer):
    tiny_moe.train()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    run(tiny_moe, tokenizer, backend, temperature=1.0)
    assert torch.equal(torch.rand(3), expected)
    assert tiny_moe.training


def test_completions_stop_at_eos_with_the_eos_counted(tiny_dense, tokenizer):
    eos = tokenizer.eos_token_id
    assert cut_at_eos([5, 6, eos, 0, 0], eos) == [5, 6, eos] and cut_at_eos([5, 6], eos) == [5, 6]
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=40, seed=1, batch_size=8)
    for backend in ("hf", "paged"):
        got = sample_ids(
            tiny_dense,
            [[7, 8, 9]] * 6,
            params,
            SpecialTokens(eos=eos, pad=tokenizer.pad_token_id),
            backend=backend,
        )
        flat = [c for per_prompt in got.completions for c in per_prompt]
        assert len(got.completions) == 6 and all(len(c) == 2 for c in got.completions)
        assert all(1 <= len(c) <= 40 and eos not in c[:-1] for c in flat)
        assert got.new_tokens == sum(len(c) for c in flat)


def test_auto_on_cpu_picks_paged_only_with_request_by_request_attention(tiny_moe, tokenizer):
    # measured (docs/benchmarks.md): paged beats hf on CPU with its varlen attention, loses with dense attention
    assert resolve_backend("auto", tiny_moe).name == "paged"
    assert resolve_backend("auto", tiny_moe, GenerationConfig(paged_on_cpu=False)).name == "hf"
    assert resolve_backend("auto", tiny_moe, GenerationConfig(paged_varlen_attention=False)).name == "hf"
    assert resolve_backend("auto", tiny_moe, in_flight=64).name == "paged"
    assert resolve_backend("auto", tiny_moe, in_flight=63).name == "hf"  # too few sequences at once
    assert run(tiny_moe, tokenizer, "auto", temperature=1.0).backend == "hf"  # 4 prompts x 3
    assert run(tiny_moe, tokenizer, "auto", temperature=1.0, n=16, batch_size=64).backend == "paged"
    assert resolve_backend("paged", tiny_moe).name == "paged" and resolve_backend("hf", tiny_moe).name == "hf"
    from transformers import MistralConfig, MistralForCausalLM

    sliding = MistralForCausalLM(
        MistralConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
            sliding_window=8,
            attn_implementation="sdpa",
        )
    )
    assert resolve_backend("auto", sliding).name == "hf"  # no varlen attention for sliding windows
    assert "sliding-window" in resolve_backend("paged", sliding).slower_on_cpu(sliding, GenerationConfig())


def test_backend_errors_are_clear(tiny_moe):
    with pytest.raises(
        ConfigError, match="unknown generation backend 'vlm'; choose one of: auto, hf, paged, vllm"
    ):
        resolve_backend("vlm", tiny_moe)
    with pytest.raises(RuntimeError, match="cannot follow a model being trained"):
        resolve_backend("vllm", tiny_moe, training=True)
    why = VLLMBackend().unavailable(tiny_moe, training=False)
    assert why is not None  # no vLLM (or no CUDA) here
    try:
        import vllm  # noqa: F401
    except ImportError:
        assert why == INSTALL_HINT and "pip install 'selfdistill[vllm]'" in why
        with pytest.raises(RuntimeError, match=r"generation.backend=vllm: vLLM is not installed"):
            resolve_backend("vllm", tiny_moe)


def test_vllm_arguments_map_our_settings(tiny_dense, tokenizer, tmp_path):
    from selfdistill.models.loading import load_model, save_model

    save_model(tiny_dense, tokenizer, tmp_path / "m")
    loaded, _ = load_model(tmp_path / "m")
    assert checkpoint_dir(loaded) == str(tmp_path / "m") == checkpoint_dir(str(tmp_path / "m"))
    assert checkpoint_dir(tiny_dense) is None  # built in memory: vLLM has nothing to load
    settings = GenerationConfig(
        vllm_tensor_parallel_size=4,
        vllm_gpu_memory_utilization=0.5,
        vllm_prefix_caching=False,
        vllm_max_model_len=2048,
    )
    kw = engine_kwargs("/ckpt", settings, "bfloat16")
    assert kw == {
        "model": "/ckpt",
        "tokenizer": "/ckpt",
        "dtype": "bfloat16",
        "tensor_parallel_size": 4,
        "gpu_memory_utilization": 0.5,
        "enable_prefix_caching": False,
        "seed": 0,
        "max_model_len": 2048,
    }
    assert "max_model_len" not in engine_kwargs("/ckpt", GenerationConfig())
    special = SpecialTokens(eos=2, pad=0)
    sp = sampling_kwargs(
        SamplingParams(n=8, temperature=0.8, top_p=0.9, max_new_tokens=256), special, seed=11
    )
    assert sp == {
        "n": 8,
        "temperature": 0.8,
        "top_p": 0.9,
        "max_tokens": 256,
        "seed": 11,
        "stop_token_ids": [2],
        "detokenize": False,
    }
    greedy = sampling_kwargs(SamplingParams(n=1, temperature=0.0, top_p=0.5), special, seed=0)
    assert greedy["temperature"] == 0.0 and greedy["top_p"] == 1.0
    assert completion_ids(SimpleNamespace(token_ids=(5, 6), finish_reason="stop"), 2) == [5, 6, 2]
    assert completion_ids(SimpleNamespace(token_ids=(5, 6, 2), finish_reason="stop"), 2) == [5, 6, 2]
    assert completion_ids(SimpleNamespace(token_ids=(5, 6), finish_reason="length"), 2) == [5, 6]


def test_generate_then_score_round_trip(tiny_dense, tokenizer, tmp_path, capsys):
    from selfdistill.cli import main
    from selfdistill.models.loading import save_model

    save_model(tiny_dense, tokenizer, tmp_path / "model")
    rows = [
        {"prompt": "What is 2+3?", "kind": "math", "answer": "5", "id": "a"},
        "not json at all",
        {"kind": "math", "answer": "1"},  # no prompt
        {"prompt": "What is 4*4?", "kind": "math", "answer": "16", "id": "b"},
        {"prompt": 5},
    ]
    src = tmp_path / "tasks.jsonl"
    src.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "out.jsonl"
    rc = main(
        [
            "generate",
            str(tmp_path / "model"),
            str(src),
            "-o",
            str(out),
            "--n",
            "3",
            "--temperature",
            "1.0",
            "--max-new-tokens",
            "12",
            "--backend",
            "paged",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 0
    assert (
        "line 2: not valid JSON" in err
        and "line 3: no 'prompt' key" in err
        and "line 5: 'prompt' must be" in err
    )
    assert "tokens/s (backend paged)" in err
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(g["id"], g["sample"]) for g in got] == [
        ("a", 0),
        ("a", 1),
        ("a", 2),
        ("b", 0),
        ("b", 1),
        ("b", 2),
    ]
    assert all(g["kind"] == "math" and isinstance(g["completion"], str) for g in got)
    assert [g["answer"] for g in got] == ["5"] * 3 + ["16"] * 3
    scored = tmp_path / "scored.jsonl"
    assert main(["score", str(out), "-o", str(scored), "--workers", "1"]) == 0
    results = [json.loads(line) for line in scored.read_text().splitlines()]
    assert len(results) == 6 and all(
        r["id"] == g["id"] and "reward" in r and "status" in r for r, g in zip(results, got)
    )


def test_generate_reports_bad_arguments(tmp_path, capsys):
    from selfdistill.cli import main

    (tmp_path / "p.jsonl").write_text('{"prompt": "hi"}\n')
    assert (
        main(["generate", str(tmp_path / "missing"), str(tmp_path / "p.jsonl"), "-o", str(tmp_path / "o")])
        == 2
    )
    assert "model path not found" in capsys.readouterr().err
    assert main(["generate", "m", str(tmp_path / "p.jsonl"), "-o", "o", "--backend", "fast"]) == 2
    assert "--backend: unknown generation backend 'fast'" in capsys.readouterr().err
    assert main(["generate", "m", str(tmp_path / "nope.jsonl"), "-o", "o"]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_on_policy_samples_through_the_paged_backend(tiny_dense, tokenizer):
    from selfdistill.distill.on_policy import prompt_lengths, sample_on_policy

    ids = torch.tensor([[5, 6, 7, 8, 9, 0], [5, 6, 10, 11, 0, 0]])
    labels = torch.tensor([[-100, -100, -100, 8, 9, -100], [-100, -100, 10, 11, -100, -100]])
    kw = dict(pad_id=tokenizer.pad_token_id, eos_id=tokenizer.eos_token_id, max_new_tokens=6, temperature=1.0)
    a = sample_on_policy(tiny_dense, ids, labels, **kw, seed=3, backend="paged")
    b = sample_on_policy(tiny_dense, ids, labels, **kw, seed=3, backend="paged")
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    new_ids, mask, new_labels = a
    for row, n in enumerate(prompt_lengths(labels).tolist()):
        assert torch.equal(new_ids[row, :n], ids[row, :n])
        assert 1 <= int((new_labels[row] != -100).sum()) <= 6
    with pytest.raises(RuntimeError, match="cannot follow a model being trained"):
        sample_on_policy(tiny_dense, ids, labels, **kw, backend="vllm")


def test_generate_chat_applies_the_template_and_greedy_matches_sample(
    bpe_llama, bpe_tokenizer, tmp_path, capsys
):
    """--chat renders string prompts as a user turn; message-list prompts go through the template as they are."""
    from selfdistill.cli import main
    from selfdistill.models.loading import save_model

    save_model(bpe_llama, bpe_tokenizer, tmp_path / "model")
    messages = [{"role": "user", "content": "What is 2+3?"}]
    (tmp_path / "p.jsonl").write_text(
        json.dumps({"prompt": "What is 2+3?"}) + "\n" + json.dumps({"prompt": messages}) + "\n"
    )
    out = tmp_path / "o.jsonl"
    assert (
        main(
            [
                "generate",
                str(tmp_path / "model"),
                str(tmp_path / "p.jsonl"),
                "-o",
                str(out),
                "--chat",
                "--temperature",
                "0",
                "--max-new-tokens",
                "8",
                "--backend",
                "hf",
            ]
        )
        == 0
    )
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [g["sample"] for g in got] == [0, 0] and got[1]["prompt"] == messages  # input keys pass through
    assert got[0]["completion"] == got[1]["completion"]  # the same rendered chat prompt, greedy
    expected = sample(
        bpe_llama,
        bpe_tokenizer,
        [messages],
        n=1,
        temperature=0.0,
        max_new_tokens=8,
        batch_size=2,
        seed=0,
        backend="hf",
    ).completions[0][0]
    assert got[0]["completion"] == expected


def test_collect_through_the_paged_backend_is_reproducible(tiny_moe, tokenizer, tmp_path):
    from types import SimpleNamespace as NS

    from selfdistill.config import CollectConfig, RewardConfig
    from selfdistill.stages.collect import collect_round
    from selfdistill.tasks import math_gen
    from selfdistill.traces import TraceStore
    from selfdistill.tracking import NullStage

    tasks = math_gen.generate_math_tasks(NS(n=6, difficulty=1), 0)
    ccfg = CollectConfig(
        num_prompts=6,
        k=3,
        max_new_tokens=10,
        min_reward=0.0,
        require_format=False,
        max_per_prompt=3,
        chunk_size=3,
        batch_size=8,
    )
    runs = []
    for name in ("a", "b"):
        store = TraceStore(tmp_path / name)
        out = collect_round(
            tiny_moe,
            tokenizer,
            tasks,
            store,
            ccfg=ccfg,
            rcfg=RewardConfig(weights={"math": 1.0}),
            round_=1,
            seed=0,
            model_name="p",
            prompt_format="plain",
            stage=NullStage(),
            gcfg=GenerationConfig(backend="paged"),
        )
        assert out["sampled"] == 18
        runs.append([(t.prompt, t.completion, t.sampling["backend"]) for t in store.iter()])
    assert runs[0] == runs[1] and runs[0] and {b for *_, b in runs[0]} == {"paged"}
