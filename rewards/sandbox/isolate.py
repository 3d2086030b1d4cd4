"""Privileged isolation steps (namespaces, read-only mounts, tmpfs job dir, per-slot uid, cgroups)
and the always-on rlimits, as small functions the forked job process calls in order.

Order in the job process (see ``rewards.sandbox.child``): join cgroup -> unshare namespaces ->
remount everything read-only and mount a size/inode-capped tmpfs as the job dir -> rlimits ->
switch to the slot uid -> Landlock -> seccomp. Everything before the uid switch needs root.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWNET = 0x00020000, 0x04000000, 0x08000000, 0x40000000
_MS_NOSUID, _MS_NODEV, _MS_PRIVATE = 2, 4, 1 << 18
_SYS_MOUNT_SETATTR = {"x86_64": 442, "aarch64": 442}
_AT_FDCWD, _AT_RECURSIVE = -100, 0x8000
_MOUNT_ATTR_RDONLY, _MOUNT_ATTR_NOSUID, _MOUNT_ATTR_NODEV = 1, 2, 4
_PR_SET_PDEATHSIG, _PR_SET_DUMPABLE = 1, 4
SLOT_UID_BASE = 60000

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def set_pdeathsig(sig: int = signal.SIGKILL) -> None:
    _libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)


def set_undumpable() -> None:
    """No core dumps and no ptrace/``/proc/<pid>/mem`` access from same-uid processes."""
    _libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


def unshare_namespaces(net: bool = True) -> None:
    """New mount, IPC, UTS (and network: no interface but a down loopback) namespaces."""
    flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | (CLONE_NEWNET if net else 0)
    _check(_libc.unshare(flags), "unshare")


def readonly_root_with_tmpfs(job_dir: str, size_mb: int, inodes: int, uid: int) -> None:
    """In a fresh mount namespace: every mount read-only and private, then a tmpfs job dir."""
    attr = _MountAttr(_MOUNT_ATTR_RDONLY | _MOUNT_ATTR_NOSUID | _MOUNT_ATTR_NODEV, 0, _MS_PRIVATE, 0)
    _check(
        _libc.syscall(
            _SYS_MOUNT_SETATTR.get(os.uname().machine, 442),
            _AT_FDCWD,
            b"/",
            _AT_RECURSIVE,
            ctypes.byref(attr),
            ctypes.sizeof(attr),
        ),
        "mount_setattr",
    )
    opts = f"size={size_mb}m,nr_inodes={inodes},mode=0700,uid={uid},gid={uid}".encode()
    _check(_libc.mount(b"tmpfs", job_dir.encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV, opts), "mount tmpfs")


def switch_uid(uid: int) -> None:
    """Drop root for good: no supplementary groups, real/effective/saved ids all ``uid``."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


def set_rlimits(memory_mb: int, cpu_s: int, fsize_mb: int, nofile: int, nproc: int) -> None:
    """Address space, CPU seconds, file size, open files, processes+threads, no core dumps."""
    caps = {
        resource.RLIMIT_AS: memory_mb << 20,
        resource.RLIMIT_CPU: cpu_s,
        resource.RLIMIT_FSIZE: fsize_mb << 20,
        resource.RLIMIT_NOFILE: nofile,
        resource.RLIMIT_NPROC: nproc,
        resource.RLIMIT_CORE: 0,
        resource.RLIMIT_MEMLOCK: 0,
    }
    for which, value in caps.items():
        _soft, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value))


class Cgroups:
    """Per-slot cgroup v1 (memory + pids) or v2 directories, owned by the zygote.

    ``available()`` tells whether the hierarchy is writable here. ``join(slot)`` runs in the job
    process before it drops root; ``kill_all(slot)`` and ``memory_hit(slot)`` run in the zygote.
    """

    ROOT = "/sys/fs/cgroup"

    def __init__(self, name: str, slots: int, memory_mb: int, pids: int):
        self.name, self.slots, self.memory_mb, self.pids = name, slots, memory_mb, pids
        self.v2 = os.path.exists(f"{self.ROOT}/cgroup.controllers")
        self.dirs: dict[int, list[str]] = {}
        self._v2_events: dict[int, int] = {}

    def _bases(self) -> list[str]:
        if self.v2:
            return [f"{self.ROOT}/{self.name}"]
        return [f"{self.ROOT}/memory/{self.name}", f"{self.ROOT}/pids/{self.name}"]

    @staticmethod
    def _write(path: str, value: str) -> None:
        with open(path, "w") as f:
            f.write(value)

    def setup(self) -> None:
        if self.v2:
            self._write(f"{self.ROOT}/cgroup.subtree_control", "+memory +pids")
        for base in self._bases():
            os.makedirs(base, exist_ok=True)
            if self.v2:
                self._write(f"{base}/cgroup.subtree_control", "+memory +pids")
        for slot in range(self.slots):
            dirs = [f"{b}/slot{slot}" for b in self._bases()]
            for d in dirs:
                os.makedirs(d, exist_ok=True)
            if self.v2:
                self._write(f"{dirs[0]}/memory.max", str(self.memory_mb << 20))
                self._write(f"{dirs[0]}/memory.swap.max", "0")
                self._write(f"{dirs[0]}/pids.max", str(self.pids))
            else:
                self._write(f"{dirs[0]}/memory.limit_in_bytes", str(self.memory_mb << 20))
                self._write(f"{dirs[1]}/pids.max", str(self.pids))
            self.dirs[slot] = dirs

    def join(self, slot: int) -> None:
        for d in self.dirs[slot]:
            self._write(f"{d}/cgroup.procs", "0")

    def pids_in(self, slot: int) -> list[int]:
        with open(f"{self.dirs[slot][-1]}/cgroup.procs") as f:
            return [int(x) for x in f.read().split()]

    def kill_all(self, slot: int) -> None:
        """SIGKILL every process left in the slot (daemons, stray threads) until it is empty."""
        if self.v2:
            self._write(f"{self.dirs[slot][0]}/cgroup.kill", "1")
            return
        for _ in range(100):
            pids = self.pids_in(slot)
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def memory_hit(self, slot: int) -> bool:
        """Whether the slot reached its memory cap since the last call (and reset the counter)."""
        d = self.dirs[slot][0]
        try:
            if self.v2:
                with open(f"{d}/memory.events") as f:
                    n = sum(int(line.split()[1]) for line in f if line.split()[0] in ("max", "oom_kill"))
                hit, self._v2_events[slot] = n > self._v2_events.get(slot, 0), n  # v2 cannot reset
                return hit
            with open(f"{d}/memory.failcnt") as f:
                hit = int(f.read()) > 0
            if hit:
                self._write(f"{d}/memory.failcnt", "0")
            return hit
        except OSError:
            return False

    def teardown(self) -> None:
        for slot in self.dirs:
            try:
                self.kill_all(slot)
            except OSError:
                pass
            for d in reversed(self.dirs[slot]):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
        for base in self._bases():
            try:
                os.rmdir(base)
            except OSError:
                pass
