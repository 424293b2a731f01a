"""`tempclr sweep RECIPE --fraction ...`: one classification run per label fraction, one table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from tempclr_cli.commands._common import (
    Device,
    Json,
    Quiet,
    Verbose,
    command,
    log,
    number,
    train_with_progress,
    writable,
)
from tempclr_cli.core.errors import TempclrError


@command
def sweep(
    recipe: Annotated[Path, typer.Argument(help="A classification recipe (loss.kind: classify).")],
    fraction: Annotated[
        list[float],
        typer.Option(
            help="Share of labelled training videos; repeat: --fraction 0.1 --fraction 1.",
            callback=number(0, 1, above=True),
        ),
    ],
    set_: Annotated[
        Optional[list[str]],
        typer.Option("--set", metavar="KEY=VALUE", help="Recipe override, as for `train` (repeatable)."),
    ] = None,
    run_dir: Annotated[
        Path, typer.Option(help="Parent folder; each fraction trains in fraction_<f>/ (re-used).")
    ] = Path("runs/sweep"),
    json_: Json = False,
    device: Device = "auto",
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed (overrides train.seed).")] = None,
    verbose: Verbose = False,
    quiet: Quiet = False,
) -> None:
    """Limited-label fine-tuning: one run per label fraction.

    Runs that already finished are re-used (each fraction resumes its own folder).

    Example:

    \b
      tempclr sweep recipes/tclr_ucf_limited.yaml --fraction 0.01 \\
          --fraction 0.1 --fraction 0.5 --json
    """
    from tempclr_cli.core.train.recipe import load_recipe

    writable(run_dir, "--run-dir", folder=True)
    rows = []
    for f in fraction:
        overrides = (set_ or []) + [f"data.label_fraction={f}"] + ([f"train.seed={seed}"] if seed is not None else [])
        resolved = load_recipe(recipe, overrides)
        if resolved.loss.kind != "classify":
            raise TempclrError(f"{recipe}: sweep needs loss.kind classify, got {resolved.loss.kind}")
        log(f"label fraction {f}", quiet)
        result = train_with_progress(resolved, run_dir / f"fraction_{f}", device, "auto", quiet).metrics
        rows.append(
            {"fraction": f, "top1": result["top1"], "top5": result["top5"], "test_videos": result["test_videos"]}
        )
    if json_:
        print(json.dumps({"recipe": str(recipe), "results": rows}))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"label fractions: {recipe.name}")
    for col in ("fraction", "top-1", "top-5"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(f"{r['fraction']:g}", f"{r['top1']:.1f}", f"{r['top5']:.1f}")
    Console().print(table)
