"""`tempclr extract VIDEOS...`: per-clip features for folders, files or a list of videos."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from tempclr_cli.commands._common import (
    Checkpoint, Device, Json, Model, Pretrained, Quiet, Seed, Verbose, command, err, log, progress,
)
from tempclr_cli.core.errors import TempclrError

EXIT_SOME_FAILED = 3


def _read_list(source: str) -> list[str]:
    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _parse_shard(spec: Optional[str]) -> tuple[int, int]:
    """`i/n` from --shard, else torchrun's RANK/WORLD_SIZE, else 0/1."""
    if spec is None:
        return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    try:
        i, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise TempclrError(f"--shard {spec}: expected i/n, e.g. 0/4") from None
    return i, n


@command
def extract(
    inputs: Annotated[Optional[list[Path]], typer.Argument(help="Video files and/or folders (searched recursively).")] = None,
    list_: Annotated[Optional[str], typer.Option("--list", help="File with one video path a line; '-' reads stdin.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder for .npy files, index.jsonl, failures.jsonl.")] = Path("features"),
    root: Annotated[Optional[Path], typer.Option(help="Mirror paths relative to this folder (default: the inputs' common folder).")] = None,
    model: Model = "ViT-B-32",
    pretrained: Pretrained = "openai",
    checkpoint: Checkpoint = None,
    fps: Annotated[float, typer.Option(help="Frames sampled per second (by presentation time).")] = 1.0,
    clip_seconds: Annotated[float, typer.Option(help="Clip window; a clip's feature is the mean over its frames.")] = 1.0,
    per_frame: Annotated[bool, typer.Option("--per-frame", help="One feature per sampled frame instead of per clip.")] = False,
    dtype: Annotated[str, typer.Option(help="float16 or float32.")] = "float16",
    normalize: Annotated[bool, typer.Option(help="L2-normalise each feature.")] = True,
    batch_size: Annotated[int, typer.Option(help="Frames per encoder batch.")] = 64,
    workers: Annotated[int, typer.Option(help="Decoder processes (0: decode in this process).")] = 2,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Redo videos whose features already exist.")] = False,
    shard: Annotated[Optional[str], typer.Option(help="Process shard i of n (i/n); under torchrun RANK/WORLD_SIZE.")] = None,
    json_: Json = False,
    device: Device = "auto",
    seed: Seed = 0,
    verbose: Verbose = False,
    quiet: Quiet = False,
) -> None:
    """Extract one (clips, dim) feature matrix per video into OUT, mirroring the input tree.

    With --model r3d18 --checkpoint RUN/last.pt (a TCLR run), each clip is encoded from
    16 consecutive samples at 16 / --clip-seconds fps (the checkpoint's clip length).

    Resumable: videos whose .npy exists and loads are skipped. Videos that cannot be
    decoded are listed in OUT/failures.jsonl and the run goes on. Exit code 0 when
    every video succeeded, 3 when some failed, 2 on bad input.

    Examples:

      tempclr extract videos/ -o feats/ --model ViT-B-32 --pretrained openai

      find data -name '*.mp4' | tempclr extract --list - -o feats/ --model tiny --pretrained none
    """
    from tempclr_cli.core import extract as core
    from tempclr_cli.core.encoders import load_encoder
    from tempclr_cli.core.runtime import resolve_device, seed_everything
    from tempclr_cli.core.video import find_videos

    cfg = core.ExtractConfig(fps, clip_seconds, per_frame, dtype, normalize, batch_size, workers)
    cfg.check()
    if model == "r3d18":
        cfg = core.r3d_config(cfg, checkpoint)
    sources = list(inputs or []) + (_read_list(list_) if list_ else [])
    if not sources:
        raise TempclrError("no input: give video files/folders or --list FILE (or --list - for stdin)")
    jobs = core.shard(core.plan(find_videos(sources), out, root), *_parse_shard(shard))
    todo = [j for j in jobs if overwrite or not core.is_done(j.target)]
    log(f"{len(jobs)} videos, {len(jobs) - len(todo)} already done, {len(todo)} to extract", quiet)
    summary = {"out": str(out), "videos": len(jobs), "skipped": len(jobs) - len(todo), "ok": 0, "failed": [], "clips": 0}
    if todo:
        seed_everything(seed)
        encoder = load_encoder(model, pretrained, checkpoint, resolve_device(device), seed)
        _run(core, todo, encoder, cfg, out, summary, quiet)
    _render(summary, json_, quiet)
    if summary["failed"]:
        raise typer.Exit(EXIT_SOME_FAILED)


def _run(core, jobs, encoder, cfg, out: Path, summary: dict, quiet: bool) -> None:
    from rich.progress import TextColumn

    start, frames = time.perf_counter(), 0
    with progress(quiet, TextColumn("{task.fields[rate]}")) as bar:
        task = bar.add_task("extracting", total=len(jobs), rate="")
        for event in core.run(jobs, encoder, cfg, out):
            if isinstance(event, int):
                frames += event
                bar.update(task, rate=f"{frames / (time.perf_counter() - start):.0f} frames/s")
                continue
            bar.advance(task)
            if event.status == "ok":
                summary["ok"] += 1
                summary["clips"] += event.clips
            else:
                summary["failed"].append({"source": str(event.job.source), "reason": event.reason})
                log(f"[yellow]failed[/yellow] {event.reason}", quiet)
    summary["seconds"] = round(time.perf_counter() - start, 2)


def _render(summary: dict, as_json: bool, quiet: bool) -> None:
    if as_json:
        print(json.dumps(summary))
        return
    if not quiet:
        from rich.table import Table

        table = Table(title="extract", show_header=True)
        for col in ("videos", "skipped", "extracted", "failed", "clips", "seconds"):
            table.add_column(col, justify="right")
        table.add_row(
            str(summary["videos"]), str(summary["skipped"]), str(summary["ok"]), str(len(summary["failed"])),
            str(summary["clips"]), str(summary.get("seconds", 0)),
        )
        err.print(table)
    print(summary["out"])
