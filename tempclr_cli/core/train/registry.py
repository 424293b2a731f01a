"""Trainer tasks by `loss.kind`, registered with a decorator (timm's `@register_model` style).

A task supplies what differs between methods (model, batches, loss; see
`trainer.Task`); a new one is a module with a `@register_task` class, listed in
`TASK_MODULES`. Modules import on first use, so `tempclr --help` stays light.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from tempclr_cli.core.errors import TempclrError

TASK_MODULES = ("tempclr_heads", "tclr_pretraining", "classification", "fewshot_heads", "videoclip_tuning")
_TASKS: dict[str, type] = {}


def register_task(cls: type) -> type:
    """Class decorator: the trainer builds `cls` for recipes with `loss.kind: cls.kind`, a kind
    declared in `core.checkpoint.KINDS` (what its checkpoints are called)."""
    from tempclr_cli.core.checkpoint import KINDS

    if cls.kind not in KINDS:
        raise ValueError(f"task kind {cls.kind!r}: declare it in core.checkpoint.KINDS first")
    _TASKS[cls.kind] = cls
    return cls


def _import_all() -> None:
    for name in TASK_MODULES:
        importlib.import_module(f"tempclr_cli.core.train.{name}")


def list_tasks() -> list[str]:
    _import_all()
    return sorted(_TASKS)


def create_task(recipe, device, run_dir: Path):
    """The task that trains `recipe` (by its loss.kind) on `device`, writing to `run_dir`."""
    _import_all()
    kind = recipe.loss.kind
    if kind not in _TASKS:
        raise TempclrError(f"loss.kind {kind}: no such task; choose from {', '.join(sorted(_TASKS))}")
    return _TASKS[kind](recipe, device, run_dir)
