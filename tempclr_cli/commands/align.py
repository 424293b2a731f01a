"""`tempclr align VIDEO STEPS`: when does each step happen in this video?"""

from __future__ import annotations

import csv
import io as _io
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from tempclr_cli.commands._common import (
    Checkpoint, Device, Model, Pretrained, Quiet, Seed, Verbose, command, log, stdout_is_terminal,
)
from tempclr_cli.core.errors import TempclrError


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
        typer.Option(help="Cost (1 - cosine) of leaving a clip as background; default: automatic (Otsu threshold)."),
    ] = None,
    model: Model = None,
    pretrained: Pretrained = None,
    checkpoint: Checkpoint = None,
    fps: Annotated[float, typer.Option(help="Frames sampled per second (video input).")] = 1.0,
    clip_seconds: Annotated[float, typer.Option(help="Clip length in seconds (video input; .npy without index).")] = 1.0,
    device: Device = "auto",
    seed: Seed = 0,
    verbose: Verbose = False,
    quiet: Quiet = False,
) -> None:
    """Find the start and end time of each step, in order, with a similarity score.

    The video's clips and the step sentences are embedded with the same open_clip
    model (for a .npy file, the model recorded in its index.jsonl unless --model is
    given) and split into one segment per step by dynamic programming.

    Examples:

      tempclr align cooking.mp4 steps.txt --model ViT-B-32 --pretrained openai

      tempclr align feats/cooking.npy steps.txt -f srt -o cooking.srt --plot cooking.png
    """
    from tempclr_cli.core.align import align as locate, read_steps
    from tempclr_cli.core.runtime import resolve_device, seed_everything

    texts = read_steps(steps, sys.stdin.read() if steps == "-" else None)
    if not video.exists():
        raise TempclrError(f"{video}: no such file")
    seed_everything(seed)
    dev = resolve_device(device)
    heads, trained = None, {}
    if checkpoint:
        from tempclr_cli.core.heads import load_heads

        heads, meta = load_heads(checkpoint, "cpu")
        trained = {"model": meta["encoder_model"], "pretrained": meta["encoder_pretrained"], "seed": meta.get("encoder_seed", seed)}
    if video.suffix.lower() == ".npy":
        feats, starts, ends, recorded = _load_npy(video, clip_seconds)
        recorded = {**recorded, **trained}
        model = model or recorded.get("model", "ViT-B-32")
        pretrained = pretrained or recorded.get("pretrained", "openai")
        encoder = _encoder(model, pretrained, dev, recorded.get("seed", seed), quiet)
    else:
        from tempclr_cli.core.extract import ExtractConfig, encode_video

        model = model or trained.get("model", "ViT-B-32")
        pretrained = pretrained or trained.get("pretrained", "openai")
        encoder = _encoder(model, pretrained, dev, trained.get("seed", seed), quiet)
        log(f"encoding {video}", quiet)
        feats, starts, ends = encode_video(video, encoder, ExtractConfig(fps=fps, clip_seconds=clip_seconds))
    step_emb = encoder.encode_text(texts).cpu()
    if step_emb.shape[1] != feats.shape[1]:
        raise TempclrError(
            f"{video}: features have dim {feats.shape[1]} but {model} text embeddings have {step_emb.shape[1]}; "
            "use the --model/--pretrained that made the features"
        )
    from tempclr_cli.core.heads import apply_heads

    clips, step_emb = apply_heads(heads, feats.cpu(), step_emb)
    result = locate(step_emb, clips, texts, starts, ends, background, drop_cost, str(video))
    if plot:
        from tempclr_cli.core.plot import alignment_plot

        log(f"plot: {alignment_plot(result, plot)}", quiet)
    _emit(result, format_ or (Format.table if stdout_is_terminal() and not output else Format.json), output, quiet)


def _encoder(model: str, pretrained: str, device, seed: int, quiet: bool):
    from tempclr_cli.core.encoders import load_encoder

    log(f"model {model} ({pretrained})", quiet)
    return load_encoder(model, pretrained, None, device, seed)


def _load_npy(path: Path, clip_seconds: float):
    import torch

    from tempclr_cli.core.features import load_matrix, store_of

    store, video_id = store_of(path, clip_seconds)
    row = store.row(video_id) if store else {}
    array, starts, ends = load_matrix(path, row, clip_seconds)
    return torch.from_numpy(array), starts, ends, row


def _emit(result, fmt: Format, output: Optional[Path], quiet: bool) -> None:
    from tempclr_cli.core import io, subtitles

    cues = [(s.start, s.end, s.text) for s in result.steps]
    if fmt is Format.table:
        text = _table(result)
    elif fmt is Format.json:
        text = json.dumps(result.to_dict(), indent=2) + "\n"
    elif fmt is Format.csv:
        buf = _io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["index", "start", "end", "score", "text"])
        writer.writerows([s.index, s.start, s.end, s.score, s.text] for s in result.steps)
        text = buf.getvalue()
    else:
        text = subtitles.srt(cues) if fmt is Format.srt else subtitles.vtt(cues)
    if output:
        io.write_text(output, text)
        log(f"wrote {output}", quiet)
    else:
        sys.stdout.write(text)


def _table(result) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{result.video} ({result.duration:.1f} s)")
    for name, justify in (("#", "right"), ("start", "right"), ("end", "right"), ("score", "right"), ("step", "left")):
        table.add_column(name, justify=justify)
    for s in result.steps:
        table.add_row(str(s.index), f"{s.start:.1f}", f"{s.end:.1f}", f"{s.score:.3f}", s.text)
    buf = _io.StringIO()
    Console(file=buf, force_terminal=stdout_is_terminal(), width=120).print(table)
    return buf.getvalue()
