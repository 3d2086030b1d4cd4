"""Task sources (registry in `selfdistill.registries.TASK_SOURCES`) and the held-out split."""

from __future__ import annotations

from selfdistill.tasks.base import Split, Task, split_tasks


def load_tasks(cfg) -> Split:
    """Every configured source, deduplicated and split into train / held-out."""
    from selfdistill.registries import TASK_SOURCES

    tasks: list[Task] = []
    for i, src in enumerate(cfg.tasks.sources):
        loader = TASK_SOURCES.get(src.type, f"tasks.sources[{i}].type")
        tasks.extend(loader(src, cfg.run.seed + i))
    return split_tasks(tasks, cfg.tasks.eval_fraction, cfg.tasks.eval_max)


__all__ = ["Split", "Task", "load_tasks", "split_tasks"]
