"""The trusted side of the sandbox: starts the zygote, runs batches of jobs, owns every deadline.

    sb = Sandbox(SandboxConfig(workers=2))          # spawns the zygote once, probes layers
    results = sb.run([{"mode": "call", "code": src, "fn_name": "f", "cases": [[[3], {}]]}])
    with sb.session(src, "f") as s: rec = s.call([3], {})   # interactive, for trusted harnesses
    sb.close()

The trainer process never forks: the zygote is a fresh ``python -I -S`` started with
``subprocess`` (exec), and it is the zygote that forks jobs. Jobs never see expected outputs.
Deadlines: per test (the next record must arrive in time), per program (load + tests), per
batch; past one, the job is SIGKILLed (group, cgroup, uid) and reaped. A dead zygote is
restarted and its jobs come back with ``infra`` set (the caller retries them once).
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import os
import queue
import select
import socket
import subprocess
import sys
import threading
import time
import uuid
import weakref
from collections import deque

from rewards.sandbox import probe
from rewards.sandbox.child import frame
from rewards.sandbox.config import CHILD_ENV, Limits, SandboxConfig
from rewards.sandbox.proc import JobResult, Proc

log = logging.getLogger(__name__)

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_BOOT = f"import sys; sys.path.insert(0, {_ROOT!r}); from rewards.sandbox.zygote import main; main()"
_RPC_TIMEOUT_S = 30.0


class SandboxError(RuntimeError):
    """The sandbox cannot run as configured."""


class SandboxUnavailable(SandboxError):
    """A requested isolation layer is missing or failed its canary."""


class InfraError(SandboxError):
    """The sandbox machinery (not the code under test) failed."""


class Sandbox:
    """A persistent fork-server sandbox. Thread-safe: ``run`` and sessions may overlap."""

    def __init__(self, config: SandboxConfig | None = None):
        self.config = config or SandboxConfig()
        self.config.validate()
        self.workers = self.config.workers or os.cpu_count() or 1
        self._lock = threading.Lock()
        self._slots: queue.Queue[int] = queue.Queue()
        for s in range(2 * self.workers):
            self._slots.put(s)
        self.available = probe.available_layers()
        self.layers = self._choose_layers()
        self.token = uuid.uuid4().hex  # in every job's environment: lets tests find leftovers
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self.canary_report: list[probe.CanaryResult] = []
        self._start_zygote()
        if self.config.canaries and not self.config.unsafe:
            self._run_canaries()
        self._finalizer = weakref.finalize(self, Sandbox._shutdown, self._proc, self._sock)
        atexit.register(self.close)

    # -- layers --------------------------------------------------------------------------
    def _choose_layers(self) -> tuple[str, ...]:
        if self.config.unsafe:
            log.warning("sandbox running in UNSAFE mode: only process limits, no isolation layers")
            return ("process",)
        if self.config.layers == "auto":
            return tuple(x for x, ok in self.available.items() if ok)
        missing = [x for x in self.config.layers if not self.available.get(x)]
        if missing:
            why = "; ".join(f"{x}: {probe.why_missing(x)}" for x in missing)
            raise SandboxUnavailable(f"requested sandbox layer(s) missing, refusing to start: {why}")
        return tuple(dict.fromkeys(("process", *self.config.layers)))

    def _run_canaries(self) -> None:
        self.canary_report = probe.run_canaries(self)
        failed = sorted({c.layer for c in self.canary_report if not c.ok})
        if not failed:
            return
        if self.config.layers != "auto":
            self.close()
            raise SandboxUnavailable(f"canaries failed for layer(s) {failed}: refusing to start")
        log.warning("sandbox: dropping layer(s) %s whose canaries failed", failed)
        self.layers = tuple(x for x in self.layers if x not in failed)

    # -- the zygote ------------------------------------------------------------------------
    def _start_zygote(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        cfg = {
            "layers": list(self.layers),
            "limits": self.config.limits.__dict__,
            "root": _ROOT,
            "slots": 2 * self.workers,
            "preimport": list(self.config.preimport),
        }
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _BOOT, str(theirs.fileno()), json.dumps(cfg)],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            env={**CHILD_ENV, "SELFDISTILL_SANDBOX": self.token},
            cwd="/",
            start_new_session=True,
        )
        theirs.close()
        ours.settimeout(_RPC_TIMEOUT_S)
        self._sock = ours
        try:
            self.zygote_info = json.loads(ours.recv(1 << 16) or b"null")
        except (OSError, ValueError) as e:
            self._sock = None
            raise SandboxError(f"the sandbox zygote did not start: {e}") from None
        if not self.zygote_info:
            raise SandboxError("the sandbox zygote exited at start-up (see stderr)")

    def _rpc(self, msg: dict, fds: tuple[int, ...] = ()) -> dict:
        with self._lock:
            if self._sock is None:
                self._restart()
            try:
                if fds:
                    socket.send_fds(self._sock, [json.dumps(msg).encode()], list(fds))
                else:
                    self._sock.send(json.dumps(msg).encode())
                reply = self._sock.recv(1 << 16)
                if not reply:
                    raise OSError("zygote closed the socket")
                out = json.loads(reply)
            except (OSError, ValueError) as e:
                self._broken()
                raise InfraError(f"sandbox zygote failed: {type(e).__name__}: {e}") from None
        if "error" in out:
            raise InfraError(f"sandbox zygote: {out['error']}")
        return out

    def _broken(self) -> None:
        Sandbox._shutdown(self._proc, self._sock)
        self._sock = None

    def _restart(self) -> None:
        log.warning("sandbox: restarting the zygote")
        self._start_zygote()

    @staticmethod
    def _shutdown(proc: subprocess.Popen | None, sock: socket.socket | None) -> None:
        if sock is not None:
            try:
                sock.send(b'{"op": "shutdown"}')
            except OSError:
                pass
            sock.close()
        if proc is not None:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def close(self) -> None:
        with self._lock:
            Sandbox._shutdown(self._proc, self._sock)
            self._sock, self._proc = None, None

    # -- one job ---------------------------------------------------------------------------
    def start(
        self, job: dict, deadline_s: float, limits: Limits, layers: tuple[str, ...] | None = None
    ) -> Proc:
        """Fork a job process and queue its job frame. Blocks while every slot is busy."""
        slot = self._slots.get()
        pipes = [os.pipe2(os.O_CLOEXEC) for _ in range(4)]  # job, records, stdout, stderr
        theirs = (pipes[0][0], pipes[1][1], pipes[2][1], pipes[3][1])
        try:
            req = {
                "op": "fork",
                "slot": slot,
                "deadline_s": deadline_s,
                "layers": list(self.layers if layers is None else layers),
            }
            pid = self._rpc(req, theirs)["pid"]
        except BaseException:
            for r, w in pipes:
                os.close(r)
                os.close(w)
            self._slots.put(slot)
            raise
        for fd in theirs:
            os.close(fd)
        proc = Proc(
            pid,
            slot,
            pipes[0][1],
            pipes[1][0],
            pipes[2][0],
            pipes[3][0],
            limits.output_bytes,
            limits.record_bytes,
        )
        proc.send(frame(job))
        return proc

    def finish(self, proc: Proc, grace_s: float) -> JobResult:
        """Reap the job (killing it and whatever it left if still running) and free its slot."""
        try:
            info = self._rpc({"op": "finish", "pid": proc.pid, "grace_s": grace_s})
        except InfraError as e:
            proc.result.infra = str(e)
            info = {}
        finally:
            self._slots.put(proc.slot)
        r = proc.close()
        r.exit, r.signal = info.get("exit"), info.get("signal")
        r.memory = r.memory or bool(info.get("memory"))
        r.cpu_s = float(info.get("cpu_s", 0.0))
        return r

    # -- batches ---------------------------------------------------------------------------
    def run(
        self, jobs: list[dict], limits: Limits | None = None, layers: tuple[str, ...] | None = None
    ) -> list[JobResult]:
        """Run jobs (``mode`` call or stdio) with up to ``workers`` at once; one result each."""
        limits = limits or self.config.limits
        results: list[JobResult | None] = [None] * len(jobs)
        pending, active = deque(range(len(jobs))), {}
        worst = max((limits.program_deadline(_n_tests(j)) for j in jobs), default=1.0)
        batch_deadline = time.monotonic() + math.ceil(len(jobs) / self.workers) * worst + 5.0
        while pending or active:
            while pending and len(active) < self.workers:
                i = pending.popleft()
                try:
                    active[i] = self.start(
                        jobs[i], limits.program_deadline(_n_tests(jobs[i])), limits, layers
                    )
                except InfraError as e:
                    results[i] = JobResult.infra_error(str(e))
            if not active:
                continue
            self._pump(list(active.values()), limits)
            now = time.monotonic()
            for i, proc in list(active.items()):
                over = now > batch_deadline
                if proc.eof or proc.result.output_limit or over or now > _deadline(proc, jobs[i], limits):
                    if not proc.eof:
                        proc.result.timeout = not proc.result.output_limit
                        if over:
                            proc.result.infra = "batch deadline passed"
                    results[i] = self.finish(proc, 0.5 if proc.eof else 0.0)
                    del active[i]
        return results  # type: ignore[return-value]

    @staticmethod
    def _pump(procs: list[Proc], limits: Limits, timeout_s: float | None = None) -> None:
        """Wait until some job pipe is ready (or the nearest deadline), then service it."""
        poller, owner = select.poll(), {}
        for p in procs:
            for fd in p.open_reads:
                poller.register(fd, select.POLLIN)
                owner[fd] = p
            if p.outbuf:
                poller.register(p.job_w, select.POLLOUT)
                owner[p.job_w] = p
        if timeout_s is None:
            timeout_s = 0.05 if not owner else min(limits.test_timeout_s, 0.25)
        for fd, _ev in poller.poll(timeout_s * 1000):
            p = owner[fd]
            if fd == p.job_w:
                p.flush()
            else:
                p.read(fd)

    def session(
        self, code: str, fn_name: str, limits: Limits | None = None, session_deadline_s: float = 60.0
    ) -> Session:
        return Session(self, code, fn_name, limits or self.config.limits, session_deadline_s)


def _n_tests(job: dict) -> int:
    return len(job.get("cases", ())) or 1


def _deadline(proc: Proc, job: dict, limits: Limits) -> float:
    """The instant past which ``proc`` counts as hung: load budget first, then per test."""
    if job["mode"] == "stdio":
        return proc.started + limits.load_timeout_s + limits.test_timeout_s
    if not proc.loaded:
        return proc.started + limits.load_timeout_s
    return proc.progress + limits.test_timeout_s


class Session:
    """An interactive job: the trusted side calls the untrusted function one call at a time."""

    def __init__(self, sandbox: Sandbox, code: str, fn_name: str, limits: Limits, deadline_s: float):
        self.sb, self.limits = sandbox, limits
        self.proc = sandbox.start({"mode": "serve", "code": code, "fn_name": fn_name}, deadline_s, limits)
        self.n_calls, self.dead, self.result = 0, False, None

    def _wait(self, until: float, want) -> dict | None:
        while not want():
            left = until - time.monotonic()
            if left <= 0 or self.proc.eof or self.proc.result.output_limit:
                return None
            Sandbox._pump([self.proc], self.limits, min(left, 0.25))
        return self.proc.result.records[-1]

    def call(self, args: list, kwargs: dict) -> dict:
        """One call; returns the child's record, or ``{"k": "dead", "why": ...}``."""
        from rewards.sandbox import codec

        if self.dead:
            return {"k": "dead", "why": "the program already stopped"}
        now = time.monotonic()
        if not self.proc.loaded:
            self._wait(now + self.limits.load_timeout_s, lambda: self.proc.loaded)
            if not self.proc.loaded:
                return self._die("timeout")
            last = self.proc.result.records[-1]
            if last["k"] != "loaded":
                self.dead = True
                return last
        n0 = len(self.proc.result.records)
        self.proc.send(frame({"args": codec._enc(list(args), 0), "kwargs": codec._enc(dict(kwargs), 0)}))
        rec = self._wait(
            time.monotonic() + self.limits.test_timeout_s, lambda: len(self.proc.result.records) > n0
        )
        if rec is None:
            return self._die(
                "output_limit"
                if self.proc.result.output_limit
                else ("crashed" if self.proc.eof else "timeout")
            )
        self.n_calls += 1
        return rec

    def _die(self, why: str) -> dict:
        self.dead = True
        if why == "timeout":
            self.proc.result.timeout = True
        self.close()
        return {"k": "dead", "why": why}

    def close(self) -> JobResult:
        if self.result is None:
            try:
                os.close(self.proc.job_w)  # EOF on the job stream: the child's loop ends
            except OSError:
                pass
            self.proc.job_w = -1
            self.result = self.sb.finish(self.proc, 0.2)
        return self.result

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
