"""DeadlinePool: results in order, hard deadline with kill, recovery from a killed worker."""

import math
import operator
import os
import signal
import threading
import time

import pytest

from rewards.pool import DeadlinePool


@pytest.fixture(scope="module")
def pool():
    p = DeadlinePool(workers=2, deadline_s=1.0, memory_mb=None)
    yield p
    p.close()


def test_results_in_order_and_errors_reported(pool):
    res = pool.map(math.sqrt, [(4.0,), (9.0,), (16.0,)])
    assert [r.value for r in res] == [2.0, 3.0, 4.0] and all(r.ok for r in res)
    err = pool.map(operator.truediv, [(1, 0), (6, 3)])
    assert err[0].kind == "error" and "ZeroDivisionError" in err[0].error
    assert err[1].ok and err[1].value == 2.0


def test_deadline_kills_and_pool_keeps_working(pool):
    t = time.perf_counter()
    res = pool.map(time.sleep, [(30,), (0.01,)], deadline_s=0.5)
    assert time.perf_counter() - t < 5
    assert res[0].kind == "timeout" and res[1].ok
    assert [r.value for r in pool.map(abs, [(-1,), (-2,), (-3,)])] == [1, 2, 3]


def test_worker_that_exits_is_replaced(pool):
    res = pool.map(os._exit, [(3,)])
    assert res[0].kind == "crashed" and "exit code 3" in res[0].error
    assert pool.map(abs, [(-5,)])[0].value == 5


def die_by(sig: int) -> None:
    """Task that kills its own worker with ``sig`` (what a segfaulting C extension looks like)."""
    os.kill(os.getpid(), sig)
    time.sleep(10)  # never reached for a fatal signal


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT])
def test_worker_killed_by_a_signal_is_named(pool, sig):
    res = pool.map(die_by, [(int(sig),)], deadline_s=5)
    assert res[0].kind == "crashed"
    assert f"killed by {sig.name} (signal {int(sig)})" in res[0].error
    assert pool.map(abs, [(-6,)])[0].value == 6


def test_exit_status_words():
    from rewards.pool import describe_returncode

    assert describe_returncode(0) == "exit code 0"
    assert describe_returncode(3) == "exit code 3"
    assert describe_returncode(-9) == "killed by SIGKILL (signal 9)"
    assert describe_returncode(-200) == "killed by an unknown signal (signal 200)"


def test_sigkill_mid_batch(pool):
    """Kill a busy worker from outside; its item is reported, the batch and later batches complete."""
    pool.map(abs, [(1,), (2,)])  # make sure both workers are up
    victims = pool.worker_pids()

    def killer():
        time.sleep(0.3)
        os.kill(victims[0], signal.SIGKILL)

    threading.Thread(target=killer).start()
    res = pool.map(time.sleep, [(0.8,), (0.8,), (0.01,), (0.01,)], deadline_s=5)
    kinds = sorted(r.kind for r in res)
    assert kinds.count("crashed") == 1 and kinds.count("ok") == 3
    assert victims[0] not in pool.worker_pids()
    assert [r.value for r in pool.map(abs, [(-7,), (-8,)])] == [7, 8]


def test_map_from_threads_is_serialised(pool):
    out = {}

    def run(k):
        out[k] = [r.value for r in pool.map(abs, [(-k,), (-k - 1,)])]

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == {k: [k, k + 1] for k in range(4)}


def test_closed_pool_refuses_work():
    p = DeadlinePool(workers=1, deadline_s=1.0)
    p.close()
    with pytest.raises(RuntimeError, match="closed"):
        p.map(abs, [(-1,)])


def slow_start():
    """Initializer standing in for a slow import (sympy on a loaded machine)."""
    time.sleep(1.0)


def _wait_ready(p: DeadlinePool, n: int, limit_s: float = 30.0) -> int:
    end = time.monotonic() + limit_s
    while p.ready_count() < n and time.monotonic() < end:
        time.sleep(0.05)
    return p.ready_count()


def test_killed_worker_is_replaced_by_a_warm_spare():
    """After a kill the next task runs at once on the spare; the replacement boots in the background."""
    with DeadlinePool(
        workers=1, deadline_s=0.3, initializer="test_pool:slow_start", memory_mb=None, spares=1
    ) as p:
        assert _wait_ready(p, 2) == 2
        assert p.map(time.sleep, [(10,)])[0].kind == "timeout"
        t = time.perf_counter()
        assert p.map(abs, [(-2,)])[0].value == 2
        assert time.perf_counter() - t < 0.8  # did not wait for the 1 s start-up
        assert len(p.worker_pids()) == 2  # the replacement was started right away
        assert _wait_ready(p, 2) == 2
        assert p.replaced == 1
