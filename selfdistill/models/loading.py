"""Load and save policies and students: local directories or hub ids, with clear errors."""

from __future__ import annotations

from pathlib import Path

from selfdistill.configio import ConfigError


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("run.device: cuda was asked for but torch sees no CUDA device")
    return device


def resolve_dtype(dtype: str, device: str):
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


def is_moe(model) -> bool:
    """Whether ``model`` is a Mixture-of-Experts (the config names its experts)."""
    cfg = model.config
    return any(getattr(cfg, k, None) for k in ("num_experts", "num_local_experts", "n_routed_experts"))


def load_model(path: str | Path, device: str = "cpu", dtype: str = "auto"):
    """``AutoModelForCausalLM`` + tokenizer from a local directory or hub id."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = str(path)
    looks_local = path.startswith((".", "/", "~")) or Path(path).exists()
    if looks_local and not Path(path).expanduser().is_dir():
        raise ConfigError(f"model path not found: {path} (expected a directory with config.json)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=resolve_dtype(dtype, device))
    except OSError as exc:
        raise ConfigError(
            f"cannot load model {path!r}: {exc}. Offline? Use a local directory or set HF_HUB_OFFLINE=0 with network."
        ) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.to(device)
    torch.set_grad_enabled(True)
    return generation_safe(model), tokenizer


def generation_safe(model):
    """TRL's trainers may save ``output_router_logits=True`` in an MoE config; generate crashes with it."""
    from selfdistill.models.moe import generation_safe as _safe

    return _safe(model)


def save_model(model, tokenizer, path: str | Path) -> Path:
    """Save atomically: write to ``<path>.tmp`` and rename, so a kill never leaves half a model."""
    import shutil

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)
    return path
