"""The trusted side's view of one running job: its pipes, buffers, caps and progress.

Every read is non-blocking and capped: stdout+stderr past ``output_bytes`` or records past
``record_bytes`` mark the job ``output_limit`` (the caller then kills it). Records are parsed as
JSON lines here, in the trusted process, and kept only if they are well-formed objects.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field


@dataclass
class JobResult:
    """What happened to one job. ``records`` hold data only; verdicts are computed elsewhere."""

    records: list[dict] = field(default_factory=list)
    stdout: bytes = b""
    stderr: bytes = b""
    exit: int | None = None
    signal: int | None = None
    timeout: bool = False
    output_limit: bool = False
    memory: bool = False
    cpu_s: float = 0.0
    wall_s: float = 0.0
    infra: str | None = None  # set when the sandbox itself failed; never a verdict on the code

    @classmethod
    def infra_error(cls, why: str) -> JobResult:
        return cls(infra=why)


class Proc:
    """Pipes and state of one forked job (trusted side)."""

    STDERR_KEEP = 4096

    def __init__(
        self,
        pid: int,
        slot: int,
        job_w: int,
        rec_r: int,
        out_r: int,
        err_r: int,
        output_bytes: int,
        record_bytes: int,
    ):
        self.pid, self.slot = pid, slot
        self.job_w, self.rec_r, self.out_r, self.err_r = job_w, rec_r, out_r, err_r
        self.output_cap, self.record_cap = output_bytes, record_bytes
        self.outbuf = b""  # framed bytes still to write into the job stream
        self.open_reads = {rec_r, out_r, err_r}
        self.stdout, self.stderr, self.rec_tail = bytearray(), bytearray(), b""
        self.out_total = self.rec_total = 0
        self.result = JobResult()
        self.started = self.progress = time.monotonic()
        self.loaded = False  # module body ran (or failed): the load deadline no longer applies
        for fd in (job_w, rec_r, out_r, err_r):
            os.set_blocking(fd, False)

    def send(self, data: bytes) -> None:
        self.outbuf += data
        self.flush()

    def flush(self) -> None:
        """Write as much of the pending job stream as the pipe takes now."""
        while self.outbuf and self.job_w >= 0:
            try:
                n = os.write(self.job_w, self.outbuf)
            except BlockingIOError:
                return
            except OSError:  # the child is gone
                self.outbuf = b""
                return
            self.outbuf = self.outbuf[n:]

    def read(self, fd: int) -> None:
        """Drain what ``fd`` has now; on EOF stop watching it."""
        try:
            data = os.read(fd, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.open_reads.discard(fd)
            return
        if fd == self.rec_r:
            self.rec_total += len(data)
            if self.rec_total > self.record_cap:
                self.result.output_limit = True
                return
            self._parse(self.rec_tail + data)
            return
        self.out_total += len(data)
        if self.out_total > self.output_cap:
            self.result.output_limit = True
            return
        if fd == self.out_r:
            self.stdout += data
        else:
            self.stderr = (self.stderr + data)[-self.STDERR_KEEP :]

    def _parse(self, data: bytes) -> None:
        *lines, self.rec_tail = data.split(b"\n")
        for line in lines:
            try:
                rec = json.loads(line)
            except (ValueError, RecursionError):
                continue  # garbage on the record channel is ignored, never trusted
            if isinstance(rec, dict) and isinstance(rec.get("k"), str):
                self.result.records.append(rec)
                self.progress = time.monotonic()
                if rec["k"] in ("loaded", "load_error", "syntax", "infra"):
                    self.loaded = True

    @property
    def eof(self) -> bool:
        return not self.open_reads

    def close(self) -> JobResult:
        for fd in (self.job_w, self.rec_r, self.out_r, self.err_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self.job_w = -1
        r = self.result
        r.stdout, r.stderr = bytes(self.stdout), bytes(self.stderr)
        r.wall_s = time.monotonic() - self.started
        return r
