"""A process pool with a hard deadline per task: a task that overruns gets its worker SIGKILLed.

Why not ``concurrent.futures`` or ``multiprocessing.Pool``: neither can stop one running task.
``signal.alarm`` (what Math-Verify uses) only works on the main thread and cannot interrupt C
code. Here every worker is a separate process with its own pipe; the parent waits on all pipes
with a timeout, and when a task passes its deadline the worker is killed
and a fresh one is started in the background. A worker that dies on its own (segfault, OOM
killer, ``os._exit``) is detected by the end-of-file on its pipe and replaced the same way.

**Full strength after a kill.** Starting a worker means a fresh interpreter importing sympy
(1-3 s on a loaded machine), so the pool keeps ``spares`` extra workers already started and
warmed up, and starts the replacement of a killed worker *at once*, in the background (it
boots while other tasks run, between ``map`` calls too). At most ``workers`` tasks run at a
time; an idle spare only waits. So a task never waits for an import unless more than
``spares`` workers were lost within one start-up time.

Results never raise: each task gives a :class:`TaskResult` whose ``kind`` is ``"ok"``,
``"error"`` (the function raised; ``error`` holds the repr), ``"timeout"`` (killed at the
deadline) or ``"crashed"`` (the worker died, or no worker could be started).

Workers are fresh interpreters started with ``subprocess`` (like ``spawn``, never ``fork``), so
creating a pool from a process that has torch/CUDA loaded or several threads running is safe,
and the caller's ``__main__`` is never re-imported. Each worker ignores SIGINT (the parent
owns Ctrl-C), optionally caps its address space (``memory_mb``) and exits when the parent's end
of its pipe closes, so no orphan outlives a killed trainer. Pools are closed at interpreter exit.

Usage::

    pool = DeadlinePool(workers=2, deadline_s=1.0, initializer="rewards.math.compare:warm_up")
    results = pool.map(some_module_level_fn, [(arg1, arg2), (arg1, arg2)])
    pool.close()
"""

from __future__ import annotations

import atexit
import importlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

log = logging.getLogger(__name__)

_START_TIMEOUT_S = 120.0  # a spawned worker must import its modules and say "ready" within this
_MAX_START_FAILURES = 5  # consecutive failed starts before the pool gives up on a batch
_REAP_TIMEOUT_S = 2.0  # after EOF on a worker's pipe, wait at most this long for its exit status


@dataclass(frozen=True)
class TaskResult:
    """What became of one task. ``value`` is only meaningful when ``kind == "ok"``."""

    kind: str  # "ok" | "error" | "timeout" | "crashed"
    value: Any = None
    error: str | None = None
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


def _resolve(target: str) -> Callable:
    module, _, attr = target.partition(":")
    if not attr:
        raise ValueError(f"initializer {target!r} must look like 'package.module:function'")
    return getattr(importlib.import_module(module), attr)


def _worker_main(conn: Connection, initializer: str | None, memory_mb: int | None) -> None:
    """Loop of one worker process: receive ``(fn, args)``, send ``(True, value)`` or ``(False, err)``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if memory_mb:
        try:
            import resource

            limit = memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        except (ImportError, ValueError, OSError):  # not on this platform / not permitted
            pass
    if initializer:
        _resolve(initializer)()
    conn.send(("ready", os.getpid()))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # parent went away
            return
        except Exception as exc:  # noqa: BLE001 - a task that cannot be unpickled here
            conn.send((False, f"cannot receive task: {type(exc).__name__}: {exc}"[:1000]))
            continue
        if msg is None:
            return
        fn, args = msg
        try:
            out = (True, fn(*args))
        except BaseException as exc:  # noqa: BLE001 - report everything, keep the worker alive
            out = (False, f"{type(exc).__name__}: {exc}"[:1000])
        try:
            conn.send(out)
        except Exception as exc:  # noqa: BLE001 - unpicklable result
            conn.send((False, f"cannot send result: {type(exc).__name__}: {exc}"[:1000]))


def _worker_entry() -> None:
    """Entry point of ``python -c`` workers: read the set-up from the environment, then loop."""
    cfg = json.loads(os.environ.pop("REWARDS_POOL_WORKER"))
    conn = Connection(os.dup(cfg["rfd"]), readable=True, writable=False)
    out = Connection(os.dup(cfg["wfd"]), readable=False, writable=True)
    os.close(cfg["rfd"])
    os.close(cfg["wfd"])
    _worker_main(_Duplex(conn, out), cfg["initializer"], cfg["memory_mb"])


class _Duplex:
    """Two one-way connections used as one (the worker reads one pipe and writes the other)."""

    def __init__(self, inp: Connection, out: Connection) -> None:
        self.inp, self.out = inp, out

    def recv(self) -> Any:
        return self.inp.recv()

    def send(self, obj: Any) -> None:
        self.out.send(obj)


_BOOT = (
    "import json, os, sys; sys.path[:0] = json.loads(os.environ['REWARDS_POOL_WORKER'])['path']; "
    "from rewards.pool import _worker_entry; _worker_entry()"
)


class _Worker:
    """One worker process (a fresh interpreter) and the parent's ends of its two pipes.

    Workers are started with ``subprocess`` rather than ``multiprocessing``: a fresh interpreter
    that imports only ``rewards.pool`` (no re-import of the caller's ``__main__``, so it works from
    scripts without a main guard, notebooks and processes with torch/CUDA or threads loaded).
    Task functions are pickled by reference, so they must be importable module-level functions.
    """

    def __init__(self, initializer: str | None, memory_mb: int | None) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        cfg = {
            "rfd": to_child_r,
            "wfd": from_child_w,
            "initializer": initializer,
            "memory_mb": memory_mb,
            "path": [p for p in sys.path if p],
        }
        env = dict(os.environ, REWARDS_POOL_WORKER=json.dumps(cfg))
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _BOOT],
                pass_fds=(to_child_r, from_child_w),
                env=env,
                stdin=subprocess.DEVNULL,
                close_fds=True,
            )
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self.send_conn = Connection(to_child_w, readable=False, writable=True)
        self.conn = Connection(from_child_r, readable=True, writable=False)
        self.started_at = time.monotonic()
        self.ready = False
        self.task: int | None = None  # index of the task it is running
        self.task_started = 0.0

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, obj: Any) -> None:
        self.send_conn.send(obj)

    def _close_pipes(self) -> None:
        for c in (self.send_conn, self.conn):
            try:
                c.close()
            except OSError:
                pass

    def exit_status(self, timeout_s: float = _REAP_TIMEOUT_S) -> str:
        """How the process ended, for an error message: ``exit code 3``, ``killed by SIGSEGV``.

        Called after EOF on its pipe: the kernel closes a dying process's descriptors before the
        process can be reaped, so ``poll()`` right after EOF is often still ``None``. Wait for it,
        bounded, so that a process that closed its pipe but hangs cannot stall the pool.
        """
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return f"no exit status after {timeout_s:g} s (pipe closed, process still running)"
        return describe_returncode(code)

    def kill(self) -> None:
        try:
            self.proc.kill()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log.error("reward pool: worker %d did not die after SIGKILL", self.proc.pid)
        self._close_pipes()

    def stop(self) -> None:
        """Polite shutdown: ask it to exit, then kill it if it does not."""
        try:
            self.send(None)
        except (OSError, ValueError):
            pass
        try:
            self.proc.wait(timeout=1)
            self._close_pipes()
        except subprocess.TimeoutExpired:
            self.kill()


def describe_returncode(code: int) -> str:
    """``subprocess`` return code in words: ``exit code 3`` or ``killed by SIGKILL (signal 9)``."""
    if code >= 0:
        return f"exit code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = "an unknown signal"
    return f"killed by {name} (signal {-code})"


_LIVE_POOLS: weakref.WeakSet[DeadlinePool] = weakref.WeakSet()


class DeadlinePool:
    """``workers`` processes; ``map`` runs tasks in parallel, each killed after ``deadline_s``.

    ``initializer`` ("module:function") runs once in each worker before it takes work, e.g. to
    import sympy, so that import time never counts against a task's deadline.
    ``memory_mb`` caps each worker's address space (None: no cap). ``spares`` warmed-up workers
    are kept beyond ``workers`` (never running tasks concurrently beyond ``workers``) so a killed
    worker's place is taken at once. All processes start when the pool is created.
    ``map`` is thread-safe (calls are serialised) and may be called any number of times.
    """

    def __init__(
        self,
        workers: int | None = None,
        deadline_s: float = 1.0,
        initializer: str | None = None,
        memory_mb: int | None = 4096,
        spares: int = 1,
    ) -> None:
        if deadline_s <= 0:
            raise ValueError(f"deadline_s must be > 0, got {deadline_s}")
        if spares < 0:
            raise ValueError(f"spares must be >= 0, got {spares}")
        self.size = max(1, workers if workers else (os.cpu_count() or 1))
        self.deadline_s = deadline_s
        self.initializer = initializer
        self.memory_mb = memory_mb
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        self.spares = spares
        self.replaced = 0  # workers killed or lost and replaced, over the pool's life
        _LIVE_POOLS.add(self)
        self._replenish()

    # -- public -----------------------------------------------------------------------------
    def map(
        self, fn: Callable, arg_tuples: Sequence[tuple], deadline_s: float | None = None
    ) -> list[TaskResult]:
        """Run ``fn(*args)`` for each tuple; results in input order; never raises for a task."""
        if not arg_tuples:
            return []
        deadline = self.deadline_s if deadline_s is None else deadline_s
        with self._lock:
            if self._closed:
                raise RuntimeError("this DeadlinePool is closed")
            return self._run(fn, list(arg_tuples), deadline)

    def worker_pids(self) -> list[int]:
        """Pids of all live worker processes (running, idle, spare or still starting)."""
        return [w.pid for w in self._workers]

    def ready_count(self) -> int:
        """Workers that have finished starting (reads pending "ready" messages without blocking)."""
        with self._lock:
            for w in [w for w in self._workers if not w.ready]:
                if w.conn.poll():
                    self._on_readable(w, [], 0)
            return sum(w.ready for w in self._workers)

    def close(self) -> None:
        """Ask every worker to exit (all at once), then kill those still alive after 1 s."""
        with self._lock:
            self._closed = True
            for w in self._workers:
                try:
                    w.send(None)
                except (OSError, ValueError):
                    pass
            end = time.monotonic() + 1.0
            for w in self._workers:
                try:
                    w.proc.wait(timeout=max(0.0, end - time.monotonic()))
                    w._close_pipes()
                except subprocess.TimeoutExpired:
                    w.kill()
            self._workers.clear()

    def __enter__(self) -> DeadlinePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals --------------------------------------------------------------------------
    def _replenish(self) -> None:
        """Start workers (in the background) until ``size + spares`` processes exist."""
        while not self._closed and len(self._workers) < self.size + self.spares:
            self._workers.append(_Worker(self.initializer, self.memory_mb))

    def _discard(self, w: _Worker, replace: bool = True) -> None:
        """Kill ``w``; start its replacement at once unless it failed while starting."""
        w.kill()
        self._workers.remove(w)
        self.replaced += 1
        if replace:
            self._replenish()

    def _dispatch(self, fn: Callable, tasks: list[tuple], pending: deque, results: list) -> None:
        busy = sum(w.task is not None for w in self._workers)
        for w in self._workers:
            if busy >= self.size or not pending:
                return
            if w.ready and w.task is None:
                idx = pending.popleft()
                try:
                    w.send((fn, tasks[idx]))
                except (OSError, ValueError):  # dead pipe: the worker is gone; retry the task elsewhere
                    pending.appendleft(idx)
                    continue
                except Exception as exc:  # noqa: BLE001 - unpicklable arguments
                    results[idx] = TaskResult("error", error=f"cannot send task: {type(exc).__name__}: {exc}")
                    continue
                w.task, w.task_started = idx, time.monotonic()
                busy += 1

    def _run(self, fn: Callable, tasks: list[tuple], deadline: float) -> list[TaskResult]:
        results: list[TaskResult | None] = [None] * len(tasks)
        pending = deque(range(len(tasks)))
        start_failures = 0
        while pending or any(w.task is not None for w in self._workers):
            self._replenish()
            self._dispatch(fn, tasks, pending, results)
            now = time.monotonic()
            waits = [w.task_started + deadline - now for w in self._workers if w.task is not None]
            waits += [w.started_at + _START_TIMEOUT_S - now for w in self._workers if not w.ready]
            watched = {w.conn: w for w in self._workers}
            for conn in wait(list(watched), timeout=max(0.0, min(waits)) if waits else 0.05):
                start_failures = self._on_readable(watched[conn], results, start_failures)
            now = time.monotonic()
            for w in list(self._workers):  # enforce deadlines
                if w.task is not None and now - w.task_started > deadline:
                    results[w.task] = TaskResult(
                        "timeout", error=f"killed after {deadline:.2f} s", elapsed_s=now - w.task_started
                    )
                    self._discard(w)
                elif not w.ready and now - w.started_at > _START_TIMEOUT_S:
                    start_failures += 1
                    self._discard(w, replace=False)
            if start_failures >= _MAX_START_FAILURES:
                log.error(
                    "reward pool: %d workers failed to start; failing %d tasks", start_failures, len(pending)
                )
                while pending:
                    results[pending.popleft()] = TaskResult("crashed", error="no worker could be started")
                start_failures = 0
        return [r if r is not None else TaskResult("crashed", error="lost") for r in results]

    def _on_readable(self, w: _Worker, results: list[TaskResult | None], start_failures: int) -> int:
        """Handle a worker whose pipe became readable (a message, or EOF when it died)."""
        try:
            msg = w.conn.recv()
        except (EOFError, OSError):  # it died: replace it, fail its task
            if w.task is not None:
                elapsed = time.monotonic() - w.task_started
                results[w.task] = TaskResult(
                    "crashed", error=f"worker died ({w.exit_status()})", elapsed_s=elapsed
                )
            elif not w.ready:
                start_failures += 1
                log.warning("reward pool: a worker died while starting (%s)", w.exit_status())
                self._discard(w, replace=False)
                return start_failures
            self._discard(w)
            return start_failures
        if not w.ready:
            w.ready = isinstance(msg, tuple) and len(msg) == 2 and msg[0] == "ready"
            return 0 if w.ready else start_failures
        if w.task is not None:
            ok, payload = msg
            elapsed = time.monotonic() - w.task_started
            results[w.task] = (
                TaskResult("ok", value=payload, elapsed_s=elapsed)
                if ok
                else TaskResult("error", error=payload, elapsed_s=elapsed)
            )
            w.task = None
        return start_failures


@atexit.register
def _close_all() -> None:
    for pool in list(_LIVE_POOLS):
        try:
            pool.close()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
