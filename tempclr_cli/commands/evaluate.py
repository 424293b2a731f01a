"""`tempclr evaluate CHECKPOINT`: test accuracy of a trained classifier, over clips per video."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from tempclr_cli.commands._common import Device, Json, Quiet, Verbose, bar_factory, command, figure, log, progress


@command
def evaluate(
    checkpoint: Annotated[
        Path, typer.Argument(help="A classification run's checkpoint (loss.kind: classify), e.g. runs/x/last.pt.")
    ],
    clips: Annotated[
        Optional[list[int]],
        typer.Option(
            help="Clips averaged per test video (default: the recipe's eval.clips); repeat for a curve.", min=1
        ),
    ] = None,
    set_: Annotated[
        Optional[list[str]],
        typer.Option(
            "--set",
            metavar="KEY=VALUE",
            help="Override the stored recipe, e.g. --set data.root=/data/UCF101 (repeatable).",
        ),
    ] = None,
    plot: Annotated[
        Optional[Path],
        typer.Option(help="With several --clips: the top-1/top-5 curve (.png, .jpg, .svg or .pdf).", callback=figure),
    ] = None,
    confusion: Annotated[
        Optional[Path],
        typer.Option(help="Confusion matrix at the largest --clips (.png, .jpg, .svg or .pdf).", callback=figure),
    ] = None,
    json_: Json = False,
    device: Device = "auto",
    verbose: Verbose = False,
    quiet: Quiet = False,
) -> None:
    """Test top-1 / top-5 of a classifier, over clips per video.

    A video's prediction is the mean softmax over N evenly spaced clips, centre crop
    (TCLR's multi-clip protocol), for each --clips N.

    The data comes from the recipe stored in the checkpoint; --set points it elsewhere
    (data moved, another machine). Each video is decoded once for all clip counts.

    Examples:

    \b
      tempclr evaluate runs/tclr_ucf_finetune/last.pt --clips 1 --clips 4 \\
          --clips 10 --plot clips.png
      tempclr evaluate runs/ft/best.pt --set data.root=/mnt/UCF101 \\
          --confusion confusion.png --json
    """
    from tempclr_cli.core.eval.classification import evaluate_checkpoint

    with progress(quiet) as bar:
        rows = evaluate_checkpoint(checkpoint, clips, set_ or [], device, bar_factory(bar))
    _plots(rows, plot, confusion, quiet)
    if json_:
        print(
            json.dumps(
                {"checkpoint": str(checkpoint), **rows[0]}
                if len(rows) == 1
                else {"checkpoint": str(checkpoint), "curve": rows}
            )
        )
        return
    log(f"{rows[0]['test_videos']} test videos, {len(rows[0]['classes'])} classes", quiet)
    for row in rows:
        print(f"clips {row['clips']:>3}  top-1 {row['top1']:.1f}  top-5 {row['top5']:.1f}")


def _plots(rows: list[dict], plot: Optional[Path], confusion: Optional[Path], quiet: bool) -> None:
    from tempclr_cli.core.plot import confusion_plot, curve_plot

    if plot:
        series = {"top-1": [r["top1"] for r in rows], "top-5": [r["top5"] for r in rows]}
        log(f"plot: {curve_plot([r['clips'] for r in rows], series, plot, 'clips per video', 'accuracy (%)')}", quiet)
    if confusion:
        last = rows[-1]
        title = f"test top-1 {last['top1']:.1f}% ({last['clips']} clips)"
        log(f"plot: {confusion_plot(last['classes'], last['confusion'], confusion, title)}", quiet)
