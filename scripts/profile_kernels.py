"""Where the fused LM-head losses spend their time on a GPU: the roofline, a per-kernel breakdown, a chunk sweep.

Prints, for each shape:
- the measured bf16 matmul rate (an 8192^3 product) and the time of the three GEMMs the loss needs
  (logits = X·Wᵀ, dX = G·W, dW = Gᵀ·X, each materialised whole): the floor no chunked kernel can beat;
- a torch.profiler table of the CUDA kernels of one fused forward+backward (ours, Triton rows);
- forward+backward time and peak memory for several per-chunk memory budgets (`CHUNK_BUDGET_BYTES`).

    python scripts/profile_kernels.py --shapes 8192x4096x151936 --budgets 256,448,1024
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from selfdistill.kernels import _chunking, fused_linear_cross_entropy, fused_linear_distillation  # noqa: E402
from selfdistill.kernels.measure import peak_memory_increase, time_ms  # noqa: E402

MIB = 1 << 20


def matmul_rate(device: torch.device) -> float:
    """TFLOP/s of a bf16 8192x8192x8192 product on random data (the ceiling the issue's 70% goal refers to)."""
    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    med, _, _ = time_ms(lambda: a @ b, device, reps=20, warmup=3)
    return 2 * 8192**3 / (med * 1e-3) / 1e12


def gemm_floor(n: int, h: int, v: int, device: torch.device) -> dict[str, float]:
    """Milliseconds of each of the loss's three GEMMs at full size (bf16 in; bf16 out, dW also fp32 out)."""
    x = torch.randn(n, h, device=device, dtype=torch.bfloat16)
    w = torch.randn(v, h, device=device, dtype=torch.bfloat16) / h**0.5
    g = torch.randn(n, v, device=device, dtype=torch.bfloat16)
    dw32 = torch.zeros(v, h, device=device, dtype=torch.float32)
    dw16 = torch.zeros(v, h, device=device, dtype=torch.bfloat16)
    candidates = {
        "logits X·Wᵀ": lambda: x @ w.t(),
        "dX G·W": lambda: g @ w,
        "dW Gᵀ·X (bf16 out)": lambda: g.t() @ x,
        "dW Gᵀ·X (fp32 out)": lambda: torch.mm(g.t(), x, out_dtype=torch.float32),
        "dW += Gᵀ·X (fp32 acc)": lambda: _chunking.mm_into(dw32, g.t(), x, accumulate=True),
        "dW += Gᵀ·X (bf16 acc)": lambda: _chunking.mm_into(dw16, g.t(), x, accumulate=True),
    }
    out = {}
    for name, fn in candidates.items():
        try:
            out[name] = time_ms(fn, device, 10)[0]
        except (RuntimeError, TypeError) as exc:  # an overload missing in this torch
            print(f"  {name}: {type(exc).__name__}: {str(exc)[:80]}")
    return out


def inputs(n, h, v, device, seed=0):
    gen = torch.Generator(device="cpu").manual_seed(seed)
    x = (torch.randn(n, h, generator=gen)).to(device, torch.bfloat16).requires_grad_()
    w = (torch.randn(v, h, generator=gen) * 4 / h**0.5).to(device, torch.bfloat16).requires_grad_()
    tx = torch.randn(n, h, generator=gen).to(device, torch.bfloat16)
    tw = (torch.randn(v, h, generator=gen) * 4 / h**0.5).to(device, torch.bfloat16)
    y = torch.randint(0, v, (n,), generator=gen).to(device)
    return x, w, tx, tw, y


def losses(x, w, tx, tw, y, impl):
    """ops by name; the `_w` ones accumulate dW in the weight's dtype instead of fp32."""
    return {
        "ce": lambda: fused_linear_cross_entropy(x, w, y, impl=impl),
        "jsd": lambda: fused_linear_distillation(x, w, tx, tw, y, divergence="jsd", impl=impl),
        "ce_w": lambda: fused_linear_cross_entropy(x, w, y, impl=impl, dw_accumulation="weight"),
        "jsd_w": lambda: fused_linear_distillation(
            x, w, tx, tw, y, divergence="jsd", impl=impl, dw_accumulation="weight"
        ),
    }


def step(fn, x, w):
    x.grad = w.grad = None
    fn().backward()


def profile_table(fn, x, w, rows: int = 12) -> str:
    step(fn, x, w)
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        step(fn, x, w)
        torch.cuda.synchronize()
    return prof.key_averages().table(sort_by="cuda_time_total", row_limit=rows, max_name_column_width=60)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shapes", default="8192x4096x151936,8192x2048x32000")
    parser.add_argument("--budgets", default="500", help="per-chunk MiB budgets to sweep")
    parser.add_argument("--ops", default="ce,ce_w,jsd,jsd_w")
    parser.add_argument("--impl", default="triton")
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()
    device = torch.device("cuda")
    print(f"# {torch.cuda.get_device_name()}; torch {torch.__version__}")
    print(f"bf16 matmul 8192^3: {matmul_rate(device):.0f} TFLOP/s", flush=True)
    for shape in args.shapes.split(","):
        n, h, v = (int(s) for s in shape.split("x"))
        print(f"\n## {shape}: 6NHV = {6 * n * h * v / 1e12:.2f} TFLOP")
        floor = gemm_floor(n, h, v, device)
        for name, ms in floor.items():
            print(f"  {name:24s} {ms:7.2f} ms  ({2 * n * h * v / (ms * 1e-3) / 1e12:.0f} TFLOP/s)")
        run_shape(n, h, v, args, device)
        torch.cuda.empty_cache()


def run_shape(n: int, h: int, v: int, args, device: torch.device) -> None:
    x, w, tx, tw, y = inputs(n, h, v, device)
    for op in args.ops.split(","):
        fn = losses(x, w, tx, tw, y, args.impl)[op]
        if not args.no_profile:
            print(f"\n### {op} kernels (budget {_chunking.CHUNK_BUDGET_BYTES['cuda'] // MIB} MiB)")
            print(profile_table(fn, x, w), flush=True)
        default = _chunking.CHUNK_BUDGET_BYTES["cuda"]
        for mib in (int(b) for b in args.budgets.split(",")):
            _chunking.CHUNK_BUDGET_BYTES["cuda"] = mib * MIB
            x.grad = w.grad = None
            _, peak = peak_memory_increase(lambda fn=fn: step(fn, x, w), device)
            med, p20, p80 = time_ms(lambda fn=fn: step(fn, x, w), device, args.reps)
            flops = 6 * n * h * v + (2 * n * h * v if op == "jsd" else 0)
            print(
                f"  {op} budget {mib:5d} MiB: {med:7.2f} ms ({p20:.2f}-{p80:.2f}) "
                f"{flops / (med * 1e-3) / 1e12:5.0f} TFLOP/s  peak {peak / MIB:6.0f} MiB",
                flush=True,
            )
        _chunking.CHUNK_BUDGET_BYTES["cuda"] = default


if __name__ == "__main__":
    main()
