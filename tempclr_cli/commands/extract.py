"""`tempclr extract VIDEOS...`: per-clip features for folders, files or a list of videos."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from tempclr_cli.commands._common import (
    EXIT_SOME_FAILED,
    Device,
    Json,
    Model,
    Pretrained,
    Quiet,
    Seed,
    Verbose,
    bar_factory,
    choices,
    command,
    err,
    is_main_process,
    log,
    number,
    progress,
    warn,
    writable,
)
from tempclr_cli.core.data.stores import LAYOUTS
from tempclr_cli.core.encode import FEATURE_DTYPES
from tempclr_cli.core.encode.shards import BALANCES, ENGINES
from tempclr_cli.core.media.decode import HWACCELS
from tempclr_cli.core.media.sampling import DECODE_MODES

Decode = choices("Decode", DECODE_MODES)
Hwaccel = choices("Hwaccel", HWACCELS)
OutputFormat = choices("OutputFormat", LAYOUTS)
Balance = choices("Balance", BALANCES)
Engine = choices("Engine", ENGINES)


Dtype = choices("Dtype", FEATURE_DTYPES)


def _read_list(source: str) -> list[str]:
    """The paths the list names; one that does not exist is refused naming the list it came from."""
    from tempclr_cli.core.encode.shards import expand_braces
    from tempclr_cli.core.errors import TempclrError
    from tempclr_cli.core.io import read_text

    text = sys.stdin.read() if source == "-" else read_text(source, "--list file", "a text file, one video path a line")
    paths = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    missing = [x for p in paths for x in expand_braces(p) if not Path(x).exists()]
    if missing:
        raise TempclrError(
            f"--list {'stdin' if source == '-' else source} names {len(missing)} paths that do not "
            f"exist: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"
        )
    return paths


@command
def extract(
    inputs: Annotated[
        Optional[list[Path]],
        typer.Argument(
            help="Video files and/or folders (searched recursively), webdataset tar shards (key.mp4, key.json; "
            "brace lists such as 'shards/{00000..00009}.tar'), or CSV lists (video_path[,key])."
        ),
    ] = None,
    list_: Annotated[
        Optional[str], typer.Option("--list", metavar="PATH", help="File with one video path a line; '-' reads stdin.")
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output folder: the features, index.jsonl, failures.jsonl.")
    ] = Path("features"),
    output_format: Annotated[
        OutputFormat,
        typer.Option(
            help="npy: one <key>.npy per video. webdataset: one tar per input shard (<key>.npy, <key>.json). parquet: "
            "one file per input shard, a row per video (needs pyarrow). Every command reads all three.",
            rich_help_panel="Scale",
        ),
    ] = OutputFormat.npy,
    shard_size: Annotated[
        int,
        typer.Option(
            help="webdataset / parquet from video files: videos per output shard (tar inputs keep their shards).",
            min=1,
            rich_help_panel="Scale",
        ),
    ] = 1000,
    balance: Annotated[
        Balance,
        typer.Option(
            help="How --shard, torchrun ranks and SLURM array tasks split the shards: duration packs them by the "
            "durations the files declare (greedy, longest first; read once into OUT/durations.json), count takes "
            "every n-th; auto: duration when there are several tasks.",
            rich_help_panel="Scale",
        ),
    ] = Balance.auto,
    engine: Annotated[
        Engine,
        typer.Option(
            help="local: --workers decoding processes feed one encoder (torchrun and SLURM arrays run several). ray: "
            "one Ray Data pipeline, decoding in CPU tasks, encoding in GPU actors (pip install 'tempclr[ray]').",
            rich_help_panel="Scale",
        ),
    ] = Engine.local,
    ray_address: Annotated[
        Optional[str],
        typer.Option(
            help="--engine ray: the cluster to join ('auto': the one `ray start` made here); default a local instance.",
            rich_help_panel="Scale",
        ),
    ] = None,
    plan: Annotated[
        bool,
        typer.Option(
            "--plan",
            help="Extract nothing: read every video's declared duration, decode and encode a few here, and "
            "print the videos, hours, clips, output size and files, the rates, and the hours per task "
            "for --engine, --workers and the shard count.",
            rich_help_panel="Scale",
        ),
    ] = False,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Read every existing output whole against index.jsonl (array readable, its shape the "
            "row's, no NaN); report broken ones and redo them.",
            rich_help_panel="Scale",
        ),
    ] = False,
    root: Annotated[
        Optional[Path], typer.Option(help="Mirror paths relative to this folder (default: the inputs' common folder).")
    ] = None,
    model: Model = "ViT-B-32",
    pretrained: Pretrained = None,
    checkpoint: Annotated[
        Optional[str],
        typer.Option(
            help="For --model r3d18 / r2plus1d18: the TCLR weights (a `tempclr train` run's .pt or the authors' "
            ".pth); the same as --pretrained there.",
            rich_help_panel="Encoder",
        ),
    ] = None,
    fps: Annotated[
        float, typer.Option(help="Frames sampled per second (by presentation time).", callback=number(0, above=True))
    ] = 1.0,
    clip_seconds: Annotated[
        float,
        typer.Option(help="Clip window; a clip's feature is the mean over its frames.", callback=number(0, above=True)),
    ] = 1.0,
    per_frame: Annotated[
        bool, typer.Option("--per-frame", help="One feature per sampled frame instead of per clip.")
    ] = False,
    dtype: Annotated[Dtype, typer.Option(help="Storage type of the features.")] = Dtype.float16,
    normalize: Annotated[bool, typer.Option(help="L2-normalise each feature.")] = True,
    batch_size: Annotated[int, typer.Option(help="Frames per encoder batch.", min=1)] = 64,
    workers: Annotated[int, typer.Option(help="Decoder processes (0: decode in this process).", min=0)] = 2,
    decode: Annotated[
        Decode,
        typer.Option(
            help="fast: decode only what the samples need, without deblocking: every B-frame skipped where no P-frame "
            "uses one (each sample then shows the nearest I- or P-frame), else the frames nothing references "
            "(the frames exact picks); 2-2.5x an ffmpeg pipe on H.264 at 1 fps (1.7x where P-frames use B-frames). "
            "exact: every frame, each sample bit-identical to a full decode. fast runs as exact below 4 video frames "
            "per sample. Does not apply to encoders of the videoclip protocol (s3d-howto100m; `tempclr models` "
            "lists each one's): ffmpeg's filters decode every frame, and index.jsonl says decode n/a."
        ),
    ] = Decode.fast,
    hwaccel: Annotated[
        Hwaccel,
        typer.Option(
            help="auto: NVDEC where it is expected to beat the CPU (a CUDA device, H.264 or HEVC from 1080p up), else "
            "the CPU; cuda: every video on the GPU's NVDEC (FFmpeg's hwaccel), and one it cannot open there on the "
            "CPU, with a warning; none: the CPU. Each index.jsonl row says where it decoded (decoded_on)."
        ),
    ] = Hwaccel.auto,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Redo videos whose features already exist.")] = False,
    shard: Annotated[
        Optional[str],
        typer.Option(
            metavar="I/N",
            help="Process shard i of n (i/n); under torchrun "
            "RANK/WORLD_SIZE, in a SLURM array SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT.",
            rich_help_panel="Scale",
        ),
    ] = None,
    json_: Json = False,
    device: Device = "auto",
    seed: Seed = 0,
    verbose: Verbose = False,
    quiet: Quiet = False,
) -> None:
    """Per-clip features of videos: .npy files or shards, resumable.

    Extract one (clips, dim) feature matrix per video into OUT, mirroring the input tree.

    With --model r3d18 --checkpoint RUN/last.pt (a TCLR run), each clip is encoded from
    16 consecutive samples at 16 / --clip-seconds fps (the checkpoint's clip length).

    Resumable: videos whose .npy and index row exist are skipped. Videos that cannot be
    decoded are listed in OUT/failures.jsonl and the run goes on; a file that ends well
    before its declared duration is kept, flagged "truncated" in index.jsonl, with a
    warning. Exit code 0 when every video succeeded, 3 when some failed, 2 on bad input.

    Examples:

    \b
      tempclr extract videos/ -o feats/ --model ViT-B-32 --pretrained openai
      find data -name '*.mp4' | tempclr extract --list - -o feats/ \\
          --model tiny --pretrained none
    """
    from rich.progress import TaskProgressColumn

    from tempclr_cli.core.errors import TempclrError

    from tempclr_cli.core.encode.shards import expand_braces

    sources = list(inputs or []) + (_read_list(list_) if list_ else [])
    missing = [x for p in inputs or [] for x in expand_braces(str(p)) if not Path(x).exists()]
    if missing:  # said before the model stack loads
        raise TempclrError(f"{', '.join(missing[:5])}: no such file or folder")
    writable(out, "--out", folder=True)
    from tempclr_cli.core.encode.extract import ExtractConfig, extract_videos

    cfg = ExtractConfig(
        fps, clip_seconds, per_frame, dtype.value, normalize, batch_size, workers, decode.value, hwaccel.value
    )
    if plan:
        _plan(
            sources,
            out,
            cfg,
            model,
            pretrained,
            checkpoint,
            root,
            device,
            seed,
            output_format.value,
            shard_size,
            shard,
            engine.value,
            json_,
            quiet,
        )
        return
    with progress(quiet, TaskProgressColumn(show_speed=True)) as bar:
        fallbacks: set[str] = set()

        def on_result(event) -> None:
            if event.status == "skipped":
                return
            if event.status != "ok":
                log(f"[yellow]failed[/yellow] {escape(event.reason)}", quiet)
                return
            if event.row["truncated"]:  # said even with --quiet: the features cover less than the file claims
                warn(
                    f"{escape(str(event.job.source))} ends at {event.row['duration']:.1f} s, "
                    "well before its declared duration (cut off?); kept, flagged truncated in index.jsonl"
                )
            on = event.row["decoded_on"]
            if on.startswith("cpu (") and on not in fallbacks:  # --hwaccel not honoured: each reason once
                fallbacks.add(on)
                warn(f"{escape(str(event.job.source))}: decoded on the {escape(on)}; each row says where (decoded_on)")

        summary = extract_videos(
            sources,
            out,
            cfg,
            model,
            pretrained,
            checkpoint,
            root,
            shard,
            overwrite,
            device,
            seed,
            bar_factory(bar),
            on_result,
            output_format.value,
            shard_size,
            balance.value,
            verify,
            lambda message: log(escape(message), quiet),
            engine.value,
            ray_address,
        )
    for problem in summary["broken"]:  # said even with --quiet: outputs that were there and were not whole
        warn(f"{escape(problem)}: redone")
    for row in summary["renamed"]:  # said even with --quiet: these features are not named after the stem
        warn(
            f"{escape(row['source'])} shares its stem with another video in its folder: features in "
            f"{escape(row['features'])}"
        )
    _render(summary, json_, quiet)
    if summary["failed"]:
        raise typer.Exit(EXIT_SOME_FAILED)


def _plan(
    sources,
    out,
    cfg,
    model,
    pretrained,
    checkpoint,
    root,
    device,
    seed,
    output_format,
    shard_size,
    shard,
    engine,
    as_json: bool,
    quiet: bool,
) -> None:
    """`--plan`: the estimate of core.encode.estimate, as a table (or JSON)."""
    from tempclr_cli.core.encode.estimate import plan_run
    from tempclr_cli.core.encode.jobs import parse_shard
    from tempclr_cli.core.encode.registry import load_encoder
    from tempclr_cli.core.runtime import resolve_device

    encoder = load_encoder(model, pretrained, checkpoint, resolve_device(device), seed)
    tasks = parse_shard(shard)[1]
    found = plan_run(
        sources,
        out,
        cfg,
        encoder,
        root,
        output_format,
        shard_size,
        tasks,
        max(cfg.workers, 1),
        engine,
        lambda message: log(escape(message), quiet),
    )
    if as_json:
        print(json.dumps(found))
        return
    from rich.table import Table

    table = Table(title="extract --plan", show_header=False)
    for label, value in (
        ("videos", f"{found['videos']} ({found['unreadable_durations']} without a declared duration)"),
        ("video hours", f"{found['seconds'] / 3600:.2f}"),
        ("clips", str(found["clips"])),
        ("output", f"{found['bytes'] / 1e9:.3f} GB in {found['files']} files ({found['format']})"),
        ("decode rate", f"{found['decode_rate']} video s/s per core ({found['probed']} videos probed)"),
        ("encode rate", f"{found['encode_rate']} frames/s on {found['device']}"),
        (
            "hours per task",
            f"{found['hours_per_task']} ({found['tasks']} tasks x {found['decoders']} decoders, "
            f"{found['engine']}; {found['bound']}-bound)",
        ),
    ):
        table.add_row(label, value)
    from rich.console import Console

    Console().print(table)  # the result: on stdout


def _render(summary: dict, as_json: bool, quiet: bool) -> None:
    if not is_main_process():  # under torchrun the summary covers every rank: rank 0 prints it
        return
    if as_json:
        print(json.dumps(summary))
        return
    if not quiet:
        from rich.table import Table

        table = Table(title="extract", show_header=True)
        for col in ("videos", "skipped", "extracted", "failed", "clips", "seconds"):
            table.add_column(col, justify="right")
        table.add_row(
            str(summary["videos"]),
            str(summary["skipped"]),
            str(summary["ok"]),
            str(len(summary["failed"])),
            str(summary["clips"]),
            str(summary.get("seconds", 0)),
        )
        err.print(table)
        if summary.get("bound"):  # which side to speed up
            hint = (
                f"about {summary['workers_to_keep_up']} decoding workers would keep the encoder busy (--workers; "
                "more cores or machines)"
                if summary["bound"] == "decode"
                else "a faster encoder or a GPU would help; more workers would not"
            )
            err.print(
                f"decoding {summary['decode_seconds']:.1f} s, encoding {summary['encode_seconds']:.1f} s, "
                f"waiting for frames {summary['waited_seconds']:.1f} s: {summary['bound']}-bound; {hint}",
                markup=False,
            )
    print(summary["out"])
