"""A layered sandbox for untrusted Python: zygote fork server + rlimits, Landlock, seccomp,
namespaces, per-slot uids and cgroups, each probed at start-up with a canary program.

See ``rewards.sandbox.client.Sandbox`` (trusted side) and ``rewards.sandbox.config`` (layers,
limits). ``python -m rewards.sandbox.check`` prints what this machine offers.
"""

from rewards.sandbox.client import InfraError, Sandbox, SandboxError, SandboxUnavailable
from rewards.sandbox.config import ALL_LAYERS, Limits, SandboxConfig

__all__ = [
    "ALL_LAYERS",
    "InfraError",
    "Limits",
    "Sandbox",
    "SandboxConfig",
    "SandboxError",
    "SandboxUnavailable",
]
