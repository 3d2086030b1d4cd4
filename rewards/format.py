"""Format reward: one ``<think>…</think>`` block with real reasoning, then a non-empty answer.

The rule (1.0 when all hold, else 0.0):

1. the completion, with ``<think>`` prepended when the prompt ends with ``<think>`` (chat
   templates that open the block for the model) and the completion does not already start with
   it, starts with ``<think>`` (leading whitespace allowed);
2. it has exactly one ``<think>`` and exactly one ``</think>``, in that order;
3. the reasoning between them is not blank;
4. the answer after ``</think>`` is not blank.

Pure string checks, no regex backtracking: safe on any input size.
"""

from __future__ import annotations

from typing import Any

from rewards.common import completion_text

OPEN, CLOSE = "<think>", "</think>"


def _prompt_tail(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and prompt and isinstance(prompt[-1], dict):
        return str(prompt[-1].get("content", ""))
    return ""


def is_well_formatted(completion: str, prompt_opens_think: bool = False) -> bool:
    """The rule above for one completion."""
    text = completion.lstrip()
    if prompt_opens_think and not text.startswith(OPEN):
        text = OPEN + text
    if not text.startswith(OPEN) or text.count(OPEN) != 1 or text.count(CLOSE) != 1:
        return False
    reasoning, _, answer = text[len(OPEN) :].partition(CLOSE)
    return bool(reasoning.strip()) and bool(answer.strip())


def format_reward(prompts: list | None, completions: list, **kwargs: Any) -> list[float]:
    """TRL reward: 1.0 per completion that follows the rule in the module docstring, else 0.0."""
    out = []
    for i, completion in enumerate(completions):
        try:
            text = completion_text(completion)
        except TypeError:
            out.append(0.0)
            continue
        opens = prompts is not None and i < len(prompts) and _prompt_tail(prompts[i]).rstrip().endswith(OPEN)
        out.append(1.0 if is_well_formatted(text, opens) else 0.0)
    return out
