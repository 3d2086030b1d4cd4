"""Experiment tracking: every stage is one W&B run in the run's group, or nothing at all.

The loop never asks "is logging on?": it calls `tracker.stage(...)` and logs into whatever it
gets back. With ``tracking.report_to=none`` that is a `NullStage`. W&B runs offline unless
``WANDB_API_KEY`` is set (or ``tracking.mode=online``); offline runs live under
``<run_dir>/wandb`` and upload later with ``wandb sync <run_dir>/wandb/offline-run-*``.

Stages declare their inputs and outputs as artifacts (`use` / `produce`, see `lineage`), so the
W&B lineage graph shows which model and which traces made which model; offline runs keep those
declarations in their transaction logs for ``wandb sync``.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class NullStage:
    """Tracking turned off: accepts everything, records nothing."""

    report_to = "none"

    def log(self, metrics: dict[str, Any], step: int | None = None) -> None:
        pass

    def table(self, name: str, columns: list[str], rows: list[list[Any]]) -> None:
        pass

    def summary(self, values: dict[str, Any]) -> None:
        pass

    def use(self, spec) -> None:
        pass

    def produce(self, spec) -> None:
        pass


def build_artifact(spec):
    """A ``wandb.Artifact`` from a `lineage.ArtifactSpec` (files copied, URIs referenced without checksums)."""
    import wandb

    artifact = wandb.Artifact(spec.name, type=spec.type, metadata=dict(spec.metadata))
    for f in spec.files:
        path = Path(f)
        if path.is_dir():
            artifact.add_dir(str(path))
        else:
            artifact.add_file(str(path), name=path.name)
    for uri in spec.refs:
        # checksum=False: the digest comes from the URIs, so producer and consumer agree without reading the files
        artifact.add_reference(uri, checksum=False)
    return artifact


class WandbStage:
    """One live W&B run; TRL's trainers log into it through their `report_to="wandb"` callback."""

    report_to = "wandb"

    def __init__(self, run) -> None:
        self.run = run

    def log(self, metrics: dict[str, Any], step: int | None = None) -> None:
        self.run.log(metrics, step=step)

    def table(self, name: str, columns: list[str], rows: list[list[Any]]) -> None:
        import wandb

        self.run.log({name: wandb.Table(columns=columns, data=rows)})

    def summary(self, values: dict[str, Any]) -> None:
        self.run.summary.update(values)

    def use(self, spec) -> None:
        """Declare the artifact ``spec`` an input of this run (rebuilt: same content, same digest as its producer's)."""
        artifact = build_artifact(spec)
        if self.run.settings._offline:
            # run.use_artifact refuses offline; for a draft artifact it logs it flagged use_after_commit, which is
            # what we write to the transaction log here, and what `wandb sync` sends as a use of that version.
            self.run._log_artifact(artifact, is_user_created=True, use_after_commit=True)
        else:
            self.run.use_artifact(artifact)

    def produce(self, spec) -> None:
        """Log the artifact ``spec`` as an output of this run."""
        self.run.log_artifact(build_artifact(spec))


def wandb_mode(mode: str) -> str:
    if mode == "auto":
        return "online" if os.environ.get("WANDB_API_KEY") else "offline"
    return mode


class Tracker:
    """Creates one tracked run per stage, all in the group named after the selfdistill run."""

    def __init__(self, cfg, run_dir: Path, group: str, config: dict[str, Any], enabled: bool = True) -> None:
        self.cfg = cfg
        self.enabled = enabled  # False on ranks other than 0 of a distributed job: one W&B run per stage
        self.run_dir = Path(run_dir)
        self.group = group
        self.config = config

    @contextmanager
    def stage(self, name: str, job_type: str):
        if self.cfg.report_to == "none" or not self.enabled:
            yield NullStage()
            return
        import wandb

        mode = wandb_mode(self.cfg.mode)
        os.environ["WANDB_MODE"] = mode  # TRL's callback reads the environment too
        self.run_dir.mkdir(parents=True, exist_ok=True)
        run = wandb.init(
            project=self.cfg.project,
            group=self.group,
            name=f"{self.group}/{name}",
            job_type=job_type,
            dir=str(self.run_dir),
            config=self.config,
            mode=mode,
            reinit="finish_previous",
            settings=wandb.Settings(console="off", silent=True),
        )
        try:
            yield WandbStage(run)
        finally:
            run.finish()
            if mode == "offline":
                log.info("W&B offline run saved; upload with: wandb sync %s", run.dir.rsplit("/files", 1)[0])
