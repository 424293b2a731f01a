"""`tempclr models`: the encoders `--model` takes, from the core's registry."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from tempclr_cli.commands._common import Json, Verbose, choices, command
from tempclr_cli.core.encode.registry import KINDS

Kind = choices("Kind", KINDS)


@command
def models(
    kind: Annotated[Optional[Kind], typer.Option(help="Only this kind: " + ", ".join(KINDS) + ".")] = None,
    all_: Annotated[
        bool,
        typer.Option(
            "--all",
            help="List every open_clip architecture (the table shows the "
            "default and a count; --json always lists every one).",
        ),
    ] = False,
    json_: Json = False,
    verbose: Verbose = False,
) -> None:
    """The encoders --model takes: clip, sizes, weights (offline).

    One row per name, with the clip one embedding sees, the input and embedding sizes, and
    what --pretrained takes; the default encoder is marked. open_clip's many architectures
    are counted in one row (--all lists them).

    image-text: one frame per embedding, a text tower (align, retrieve, localize, train).
    video-text: a clip of frames per embedding, a text tower. video: clips, no text
    (retrieve --task nn, few-shot, classification).

    Examples:

    \b
      tempclr models --kind video-text
      tempclr models --all
      tempclr models --json | jq -r '.[].name'
    """
    from tempclr_cli.core.encode.encoders import DEFAULT
    from tempclr_cli.core.encode.registry import list_encoders
    from tempclr_cli.render import models_table

    rows = [
        {**r, "default": r["name"] == DEFAULT.model} for r in list_encoders() if kind is None or r["kind"] == kind.value
    ]
    if json_:
        print(json.dumps(rows, indent=2))
    else:
        models_table(rows, grouped=not all_)
