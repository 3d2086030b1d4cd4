"""Tasks, the hash-based held-out split, and conversion to TRL datasets.

A `Task` is one problem: a prompt, its kind (a `selfdistill.tasks.kinds.TASK_KINDS` name, ``math`` or
``code`` by default) and its reference (in the field the kind names: ``answer`` or ``tests``). The held-out split is a pure function of the prompt
text (a SHA-256 bucket), so no prompt can be on both sides; `split_tasks` also checks the
intersection explicitly and returns digests that the report records.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from selfdistill.traces import Trace


class _Instructions(Mapping):
    """kind -> the chat instruction of that kind (read from `selfdistill.tasks.kinds`, which owns them)."""

    def __getitem__(self, kind: str) -> str:
        from selfdistill.tasks.kinds import TASK_KINDS

        if kind not in TASK_KINDS.ordered():
            raise KeyError(kind)
        return TASK_KINDS.get(kind).instruction

    def __iter__(self) -> Iterator[str]:
        from selfdistill.tasks.kinds import TASK_KINDS

        return iter(TASK_KINDS.ordered())

    def __len__(self) -> int:
        return len(list(iter(self)))


# What the assistant is asked to produce per kind, for models that read instructions (prompt_format=chat).
INSTRUCTIONS: Mapping[str, str] = _Instructions()


@dataclass
class Task:
    task_id: str
    kind: str  # a TASK_KINDS name
    prompt: str
    answer: str = ""  # math reference (LaTeX or plain)
    tests: dict[str, Any] = field(default_factory=dict)  # code tests (call-based, stdio or asserts)
    source: str = ""

    def to_row(self, prompt_format: str = "plain") -> dict[str, Any]:
        """A dataset row for TRL: `prompt` plus the reward columns (tests as JSON text)."""
        return {
            "prompt": render_prompt(self, prompt_format),
            "kind": self.kind,
            "answer": self.answer,
            "tests": json.dumps(self.tests) if self.tests else "",
            "task_id": self.task_id,
        }


def draw_distinct(n: int, make: Callable[[int, int], Task]) -> list[Task]:
    """Up to ``n`` tasks with distinct prompts from ``make(n_so_far, attempt)``; ids ``<kind>-<family>-<index>``.

    Gives up after ``50 * n`` attempts (a generator with fewer distinct prompts than asked for).
    """
    tasks: dict[str, Task] = {}
    attempts = 0
    while len(tasks) < n and attempts < n * 50:
        attempts += 1
        task = make(len(tasks), attempts)
        if task.prompt not in tasks:
            kind, family = task.source.split(":")[:2]
            task.task_id = f"{kind}-{family}-{len(tasks):06d}"
            tasks[task.prompt] = task
    return list(tasks.values())


def render_prompt(task: Task | Trace, prompt_format: str) -> Any:
    """The prompt a model is given for a task (or a stored trace of one: anything with ``prompt`` and ``kind``):
    plain, the task's text itself (tiny models learn the format); chat, one user message with the task's text
    and the instructions for its ``kind``.

    The one rendering of a stored prompt: RL, collect and eval sample with it, and SFT and distillation
    train on it (a trace keeps what it returned as ``Trace.rendered_prompt``), so a model is trained on
    exactly the prompt it was sampled with. `generation.prompt_ids` turns it into tokens.
    """
    if prompt_format == "plain":
        return task.prompt
    if prompt_format == "chat":
        from selfdistill.tasks.kinds import get_kind

        return [{"role": "user", "content": f"{task.prompt}\n\n{get_kind(task.kind).instruction}"}]
    raise ValueError(f"unknown prompt_format {prompt_format!r}; choose plain or chat")


def prompt_hash(prompt: str) -> str:
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


def is_held_out(prompt: str, fraction: float) -> bool:
    """Deterministic split: the first 8 hex digits of the prompt's hash, as a number in [0, 1)."""
    return int(prompt_hash(prompt)[:8], 16) / 16**8 < fraction


@dataclass
class Split:
    train: list[Task]
    eval: list[Task]
    info: dict[str, Any]


def split_tasks(tasks: list[Task], eval_fraction: float, eval_max: int) -> Split:
    """Deduplicate by prompt, split by hash, cap the eval set; prove the sides are disjoint."""
    seen: set[str] = set()
    unique: list[Task] = []
    for task in tasks:
        h = prompt_hash(task.prompt)
        if h not in seen:
            seen.add(h)
            unique.append(task)
    train = [t for t in unique if not is_held_out(t.prompt, eval_fraction)]
    held = [t for t in unique if is_held_out(t.prompt, eval_fraction)]
    held = _balanced_cap(held, eval_max)
    train_hashes = {prompt_hash(t.prompt) for t in train}
    eval_hashes = {prompt_hash(t.prompt) for t in held}
    overlap = len(train_hashes & eval_hashes)
    if overlap:  # impossible by construction; kept as the proof the report cites
        raise RuntimeError(f"held-out split shares {overlap} prompts with training")
    info = {
        "method": f"sha256(prompt) bucket < {eval_fraction}",
        "n_tasks": len(tasks),
        "n_duplicates_dropped": len(tasks) - len(unique),
        "n_train": len(train),
        "n_eval": len(held),
        "overlap": overlap,
        "train_digest": _digest(train_hashes),
        "eval_digest": _digest(eval_hashes),
        "eval_by_kind": _count_kinds(held),
        "train_by_kind": _count_kinds(train),
    }
    return Split(train=train, eval=held, info=info)


def _balanced_cap(tasks: list[Task], cap: int) -> list[Task]:
    """Keep at most ``cap`` tasks, sharing the budget evenly between kinds."""
    by_kind: dict[str, list[Task]] = {}
    for t in tasks:
        by_kind.setdefault(t.kind, []).append(t)
    kinds = sorted(by_kind)
    out: list[Task] = []
    budget = cap
    for i, kind in enumerate(kinds):
        share = budget // (len(kinds) - i)
        take = by_kind[kind][:share]
        out.extend(take)
        budget -= len(take)
    return out


def _digest(hashes: set[str]) -> str:
    return hashlib.sha256("".join(sorted(hashes)).encode()).hexdigest()[:16]


def _count_kinds(tasks: list[Task]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in tasks:
        counts[t.kind] = counts.get(t.kind, 0) + 1
    return counts
