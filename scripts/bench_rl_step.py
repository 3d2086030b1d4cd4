"""Benchmark one RL step on a random-init MoE of ~1B total parameters in bf16 (GPU).

Measures, on one device, the two halves of a GRPO step and the whole step:
  generation  HF ``generate`` of prompts x num_generations completions: new tokens/s
  training    forward + backward + AdamW step of the clipped policy-gradient loss on those
              sequences: tokens/s and MFU = 6 * active params * tokens/s / peak bf16 FLOP/s
              (attention FLOPs left out, so MFU is a slight underestimate)
  trl step    `GRPOTrainer` (the RL stage's trainer, our rewards) mean ``step_time`` over steps

Run (one command; --tiny runs a small CPU smoke version of the same code):
    python scripts/bench_rl_step.py                      # ~1B-total Qwen3-MoE, cuda, bf16
    python scripts/bench_rl_step.py --tiny --device cpu  # smoke test, seconds
Prints a markdown table; paste it with the command into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import time

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0}  # dense, no sparsity


def moe_config(tiny: bool, vocab: int):
    from transformers import Qwen3MoeConfig

    if tiny:
        shape = dict(
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            moe_intermediate_size=64,
            intermediate_size=128,
            num_experts=8,
            num_experts_per_tok=2,
        )
    else:  # 16 x (32 experts x 3 x 1024 x 512) = 0.81B expert + 0.13B attention params
        shape = dict(
            hidden_size=1024,
            num_hidden_layers=16,
            num_attention_heads=16,
            num_key_value_heads=4,
            moe_intermediate_size=512,
            intermediate_size=2816,
            num_experts=32,
            num_experts_per_tok=4,
        )
    return Qwen3MoeConfig(
        vocab_size=vocab,
        head_dim=shape["hidden_size"] // shape["num_attention_heads"],
        max_position_embeddings=4096,
        output_router_logits=False,
        tie_word_embeddings=False,
        **shape,
    )


def active_params(model, cfg) -> tuple[int, int]:
    """(total, active per token): only top-k of the experts' weights touch a token."""
    total = sum(p.numel() for p in model.parameters())
    expert = sum(p.numel() for n, p in model.named_parameters() if ".experts." in n)
    return total, total - expert + expert * cfg.num_experts_per_tok // cfg.num_experts


def peak_tflops(device: str) -> float | None:
    import torch

    if not device.startswith("cuda"):
        return None
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench_generation(model, tok, prompts, n: int, new_tokens: int, device: str):
    import torch

    enc = tok(
        [p for p in prompts for _ in range(n)], return_tensors="pt", padding=True, add_special_tokens=False
    ).to(device)
    model.eval()
    with torch.no_grad():
        model.generate(**enc, max_new_tokens=4, do_sample=True, pad_token_id=tok.pad_token_id)  # warm-up
        sync(device)
        start = time.perf_counter()
        out = model.generate(
            **enc,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=True,
            top_k=0,
            pad_token_id=tok.pad_token_id,
        )
        sync(device)
    seconds = time.perf_counter() - start
    return out, out[:, enc["input_ids"].shape[1] :].numel() / seconds  # out: (B*n, T_prompt + T_new)


def bench_training(model, seqs, device: str, steps: int):
    """Clipped PG loss on ``seqs`` (B, T) with random advantages; returns tokens/s."""
    import torch

    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    adv = torch.randn(seqs.shape[0], 1, device=device)  # (B, 1)

    def step():
        logits = model(seqs).logits[:, :-1].float()  # (B, T-1, V)
        logp = torch.log_softmax(logits, -1).gather(-1, seqs[:, 1:, None]).squeeze(-1)  # (B, T-1)
        ratio = torch.exp(logp - logp.detach())
        loss = -torch.min(ratio * adv, ratio.clamp(0.8, 1.2) * adv).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()  # warm-up (allocations, kernels)
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return seqs.numel() * steps / (time.perf_counter() - start)


def bench_trl(model, tok, prompts, args, device: str) -> float:
    """Mean seconds per `GRPOTrainer` step (our RL stage's settings, our rewards)."""
    import tempfile

    from selfdistill.config import RewardConfig, RLConfig
    from selfdistill.stages.rl import train_rl
    from selfdistill.tracking import NullStage

    rl = RLConfig(
        max_steps=args.trl_steps,
        num_generations=args.num_generations,
        prompts_per_step=args.prompts,
        max_completion_length=args.new_tokens,
        learning_rate=1e-6,
        logging_steps=1,
        routing="off",
        gradient_checkpointing=False,
    )
    rows = [{"prompt": p, "kind": "math", "answer": "1", "tests": None} for p in prompts] * 4
    with tempfile.TemporaryDirectory() as out:
        res = train_rl(
            model,
            tok,
            rows,
            rl,
            RewardConfig(weights={"math": 1.0}),
            out,
            seed=0,
            stage=NullStage(),
            device="cuda" if device.startswith("cuda") else "cpu",
            run_name="bench",
        )
    times = [h["step_time"] for h in res["history"] if "step_time" in h][1:] or [
        h["step_time"] for h in res["history"]
    ]
    return sum(times) / len(times) if times else float("nan")


def main() -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from selfdistill.models.tokenizer import build_char_tokenizer

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--tiny", action="store_true", help="small model (CPU smoke test)")
    p.add_argument("--prompts", type=int, default=16)
    p.add_argument("--num-generations", type=int, default=8)
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument("--train-steps", type=int, default=3)
    p.add_argument("--trl-steps", type=int, default=3)
    args = p.parse_args()
    if args.tiny:
        args.prompts, args.num_generations, args.new_tokens = 2, 4, 16
    dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
    tok = build_char_tokenizer()
    cfg = moe_config(args.tiny, len(tok))
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg, dtype=dtype).to(args.device)
    total, active = active_params(model, cfg)
    prompts = [f"What is {i} + {2 * i}? Think, then answer in \\boxed{{}}." for i in range(args.prompts)]
    seqs, gen_tps = bench_generation(model, tok, prompts, args.num_generations, args.new_tokens, args.device)
    train_tps = bench_training(model, seqs, args.device, args.train_steps)
    peak = peak_tflops(args.device)
    mfu = 6 * active * train_tps / (peak * 1e12) if peak else None
    step_s = bench_trl(model, tok, prompts, args, args.device)
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(
        f"\n{device}, {dtype}, torch {torch.__version__}; total params {total / 1e9:.3f}B, active {active / 1e9:.3f}B; "
        f"batch {args.prompts}x{args.num_generations} sequences, {args.new_tokens} new tokens\n"
    )
    print("| measure | value |\n|---|---|")
    print(f"| generation (HF generate) | {gen_tps:,.0f} new tokens/s |")
    print(f"| training (fwd+bwd+AdamW) | {train_tps:,.0f} tokens/s |")
    print(
        f"| training MFU (6·N_active·tok/s, bf16 peak {peak} TFLOP/s) | {'n/a' if mfu is None else f'{100 * mfu:.1f}%'} |"
    )
    print(f"| GRPOTrainer step (TRL, our rewards) | {step_s:.2f} s/step |")


if __name__ == "__main__":
    main()
