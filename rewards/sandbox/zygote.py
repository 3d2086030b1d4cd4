"""The zygote: a clean, single-threaded fork server started once per :class:`Sandbox`.

It is spawned with ``python -I -S`` (no site, no user paths), an empty environment and no
inherited descriptors, pre-imports the allowed modules and then only forks. It never sees job
code or inputs: the trusted side creates the job's pipes, passes their ends over a Unix
SEQPACKET socket (``SCM_RIGHTS``) and writes the job straight into the child. The zygote owns
the children: a backstop deadline per child, ``finish`` (wait briefly, SIGKILL the group /
cgroup / uid, reap, remove the job dir, report exit status and CPU time) and cleanup at exit.

Requests (JSON, one per datagram) and replies:
``{"op": "fork", "slot", "deadline_s", "layers"}`` + 4 fds -> ``{"pid"}``;
``{"op": "finish", "pid", "grace_s"}`` -> ``{"exit", "signal", "memory", "cpu_s", "killed"}``;
``{"op": "kill", "pid"}`` -> ``{}``; ``{"op": "shutdown"}`` -> exits.
"""

from __future__ import annotations

import importlib
import json
import os
import select
import shutil
import signal
import socket
import sys
import tempfile
import time

from rewards.sandbox import isolate, landlock, seccomp
from rewards.sandbox.child import enter

_MAX_FDS = 4


class Zygote:
    def __init__(self, sock: socket.socket, cfg: dict):
        self.sock, self.cfg = sock, cfg
        self.limits = cfg["limits"]
        self.layers: list[str] = cfg["layers"]
        self.base = tempfile.mkdtemp(prefix="selfdistill-sbx-")
        os.chmod(self.base, 0o711)
        self.children: dict[int, dict] = {}  # pid -> {"slot", "deadline", "dir"}
        self.cgroups = None
        if "cgroups" in self.layers:
            self.cgroups = isolate.Cgroups(
                f"selfdistill-{os.getpid()}", cfg["slots"], self.limits["memory_mb"], self.limits["nproc"]
            )
            self.cgroups.setup()
        # the interpreter's stdlib and system libraries; not our repository, not the venv
        stdlib = [p for p in sys.path if p and p != cfg["root"]]
        self.read_only = sorted(
            {
                p
                for p in (
                    *stdlib,
                    "/usr/lib",
                    "/usr/lib64",
                    "/lib",
                    "/lib64",
                    "/etc/ld.so.cache",
                    "/dev/null",
                    "/dev/urandom",
                )
                if os.path.exists(p)
            }
        )

    # -- the job process ------------------------------------------------------------------
    def _job_dir(self, slot: int) -> str:
        path = os.path.join(self.base, f"slot{slot}")
        shutil.rmtree(path, ignore_errors=True)
        os.mkdir(path, 0o700)
        if "uid" in self.layers:
            os.chown(path, isolate.SLOT_UID_BASE + slot, isolate.SLOT_UID_BASE + slot)
        return path

    def _apply_layers(self, spec: dict) -> None:
        """Runs in the forked child, as root if the zygote is root; order matters."""
        lim, layers, job_dir, slot = self.limits, spec["layers"], spec["dir"], spec["slot"]
        os.setsid()
        isolate.set_pdeathsig()
        uid = isolate.SLOT_UID_BASE + slot if "uid" in layers else os.getuid()
        if "cgroups" in layers:
            self.cgroups.join(slot)
        if "namespaces" in layers:
            isolate.unshare_namespaces()
            isolate.readonly_root_with_tmpfs(job_dir, lim["disk_mb"], lim["inodes"], uid)
        os.chdir(job_dir)
        os.environ.update(HOME=job_dir, TMPDIR=job_dir)
        isolate.set_rlimits(
            lim["memory_mb"], int(spec["deadline_s"]) + 1, lim["fsize_mb"], lim["nofile"], lim["nproc"]
        )
        if "uid" in layers:
            isolate.switch_uid(uid)
            isolate.set_pdeathsig()  # a credential change clears it
        isolate.set_undumpable()
        if "landlock" in layers:
            landlock.restrict(self.read_only, [job_dir])
        if "seccomp" in layers:
            seccomp.install()

    def fork(self, req: dict, fds: list[int]) -> dict:
        slot = int(req["slot"])
        spec = {
            "slot": slot,
            "layers": [x for x in req.get("layers", self.layers) if x in self.layers],
            "deadline_s": float(req["deadline_s"]),
            "dir": self._job_dir(slot),
        }
        pid = os.fork()
        if pid == 0:
            self.sock.close()
            enter(spec, fds, self._apply_layers)  # never returns
        for fd in fds:
            os.close(fd)
        self.children[pid] = {
            "slot": slot,
            "deadline": time.monotonic() + spec["deadline_s"] + 1.0,
            "dir": spec["dir"],
            "pidfd": os.pidfd_open(pid),
            "killed": False,
        }
        return {"pid": pid}

    # -- ending a job -----------------------------------------------------------------------
    def _kill(self, pid: int) -> None:
        child = self.children[pid]
        child["killed"] = True
        for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
            try:
                target()
            except (ProcessLookupError, PermissionError):
                pass

    def _sweep(self, slot: int) -> None:
        """Kill whatever the job left behind (daemons that left its process group)."""
        if self.cgroups is not None:
            self.cgroups.kill_all(slot)
        elif "uid" in self.layers:
            uid = isolate.SLOT_UID_BASE + slot
            for name in os.listdir("/proc"):
                if name.isdigit():
                    try:
                        if os.stat(f"/proc/{name}").st_uid == uid:
                            os.kill(int(name), signal.SIGKILL)
                    except OSError:
                        pass

    def finish(self, pid: int, grace_s: float) -> dict:
        child = self.children.pop(pid)
        self.children[pid] = child  # keep it findable by _kill
        if not select.select([child["pidfd"]], [], [], max(grace_s, 0.0))[0]:
            self._kill(pid)
        _, status, usage = os.wait4(pid, 0)
        try:
            os.killpg(pid, signal.SIGKILL)  # the group may outlive its leader
        except (ProcessLookupError, PermissionError):
            pass
        self._sweep(child["slot"])
        os.close(child["pidfd"])
        del self.children[pid]
        shutil.rmtree(child["dir"], ignore_errors=True)
        memory = self.cgroups.memory_hit(child["slot"]) if self.cgroups is not None else False
        return {
            "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            "memory": memory,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "maxrss_kb": usage.ru_maxrss,
            "killed": child["killed"],
        }

    def _enforce_backstops(self) -> float | None:
        now, nxt = time.monotonic(), None
        for pid, child in self.children.items():
            if child["killed"]:
                continue
            if now >= child["deadline"]:
                self._kill(pid)
            else:
                nxt = child["deadline"] if nxt is None else min(nxt, child["deadline"])
        return None if nxt is None else max(nxt - now, 0.0)

    def serve(self) -> None:
        self.sock.send(json.dumps({"pid": os.getpid(), "uid": os.getuid(), "base": self.base}).encode())
        while True:
            timeout = self._enforce_backstops()
            if not select.select([self.sock], [], [], timeout)[0]:
                continue
            msg, fds, _flags, _addr = socket.recv_fds(self.sock, 1 << 16, _MAX_FDS)
            if not msg:
                break  # the trusted side is gone: take every child with us
            req = json.loads(msg)
            op = req.get("op")
            try:
                if op == "fork":
                    reply = self.fork(req, fds)
                elif op == "finish":
                    reply = self.finish(int(req["pid"]), float(req.get("grace_s", 0.05)))
                elif op == "kill":
                    if int(req["pid"]) in self.children:
                        self._kill(int(req["pid"]))
                    reply = {}
                elif op == "shutdown":
                    break
                else:
                    reply = {"error": f"unknown op {op!r}"}
            except Exception as e:  # noqa: BLE001 -- report, keep serving
                for fd in fds:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
                reply = {"error": f"{type(e).__name__}: {e}"}
            self.sock.send(json.dumps(reply).encode())
        self.shutdown()

    def shutdown(self) -> None:
        for pid in list(self.children):
            self._kill(pid)
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            self._sweep(self.children[pid]["slot"])
        if self.cgroups is not None:
            self.cgroups.teardown()
        shutil.rmtree(self.base, ignore_errors=True)


def main() -> None:
    """Entry point: ``argv[1]`` is the socket fd, ``argv[2]`` the JSON config."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the trusted side owns Ctrl-C
    sock = socket.socket(fileno=int(sys.argv[1]))
    cfg = json.loads(sys.argv[2])
    isolate.set_undumpable()
    for name in cfg.get("preimport", ()):
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    Zygote(sock, cfg).serve()
