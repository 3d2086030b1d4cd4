"""Benchmark the fused LM-head losses against eager PyTorch, torch.compile, F.linear_cross_entropy, Liger and TRL.

For each shape and candidate, one run measures forward+backward time (median and p20/p80 over --reps, CUDA events
on GPU) and peak memory above the inputs, and checks loss / dX / dW against an fp32 eager reference. TFLOP/s are
counted on 6·N·H·V (+ 2·N·Ht·V for the distillation teacher's head). Candidates that are not installed or do not
run on the device print a reason instead of a number.

GPU (the issue-5 table; N=8192, H in {2048, 4096}, V in {32000, 151936}, bf16):
    python scripts/bench_kernels.py
CPU smoke run (small shapes, fp32, the Triton rows skipped):
    python scripts/bench_kernels.py --device cpu --dtype float32 --shapes 512x64x2000 --reps 3
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from selfdistill.kernels import fused_linear_cross_entropy, fused_linear_distillation  # noqa: E402
from selfdistill.kernels.measure import peak_memory_increase, time_ms  # noqa: E402
from selfdistill.kernels.reference import (  # noqa: E402
    reference_linear_cross_entropy,
    reference_linear_distillation,
)

DEFAULT_SHAPES = "8192x2048x32000,8192x4096x32000,8192x2048x151936,8192x4096x151936"
MIB = 1 << 20


@dataclass
class Case:
    x: torch.Tensor  # [N, H] student hidden, requires grad
    w: torch.Tensor  # [V, H] student head, requires grad
    y: torch.Tensor  # [N] labels (some ignored)
    tx: torch.Tensor  # [N, Ht] teacher hidden
    tw: torch.Tensor  # [V, Ht] teacher head
    beta: float
    temperature: float


Loss = Callable[[Case], torch.Tensor]


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# ---------------------------------------------------------------- cross-entropy candidates
def _eager_ce(c: Case) -> torch.Tensor:
    return reference_linear_cross_entropy(c.x, c.w, c.y)


def _torch_lce(c: Case) -> torch.Tensor:
    return F.linear_cross_entropy(c.x, c.w, c.y, options=torch.nn.LinearCrossEntropyOptions())


def _liger_ce() -> Loss:
    from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss

    loss = LigerFusedLinearCrossEntropyLoss()
    return lambda c: loss(c.w, c.x, c.y)


def _trl_ce(c: Case) -> torch.Tensor:
    from trl.kernels import ChunkedLogProbFunction

    mask = c.y != -100
    logprobs = ChunkedLogProbFunction.apply(c.x, c.w, None, c.y.clamp(min=0), 1.0, 32768, None, 1.0, ())[0]
    return -(logprobs * mask).sum() / mask.sum().clamp(min=1)


def ce_candidates(device: torch.device, compile_: bool) -> dict[str, Loss | str]:
    cuda = device.type == "cuda"
    out: dict[str, Loss | str] = {"eager": _eager_ce}
    out["torch.compile"] = torch.compile(_eager_ce) if compile_ else "skipped (--no-compile)"
    out["F.linear_cross_entropy"] = (
        _torch_lce if hasattr(torch.nn, "LinearCrossEntropyOptions") else "not in this torch"
    )
    out["liger FLCE"] = _liger_ce() if cuda and _has("liger_kernel") else "needs CUDA + liger-kernel"
    out["trl ChunkedLogProb"] = _trl_ce if _has("trl.kernels") else "trl.kernels missing"
    out["ours torch"] = lambda c: fused_linear_cross_entropy(c.x, c.w, c.y, impl="torch")
    out["ours triton"] = (
        (lambda c: fused_linear_cross_entropy(c.x, c.w, c.y, impl="triton")) if cuda else "needs CUDA"
    )
    out["ours triton, dW in weight dtype"] = (
        (lambda c: fused_linear_cross_entropy(c.x, c.w, c.y, impl="triton", dw_accumulation="weight"))
        if cuda
        else "needs CUDA"
    )
    return out


# ---------------------------------------------------------------- distillation (JSD) candidates
def _eager_kd(c: Case) -> torch.Tensor:
    return reference_linear_distillation(
        c.x, c.w, c.tx, c.tw, c.y, divergence="jsd", beta=c.beta, temperature=c.temperature
    )


def _liger_jsd_chunked(compiled: bool) -> Loss:
    from liger_kernel.chunked_loss import LigerFusedLinearJSDLoss

    loss = LigerFusedLinearJSDLoss(weight_hard_loss=0.0, weight_soft_loss=1.0, beta=0.5, compiled=compiled)
    return lambda c: loss(c.x, c.w, c.tx, c.tw, c.y)


def _liger_jsd_triton() -> Loss:
    from liger_kernel.transformers import LigerFusedLinearJSD

    loss = LigerFusedLinearJSD(jsd_beta=0.5)
    return lambda c: loss(c.x, c.w, c.tx, c.tw, c.y)


def _trl_kd(c: Case) -> torch.Tensor:
    from trl.kernels.chunked_divergence import ChunkedDivergenceFunction

    mask = c.y != -100
    per_token, _ = ChunkedDivergenceFunction.apply(
        c.x, c.w, None, c.tx, c.tw, None, c.beta, c.temperature, 1.0, None, 1.0, None
    )
    return (per_token * mask).sum() / mask.sum().clamp(min=1)


def kd_candidates(device: torch.device, compile_: bool) -> dict[str, Loss | str]:
    cuda = device.type == "cuda"
    liger = _has("liger_kernel")

    def ours(impl: str, dw_accumulation: str = "fp32", fp32_logits: bool = True) -> Loss:
        return lambda c: fused_linear_distillation(
            c.x, c.w, c.tx, c.tw, c.y, divergence="jsd", beta=c.beta, temperature=c.temperature, impl=impl,
            dw_accumulation=dw_accumulation, fp32_logits=fp32_logits,
        )  # fmt: skip

    out: dict[str, Loss | str] = {"eager": _eager_kd}
    out["torch.compile"] = torch.compile(_eager_kd) if compile_ else "skipped (--no-compile)"
    out["liger JSDLoss (chunked)"] = _liger_jsd_chunked(compile_) if liger else "liger-kernel missing"
    out["liger FusedLinearJSD"] = _liger_jsd_triton() if cuda and liger else "needs CUDA + liger-kernel"
    out["trl ChunkedDivergence"] = _trl_kd if _has("trl.kernels") else "trl.kernels missing"
    out["ours torch"] = ours("torch")
    out["ours triton"] = ours("triton") if cuda else "needs CUDA"
    out["ours triton, dW in weight dtype"] = ours("triton", "weight") if cuda else "needs CUDA"
    out["ours triton, bf16 logits"] = ours("triton", fp32_logits=False) if cuda else "needs CUDA"
    return out


OPS = {"ce": ce_candidates, "distill": kd_candidates}


# ---------------------------------------------------------------- running
def make_case(n, h, v, ht, dtype, device, ignore_frac, seed=0) -> Case:
    gen = torch.Generator(device="cpu").manual_seed(seed)

    def randn(*shape, scale=1.0):
        return (torch.randn(*shape, generator=gen) * scale).to(device=device, dtype=dtype)

    y = torch.randint(0, v, (n,), generator=gen)
    y[torch.rand(n, generator=gen) < ignore_frac] = -100
    x, w = randn(n, h).requires_grad_(), randn(v, h, scale=h**-0.5 * 4).requires_grad_()
    return Case(x, w, y.to(device), randn(n, ht), randn(v, ht, scale=ht**-0.5 * 4), beta=0.5, temperature=1.0)


def step(loss_fn: Loss, case: Case) -> torch.Tensor:
    case.x.grad = case.w.grad = None
    loss = loss_fn(case)
    loss.backward()
    return loss.detach()


def rel(got: torch.Tensor | None, ref: torch.Tensor) -> float:
    if got is None:
        return float("nan")
    return ((got.double() - ref.double()).norm() / ref.double().norm().clamp_min(1e-30)).item()


def reference_grads(op: str, case: Case) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """loss, dX, dW of the eager loss on fp32 copies of the inputs (the accuracy yardstick)."""
    f32 = Case(
        case.x.detach().float().requires_grad_(), case.w.detach().float().requires_grad_(), case.y,
        case.tx.float(), case.tw.float(), case.beta, case.temperature,
    )  # fmt: skip
    loss = step(_eager_ce if op == "ce" else _eager_kd, f32)
    return loss, f32.x.grad, f32.w.grad


def bench_shape(op, n, h, v, ht, args, device, dtype) -> list[str]:
    case = make_case(n, h, v, ht, dtype, device, args.ignore_frac)
    flops = 6 * n * h * v + (2 * n * ht * v if op == "distill" else 0)
    ref = reference_grads(op, case) if args.check else None
    floor = (
        case.x.numel() + case.w.numel()
    ) * case.x.element_size() + case.w.numel() * 4  # dX + dW + fp32 acc
    rows = []
    for name, fn in OPS[op](device, not args.no_compile).items():
        label = f"| {op} | {n}x{h}x{v} | {name} |"
        if isinstance(fn, str):
            rows.append(f"{label} – | – | – | – | {fn} |")
            continue
        case.x.grad = case.w.grad = None  # the last candidate's grads must not count in this one's baseline
        try:
            loss, peak = peak_memory_increase(lambda fn=fn: step(fn, case), device)  # noqa: B023
            med, p20, p80 = time_ms(lambda fn=fn: step(fn, case), device, args.reps)  # noqa: B023
        except Exception as exc:  # a baseline failing (OOM, unsupported) must not stop the table
            rows.append(f"{label} – | – | – | – | {type(exc).__name__}: {str(exc)[:60]} |")
            if device.type == "cuda":
                torch.cuda.empty_cache()
            continue
        err = (
            f"{rel(loss, ref[0]):.1e} / {rel(case.x.grad, ref[1]):.1e} / {rel(case.w.grad, ref[2]):.1e}"
            if ref is not None
            else "–"
        )
        tflops = flops / (med * 1e-3) / 1e12
        rows.append(
            f"{label} {med:.2f} ({p20:.2f}–{p80:.2f}) | {tflops:.3g} | {peak / MIB:.0f} | "
            f"{floor / MIB:.0f} | err loss/dX/dW {err} |"
        )
        print(rows[-1], flush=True)
    return rows


def environment(device: torch.device) -> str:
    versions = {"torch": torch.__version__}
    for dist in ("triton", "trl", "liger-kernel", "transformers"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = "absent"
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    return f"device: {name}; " + ", ".join(f"{k} {v}" for k, v in versions.items())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shapes", default=DEFAULT_SHAPES, help="comma-separated NxHxV")
    parser.add_argument("--ops", default="ce,distill", help=f"comma-separated, from {', '.join(OPS)}")
    parser.add_argument("--teacher-hidden", type=int, default=0, help="Ht for distillation (default: H)")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--reps", type=int, default=25)
    parser.add_argument("--ignore-frac", type=float, default=0.0, help="fraction of labels set to -100")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile baselines")
    parser.add_argument("--no-check", dest="check", action="store_false", help="skip the fp32 accuracy check")
    args = parser.parse_args()
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    if device.type == "cpu" and "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        # Make glibc return big blocks to the OS at free, so RSS peaks measure each candidate, not heap reuse.
        os.execve(
            sys.executable, [sys.executable, *sys.argv], {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
        )
    for op in args.ops.split(","):
        if op not in OPS:
            parser.error(f"unknown op {op!r}; choose from {', '.join(OPS)}")
    print(f"# bench_kernels: {environment(device)}; dtype {args.dtype}; reps {args.reps}")
    print(f"# command: python {' '.join(sys.argv)}")
    print(
        "| op | NxHxV | candidate | fwd+bwd ms (p20–p80) | TFLOP/s | peak MiB above inputs | dX+dW+acc MiB | notes |"
    )
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for op in args.ops.split(","):
        for shape in args.shapes.split(","):
            n, h, v = (int(s) for s in shape.lower().split("x"))
            rows += bench_shape(op, n, h, v, args.teacher_hidden or h, args, device, dtype)
    print("\n".join(r for r in rows if "| – |" in r))  # the skipped / failed rows, after the live ones


if __name__ == "__main__":
    main()
