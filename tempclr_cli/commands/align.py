"""`tempclr align VIDEO STEPS`: when does each step happen in this video?"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from tempclr_cli.commands._common import (
    Checkpoint, Device, Model, Pretrained, Quiet, Seed, Verbose, command, log, number, stdout_is_terminal,
)


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    srt = "srt"
    vtt = "vtt"


@command
def align(
    video: Annotated[Path, typer.Argument(help="A video file, or a .npy feature file from `tempclr extract`.")],
    steps: Annotated[str, typer.Argument(help="Text file with one step a line ('#' comments), or '-' for stdin.")],
    format_: Annotated[
        Optional[Format], typer.Option("--format", "-f", help="Output format (default: table on a terminal, json in a pipe).")
    ] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the result to this file instead of stdout.")] = None,
    plot: Annotated[Optional[Path], typer.Option(help="Save the step x time similarity heatmap with the alignment (PNG).")] = None,
    background: Annotated[bool, typer.Option(help="Let clips that match no step stay unassigned (Drop-DTW).")] = True,
    drop_cost: Annotated[
        Optional[float],
        typer.Option(help="Cost (1 - cosine) of leaving a clip as background; default: automatic (Otsu threshold).",
                     callback=number()),
    ] = None,
    model: Model = None,
    pretrained: Pretrained = None,
    checkpoint: Checkpoint = None,
    fps: Annotated[float, typer.Option(help="Frames sampled per second (video input).", callback=number(0, above=True))] = 1.0,
    clip_seconds: Annotated[
        float, typer.Option(help="Clip length in seconds (video input; .npy without index).", callback=number(0, above=True))
    ] = 1.0,
    device: Device = "auto",
    seed: Seed = 0,
    verbose: Verbose = False,
    quiet: Quiet = False,
) -> None:
    """When does each step happen? Start, end and score per step.

    Find the start and end time of each step, in order, with a similarity score.

    The video's clips and the step sentences are embedded with the same open_clip
    model (for a .npy file, the model recorded in its index.jsonl unless --model is
    given) and split into one segment per step by dynamic programming.

    Examples:

    \b
      tempclr align cooking.mp4 steps.txt --model ViT-B-32 --pretrained openai
      tempclr align feats/cooking.npy steps.txt -f srt -o cooking.srt \\
          --plot cooking.png
    """
    from tempclr_cli.core.align.aligner import Aligner
    from tempclr_cli.core.align.steps import read_steps

    texts = read_steps(steps, sys.stdin.read() if steps == "-" else None)
    aligner = Aligner(model, pretrained, checkpoint, device, seed, fps, clip_seconds, log=lambda m: log(m, quiet))
    result = aligner.align(video, texts, background, drop_cost)
    if plot:
        from tempclr_cli.core.plot import alignment_plot

        log(f"plot: {alignment_plot(result, plot)}", quiet)
    _emit(result, format_ or (Format.table if stdout_is_terminal() and not output else Format.json), output, quiet)


def _emit(result, fmt: Format, output: Optional[Path], quiet: bool) -> None:
    from tempclr_cli.core import io
    from tempclr_cli.render import alignment_table

    if fmt is Format.table:
        text = alignment_table(result, force_terminal=stdout_is_terminal())
    else:
        text = {Format.json: result.to_json, Format.csv: result.to_csv, Format.srt: result.to_srt,
                Format.vtt: result.to_vtt}[fmt]()
    if output:
        io.write_text(output, text)
        log(f"wrote {output}", quiet)
    else:
        sys.stdout.write(text)
