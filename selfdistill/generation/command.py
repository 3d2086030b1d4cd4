"""``selfdistill generate MODEL PROMPTS.jsonl -o OUT.jsonl``: sample completions for a JSONL file of prompts.

Each input line is a JSON object with a ``prompt`` (a string, or a list of chat messages
``{"role": ..., "content": ...}``) and any other keys. Each output line is the input object plus
``completion`` and ``sample`` (0..K-1): K lines per input line, in input order. Other keys pass
through, so a task file with ``kind`` and ``answer`` (or ``tests``) is scored by ``selfdistill score``:

    selfdistill generate runs/demo/models/r2-sft tasks.jsonl -o out.jsonl --n 4 --temperature 0.7
    selfdistill score out.jsonl -o scored.jsonl

``--chat`` wraps string prompts as one user message and applies the model's chat template (message
lists always go through it). A line that is not a JSON object with a usable ``prompt`` is reported on
stderr with its line number and skipped. Progress goes to stderr; the last line reports tokens/s.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Any


@dataclass
class Line:
    number: int  # 1-based line number in the input file
    record: dict[str, Any]


def parse_prompt(record: Any, chat: bool) -> Any:
    """The prompt to render (a string or a message list); raises ValueError naming what is wrong."""
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    if "prompt" not in record:
        raise ValueError(f"no 'prompt' key (keys: {', '.join(sorted(record)) or 'none'})")
    prompt = record["prompt"]
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}] if chat else prompt
    if (
        isinstance(prompt, list)
        and prompt
        and all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in prompt
        )
    ):
        return prompt
    raise ValueError(
        '\'prompt\' must be a string or a non-empty list of {"role": str, "content": str} messages'
    )


def read_lines(lines: list[str], chat: bool, report) -> tuple[list[Line], list[Any]]:
    """Valid records and their prompts; each bad line goes to ``report(message)`` and is skipped."""
    good: list[Line] = []
    prompts: list[Any] = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            report(f"line {number}: not valid JSON ({exc.msg} at column {exc.colno}); skipped")
            continue
        try:
            prompt = parse_prompt(record, chat)
        except ValueError as exc:
            report(f"line {number}: {exc}; skipped")
            continue
        good.append(Line(number, record))
        prompts.append(prompt)
    return good, prompts


def output_records(lines: list[Line], completions: list[list[str]]) -> list[dict[str, Any]]:
    """K output records per input line, in input order: the input keys plus ``completion`` and ``sample``."""
    return [
        {**line.record, "completion": text, "sample": j}
        for line, texts in zip(lines, completions)
        for j, text in enumerate(texts)
    ]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="selfdistill generate",
        description="Sample K completions per prompt of a JSONL file (see `selfdistill "
        "score` to score them).",
    )
    p.add_argument("model", help="a local Hugging Face model directory")
    p.add_argument("prompts", help="JSONL file, one object with a 'prompt' per line ('-' for stdin)")
    p.add_argument("-o", "--output", required=True, help="output JSONL")
    p.add_argument("--n", type=int, default=1, help="samples per prompt (K)")
    p.add_argument("--temperature", type=float, default=0.7, help="0 = greedy")
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--backend", default="auto", help="auto, hf, paged or vllm (see selfdistill/generation)")
    p.add_argument(
        "--chat", action="store_true", help="wrap string prompts as a user message (chat template)"
    )
    p.add_argument(
        "--batch-size", type=int, default=64, help="sequences per forward (hf) / in flight (paged)"
    )
    p.add_argument(
        "--chunk", type=int, default=256, help="prompts per sampling call (output is written per chunk)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    return p


def load(model: str, device: str):
    """Model and tokenizer of a local HF directory."""
    from selfdistill.models.loading import load_model, resolve_device

    if model.endswith(".gguf"):
        raise ValueError(
            f"{model}: GGUF files are not read directly; convert it to a Hugging Face directory first"
        )
    return load_model(model, device=resolve_device(device))


def run(args: argparse.Namespace, err=None) -> int:
    """Generate for every valid line of ``args.prompts``; progress and the summary go to ``err`` (stderr)."""
    err = (
        err if err is not None else sys.stderr
    )  # looked up per call: stderr may be replaced (pytest, redirects)
    from tqdm.auto import tqdm

    from selfdistill.config import GenerationConfig, check_backend
    from selfdistill.generation import SamplingParams, sample

    check_backend(args.backend, "--backend")
    SamplingParams(
        n=args.n,
        temperature=args.temperature,
        top_p=args.top_p,
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
    )  # bad values fail before the model loads
    text = sys.stdin.read() if args.prompts == "-" else _read(args.prompts)
    lines, prompts = read_lines(text.splitlines(), args.chat, lambda m: print(f"generate: {m}", file=err))
    model, tokenizer = load(args.model, args.device)
    if any(not isinstance(p, str) for p in prompts) and not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            f"{args.model}: the tokenizer has no chat template, so chat prompts cannot be rendered"
        )
    settings = GenerationConfig(backend=args.backend)
    tokens = seconds = 0.0
    backend = args.backend
    with (
        open(args.output, "w", encoding="utf-8") as out,
        tqdm(total=len(prompts), desc="generate", unit="prompt", file=err) as bar,
    ):
        for start in range(0, len(prompts), args.chunk):
            got = sample(
                model,
                tokenizer,
                prompts[start : start + args.chunk],
                n=args.n,
                temperature=args.temperature,
                top_p=args.top_p,
                max_new_tokens=args.max_new_tokens,
                batch_size=args.batch_size,
                seed=args.seed + start,
                backend=args.backend,
                settings=settings,
            )
            for record in output_records(lines[start : start + args.chunk], got.completions):
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            tokens, seconds, backend = tokens + got.new_tokens, seconds + got.seconds, got.backend
            bar.update(len(got.completions))
    rate = tokens / seconds if seconds else 0.0
    print(
        f"generate: {len(lines)} prompts x {args.n} samples -> {args.output}; {int(tokens)} new tokens in "
        f"{seconds:.1f} s = {rate:.1f} tokens/s (backend {backend})",
        file=err,
    )
    return 0


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except ValueError as exc:
        print(f"selfdistill generate: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"selfdistill generate: error: {exc}", file=sys.stderr)
        return 1
