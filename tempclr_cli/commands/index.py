"""`tempclr index FOLDER --encoder NAME --fps X`: make another tool's feature files readable by tempclr."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from tempclr_cli.commands._common import Json, Quiet, Verbose, command, log, number, warn, writable


@command
def index(
    folder: Annotated[
        Path, typer.Argument(help="Folder of (clips, dim) arrays: .npy, .pt or .pth, searched recursively.")
    ],
    encoder: Annotated[
        str,
        typer.Option(
            help="The model that made them: a `tempclr models` name (its text tower then embeds sentences) or any "
            "other name (egovlp, internvideo2, ...: sentences then come from --sentence-embeddings)."
        ),
    ],
    fps: Annotated[
        Optional[float],
        typer.Option(
            help="Feature vectors a second (Ego4D's 32-frame windows every 16 frames at 30 fps: 1.875).",
            callback=number(0, above=True),
        ),
    ] = None,
    clip_seconds: Annotated[
        Optional[float],
        typer.Option(
            "--clip-seconds",
            help="Seconds each vector covers (default 1/fps; alone, also the step between vectors).",
            callback=number(0, above=True),
        ),
    ] = None,
    dim: Annotated[
        Optional[int],
        typer.Option(help="The dim every file must have (default: the encoder's, else the first file's).", min=1),
    ] = None,
    pretrained: Annotated[
        Optional[str],
        typer.Option(help="The encoder's weights, recorded for its text tower (default: its default weights)."),
    ] = None,
    suffix: Annotated[
        str,
        typer.Option(
            help="Only files whose name ends with this before the extension, dropped from the video id "
            "(video_features: _clip, _rgb, _s3d)."
        ),
    ] = "",
    output: Annotated[
        Optional[Path],
        typer.Option("--output", "-o", help="Folder for index.jsonl, links and conversions (default: FOLDER itself)."),
    ] = None,
    json_: Json = False,
    verbose: Verbose = False,
    quiet: Quiet = False,
) -> None:
    """Index feature files made by other tools (.npy, .pt) for tempclr.

    align, localize, retrieve and search then read them as extracted features. Writes
    index.jsonl rows (clip times from --fps / --clip-seconds, the encoder) for every feature
    file under FOLDER. Nothing is copied that can be read in place: a .npy is indexed where
    it lies (or, with -o or --suffix, linked as ID.npy); a .pt / .pth is converted once to
    ID.npy beside the index (FOLDER, or -o). 1-D arrays, NaN, and files of another dim are
    refused by name, and nothing is indexed until every file passes.

    Examples:

    \b
      tempclr index video_features/clip/ --suffix _clip --encoder ViT-B-32 \\
          --fps 1 -o feats/
      tempclr index ego4d/omnivore_video_swinl/ --encoder omnivore \\
          --fps 1.875 --clip-seconds 1.0667 -o feats/
    """
    from tempclr_cli.core.encode.foreign import index_features

    writable(output, "--output", folder=True)
    if output is None and folder.is_dir():  # the index (and any conversion) goes into FOLDER itself: say so now
        writable(folder, "FOLDER (without -o the index is written there)", folder=True)
    summary = index_features(
        folder, encoder, fps, clip_seconds, dim, pretrained, output, suffix, log=lambda m: log(m, quiet)
    )
    if not summary.text_tower:
        warn(
            f"tempclr has no text tower for {summary.encoder.model}: give align, localize, retrieve and search "
            "--sentence-embeddings FILE (sentences embedded by its own text tower)"
        )
    if json_:
        print(json.dumps(summary.to_json()))
        return
    counts = ", ".join(f"{n} {how}" for how, n in summary.counts().items())
    print(
        f"indexed {len(summary.files)} videos ({counts}), dim {summary.dim}, {summary.encoder.model}: {summary.index}"
    )
