"""Registry of implementations of the row ops (`torch`, `triton`), loaded lazily so `import selfdistill.kernels`
never imports triton. `impl="auto"` picks Triton for CUDA tensors when triton is installed, else torch.

`triton` on CPU tensors is allowed only when the kernels were loaded under the interpreter (`TRITON_INTERPRET=1`
when `_triton_rows` is first imported), which is how they are tested without a GPU.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from functools import cache
from types import ModuleType

import torch


@dataclass(frozen=True)
class Impl:
    name: str
    module: (
        ModuleType  # ce_rows, distill_rows, CE_/DISTILL_BYTES_PER_LOGIT, WRITES_GRAD_OUT, maybe scaled_cast
    )


IMPL_MODULES: dict[str, str] = {"torch": "._torch_rows", "triton": "._triton_rows"}
IMPL_CHOICES = ("auto", *IMPL_MODULES)


def triton_available() -> bool:
    return importlib.util.find_spec("triton") is not None


@cache
def _load(name: str) -> Impl:
    return Impl(name, importlib.import_module(IMPL_MODULES[name], __package__))


def resolve_impl(name: str, device: torch.device) -> Impl:
    """The implementation `name` (or the best one for `device` when `name == "auto"`)."""
    if name not in IMPL_CHOICES:
        raise ValueError(f"unknown impl {name!r}; choose one of: {', '.join(IMPL_CHOICES)}")
    if name == "auto":
        name = "triton" if device.type == "cuda" and triton_available() else "torch"
    if name == "triton":
        if not triton_available():
            raise ValueError("impl='triton' needs the triton package (pip install 'selfdistill[kernels]')")
        impl = _load(name)
        if device.type != "cuda" and not impl.module.INTERPRETED:
            raise ValueError(
                f"impl='triton' needs CUDA tensors (got {device.type}); set TRITON_INTERPRET=1 before the first "
                "use of the Triton kernels to run them on CPU, or use impl='torch'"
            )
        return impl
    return _load(name)
