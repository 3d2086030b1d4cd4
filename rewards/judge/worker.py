"""What runs inside the local judge's worker process: load the model once, then judge batches.

Only this module imports torch and transformers, and only inside the worker (a fresh interpreter
started by `rewards.pool.DeadlinePool`), so ``import rewards`` stays torch-free. The model is kept
in a module global of the worker between calls; a worker killed at a deadline is replaced by a
fresh one, which loads the model again on its first `ensure_loaded`.

Before generating, each rendered prompt's turn structure (how often every control marker of the
judge's template occurs) is compared with the rendering of the same request with a benign
completion; a mismatch, which the escaping in `prompt` should make impossible, is refused with
status INVALID instead of being sent to the model.
"""

from __future__ import annotations

import importlib
from typing import Any

from rewards.common import Status
from rewards.judge.prompt import build_messages, judge_output, signature, template_markers
from rewards.judge.types import JudgeItem, Outcome

_STATE: dict[str, Any] = {}  # "spec", "model", "tokenizer", "markers", "device"


def load_hf(path: str, device: str = "cpu", dtype: str = "auto"):
    """``AutoModelForCausalLM`` + tokenizer from a directory, hub id or ``.gguf`` file (transformers' own GGUF support)."""
    import os

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {}
    if path.endswith(".gguf"):
        path, kwargs["gguf_file"] = os.path.dirname(os.path.abspath(path)), os.path.basename(path)
    tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
    torch_dtype = {
        "auto": torch.bfloat16 if device == "cuda" else torch.float32,
        "float32": torch.float32,
        "bfloat16": torch.bfloat16,
        "float16": torch.float16,
    }[dtype]
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, **kwargs).to(device)
    return model, tokenizer


def _resolve(target: str):
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def ensure_loaded(spec: dict[str, Any]) -> dict[str, Any]:
    """Load the judge named by ``spec`` unless this worker holds it; returns what it holds."""
    if _STATE.get("spec") != spec:
        import torch

        torch.set_num_threads(max(1, spec.get("threads") or 1))
        device = spec["device"]
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        model, tokenizer = _resolve(spec["loader"])(spec["model"], device=device, dtype=spec["dtype"])
        model.eval()
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError(f"judge model {spec['model']!r} has no chat template; a judge needs one")
        special = [str(t) for t in tokenizer.all_special_tokens]
        special += [
            str(t)
            for t in getattr(tokenizer, "added_tokens_decoder", {}).values()
            if getattr(t, "special", False)
        ]
        markers = template_markers(lambda m: _render(tokenizer, m, False), special)
        _STATE.clear()
        _STATE.update(spec=spec, model=model, tokenizer=tokenizer, markers=markers, device=device)
    return {"device": _STATE["device"], "markers": len(_STATE["markers"])}


def _render(tokenizer, messages: list[dict[str, str]], prefilled: bool) -> str:
    if prefilled:
        return tokenizer.apply_chat_template(messages, tokenize=False, continue_final_message=True)
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def render(settings: dict[str, Any], item: JudgeItem) -> tuple[str | None, str]:
    """The judge prompt for ``item`` as the model will read it, or (None, why) if its structure changed."""
    tokenizer, markers = _STATE["tokenizer"], _STATE["markers"]
    build = dict(control_tokens=markers, max_chars=settings["max_chars"], score_first=settings["score_first"])
    text = _render(
        tokenizer,
        build_messages(settings["rubric"], item.problem, item.reference, item.completion, **build),
        settings["score_first"],
    )
    benign = _render(
        tokenizer,
        build_messages(settings["rubric"], item.problem, item.reference, "ok", **build),
        settings["score_first"],
    )
    if signature(text, markers) != signature(benign, markers):
        return None, "the rendered judge prompt's turn structure changed; not sent to the judge"
    return text, ""


def judge_batch(spec: dict[str, Any], settings: dict[str, Any], items: list[tuple]) -> list[Outcome]:
    """Greedy (or sampled) judge answers for ``items`` (JudgeItem tuples), one generate call."""
    import torch

    ensure_loaded(spec)
    model, tokenizer = _STATE["model"], _STATE["tokenizer"]
    items = [JudgeItem(*it) for it in items]
    rendered = [render(settings, it) for it in items]
    outcomes: list[Outcome | None] = [
        None if text else Outcome(None, str(Status.INVALID), why) for text, why in rendered
    ]
    todo = [i for i, (text, _) in enumerate(rendered) if text]
    if todo:
        enc = tokenizer(
            [rendered[i][0] for i in todo], return_tensors="pt", padding=True, add_special_tokens=False
        )
        enc = {k: v.to(model.device) for k, v in enc.items()}  # input_ids: (B, T)
        sampling = (
            {"do_sample": True, "temperature": settings["temperature"]}
            if settings["temperature"] > 0
            else {"do_sample": False}
        )
        with torch.inference_mode():
            out = model.generate(
                **enc,
                max_new_tokens=settings["max_new_tokens"],
                pad_token_id=tokenizer.pad_token_id,
                **sampling,
            )  # (B, T + new)
        new = out[:, enc["input_ids"].shape[1] :]
        for i, row in zip(todo, new):
            text = judge_output(tokenizer.decode(row, skip_special_tokens=True), settings["score_first"])
            outcomes[i] = Outcome(text, str(Status.JUDGED), "")
    return [o for o in outcomes if o is not None]
