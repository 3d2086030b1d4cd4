"""The task kinds: one `TaskKind` record per kind, the only place a kind's name is spelled.

A kind decides which reward judges a completion (its *correctness* reward, the one collect filters on and
eval counts), which `Task` field holds the reference (``answer`` text or a ``tests`` mapping; file sources
read it from ``answer_field`` / ``tests_field``), what a chat prompt asks for, how maj@k extracts the key it
votes on, and (optionally) the generator and worked solutions the tiny bootstrap models pre-train on.
Eval, the report, collect's scoring, file loading and the bootstrap corpus loop over `TASK_KINDS`.

    from selfdistill.tasks.kinds import TASK_KINDS, get_kind
    get_kind("math").vote_key("... \\boxed{42}")   # '42'

Adding a kind: one `TASK_KINDS.register(TaskKind(...))` and the kind's reward in `rewards` (see
docs/extending.md; tests/selfdistill/test_kinds.py adds one and runs it through collect, eval and report).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from selfdistill.registries import Registry, load_target

REFERENCES = ("answer", "tests")  # the `Task` fields a reference can live in


@dataclass(frozen=True)
class TaskKind:
    name: str
    reward: str  # the correctness reward's name in `rewards.registry` (1.0 = solved)
    reference: str  # "answer" (text) | "tests" (a mapping, JSON text in files)
    instruction: str  # appended to the prompt for models that read instructions (prompt_format=chat)
    vote: (
        str | Callable[[str], str | None]
    )  # completion -> maj@k voting key (None: no answer); lazy "module:fn"
    bootstrap: tuple[str, str] | None = (
        None  # ("module:generate_tasks", "module:worked_solution") for tiny models
    )

    def __post_init__(self) -> None:
        if self.reference not in REFERENCES:
            raise ValueError(
                f"task kind {self.name!r}: reference must be one of {', '.join(REFERENCES)}, "
                f"got {self.reference!r}"
            )

    def vote_key(self, completion: str) -> str | None:
        """What majority voting compares for this kind (e.g. the final answer, the program)."""
        fn = load_target(self.vote) if isinstance(self.vote, str) else self.vote
        return fn(completion)

    def bootstrap_fns(self) -> tuple[Callable[..., Any], Callable[..., Any]] | None:
        """(generate_tasks(src, seed), worked_solution(task, rng)) for the bootstrap corpus, or None."""
        return (
            None
            if self.bootstrap is None
            else (load_target(self.bootstrap[0]), load_target(self.bootstrap[1]))
        )


def math_vote_key(completion: str) -> str | None:
    """The extracted final answer (``\\boxed{}`` content), whitespace removed."""
    from rewards.math import extract

    ex = extract(completion)
    return re.sub(r"\s+", "", ex.final) if ex.final else None


def code_vote_key(completion: str) -> str | None:
    """The last python program of the completion, whitespace-normalised."""
    from rewards.code.extract import extract_code

    code = extract_code(completion, "last_python")
    return re.sub(r"\s+", " ", code).strip() if code else None


TASK_KINDS = Registry("task kind")


def register_kind(kind: TaskKind) -> TaskKind:
    """Add ``kind`` to `TASK_KINDS` (a plug-in or a test registers its own kind with this)."""
    TASK_KINDS.register(kind.name, kind)
    return kind


register_kind(
    TaskKind(
        "math",
        reward="math",
        reference="answer",
        instruction="Think step by step inside <think></think>, then give the final answer in \\boxed{}.",
        vote="selfdistill.tasks.kinds:math_vote_key",
        bootstrap=(
            "selfdistill.tasks.math_gen:generate_math_tasks",
            "selfdistill.tasks.math_gen:worked_solution",
        ),
    )
)
register_kind(
    TaskKind(
        "code",
        reward="code",
        reference="tests",
        instruction="Think inside <think></think>, then write the Python function in a ```python block.",
        vote="selfdistill.tasks.kinds:code_vote_key",
        bootstrap=(
            "selfdistill.tasks.code_gen:generate_code_tasks",
            "selfdistill.tasks.code_gen:worked_solution",
        ),
    )
)


def get_kind(name: str) -> TaskKind:
    """The record of kind ``name``; the error lists the registered kinds."""
    return TASK_KINDS.get(name)


def kinds() -> list[TaskKind]:
    """Every registered kind, in registration order (the report's column order)."""
    return [TASK_KINDS.get(name) for name in TASK_KINDS.ordered()]


def correctness_rewards() -> tuple[str, ...]:
    """The rewards that say whether a task is solved (one per kind, deduplicated, in kind order)."""
    return tuple(dict.fromkeys(k.reward for k in kinds()))
