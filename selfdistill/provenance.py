"""Where a run's numbers came from: command, config file, code version, libraries, machine.

Every invocation that opens a run directory (the first ``selfdistill run`` and each resume or
single-stage command) appends one record to ``<run_dir>/provenance.jsonl``; the report puts
them in ``report.json["provenance"]`` and a section of ``report.md``. A figure in a report can
then be traced to the exact command line, the bytes of the config file (sha256), the git
commit of the code (and whether its tree had uncommitted changes), the Python and library
versions, the CPU/GPU and thread count, and the seed. Per-stage wall times are in the report's
``stages`` table already.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

LIBRARIES = (
    "selfdistill",
    "torch",
    "transformers",
    "trl",
    "peft",
    "accelerate",
    "datasets",
    "tokenizers",
    "wandb",
    "sympy",
    "latex2sympy2_extended",
    "numpy",
    "triton",
    "vllm",
)
PROVENANCE_FILE = "provenance.jsonl"


def file_sha256(path: str | Path | None) -> str | None:
    """Hex sha256 of a file's bytes (None when there is no such file)."""
    if path is None or not Path(path).is_file():
        return None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def git_state(repo: Path) -> dict[str, Any]:
    """Commit and dirtiness of the git checkout holding ``repo`` (None values when not a checkout).

    ``dirty`` counts changes to tracked files only: untracked run outputs do not make the code dirty.
    """

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    changes = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(changes) if changes is not None else None}


def library_versions(names: tuple[str, ...] = LIBRARIES) -> dict[str, str]:
    """Installed versions of the libraries that change results (missing ones are left out)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what ``platform`` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """CPU model, usable cores, torch threads, GPUs (names), OS."""
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "platform": platform.platform(),
        "hostname": platform.node(),
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def collect(cfg, argv: list[str] | None = None) -> dict[str, Any]:
    """One provenance record for this process working on ``cfg``'s run."""
    source = getattr(cfg, "source_path", None)
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": shlex.join(sys.argv if argv is None else argv),
        "cwd": os.getcwd(),
        "config_file": str(source) if source else None,
        "config_sha256": file_sha256(source),
        "config_fingerprint": cfg.fingerprint(),
        "seed": cfg.run.seed,
        "git": git_state(Path(__file__).resolve().parent),
        "python": platform.python_version(),
        "libraries": library_versions(),
        "machine": machine(),
    }


def record(run_dir: Path, cfg, argv: list[str] | None = None) -> dict[str, Any]:
    """Append this invocation's record to ``<run_dir>/provenance.jsonl`` (one line, flushed)."""
    rec = collect(cfg, argv)
    with (run_dir / PROVENANCE_FILE).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(rec, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return rec


def read(run_dir: Path) -> list[dict[str, Any]]:
    """Every invocation recorded for the run, oldest first (a torn last line is skipped)."""
    path = run_dir / PROVENANCE_FILE
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def summary(run_dir: Path) -> dict[str, Any]:
    """For the report: the invocation that made the report (the latest) and all commands run."""
    records = read(run_dir)
    if not records:
        return {}
    latest = records[-1]
    return {
        **latest,
        "invocations": [
            {
                "time": r["time"],
                "command": r["command"],
                "commit": r["git"]["commit"],
                "dirty": r["git"]["dirty"],
            }
            for r in records
        ],
    }


def markdown(prov: dict[str, Any]) -> list[str]:
    """The report's "Provenance" section."""
    if not prov:
        return []
    g, m = prov["git"], prov["machine"]
    commit = (
        f"`{g['commit'][:12]}`{' (uncommitted changes)' if g['dirty'] else ''}"
        if g["commit"]
        else "not a git checkout"
    )
    libs = ", ".join(f"{k} {v}" for k, v in prov["libraries"].items())
    lines = [
        "",
        "## Provenance",
        "",
        f"- Command: `{prov['command']}`",
        f"- Config: {prov['config_file'] or '(embedded)'} (sha256 `{(prov['config_sha256'] or '-')[:16]}`, "
        f"fingerprint `{prov['config_fingerprint']}`), seed {prov['seed']}",
        f"- Code: {commit}; Python {prov['python']}; {libs}",
        f"- Machine: {m['cpu']}, {m['cpus']} cores, torch threads {m.get('torch_threads', '-')}"
        + (f", GPUs: {', '.join(m['gpus'])}" if m.get("gpus") else ", no GPU"),
    ]
    if len(prov["invocations"]) > 1:
        lines.append("- Invocations (first made the run, later ones resumed it):")
        lines += [
            f"  - {i['time']} `{i['command']}` at `{(i['commit'] or '-')[:12]}`{' dirty' if i['dirty'] else ''}"
            for i in prov["invocations"]
        ]
    return lines
