"""Peak-memory and timing helpers for the kernel benchmark, the memory test and the distillation experiment
(scripts/exp_distill.py measures each training and evaluation with `measure_peak`), CUDA and CPU.

CPU peak memory is the process's resident-set high-water mark: Linux resets it when "5" is written to
/proc/self/clear_refs, so the increase over the pre-call RSS is the call's peak (allocator caching included,
which makes it an upper bound). CUDA uses the caching allocator's own peak counter.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch


def _status_bytes(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+) kB", text).group(1)) * 1024


@dataclass(frozen=True)
class PeakMemory:
    """Memory around one call, in bytes: resident set (CPU) or the caching allocator's allocation (CUDA)."""

    base: int  # the level just before the call
    peak: int  # the high-water mark during the call (>= base on CPU: the kernel's mark starts at the RSS)

    @property
    def increase(self) -> int:
        return self.peak - self.base


def measure_peak(fn: Callable[[], object], device: torch.device | str) -> tuple[object, PeakMemory]:
    """Run `fn` once; return its result and the memory level before it and at its peak (see module docstring)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        out = fn()
        torch.cuda.synchronize(device)
        return out, PeakMemory(base, torch.cuda.max_memory_allocated(device))
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    base = _status_bytes("VmRSS")
    out = fn()
    return out, PeakMemory(base, max(base, _status_bytes("VmHWM")))


def peak_memory_increase(fn: Callable[[], object], device: torch.device) -> tuple[object, int]:
    """Run `fn` once; return its result and the peak bytes allocated above the level before the call."""
    out, mem = measure_peak(fn, device)
    return out, mem.increase


def time_ms(
    fn: Callable[[], object], device: torch.device, reps: int, warmup: int = 2
) -> tuple[float, float, float]:
    """Median, 20th and 80th percentile milliseconds of `fn` over `reps` runs after `warmup` runs."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(reps):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(device)
            samples.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - t0) * 1e3)
    if len(samples) == 1:
        return samples[0], samples[0], samples[0]
    q = statistics.quantiles(samples, n=5)
    return statistics.median(samples), q[0], q[-1]
