"""The self-distillation loop, stage by stage, resumable.

The default plan (``pipeline.preset: rounds``; others and custom stage lists in docs/pipelines.md):

    base policy ──▶ for r in 1..R: rl ──▶ collect ──▶ sft   (the SFT output starts round r+1)
    for each student: base ──▶ distill (from the policy's traces; in a chain whose method learns from
                      sequences (sft, hidden_align), from the teacher student's own sampled, reward-filtered
                      traces: teacher ──collect──▶ student_traces/<teacher>; logit methods use its logits)
    eval every model ──▶ report

`plan(cfg)` (`selfdistill.planning`) compiles the config's stages into typed step records (key, action,
inputs by role); `run_pipeline(cfg)` executes them in order, each through `stages.steps.ACTIONS[step.action]`.
A finished step leaves ``<run_dir>/state/<key>.json`` (written atomically) with its `StepOutput`
and is skipped next time, so running the same command after a crash (even SIGKILL)
resumes where it stopped; collect additionally resumes inside the round (see
`stages.collect`). `run_stage(cfg, command, round)` runs one step for the CLI's
``selfdistill rl|collect|sft|distill|eval``.

Under `accelerate launch`/`torchrun` every rank runs this same plan: training steps run on all
ranks (TRL's trainers do the data parallelism), collect and eval split their prompts across ranks
(each rank writes its own trace shards), and the report runs on rank 0 only. Rank 0 alone writes
state files, models, the report and the W&B runs; its view of what is done is broadcast so every rank takes the same
path, and the broadcast at the end of each step keeps the ranks in step (see `distributed`).
The run directory must be on a filesystem every rank sees.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selfdistill import distributed as dist
from selfdistill import lineage
from selfdistill.checkpoints import remove_checkpoints
from selfdistill.config import Config
from selfdistill.configio import ConfigError, to_dict
from selfdistill.planning import Step, StepOutput, format_plan, plan  # noqa: F401  (plan, format_plan: API)
from selfdistill.traces import TraceStore
from selfdistill.tracking import Tracker

log = logging.getLogger(__name__)


def _write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def same_settings(old: Any, new: Any, default: Any) -> bool:
    """Whether config data ``new`` equals ``old`` up to keys ``old`` lacks that ``new`` has at their ``default``.

    Dicts compare key by key (a key only in ``new`` must equal its default; one only in ``old`` means a
    setting was removed: not the same); lists compare element by element, each against the default list's
    first element as the defaults of its fields (``distill.students`` entries); anything else by equality.
    """
    if isinstance(old, dict) and isinstance(new, dict):
        default = default if isinstance(default, dict) else {}
        if set(old) - set(new):
            return False
        return all(
            same_settings(old[k], new[k], default.get(k)) if k in old else new[k] == default.get(k, object())
            for k in new
        )
    if isinstance(old, list) and isinstance(new, list):
        element = default[0] if isinstance(default, list) and default else {}
        return len(old) == len(new) and all(same_settings(o, n, element) for o, n in zip(old, new))
    return old == new


def _written_by_older_version(old_config: dict | None, cfg: Config) -> bool:
    """A run record whose config differs from ``cfg`` only by fields added since, at their defaults
    (adding a field to a list entry, e.g. a student, changes the fingerprint; it must not stop a resume)."""
    from selfdistill.config import Config as Defaults

    if not isinstance(old_config, dict):
        return False
    old = {k: v for k, v in old_config.items() if k != "tracking"}
    new = {k: v for k, v in to_dict(cfg).items() if k != "tracking"}
    return same_settings(old, new, to_dict(Defaults()))


class Run:
    """Paths, state markers, tracker and trace store of one run directory."""

    def __init__(self, cfg: Config) -> None:
        from selfdistill.models.loading import resolve_device
        from selfdistill.rewarding import check_sandbox_layers

        self.cfg = cfg
        self.dir = cfg.run_dir
        self.state_dir = self.dir / "state"
        self.models_dir = self.dir / "models"
        device = resolve_device(cfg.run.device)
        dist.init(device, timeout_s=cfg.run.dist_timeout_s)
        self.device = dist.device_for(device)
        self.main = dist.is_main_process()
        for d in (self.state_dir, self.models_dir):
            d.mkdir(parents=True, exist_ok=True)
        error = None
        if self.main:
            try:
                check_sandbox_layers(cfg.rewards)
                self._check_fingerprint()
            except ConfigError as exc:
                error = str(exc)
        error = dist.broadcast(error)  # every rank fails the same way, none waits forever
        if error:
            raise ConfigError(error)
        if self.main:
            from selfdistill import provenance

            provenance.record(self.dir, cfg)
        self.tracker = Tracker(cfg.tracking, self.dir, cfg.run.name, to_dict(cfg), enabled=self.main)
        self.store = TraceStore(self.dir / "traces", clean=self.main)
        self._split = None
        if cfg.run.threads:
            import torch

            torch.set_num_threads(cfg.run.threads)

    def _check_fingerprint(self) -> None:
        meta = self.dir / "run.json"
        fp = self.cfg.fingerprint()
        if meta.exists():
            old = json.loads(meta.read_text())
            if old.get("fingerprint") != fp and _written_by_older_version(old.get("config"), self.cfg):
                log.info(
                    "%s was made by an older version (fingerprint %s): same settings, new fields at their "
                    "defaults; its record now carries fingerprint %s",
                    self.dir,
                    old.get("fingerprint"),
                    fp,
                )
                _write_json_atomic(meta, {**old, "fingerprint": fp, "config": to_dict(self.cfg)})
            elif old.get("fingerprint") != fp:
                raise ConfigError(
                    f"{self.dir} holds a run made with a different config (fingerprint {old.get('fingerprint')} vs {fp}); "
                    "resume with the same config, or choose another run.name"
                )
        else:
            _write_json_atomic(meta, {"fingerprint": fp, "config": to_dict(self.cfg), "created": time.time()})

    @property
    def split(self):
        if self._split is None:
            from selfdistill.tasks import load_tasks

            self._split = load_tasks(self.cfg)
            if self.main:
                _write_json_atomic(self.dir / "split.json", self._split.info)
        return self._split

    def done(self, key: str) -> StepOutput | None:
        """The output of step ``key`` if it finished (also state files written before `StepOutput` existed)."""
        path = self.state_dir / f"{key}.json"
        return StepOutput.from_json(json.loads(path.read_text())) if path.exists() else None

    def finish(self, key: str, output: StepOutput | dict[str, Any]) -> None:
        """Record step ``key`` as done with ``output`` (a `StepOutput`, or its flat state-file layout)."""
        data = output.to_json() if isinstance(output, StepOutput) else StepOutput.from_json(output).to_json()
        _write_json_atomic(self.state_dir / f"{key}.json", data)

    def model_path(self, name: str) -> Path:
        return self.models_dir / name

    def load(self, path: str | Path, dtype: str = "auto", train: bool = False):
        """Model and tokenizer at ``path`` in ``dtype`` (a model config's ``dtype``) on this rank's device;
        ``train``: for a training step (under FSDP/ZeRO-3 the trainer places it, see `models.loading.placement`)."""
        from selfdistill.models.loading import load_model

        return load_model(
            path, device=self.device, dtype=dtype, train=train, experts=self.cfg.run.experts_implementation
        )

    def student_store(self, name: str) -> TraceStore:
        """The traces student ``name`` sampled itself (reward-filtered) to teach the next student of a chain."""
        return TraceStore(self.dir / "student_traces" / name, clean=self.main)

    def save(self, model, tokenizer, name: str, trained_in: Path | None = None) -> str:
        """Save on rank 0 (the others get the path; `execute` holds them until the step is recorded).

        ``trained_in``: the stage's work dir; under FSDP/ZeRO-3 the full weights the trainer
        gathered there (`checkpoints.train_resumable`) are moved in place of the local shard.
        """
        import shutil

        from selfdistill.checkpoints import FINAL_DIR
        from selfdistill.models.loading import save_model

        path = self.model_path(name)
        if self.main and dist.is_sharded() and trained_in is not None and (trained_in / FINAL_DIR).is_dir():
            tokenizer.save_pretrained(trained_in / FINAL_DIR)
            if path.exists():
                shutil.rmtree(path)
            (trained_in / FINAL_DIR).rename(path)
        elif self.main:
            save_model(model, tokenizer, path)
        return str(path)

    def stage_dir(self, key: str) -> Path:
        d = self.dir / "work" / key
        d.mkdir(parents=True, exist_ok=True)
        return d


def _needs_of(run: Run) -> Callable[[str], list[str]]:
    """Step key -> the keys it needs, over this run's plan (for lineage)."""
    needs = {s.key: list(s.needs) for s in plan(run.cfg)}
    return lambda key: needs.get(key, [])


def _done_keys(run: Run) -> list[str]:
    return [p.stem for p in sorted(run.state_dir.glob("*.json"))]


# Steps that only rank 0 runs (the others wait): nothing in them is worth splitting.
MAIN_ONLY = frozenset({"report"})


def execute(run: Run, step: Step, force: bool = False) -> StepOutput:
    """Run ``step`` unless it already finished; its output is recorded atomically (by rank 0)."""
    from selfdistill.stages.steps import ACTIONS

    if not force:
        prior = dist.broadcast(run.done(step.key) if run.main else None)
        if prior is not None:
            log.info("skip %s (done)", step.key)
            return prior
    missing = dist.broadcast([k for k in step.needs if run.done(k) is None] if run.main else None)
    if missing:
        raise RuntimeError(
            f"step {step.key} needs {', '.join(missing)} first; run `selfdistill run` (it resumes)"
        )
    if force and run.main:  # a forced re-run starts the stage over, not from its last checkpoint
        remove_checkpoints(run.dir / "work" / step.key)
    log.info("▶ %s", step.key)
    start, cpu_start = time.perf_counter(), time.process_time()
    with run.tracker.stage(step.key, step.command) as stage, run.store.reading() as read_shards:
        output = (
            ACTIONS[step.action](run, stage, step)
            if run.main or step.command not in MAIN_ONLY
            else StepOutput()
        )
        if run.main:  # W&B lineage: what this step used and made (nothing when tracking is off)
            lineage.record(run, stage, step.key, _needs_of(run), _done_keys(run), output, read_shards)
    output.seconds = round(time.perf_counter() - start, 2)
    # CPU time of this process: on a busy machine it tells what the step costs on an idle one.
    output.cpu_seconds = round(time.process_time() - cpu_start, 2)
    if run.main:
        run.finish(step.key, output)
        remove_checkpoints(
            run.dir / "work" / step.key
        )  # the step's model is saved: its checkpoints are spent
    output = dist.broadcast(
        output
    )  # also the barrier: no rank starts the next step before this one is recorded
    log.info("✓ %s in %.1f s", step.key, output.seconds)
    return output


def run_pipeline(cfg: Config) -> dict[str, Any]:
    """The whole loop; returns the report (also written to ``<run_dir>/report.json``)."""
    run = Run(cfg)
    for step in plan(cfg):
        execute(run, step)
    return dist.broadcast(json.loads((run.dir / "report.json").read_text()) if run.main else None)


def run_stage(cfg: Config, command: str, round_: int | None = None, force: bool = False) -> list[StepOutput]:
    """Run the steps of one command (optionally one round) whose prerequisites are done."""
    run = Run(cfg)
    steps = [s for s in plan(cfg) if s.command == command and (round_ is None or s.round in (round_, None))]
    if not steps:
        raise ConfigError(
            f"no {command} step{' in round ' + str(round_) if round_ else ''} in this run's plan"
        )
    return [execute(run, s, force=force) for s in steps]
