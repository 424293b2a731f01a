"""`tempclr train RECIPE`: pre-training / training from a YAML recipe."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tempclr_cli.commands._common import Device, Quiet, Seed, Verbose, command, not_implemented


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
    device: Device = "auto",
    seed: Seed = 0,
    verbose: Verbose = False,
    quiet: Quiet = False,
) -> None:
    """Train from a recipe: TCLR pre-training (loss.kind: tclr) or TempCLR heads (tempclr).

    Recipes inherit with `base: other.yaml`; unknown keys, wrong types and
    out-of-range values stop the run before any data is read.

    Example: tempclr train recipes/tclr_ucf.yaml --set optim.lr=3e-4 --print-recipe
    """
    from tempclr_cli.core.recipe import load_recipe, recipe_to_yaml

    resolved = load_recipe(recipe, set_ or [])
    if print_recipe:
        print(recipe_to_yaml(resolved), end="")
        return
    not_implemented(f"training ({resolved.loss.kind})")
