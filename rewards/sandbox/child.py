"""The job process: forked from the zygote, it confines itself, reads its job, runs untrusted code.

Descriptors on entry (set up by :func:`enter`): 0 ``/dev/null`` (stdio mode: a memfd holding
the input), 1/2 pipes drained by the trusted side, 3 the job stream (one framed JSON job, then
in ``serve`` mode one framed call per request), 4 the record stream (JSON lines). Nothing else.

Records (one JSON object per line) -- only ever *data*, never a verdict:

* ``{"k": "syntax", "err": ...}``   the code does not compile
* ``{"k": "loaded"}``               module body ran; ``{"k": "load_error", "err": ...}`` if not
* ``{"k": "r", "i": i, "v": <tagged value>}`` / ``{"k": "r", "i": i, "err": "ZeroDivisionError"}``
* ``{"k": "done"}``                 stdio program ended normally
* ``{"k": "infra", "err": ...}``    a layer could not be applied (the job never ran)
"""

from __future__ import annotations

import builtins
import io
import json
import os
import struct
import sys

from rewards.sandbox import codec

JOB_FD, REC_FD = 3, 4


def read_frame(fd: int) -> dict | None:
    """One ``<u32 length><json>`` frame from ``fd``; None at end of stream."""
    head = _read_exact(fd, 4)
    if head is None:
        return None
    body = _read_exact(fd, struct.unpack("<I", head)[0])
    return None if body is None else json.loads(body)


def _read_exact(fd: int, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        b = os.read(fd, min(n - got, 1 << 20))
        if not b:
            return None
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)


def frame(obj: dict) -> bytes:
    body = json.dumps(obj, separators=(",", ":")).encode()
    return struct.pack("<I", len(body)) + body


def emit(rec: dict) -> None:
    data = (json.dumps(rec, separators=(",", ":")) + "\n").encode()
    while data:
        data = data[os.write(REC_FD, data) :]


def _err(e: BaseException) -> str:
    return type(e).__name__


def _result(i: int, fn, args: list, kwargs: dict) -> dict:
    try:
        value = fn(*args, **kwargs)
    except BaseException as e:  # noqa: BLE001 -- SystemExit and KeyboardInterrupt included
        return {"k": "r", "i": i, "err": _err(e)}
    try:
        return {"k": "r", "i": i, "v": codec._enc(value, 0)}
    except BaseException as e:  # noqa: BLE001 -- hostile __repr__, huge ints, recursion
        return {"k": "r", "i": i, "err": f"unencodable {_err(e)}"}


def _load(code: str, name: str) -> dict | None:
    try:
        obj = compile(code, "<solution>", "exec")
    except BaseException as e:  # noqa: BLE001 -- SyntaxError, ValueError (NUL), MemoryError
        emit({"k": "syntax", "err": f"{_err(e)}: {str(e)[:200]}"})
        return None
    ns = {"__name__": name, "__builtins__": builtins}
    try:
        exec(obj, ns)
    except BaseException as e:  # noqa: BLE001
        if name == "__main__" and isinstance(e, SystemExit) and e.code in (None, 0):
            return ns
        emit({"k": "load_error", "err": _err(e)})
        return None
    emit({"k": "loaded"})
    return ns


def _function(ns: dict, fn_name: str):
    fn = ns.get(fn_name)
    if fn is None and "Solution" in ns:  # LeetCode style: class Solution with the method
        try:
            fn = getattr(ns["Solution"](), fn_name, None)
        except BaseException:  # noqa: BLE001
            fn = None
    if not callable(fn):
        emit({"k": "load_error", "err": f"no function {fn_name!r}"})
        return None
    return fn


def _flush() -> None:
    for stream in (sys.stdout, sys.__stdout__, sys.stderr, sys.__stderr__):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001
            pass


def run(job: dict) -> None:
    """Execute one job according to its mode; returns when done (the caller ``_exit``s)."""
    mode = job["mode"]
    if mode == "stdio":
        fd = os.memfd_create("stdin")
        os.write(fd, job.get("stdin", "").encode())
        os.lseek(fd, 0, 0)
        os.dup2(fd, 0)
        os.close(fd)
        sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)))
        if _load(job["code"], "__main__") is not None:
            _flush()
            emit({"k": "done"})
        return
    ns = _load(job["code"], "solution")
    fn = None if ns is None else _function(ns, job["fn_name"])
    if fn is None:
        return
    if mode == "call":
        for i, (args, kwargs) in enumerate(job["cases"]):
            emit(_result(i, fn, codec._dec(args, 0), codec._dec(kwargs, 0)))
        _flush()
        return
    i = 0  # serve: one call per frame until the trusted side closes the stream
    while (req := read_frame(JOB_FD)) is not None:
        emit(_result(i, fn, codec._dec(req["args"], 0), codec._dec(req["kwargs"], 0)))
        i += 1


def enter(spec: dict, fds: list[int], apply_layers) -> None:
    """Child side of the zygote's fork: wire descriptors, confine, run, ``_exit``. Never returns."""
    code = 0
    try:
        job_r, rec_w, out_w, err_w = fds
        devnull = os.open("/dev/null", os.O_RDWR)
        for src, dst in ((devnull, 0), (out_w, 1), (err_w, 2), (job_r, JOB_FD), (rec_w, REC_FD)):
            os.dup2(src, dst)  # dup2 clears O_CLOEXEC on the target
        os.closerange(REC_FD + 1, 1 << 16)
        try:
            apply_layers(spec)
        except BaseException as e:  # noqa: BLE001
            emit({"k": "infra", "err": f"layer setup failed: {_err(e)}: {e}"})
            os._exit(70)
        job = read_frame(JOB_FD)
        if job is None:
            os._exit(71)
        run(job)
    except BaseException:  # noqa: BLE001 -- nothing may escape into the zygote's loop
        code = 1
    finally:
        _flush()
        os._exit(code)
