"""`tempclr train RECIPE`: pre-training / training from a YAML recipe."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from tempclr_cli.commands._common import (
    Device,
    Quiet,
    Verbose,
    command,
    figure,
    is_main_process,
    log,
    train_with_progress,
    writable,
)


@command
def train(
    recipe: Annotated[
        Optional[Path],
        typer.Argument(
            help="Recipe YAML, e.g. recipes/tclr_ucf.yaml; a shipped one also by name (tclr_ucf) from any folder."
        ),
    ] = None,
    list_: Annotated[
        bool, typer.Option("--list", help="List the shipped recipes (name, loss.kind, what each trains) and exit.")
    ] = False,
    set_: Annotated[
        Optional[list[str]],
        typer.Option("--set", metavar="KEY=VALUE", help="Override a recipe value: --set optim.lr=3e-4 (repeatable)."),
    ] = None,
    print_recipe: Annotated[
        bool, typer.Option("--print-recipe", "--dry-run", help="Print the resolved recipe as YAML and exit.")
    ] = False,
    resume: Annotated[
        Optional[str], typer.Option(help="'auto' (latest checkpoint in the run folder) or a path.")
    ] = None,
    run_dir: Annotated[Optional[Path], typer.Option(help="Run folder for checkpoints and metrics.")] = None,
    plot: Annotated[
        Optional[Path],
        typer.Option(
            help="loss.kind classify: save the test confusion matrix (.png, .jpg, .svg or .pdf).", callback=figure
        ),
    ] = None,
    device: Device = "auto",
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed (overrides train.seed).")] = None,
    verbose: Verbose = False,
    quiet: Quiet = False,
) -> None:
    """Train from a YAML recipe: TempCLR heads, TCLR, classification.

    The recipe's loss.kind picks the task: TempCLR heads over features (tempclr), TCLR
    pre-training (tclr), classification (classify), few-shot heads (fewshot) or TempCLR's
    fine-tuning of VideoCLIP's network (videoclip). A path that does not exist falls back
    to the shipped recipe of that name (--list). Recipes inherit with `base: other.yaml`; unknown keys, wrong types and
    out-of-range values stop the run before any data is read. The run folder gets
    recipe.yaml, metrics.jsonl and checkpoints last.pt, best.pt, epoch_NNNN.pt;
    `--resume auto` continues from last.pt. Under torchrun it trains with DDP.
    Prints a JSON line with the run folder and the last epoch's metrics.

    Example:

    \b
      tempclr train recipes/tclr_ucf.yaml --set optim.lr=3e-4 --print-recipe
    """
    from tempclr_cli.core.errors import TempclrError
    from tempclr_cli.core.train.recipe import describe_recipe, find_recipe, load_recipe, recipe_to_yaml, shipped_recipes

    if list_:  # one line a recipe: name, what it trains (loss.kind), what it is for; tab-separated for `cut -f1`
        for row in map(describe_recipe, shipped_recipes()):
            print(f"{row['name']}\t{row['kind']}\t{row['about']}")
        return
    if recipe is None:
        raise TempclrError("give a RECIPE (a YAML file, or a shipped recipe's name: tempclr train --list)")
    found = find_recipe(recipe)
    if found != recipe:
        log(f"recipe: {found}", quiet)
    resolved = load_recipe(found, (set_ or []) + ([f"train.seed={seed}"] if seed is not None else []))
    if print_recipe:
        print(recipe_to_yaml(resolved), end="")
        return
    run_dir = run_dir or Path("runs") / found.stem
    writable(run_dir, "--run-dir", folder=True)
    row = train_with_progress(resolved, run_dir, device, resume, quiet).metrics
    if plot and "confusion" in row:
        from tempclr_cli.core.plot import confusion_plot

        title = f"test top-1 {row['top1']:.1f}%"
        log(f"plot: {confusion_plot(row['classes'], row['confusion'], plot, title)}", quiet)
    if is_main_process():  # under torchrun: once, from rank 0
        print(json.dumps({"run_dir": str(run_dir), "checkpoint": str(run_dir / "last.pt"), **row}))
