"""`tempclr localize FEATURES --annotations PATH`: zero-shot step localisation recall."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from tempclr_cli.commands._common import Checkpoint, Device, Tokenizer, Json, Quiet, Verbose, command, log


class StepLayout(str, Enum):
    coin = "coin"
    crosstask = "crosstask"
    youcook2 = "youcook2"


class Scores(str, Enum):
    log_softmax = "log-softmax"
    cosine = "cosine"


@command
def localize(
    features: Annotated[Path, typer.Argument(help="Features folder (one vector per second, from `tempclr extract`).")],
    annotations: Annotated[Path, typer.Option(help="COIN.json, or a CrossTask folder (tasks_primary.txt + annotations/).")],
    format_: Annotated[
        StepLayout, typer.Option("--format", help="Annotation layout (youcook2: each video is its own task).")
    ] = StepLayout.coin,
    split: Annotated[
        str, typer.Option(help="Subset to evaluate (COIN: testing, training; CrossTask: test, train, validation "
                          "as the release splits videos.csv), or all.")
    ] = "all",
    scores: Annotated[
        Scores, typer.Option(help="Per-second step scores: log-softmax over the task's steps of dot products "
                             "(as released), or raw cosine similarity.")
    ] = Scores.log_softmax,
    checkpoint: Checkpoint = None,
    tokenizer: Tokenizer = None,
    json_: Json = False,
    device: Device = "auto",
    verbose: Verbose = False,
    quiet: Quiet = False,
) -> None:
    """Zero-shot step localisation recall (COIN / CrossTask protocol).

    Assign each step of a video's task one second, in order (free background); report recall.

    Recall counts a ground-truth step when one of its segments [s, e] covers its assigned
    second (floor(s) <= t < ceil(e), as released), pooled per task, averaged over tasks
    (the COIN / CrossTask protocol).

    Example:

    \b
      tempclr localize feats/ --annotations COIN.json --format coin \\
          --split testing --json
    """
    from tempclr_cli.core.eval.localization import localize_steps

    result = localize_steps(features, annotations, format_.value, split, checkpoint, device, scores.value)
    log(f"{result['tasks']} tasks", quiet)
    if json_:
        print(json.dumps(result))
        return
    print(f"step localisation recall: {result['recall']:.2f}% over {result['tasks']} tasks")
