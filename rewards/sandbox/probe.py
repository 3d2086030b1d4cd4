"""Which isolation layers this machine offers, and canary programs proving each one works.

``available_layers()`` is a cheap static check (kernel ABI, root, writable cgroupfs).
``run_canaries(sandbox)`` then runs, for each active layer, a program that the layer alone must
stop, with only that layer on (plus the always-on process layer), and checks it was stopped.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from dataclasses import dataclass

from rewards.sandbox import landlock, seccomp
from rewards.sandbox.config import CHILD_ENV, OPTIONAL_LAYERS


def _cgroups_writable() -> bool:
    root = "/sys/fs/cgroup"
    bases = [root] if os.path.exists(f"{root}/cgroup.controllers") else [f"{root}/memory", f"{root}/pids"]
    for base in bases:
        probe_dir = f"{base}/selfdistill-probe-{uuid.uuid4().hex[:8]}"
        try:
            os.mkdir(probe_dir)
            os.rmdir(probe_dir)
        except OSError:
            return False
    return True


def _mount_setattr_ok() -> bool:
    return os.uname().release.split(".")[:2] >= ["5", "12"] or int(os.uname().release.split(".")[0]) > 5


_CHECKS = {
    "landlock": (
        lambda: landlock.abi_version() > 0,
        "the kernel has no Landlock (needs 5.13+ and lsm=landlock)",
    ),
    "seccomp": (seccomp.supported, "unsupported CPU architecture for the built-in filter"),
    "namespaces": (lambda: os.geteuid() == 0 and _mount_setattr_ok(), "needs root and kernel >= 5.12"),
    "uid": (lambda: os.geteuid() == 0, "needs root to switch to per-slot uids"),
    "cgroups": (lambda: os.geteuid() == 0 and _cgroups_writable(), "needs root and a writable cgroupfs"),
}


def available_layers() -> dict[str, bool]:
    out = {"process": True}
    for name in OPTIONAL_LAYERS:
        try:
            out[name] = bool(_CHECKS[name][0]())
        except Exception:  # noqa: BLE001 -- a probe that crashes means "not available"
            out[name] = False
    return out


def why_missing(layer: str) -> str:
    return _CHECKS[layer][1] if layer in _CHECKS else "unknown layer"


@dataclass(frozen=True)
class CanaryResult:
    layer: str
    name: str
    ok: bool
    detail: str


# Each canary: a function ``f()`` returning a string; the layer passes when it returns "blocked".
_CANARIES = {
    "process": (
        "fd and env hygiene",
        """
import os
def f():
    leaked = [fd for fd in range(5, 256) if _open(fd)]
    env = sorted(k for k in os.environ if k not in {allowed})
    return "blocked" if not leaked and not env else f"fds={{leaked}} env={{env}}"
def _open(fd):
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False
""",
    ),
    "landlock": (
        "read a file outside the allow-list",
        """
def f():
    try:
        open({secret!r}).read()
        return "read it"
    except OSError:
        return "blocked"
""",
    ),
    "seccomp": (
        "fork",
        """
import os
def f():
    try:
        pid = os.fork()
    except OSError:
        return "blocked"
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return "forked"
""",
    ),
    "namespaces": (
        "write outside the job dir",
        """
def f():
    try:
        open({target!r}, "w").write("x")
        return "wrote it"
    except OSError:
        return "blocked"
""",
    ),
    "uid": (
        "run as root",
        """
import os
def f():
    return "blocked" if os.getuid() != 0 else "still root"
""",
    ),
    "cgroups": (
        "join the slot cgroup",
        """
def f():
    return "blocked" if "selfdistill-" in open("/proc/self/cgroup").read() else "not in a cgroup"
""",
    ),
}


def run_canaries(sandbox) -> list[CanaryResult]:
    """Run each active layer's canary with only that layer on; ``ok`` means it was stopped."""
    fd, secret = tempfile.mkstemp(prefix="selfdistill-canary-")
    os.write(fd, b"canary secret")
    os.close(fd)
    os.chmod(secret, 0o644)
    target = os.path.join(tempfile.gettempdir(), f"selfdistill-canary-{uuid.uuid4().hex}")
    allowed = set(CHILD_ENV) | {"HOME", "TMPDIR", "SELFDISTILL_SANDBOX"}
    jobs, names = [], []
    for layer in sandbox.layers:
        name, src = _CANARIES[layer]
        code = src.format(secret=secret, target=target, allowed=allowed)
        jobs.append({"mode": "call", "code": code, "fn_name": "f", "cases": [[[], {"$d": []}]]})
        names.append((layer, name))
    results = []
    try:
        for (layer, name), job in zip(names, jobs):
            [res] = sandbox.run([job], layers=("process", layer))
            values = [r.get("v") for r in res.records if r.get("k") == "r"]
            detail = str(values[0]) if values else f"no result (infra={res.infra}, records={res.records[:3]})"
            ok = values == ["blocked"] and not (layer == "namespaces" and os.path.exists(target))
            results.append(CanaryResult(layer, name, ok, detail))
    finally:
        os.unlink(secret)
        if os.path.exists(target):
            os.unlink(target)
    return results
