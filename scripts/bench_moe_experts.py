"""Decode and train-step speed of transformers' MoE experts implementations on an upcycled real model.

transformers (5.x) runs a MoE block's experts through ``config._experts_implementation``: ``eager`` (a loop
over the experts that received tokens), ``batched_mm`` (gathers one weight matrix per (token, expert) pair:
memory-bound, made for tiny decode batches on GPU) or ``grouped_mm`` (tokens sorted by expert, one grouped
GEMM; on CPU a native kernel in torch >= 2.9). This measures, in one process, the dense checkpoint and its
upcycled MoE under each implementation:

  decode: ``generate`` of ``--batch`` prompts x ``--new-tokens`` sampled tokens (tokens/s of new tokens);
  train:  forward + backward of a (``--batch``, ``--seq``) batch with labels (seconds per step).

Interleaved repeats, min per case. `selfdistill.models.loading.EXPERTS_BY_DEVICE` records the winner per
device type (``policy.experts_implementation: auto``).

    python scripts/bench_moe_experts.py --model models/SmolLM2-135M-Instruct [--experts 4 --top-k 2] \
        [--batch 16 --new-tokens 32 --seq 96 --repeats 2 --threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch

IMPLEMENTATIONS = ("eager", "batched_mm", "grouped_mm")


def decode_tps(model, tokenizer, batch: int, new_tokens: int) -> float:
    prompts = [f"Question {i}: what is {i} plus {2 * i}? Think step by step." for i in range(batch)]
    enc = tokenizer(prompts, return_tensors="pt", padding=True)
    start = time.perf_counter()
    with torch.no_grad():
        out = model.generate(
            **enc, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=True, temperature=1.0
        )
    elapsed = time.perf_counter() - start
    return (out.shape[1] - enc["input_ids"].shape[1]) * batch / elapsed


def train_step_s(model, batch: int, seq: int) -> float:
    ids = torch.randint(3, model.config.vocab_size, (batch, seq))  # (B, T)
    model.train()
    start = time.perf_counter()
    model.zero_grad(set_to_none=True)
    model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=ids).loss.backward()
    elapsed = time.perf_counter() - start
    model.zero_grad(set_to_none=True)
    model.eval()
    return elapsed


def main() -> None:
    from selfdistill.models.loading import load_model
    from selfdistill.models.upcycle import upcycle_model

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="dense checkpoint directory")
    ap.add_argument("--experts", type=int, default=4)
    ap.add_argument("--top-k", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--seq", type=int, default=96)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--impls", default=",".join(IMPLEMENTATIONS))
    ap.add_argument(
        "--train-impls",
        default="eager,grouped_mm",
        help="implementations whose train step is timed (batched_mm gathers a weight matrix per routed token: "
        "a (16, 96) batch needs > 10 GB, so it is left out by default)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    dense, tokenizer = load_model(args.model, "cpu", "float32")
    moe = upcycle_model(dense, args.experts, args.top_k)
    moe.generation_config.pad_token_id = tokenizer.pad_token_id
    impls = args.impls.split(",")
    cases = [("dense", dense, None)] + [(f"moe {i}", moe, i) for i in impls]
    best: dict[str, dict[str, float]] = {name: {"decode": 0.0, "train": float("inf")} for name, _, _ in cases}
    for rep in range(args.repeats):
        for name, model, impl in cases:
            if impl is not None:
                model.set_experts_implementation(impl)
            tps = decode_tps(model, tokenizer, args.batch, args.new_tokens)
            best[name]["decode"] = max(best[name]["decode"], tps)
            if impl is None or impl in args.train_impls.split(","):
                best[name]["train"] = min(best[name]["train"], train_step_s(model, args.batch, args.seq))
            print(f"rep {rep} {name}: {tps:.1f} tok/s, train {best[name]['train']:.2f} s", flush=True)

    print(
        f"\nbatch {args.batch}, {args.new_tokens} new tokens, train seq {args.seq}, threads {args.threads}, "
        f"torch {torch.__version__}\n"
    )
    print("| model | decode tokens/s | train step s (fwd+bwd) |\n|---|---|---|")
    for name, b in best.items():
        train = f"{b['train']:.2f}" if b["train"] < float("inf") else "not timed"
        print(f"| {name} | {b['decode']:.1f} | {train} |")


if __name__ == "__main__":
    main()
