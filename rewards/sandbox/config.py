"""Sandbox configuration: resource limits, requested isolation layers, unsafe mode.

Layers (each probed at start-up, see ``rewards.sandbox.probe``):

* ``process`` (always on): a clean pre-forked worker from a zygote with a cleared environment,
  no inherited descriptors, its own session, rlimits and a private job directory.
* ``landlock``: filesystem allow-list, no TCP, scoped signals (unprivileged).
* ``seccomp``: no fork/exec/socket/kill/ptrace/mount... (unprivileged).
* ``namespaces``: new net/mount/ipc/uts namespaces, everything mounted read-only, a size- and
  inode-capped tmpfs as the job dir (root).
* ``uid``: each slot runs as its own unprivileged uid (root).
* ``cgroups``: per-slot memory and pids caps, and killing every leftover process (writable
  cgroupfs).

``layers="auto"`` takes every layer the machine offers; an explicit list refuses to start when
one is missing; ``unsafe=True`` turns all optional layers off (trusted inputs only).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

OPTIONAL_LAYERS = ("landlock", "seccomp", "namespaces", "uid", "cgroups")
ALL_LAYERS = ("process", *OPTIONAL_LAYERS)
# The whole environment a sandboxed worker sees (the zygote starts with it; the env canary checks it).
CHILD_ENV = {
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PYTHONHASHSEED": "0",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


@dataclass(frozen=True)
class Limits:
    """Per-job limits. Times in seconds, sizes in MiB unless named otherwise."""

    test_timeout_s: float = 2.0  # per test case (per call, per stdin run)
    load_timeout_s: float = 3.0  # compiling and executing the module body
    memory_mb: int = 1024  # RLIMIT_AS and the cgroup memory cap
    fsize_mb: int = 16  # largest file the job may write
    disk_mb: int = 32  # tmpfs size of the job dir (namespaces layer)
    inodes: int = 1024  # tmpfs inode cap
    nofile: int = 64
    nproc: int = 16  # processes + threads of the slot uid / cgroup
    output_bytes: int = 1 << 20  # stdout + stderr cap; past it the job is killed
    record_bytes: int = 8 << 20  # result channel cap

    def program_deadline(self, n_tests: int) -> float:
        return self.load_timeout_s + max(n_tests, 1) * self.test_timeout_s + 0.5


@dataclass(frozen=True)
class SandboxConfig:
    workers: int = 0  # concurrent jobs; 0 = os.cpu_count()
    layers: str | tuple[str, ...] = "auto"
    unsafe: bool = False
    limits: Limits = field(default_factory=Limits)
    canaries: bool = True  # run the canary programs at start-up
    preimport: tuple[str, ...] = (
        "math",
        "cmath",
        "itertools",
        "collections",
        "functools",
        "heapq",
        "bisect",
        "re",
        "string",
        "operator",
        "fractions",
        "decimal",
        "statistics",
        "random",
        "copy",
        "typing",
        "dataclasses",
        "json",
        "time",
        "datetime",
        "array",
        "enum",
        "numbers",
        "hashlib",
        "io",
        "textwrap",
        "unicodedata",
        "abc",
        "contextlib",
        "struct",
        "base64",
        "calendar",
        "queue",
        "pprint",
        "types",
        "weakref",
        "sys",
        "os",
        "builtins",
        "threading",
        "traceback",
        "keyword",
        "collections.abc",
        "ast",
        "dis",
        "inspect",
        "gc",
        "ctypes",
        "signal",
        "socket",
        "subprocess",
        "shutil",
        "tempfile",
        "pathlib",
        "glob",
        "pickle",
        "zlib",
        "binascii",
        "secrets",
        "locale",
    )

    def with_layers(self, layers: tuple[str, ...] | str) -> SandboxConfig:
        return replace(self, layers=layers)

    def validate(self) -> None:
        if isinstance(self.layers, str):
            if self.layers != "auto":
                raise ValueError(f"layers={self.layers!r}; use 'auto' or a tuple of: {', '.join(ALL_LAYERS)}")
            return
        bad = [x for x in self.layers if x not in ALL_LAYERS]
        if bad:
            raise ValueError(f"unknown sandbox layer(s) {bad}; choose from: {', '.join(ALL_LAYERS)}")
        if self.unsafe and set(self.layers) - {"process"}:
            raise ValueError("unsafe=True turns isolation layers off; do not also request layers")
