"""Rank and world helpers for runs launched by `accelerate launch` or `torchrun`.

The pipeline runs the same code on every rank. TRL's trainers do the data/model parallel work
through accelerate (DDP, FSDP2, DeepSpeed ZeRO-3); what is left to us is deciding who writes
(rank 0: state files, models, report, W&B; every rank its own trace shards) and keeping the ranks in step
between stages (`barrier`, `broadcast`). Every helper is a no-op in a single process, so the
code that calls them never asks "am I distributed?".

The launchers set ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; `init()` starts the process group
through accelerate's `PartialState` (gloo on CPU, NCCL on GPU), the same state HF's Trainer
uses, so our collectives and the trainer's share one group.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")


def world_size() -> int:
    """Number of processes in the job (1 when not launched by a distributed launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """Global rank of this process (0 when not distributed)."""
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    """Rank of this process on its node; picks the GPU (``cuda:<local_rank>``)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_distributed() -> bool:
    return world_size() > 1


def is_main_process() -> bool:
    """True on the process that writes shared outputs (global rank 0)."""
    return rank() == 0


def is_sharded() -> bool:
    """True under FSDP or DeepSpeed (set by `accelerate launch`): ranks hold shards, not replicas."""
    return any(
        os.environ.get(v, "").lower() in ("1", "true")
        for v in ("ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED")
    )


def init(device: str = "cpu", timeout_s: int | None = None) -> None:
    """Start the process group once (no-op in a single process or when already started).

    ``device`` is ``cpu`` or ``cuda``: accelerate picks gloo for the first and NCCL for the
    second, and sets this process's CUDA device to ``cuda:<local_rank>``. ``timeout_s``: how long
    a collective waits for the other ranks (`run.dist_timeout_s`; None = torch's default). The
    trainers reuse this group, so it is the timeout of the whole job.
    """
    if not is_distributed() or _group_ready():
        return
    from datetime import timedelta

    from accelerate import PartialState

    kwargs = {"timeout": timedelta(seconds=timeout_s)} if timeout_s else {}
    PartialState(cpu=device == "cpu", **kwargs)


def device_for(device: str) -> str:
    """The torch device of this rank: ``cuda`` becomes ``cuda:<local_rank>`` under a launcher."""
    return f"cuda:{local_rank()}" if device == "cuda" and is_distributed() else device


def _group_ready() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def barrier() -> None:
    """Wait until every rank gets here (no-op in a single process)."""
    if is_distributed() and _group_ready():
        import torch.distributed as dist

        dist.barrier()


@contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first, the other ranks after it (e.g. rank 0 builds a cache the others then load)."""
    if not is_main_process():
        barrier()
    try:
        yield
    finally:
        if is_main_process():
            barrier()


def broadcast(obj: T) -> T:
    """Rank 0's ``obj`` on every rank (picklable objects; identity in a single process)."""
    if not (is_distributed() and _group_ready()):
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(obj: T) -> list[T]:
    """Every rank's ``obj`` in rank order, on every rank (``[obj]`` in a single process)."""
    if not (is_distributed() and _group_ready()):
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def shard(items: list[T]) -> list[T]:
    """This rank's share of ``items``: every ``world_size``-th item from position ``rank``."""
    return items[rank() :: world_size()]


def unshard(parts: list[list[T]]) -> list[T]:
    """Inverse of `shard` over the gathered per-rank lists: the original order back."""
    out: list[T] = []
    for i in range(max((len(p) for p in parts), default=0)):
        out += [p[i] for p in parts if i < len(p)]
    return out


def param_digest(model) -> str:
    """SHA-256 of every parameter's bytes, in name order: equal digests = identical weights."""
    import torch

    h = hashlib.sha256()
    for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        h.update(name.encode())
        h.update(p.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


def check_in_sync(model) -> list[str]:
    """Parameter digests of every rank; raises if the ranks' weights differ.

    Data-parallel training must leave identical replicas; a difference means a rank skipped a
    step or saw a different gradient, and anything saved from rank 0 would not be what the
    other ranks trained. (Sharded engines, FSDP2/ZeRO-3, hold different shards by design: only
    call this for replicated models.)
    """
    digests = gather(param_digest(model))
    if len(set(digests)) > 1:
        raise RuntimeError(f"ranks are out of sync after training: parameter digests differ {digests}")
    return digests
