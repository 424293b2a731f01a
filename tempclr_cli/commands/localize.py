"""`tempclr localize FEATURES --annotations PATH`: zero-shot step localisation recall."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tempclr_cli.commands._common import Checkpoint, Device, Json, Quiet, Seed, Verbose, command, log


@command
def localize(
    features: Annotated[Path, typer.Argument(help="Features folder (one vector per second, from `tempclr extract`).")],
    annotations: Annotated[Path, typer.Option(help="COIN.json, or a CrossTask folder (tasks_primary.txt + annotations/).")],
    format_: Annotated[str, typer.Option("--format", help="coin or crosstask (youcook2: each video is its own task).")] = "coin",
    split: Annotated[str, typer.Option(help="Subset to evaluate (COIN: testing, training), or all.")] = "all",
    checkpoint: Checkpoint = None,
    json_: Json = False,
    device: Device = "auto",
    seed: Seed = 0,
    verbose: Verbose = False,
    quiet: Quiet = False,
) -> None:
    """Assign each step of a video's task one second, in order (free background); report recall.

    Recall counts a ground-truth step when its assigned second lies inside one of its
    segments, pooled per task, averaged over tasks (the COIN / CrossTask protocol).

    Example: tempclr localize feats/ --annotations COIN.json --format coin --split testing --json
    """
    from tempclr_cli.core.annotations import read_annotations, read_crosstask, task_steps
    from tempclr_cli.core.features import FeatureStore
    from tempclr_cli.core.heads import heads_and_text_tower
    from tempclr_cli.core.localize import evaluate
    from tempclr_cli.core.runtime import resolve_device
    from tempclr_cli.core.tempclr_training import sentence_encoder

    store = FeatureStore(features)
    if format_ == "crosstask":
        videos, tasks = read_crosstask(annotations)
    else:
        videos = read_annotations(annotations, format_)
        if format_ == "youcook2":
            for v in videos:
                v.task = v.id
        tasks = task_steps(videos)
    videos = [v for v in videos if split == "all" or v.subset == split]
    heads, tower = heads_and_text_tower(checkpoint, store)
    result = evaluate(videos, tasks, store, sentence_encoder(*tower, resolve_device(device)), heads)
    log(f"{result['tasks']} tasks", quiet)
    if json_:
        print(json.dumps(result))
        return
    print(f"step localisation recall: {result['recall']:.2f}% over {result['tasks']} tasks")
