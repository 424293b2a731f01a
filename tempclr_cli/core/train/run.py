"""One call that trains a recipe: task from the registry and the training loop. `train`,
`sweep` and `demo` all run through it; a classification run's test accuracy is eval's
(`eval.classification.with_test_accuracy`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tempclr_cli.core.checkpoint import load_checkpoint
from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.runtime import resolve_device
from tempclr_cli.core.train.recipe import Recipe
from tempclr_cli.core.train.registry import create_task
from tempclr_cli.core.train.trainer import train


@dataclass
class TrainingRun:
    run_dir: Path
    metrics: dict  # the last epoch's metrics row (plus test accuracy for classification)
    already_done: bool  # the run folder held a finished run: nothing was trained


def run_training(
    recipe: Recipe,
    run_dir: Path,
    device: str = "auto",
    resume: str | None = None,
    log: Callable[[str], None] = lambda _: None,
    on_step: Callable[[dict], None] | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> TrainingRun:
    """Train `recipe` in `run_dir`; `on_step` / `on_epoch` receive the trainer's progress rows."""
    dev = resolve_device(device)
    task = create_task(recipe, dev, run_dir)  # tasks draw from their own seeded generators; `train` seeds the rest
    log(f"{task.describe()}; run folder {run_dir}")
    row = train(recipe, task, run_dir, dev, resume, on_step=on_step, on_epoch=on_epoch)
    done = not row
    if done and not (run_dir / "last.pt").exists():  # --resume FILE of a finished run: nothing was written here
        raise TempclrError(
            f"--resume {resume}: nothing to train, it already holds all {recipe.train.epochs} epochs "
            "(train.epochs); raise train.epochs (--set train.epochs=N) to train on from it"
        )
    if done:
        row = load_checkpoint(run_dir / "last.pt")["metrics"]
    return TrainingRun(run_dir, row, done)
