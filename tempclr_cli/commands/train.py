"""`tempclr train RECIPE`: pre-training / training from a YAML recipe."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from tempclr_cli.commands._common import Device, Quiet, Verbose, command, log, progress


@command
def train(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML, e.g. recipes/tclr_ucf.yaml.")],
    set_: Annotated[
        Optional[list[str]],
        typer.Option("--set", help="Override a recipe value: --set optim.lr=3e-4 (repeatable)."),
    ] = None,
    print_recipe: Annotated[
        bool, typer.Option("--print-recipe", "--dry-run", help="Print the resolved recipe as YAML and exit.")
    ] = False,
    resume: Annotated[Optional[str], typer.Option(help="'auto' (latest checkpoint in the run folder) or a path.")] = None,
    run_dir: Annotated[Optional[Path], typer.Option(help="Run folder for checkpoints and metrics.")] = None,
    plot: Annotated[Optional[Path], typer.Option(help="loss.kind classify: save the test confusion matrix (PNG).")] = None,
    device: Device = "auto",
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed (overrides train.seed).")] = None,
    verbose: Verbose = False,
    quiet: Quiet = False,
) -> None:
    """Train from a recipe: TempCLR heads over features (loss.kind: tempclr) or TCLR pre-training (tclr).

    Recipes inherit with `base: other.yaml`; unknown keys, wrong types and
    out-of-range values stop the run before any data is read. The run folder gets
    recipe.yaml, metrics.jsonl and checkpoints last.pt, best.pt, epoch_NNNN.pt;
    `--resume auto` continues from last.pt. Under torchrun it trains with DDP.
    Prints a JSON line with the run folder and the last epoch's metrics.

    Example: tempclr train recipes/tclr_ucf.yaml --set optim.lr=3e-4 --print-recipe
    """
    from tempclr_cli.core.recipe import load_recipe, recipe_to_yaml

    resolved = load_recipe(recipe, (set_ or []) + ([f"train.seed={seed}"] if seed is not None else []))
    if print_recipe:
        print(recipe_to_yaml(resolved), end="")
        return
    run_dir = run_dir or Path("runs") / recipe.stem
    row = run_training(resolved, run_dir, device, resume, quiet)
    if plot and "confusion" in row:
        from tempclr_cli.core.plot import confusion_plot

        title = f"test top-1 {row['top1']:.1f}%"
        log(f"plot: {confusion_plot(row['classes'], row['confusion'], plot, title)}", quiet)
    print(json.dumps({"run_dir": str(run_dir), "checkpoint": str(run_dir / "last.pt"), **row}))


def run_training(resolved, run_dir: Path, device: str, resume: Optional[str], quiet: bool) -> dict:
    """Build the task and train with a progress bar; shared with `tempclr demo`."""
    from rich.progress import TextColumn

    from tempclr_cli.core.runtime import resolve_device, seed_everything
    from tempclr_cli.core.trainer import train as train_loop

    dev = resolve_device(device)
    seed_everything(resolved.train.seed)
    if resolved.loss.kind == "tclr":
        from tempclr_cli.core.tclr_training import TCLRTask

        task = TCLRTask(resolved, dev)
        log(f"{len(task.videos)} training videos; run folder {run_dir}", quiet)
    elif resolved.loss.kind == "classify":
        from tempclr_cli.core.classify_training import ClassifyTask

        task = ClassifyTask(resolved, dev)
        log(f"{len(task.videos)} training videos in {len(task.classes)} classes; run folder {run_dir}", quiet)
    else:
        from tempclr_cli.core.tempclr_training import TempCLRTask

        task = TempCLRTask(resolved, dev, run_dir)
        log(f"{len(task.sequences)} training sequences from {len(task.video_ids)} videos; run folder {run_dir}", quiet)
    with progress(quiet, TextColumn("{task.fields[info]}")) as bar:
        epochs = bar.add_task("training", total=resolved.train.epochs, info="")
        steps = bar.add_task("epoch", total=None, info="")

        def on_step(row: dict) -> None:  # every train.log_every steps
            bar.update(steps, description=f"epoch {row['epoch'] + 1}", completed=row["step"], total=row["steps"],
                       info=f"loss {row['loss']:.4f}  lr {row['lr']:.2e}  {row['items_per_s']:.1f} {task.unit}/s")

        def on_epoch(row: dict) -> None:
            bar.update(epochs, completed=row["epoch"] + 1, info=f"loss {row['total']:.4f}  lr {row['lr']:.2e}")

        row = train_loop(resolved, task, run_dir, dev, resume, on_step=on_step, on_epoch=on_epoch)
    if not row:
        log(f"nothing to do: the run in {run_dir} already finished its {resolved.train.epochs} epochs", quiet)
        from tempclr_cli.core.checkpoint import load_checkpoint

        row = load_checkpoint(run_dir / "last.pt")["metrics"]
    if resolved.loss.kind == "classify":
        row = {**row, **_test_accuracy(resolved, run_dir, dev, quiet)}
    return row


def _test_accuracy(resolved, run_dir: Path, device, quiet: bool) -> dict:
    from tempclr_cli.core.classify_training import evaluate, load_classifier

    model, state = load_classifier(run_dir / "last.pt")
    log("testing (mean softmax over clips)", quiet)
    return evaluate(model, resolved, state["meta"]["classes"], device)[0]
