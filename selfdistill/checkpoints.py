"""Stage checkpoints: HF Trainer's own, taken every ``save_steps`` and resumed after a crash.

RL (GRPOTrainer), SFT and distillation (SFTTrainer) save ``<work dir>/checkpoint-<step>/``
through the Trainer (model, optimizer, scheduler, RNG state of every rank, trainer state), so
DDP, FSDP2 and DeepSpeed ZeRO-3 checkpoints are whatever accelerate writes for that engine.
`train_resumable(trainer)` starts from the latest *complete* checkpoint: the Trainer writes
``trainer_state.json`` after everything else, so a directory without it was being written when
the process died and is skipped. Before resuming, `check_compatible` compares the checkpoint
with the run (model shape, per-device batch, world size) and raises `ConfigError` naming the
difference instead of failing deep inside a state-dict load or silently changing the data order.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from selfdistill.configio import ConfigError

log = logging.getLogger(__name__)

STATE_FILE = "trainer_state.json"
# Model config keys that must match for a checkpoint's weights to load into the model.
MODEL_KEYS = (
    "model_type",
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "num_experts",
    "num_local_experts",
    "n_routed_experts",
    "moe_intermediate_size",
)


def save_args(save_steps: int, save_total_limit: int) -> dict[str, Any]:
    """Trainer arguments for checkpoints every ``save_steps`` steps (0 = none)."""
    if save_steps <= 0:
        return {"save_strategy": "no"}
    return {"save_strategy": "steps", "save_steps": save_steps, "save_total_limit": save_total_limit}


def _step(path: Path) -> int:
    m = re.fullmatch(r"checkpoint-(\d+)", path.name)
    return int(m.group(1)) if m else -1


def _state_written(ckpt: Path) -> bool:
    """Whether ``ckpt``'s trainer state is whole: the Trainer writes it in place (not atomically), so a process
    killed while writing it leaves an empty or cut-off file, and that checkpoint is as incomplete as one without."""
    try:
        return isinstance(json.loads((ckpt / STATE_FILE).read_text()), dict)
    except (OSError, ValueError):
        return False


def complete_checkpoints(out_dir: str | Path) -> list[Path]:
    """Complete checkpoints under ``out_dir``, oldest first."""
    root = Path(out_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and _step(p) >= 0 and _state_written(p)]
    return sorted(found, key=_step)


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    found = complete_checkpoints(out_dir)
    return found[-1] if found else None


def checkpoint_world_size(ckpt: Path) -> int:
    """Ranks that wrote ``ckpt``: the Trainer saves ``rng_state_<rank>.pth`` per rank when distributed."""
    per_rank = list(ckpt.glob("rng_state_*.pth"))
    return len(per_rank) if per_rank else 1


def model_signature(config: Any) -> dict[str, Any]:
    """The shape-defining fields of a model config (a `PretrainedConfig` or its dict)."""
    data = config if isinstance(config, dict) else config.to_dict()
    return {k: data[k] for k in MODEL_KEYS if data.get(k) is not None}


def check_compatible(ckpt: Path, *, model_config: Any, per_device_batch: int, world_size: int) -> None:
    """Raise `ConfigError` if ``ckpt`` cannot continue this run's training as it was."""
    problems = []
    cfg_file = ckpt / "config.json"
    if cfg_file.exists():
        old, new = model_signature(json.loads(cfg_file.read_text())), model_signature(model_config)
        problems += [
            f"model {k}={old.get(k)} (now {new.get(k)})"
            for k in sorted(set(old) | set(new))
            if old.get(k) != new.get(k)
        ]
    state = json.loads((ckpt / STATE_FILE).read_text())
    if state.get("train_batch_size") not in (None, per_device_batch):
        problems.append(f"per-device batch {state['train_batch_size']} (now {per_device_batch})")
    ranks = checkpoint_world_size(ckpt)
    if ranks != world_size:
        problems.append(f"world size {ranks} (now {world_size})")
    if problems:
        raise ConfigError(
            f"checkpoint {ckpt} does not match this run: {'; '.join(problems)}. Relaunch with the settings it was "
            f"written with, or delete {ckpt.parent}/checkpoint-* to restart this stage from its beginning"
        )


def resume_point(trainer) -> str | None:
    """The checkpoint ``trainer`` should resume from (checked), or None to start fresh."""
    ckpt = latest_checkpoint(trainer.args.output_dir)
    if ckpt is None:
        return None
    check_compatible(
        ckpt,
        model_config=trainer.model.config,
        per_device_batch=trainer.args.per_device_train_batch_size,
        world_size=trainer.args.world_size,
    )
    load_model_weights(trainer.model, ckpt)
    log.info("resuming from %s", ckpt)
    return str(ckpt)


def load_model_weights(model, ckpt: Path) -> None:
    """Load ``ckpt``'s weights into ``model`` through ``from_pretrained`` (its key conversions).

    transformers 5.23's Trainer reloads a checkpoint with a plain ``load_state_dict``, but
    ``save_pretrained`` writes MoE experts per expert (``experts.0.gate_proj.weight``) while the
    model holds them fused (``experts.gate_up_proj``): the experts silently keep their pre-resume
    values (it only logs "missing keys"). Loading them here first makes the resume exact; the
    Trainer's own load then rewrites the other weights with the same values. Skipped for PEFT
    models (the checkpoint holds only the adapter, which the Trainer loads) and FSDP/ZeRO-3
    (accelerate loads its own sharded format).
    """
    from selfdistill import distributed as dist

    if hasattr(model, "peft_config") or dist.is_sharded() or not (ckpt / "config.json").exists():
        return
    from transformers import AutoModelForCausalLM

    dtype = next(model.parameters()).dtype
    state = AutoModelForCausalLM.from_pretrained(ckpt, dtype=dtype).state_dict()
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ConfigError(
            f"checkpoint {ckpt} does not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )


FINAL_DIR = "final"


def train_resumable(trainer):
    """``trainer.train()``, from the latest complete checkpoint in its output dir if there is one.

    Under FSDP/ZeRO-3 the trained weights are sharded across ranks, so every rank joins
    ``trainer.save_model`` (which gathers full weights) into ``<output_dir>/final``; the
    pipeline's `Run.save` then takes the model from there instead of saving its local shard.
    """
    from selfdistill import distributed as dist

    result = trainer.train(resume_from_checkpoint=resume_point(trainer))
    if dist.is_sharded():
        trainer.save_model(str(Path(trainer.args.output_dir) / FINAL_DIR))
    return result


def remove_checkpoints(out_dir: str | Path) -> int:
    """Delete every ``checkpoint-*`` under ``out_dir`` (a finished or forced stage); returns how many."""
    import shutil

    root = Path(out_dir)
    gone = [p for p in root.glob("checkpoint-*") if p.is_dir()] if root.is_dir() else []
    for p in gone:
        shutil.rmtree(p, ignore_errors=True)
    return len(gone)
