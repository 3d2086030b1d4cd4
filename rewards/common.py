"""Small pieces every reward shares: the status vocabulary and completion unwrapping."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """Why a completion got the reward it got. Stored verbatim in traces and score files."""

    PASS = "PASS"
    FAIL = "FAIL"
    NO_ANSWER = "NO_ANSWER"  # math: nothing extractable
    AMBIGUOUS = "AMBIGUOUS"  # math: hedged / conflicting answers
    TIMEOUT = "TIMEOUT"
    INVALID = "INVALID"  # malformed record or reference
    RUNTIME_ERROR = "RUNTIME_ERROR"
    MEMORY = "MEMORY"
    OUTPUT_LIMIT = "OUTPUT_LIMIT"
    SYNTAX_ERROR = "SYNTAX_ERROR"
    NO_CODE = "NO_CODE"
    INFRA_ERROR = "INFRA_ERROR"
    JUDGED = "JUDGED"  # judge: it answered with a valid SCORE line
    UNPARSEABLE = "UNPARSEABLE"  # judge: its answer did not end with a valid SCORE line (reward None, not 0)


def completion_text(completion: Any) -> str:
    """Return the text of a completion, whether TRL passed a string or a conversation.

    Conversational completions are ``[{"role": "assistant", "content": ...}, ...]``; the
    content of the last assistant message is the answer.
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion:
        for message in reversed(completion):
            if isinstance(message, dict) and message.get("role", "assistant") == "assistant":
                content = message.get("content", "")
                return content if isinstance(content, str) else str(content)
    if isinstance(completion, dict) and "content" in completion:
        return str(completion["content"])
    raise TypeError(f"cannot read a completion of type {type(completion).__name__}: expected str or messages")
