"""W&B lineage: each stage logs what it made as artifacts and declares what it used.

Every pipeline step is one W&B run (`tracking`); after a step, `record` gives that run

* its **inputs** (``use``): the model of each step it needs, the trace datasets whose traces it
  actually read (the store records the shards `TraceStore.iter` yields from inside the step), and
  so on down the graph;
* its **outputs** (``produce``): a ``model`` artifact when the step made a model (its
  ``model_path`` differs from those of the steps it needs: an eval step or a skipped SFT makes
  none), a ``dataset`` artifact of the trace shards a collect step wrote, a ``report`` artifact of
  the files the report step wrote.

So the lineage graph reads base -> RL -> traces -> SFT -> ... -> students -> report.

An artifact is named ``<run name>-<step key>`` and built from what the producing step recorded in
its state file, so the consumer rebuilds the *same* artifact (same files or references, hence
the same digest) and W&B resolves it to the producer's version: that is how a use is tied to a
produce without a server to ask (offline). Models larger than `COPY_MAX_BYTES`, and trace sets
likewise, are added by reference (``file://``, no checksum: the digest comes from the paths, so a
60 GB checkpoint is neither copied nor read); smaller ones are copied into the artifact. A hub id
(a pretrained base) is referenced as ``https://huggingface.co/<id>``.

Offline, ``run.use_artifact`` refuses to run; `tracking.WandbStage.use` then writes what it would
have sent (an artifact record flagged ``use_after_commit``) into the run's transaction log, which
``wandb sync`` replays. `read_offline_run` reads those logs back (tests, debugging).
"""

from __future__ import annotations

import logging
import re
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
COPY_MAX_BYTES = 32 * 2**20  # larger models / trace sets are added by reference, not copied


@dataclass(frozen=True)
class ArtifactSpec:
    """What a W&B artifact holds, as plain data (built into a ``wandb.Artifact`` by `tracking`)."""

    name: str
    type: str  # model | dataset | report
    files: tuple[str, ...] = ()  # local files or directories copied into the artifact
    refs: tuple[str, ...] = ()  # URIs referenced, not copied
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def artifact_name(group: str, key: str) -> str:
    """``<run>-<step key>`` with the characters W&B does not allow in names replaced."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", f"{group}-{key}")


def _bytes(path: Path) -> int:
    return (
        path.stat().st_size
        if path.is_file()
        else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    )


def _files_or_refs(paths: list[Path]) -> dict[str, tuple[str, ...]]:
    """Copy small sets of files, reference large ones (see module docstring)."""
    if sum(_bytes(p) for p in paths) <= COPY_MAX_BYTES:
        return {"files": tuple(str(p) for p in paths)}
    return {"refs": tuple(p.resolve().as_uri() for p in paths)}


def model_artifact(group: str, key: str, model_path: str) -> ArtifactSpec:
    """The artifact of the model at ``model_path`` (a directory or file here, or a hub id)."""
    path = Path(model_path).expanduser()
    meta = {"model_path": model_path, "step": key}
    if path.exists():
        return ArtifactSpec(artifact_name(group, key), "model", metadata=meta, **_files_or_refs([path]))
    return ArtifactSpec(
        artifact_name(group, key), "model", refs=(f"https://huggingface.co/{model_path}",), metadata=meta
    )


def _state(run, key: str) -> dict[str, Any] | None:
    """A finished step's outputs as a plain mapping (state files hold dicts or records with `to_json`)."""
    done = run.done(key)
    return done.to_json() if hasattr(done, "to_json") else done


def _as_dict(outputs: Any) -> dict[str, Any]:
    return outputs.to_json() if hasattr(outputs, "to_json") else dict(outputs)


def model_source(run, key: str, needs_of) -> str | None:
    """The step whose model artifact ``key``'s model is: ``key`` itself if it made it, else the needed
    step that did (an eval, or an SFT that was skipped, passes its input on); None if it has no model."""
    state = _state(run, key)
    path = (state or {}).get("model_path")
    if not path:
        return None
    for need in needs_of(key):
        if (_state(run, need) or {}).get("model_path") == path:
            return model_source(run, need, needs_of)
    return key


def produced(run, key: str, needs: list[str], outputs: Any) -> list[ArtifactSpec]:
    """What step ``key`` made, from its ``outputs``: a model, a trace dataset, report files."""
    group, out = run.cfg.run.name, _as_dict(outputs)
    specs: list[ArtifactSpec] = []
    path = out.get("model_path")
    if path and all((_state(run, n) or {}).get("model_path") != path for n in needs):
        specs.append(model_artifact(group, key, path))
    shards = [Path(s) for s in out.get("shards") or [] if Path(s).exists()]
    if shards:
        specs.append(
            ArtifactSpec(
                artifact_name(group, key),
                "dataset",
                metadata={"step": key, "shards": len(shards)},
                **_files_or_refs(shards),
            )
        )
    if out.get("files"):
        specs.append(
            ArtifactSpec(
                artifact_name(group, key), "report", files=tuple(out["files"]), metadata={"step": key}
            )
        )
    return specs


def _trace_producers(run, keys: list[str]) -> dict[str, str]:
    """Shard file path -> the step that wrote it, over the finished steps ``keys``."""
    owners: dict[str, str] = {}
    for key in keys:
        for shard in (_state(run, key) or {}).get("shards", []):
            owners[shard] = key
    return owners


def used(run, key: str, needs_of, done_keys: list[str], read_shards: set[str]) -> list[ArtifactSpec]:
    """What step ``key`` used: its needed steps' models and traces, and the trace sets it read."""
    specs: dict[tuple[str, str], ArtifactSpec] = {}
    owners = _trace_producers(run, done_keys)
    sources = list(needs_of(key)) + sorted({owners[s] for s in read_shards if s in owners})
    for need in dict.fromkeys(sources):
        if need == key:
            continue
        state = _state(run, need) or {}
        source = model_source(run, need, needs_of)
        if source is not None:
            path = _state(run, source)["model_path"]
            spec = model_artifact(run.cfg.run.name, source, path)
            specs[(spec.name, spec.type)] = spec
        if state.get("shards"):
            for spec in produced(run, need, [], {"shards": state["shards"]}):
                specs[(spec.name, spec.type)] = spec
    return list(specs.values())


def record(run, stage, key: str, needs_of, done_keys: list[str], outputs: Any, read_shards: set[str]) -> None:
    """Declare step ``key``'s inputs and outputs on its tracked run (a no-op when tracking is off).

    A failure here is logged, not raised: the step's outputs are already saved.
    """
    if getattr(stage, "report_to", "none") == "none":
        return
    try:
        for spec in used(run, key, needs_of, done_keys, read_shards):
            stage.use(spec)
        for spec in produced(run, key, list(needs_of(key)), outputs):
            stage.produce(spec)
    except Exception as exc:  # noqa: BLE001 - the step's work is done and saved; lineage must not undo it
        log.warning("W&B lineage of %s not recorded: %s: %s", key, type(exc).__name__, exc)


# --- reading offline runs back ---------------------------------------------------------------------------------
# A W&B transaction log (``run-<id>.wandb``) is a LevelDB-style log: a 7-byte header (":W&B", magic 0xBEE1,
# version 0), then 32 KiB blocks of chunks, each with a 7-byte header (CRC-32 of type byte + data, length,
# type FULL/FIRST/MIDDLE/LAST); the payloads are `wandb_internal_pb2.Record` protobufs.
_BLOCK = 32768
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def _log_records(path: Path):
    """The raw record payloads of one transaction log, CRC-checked."""
    data = path.read_bytes()
    if data[:4] != b":W&B" or struct.unpack("<HB", data[4:7]) != (0xBEE1, 0):
        raise ValueError(f"{path}: not a W&B transaction log (bad header)")
    pos, pending = 7, b""
    while pos + 7 <= len(data):
        if _BLOCK - pos % _BLOCK < 7:  # block trailer too short for a header: padding
            pos += _BLOCK - pos % _BLOCK
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if pos + 7 + length > len(data):  # a chunk still being written: the log ends before it
            return
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            continue
        if zlib.crc32(chunk, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF != crc:
            raise ValueError(f"{path}: corrupt record at byte {pos - 7 - length} (CRC mismatch)")
        if kind == _FULL:
            yield chunk
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            yield pending + chunk
            pending = b""


def read_offline_run(path: str | Path) -> dict[str, Any]:
    """One offline run's name, job type and artifacts: ``{"name", "job_type", "used", "logged", "complete"}``.

    Each artifact is ``{"name", "type", "digest", "entries": [(path, ref)]}``; ``used`` holds those the run
    declared as inputs (records flagged ``use_after_commit``), ``logged`` its outputs. ``complete``: the log
    holds the run's exit record (wandb's writer may still be flushing a run that just finished).
    """
    from wandb.proto import wandb_internal_pb2 as pb

    path = Path(path)
    log = path if path.suffix == ".wandb" else next(path.glob("run-*.wandb"))
    out: dict[str, Any] = {"name": None, "job_type": None, "used": [], "logged": [], "complete": False}
    for payload in _log_records(log):
        rec = pb.Record()
        rec.ParseFromString(payload)
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            out["name"], out["job_type"] = rec.run.display_name, rec.run.job_type
        elif kind == "exit":
            out["complete"] = True
        elif kind == "artifact":
            a = rec.artifact
            art = {
                "name": a.name,
                "type": a.type,
                "digest": a.digest,
                "entries": [(e.path, e.ref) for e in a.manifest.contents],
            }
            out["used" if a.use_after_commit else "logged"].append(art)
    return out


def read_offline_runs(run_dir: str | Path, timeout_s: float = 120.0) -> list[dict[str, Any]]:
    """Every offline W&B run under ``<run_dir>/wandb``, read once each log holds its exit record."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        runs = [read_offline_run(d) for d in sorted((Path(run_dir) / "wandb").glob("offline-run-*"))]
        if all(r["complete"] for r in runs) or time.monotonic() > deadline:
            return runs
        time.sleep(0.2)
