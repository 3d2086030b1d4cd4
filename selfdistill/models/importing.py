"""Import a checkpoint (a `.gguf` file, a local HF directory or a hub id) as a plain HF checkpoint.

    selfdistill import-model SmolLM2-135M-Instruct.Q4_1.gguf models/smollm2 [--dtype float32|bfloat16]

The output directory holds safetensors weights, `config.json`, `generation_config.json` and the
tokenizer files with the chat template, so `AutoModelForCausalLM.from_pretrained(OUT)` loads it
with no extra package (no `gguf`, no network). A GGUF file is dequantised by transformers'
GGUF reader (the `gguf` extra: `pip install 'selfdistill[gguf]'`); `save_pretrained` refuses a
GGUF-loaded model ("quantized with gguf and is not serializable"), so its state dict is copied
into a fresh model built from the same config, which saves like any other.

`policy.path` and `students[].path` may name a `.gguf` file directly: `ensure_plain` converts it
once into the run directory and reuses that copy afterwards.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from selfdistill.configio import ConfigError

log = logging.getLogger(__name__)

DTYPES = ("float32", "bfloat16")
IMPORT_MARKER = "selfdistill_import.json"  # written last: a directory without it is an unfinished import


def is_gguf(path: str | Path) -> bool:
    return str(path).lower().endswith(".gguf")


def _torch_dtype(dtype: str):
    import torch

    if dtype not in DTYPES:
        raise ConfigError(f"--dtype: {dtype!r} is not allowed; choose one of: {', '.join(DTYPES)}")
    return getattr(torch, dtype)


def load_source(src: str | Path, dtype: str = "float32"):
    """(model, tokenizer) from a `.gguf` file, a local directory or a hub id, in ``dtype``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = str(src)
    torch_dtype = _torch_dtype(dtype)
    if is_gguf(src):
        path = Path(src).expanduser()
        if not path.is_file():
            raise ConfigError(f"GGUF file not found: {src}")
        try:
            import gguf  # noqa: F401  (transformers' GGUF reader needs it)
        except ImportError:
            raise ConfigError(
                "reading a .gguf file needs the `gguf` package: pip install 'selfdistill[gguf]'"
            ) from None
        kwargs = {"gguf_file": path.name}
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), **kwargs)
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), dtype=torch_dtype, **kwargs)
        return model, tokenizer
    looks_local = src.startswith((".", "/", "~")) or Path(src).exists()
    if looks_local and not Path(src).expanduser().is_dir():
        raise ConfigError(
            f"model path not found: {src} (expected a .gguf file or a directory with config.json)"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(src)
        model = AutoModelForCausalLM.from_pretrained(src, dtype=torch_dtype)
    except OSError as exc:
        raise ConfigError(f"cannot load model {src!r}: {exc}") from None
    return model, tokenizer


def plain_copy(model):
    """A fresh model of the same config holding ``model``'s weights (serialisable even when ``model`` is not).

    The copy is built on the meta device and its parameters assigned from the state dict, so no second
    random initialisation is paid for.
    """
    import torch
    from transformers import AutoModelForCausalLM

    config = model.config
    for attr in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(config, attr):
            delattr(config, attr)
    dtype = next(model.parameters()).dtype
    with torch.device("meta"):
        fresh = AutoModelForCausalLM.from_config(config, dtype=dtype)
    state = model.state_dict()
    missing, unexpected = fresh.load_state_dict(state, strict=False, assign=True)
    missing = [k for k in missing if not _is_tied(fresh, k)]
    if missing or unexpected:
        raise RuntimeError(
            f"weights do not fit the rebuilt model: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    if getattr(config, "tie_word_embeddings", False):
        fresh.tie_weights()
    fresh.generation_config = model.generation_config
    for name, buf in model.named_buffers():  # rotary inverse frequencies etc. are not in the state dict
        _set_buffer(fresh, name, buf)
    return fresh.eval()


def _is_tied(model, key: str) -> bool:
    return key == "lm_head.weight" and getattr(model.config, "tie_word_embeddings", False)


def _set_buffer(model, name: str, value) -> None:
    module_name, _, attr = name.rpartition(".")
    module = model.get_submodule(module_name) if module_name else model
    module._buffers[attr] = value.clone()


def save_plain(model, tokenizer, out: str | Path, source: str) -> Path:
    """Write ``model`` and ``tokenizer`` to ``out`` atomically (``out.tmp`` then rename), with a marker."""
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / IMPORT_MARKER).write_text(
        json.dumps({"source": source, "dtype": str(next(model.parameters()).dtype)})
    )
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def import_model(src: str | Path, out: str | Path, dtype: str = "float32") -> Path:
    """Convert ``src`` (`.gguf`, local directory or hub id) into a plain HF checkpoint at ``out``."""
    model, tokenizer = load_source(src, dtype)
    if tokenizer.chat_template is None:
        log.warning("%s has no chat template; tasks.prompt_format=chat will not work with it", src)
    path = save_plain(plain_copy(model), tokenizer, out, str(src))
    log.info(
        "imported %s -> %s (%s, %d parameters)", src, path, dtype, sum(p.numel() for p in model.parameters())
    )
    return path


def ensure_plain(path: str | Path, cache_dir: Path, dtype: str = "float32") -> str:
    """``path`` itself unless it is a `.gguf` file; then its plain copy under ``cache_dir`` (made once)."""
    if not is_gguf(path):
        return str(path)
    out = cache_dir / f"imported-{Path(path).stem}"
    if (out / IMPORT_MARKER).is_file():
        return str(out)
    cache_dir.mkdir(parents=True, exist_ok=True)
    return str(import_model(path, out, dtype))
