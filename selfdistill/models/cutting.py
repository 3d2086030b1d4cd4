"""Students cut from a real model: keep N evenly spaced decoder layers of a dense checkpoint.

    students: [{name: smol-10l, source: layers, path: runs/smollm2, num_layers: 10}]

The student keeps the teacher family's tokenizer, embeddings, final norm and LM head (tied
embeddings stay tied) and decoder layers ``evenly_spaced(L, N)``: the first and the last always,
the rest spread between them, which is how layer-dropping students (DistilBERT, Sheared-LLaMA's
starting point, "The Unreasonable Ineffectiveness of the Deeper Layers") are initialised. Because the
tokenizer is the policy's, every distillation method works on it, logit methods included.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from selfdistill.configio import ConfigError

log = logging.getLogger(__name__)


def evenly_spaced(total: int, keep: int) -> list[int]:
    """``keep`` layer indices in ``range(total)``, first and last included, as evenly spread as integers allow.

    >>> evenly_spaced(30, 4)
    [0, 10, 19, 29]
    """
    if not 1 <= keep <= total:
        raise ConfigError(f"num_layers must be between 1 and the model's {total} layers, got {keep}")
    if keep == 1:
        return [0]
    return [round(i * (total - 1) / (keep - 1)) for i in range(keep)]


# Per-layer config lists that must follow the kept layers.
_PER_LAYER_KEYS = ("layer_types",)


@torch.no_grad()
def cut_layers(model, num_layers: int):
    """A new dense model with ``num_layers`` of ``model``'s decoder layers (see module docstring)."""
    from transformers import AutoModelForCausalLM

    config = model.config.__class__.from_dict(model.config.to_dict())
    total = config.num_hidden_layers
    keep = evenly_spaced(total, num_layers)
    if any(getattr(config, k, None) for k in ("num_experts", "num_local_experts", "n_routed_experts")):
        raise ConfigError(
            "students[].source=layers cuts a dense checkpoint; this one is a Mixture-of-Experts"
        )
    config.num_hidden_layers = num_layers
    for key in _PER_LAYER_KEYS:
        values = getattr(config, key, None)
        if isinstance(values, list) and len(values) == total:
            setattr(config, key, [values[i] for i in keep])
    dtype = next(model.parameters()).dtype
    student = AutoModelForCausalLM.from_config(config, dtype=dtype)
    source = model.state_dict()
    target = student.state_dict()
    mapped = {}
    for name in target:
        src = _source_name(name, keep)
        if src not in source:
            raise RuntimeError(f"cannot fill {name}: the source model has no {src}")
        mapped[name] = source[src]
    student.load_state_dict(mapped, strict=True)
    if getattr(config, "tie_word_embeddings", False):
        student.tie_weights()
    student.generation_config = model.generation_config
    return student.eval()


def _source_name(name: str, keep: list[int]) -> str:
    """Parameter name in the source model: ``model.layers.j.*`` comes from ``model.layers.keep[j].*``."""
    parts = name.split(".")
    if len(parts) > 2 and parts[0] == "model" and parts[1] == "layers":
        parts[2] = str(keep[int(parts[2])])
    return ".".join(parts)


def cut_checkpoint(src: str | Path, out: str | Path, num_layers: int) -> Path:
    """Load a dense checkpoint (directory, hub id or `.gguf`), keep ``num_layers`` of its decoder layers
    (`cut_layers`, what ``students[].source: layers`` does in a run), save it with its tokenizer at ``out``."""
    from selfdistill.models.importing import load_source, save_plain

    dense, tokenizer = load_source(src, "float32")
    keep = evenly_spaced(dense.config.num_hidden_layers, num_layers)
    student = cut_layers(dense, num_layers)
    path = save_plain(student, tokenizer, out, f"cut_layers({src}, num_layers={num_layers}, kept={keep})")
    log.info(
        "cut %s (%d layers, %d params) -> %s (layers %s, %d params)",
        src, dense.config.num_hidden_layers, dense.num_parameters(), path, keep, student.num_parameters(),
    )  # fmt: skip
    return path
