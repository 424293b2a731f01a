"""`tempclr align VIDEO STEPS`: when does each step happen in this video (or in each of many)?"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from tempclr_cli.core.align import TRANSFER_MATCHES
from tempclr_cli.core.align.formats import FORMATS  # file formats; `-f all` writes each
from tempclr_cli.core.errors import TempclrError
from tempclr_cli.commands._common import (
    EXIT_SOME_FAILED,
    Checkpoint,
    Device,
    Model,
    Pretrained,
    Quiet,
    Seed,
    SentenceEmbeddings,
    Tokenizer,
    Verbose,
    choices,
    command,
    err,
    figure,
    log,
    number,
    stdout_is_terminal,
    warn,
    writable,
)


Format = choices("Format", ("table", *FORMATS, "all"))  # all: every file format (with --output-dir)


TransferMatch = choices("TransferMatch", TRANSFER_MATCHES)


@command
def align(
    video: Annotated[
        Optional[Path],
        typer.Argument(
            help="A video file or a .npy from `tempclr extract`; or a folder of them (batch, with STEPS a folder)."
        ),
    ] = None,
    steps: Annotated[
        Optional[str],
        typer.Argument(
            help="Text file with one step a line ('#' comments), '-' for stdin; or a folder of STEM.txt files."
        ),
    ] = None,
    format_: Annotated[
        Optional[Format],
        typer.Option(
            "--format",
            "-f",
            help=f"table, {', '.join(FORMATS)}, or all (every file format; needs --output-dir). "
            "Default: from -o's suffix, else table on a terminal and json in a pipe (batch: json).",
        ),
    ] = None,
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Write the result to this file instead of stdout.")
    ] = None,
    output_dir: Annotated[
        Optional[Path],
        typer.Option(
            help="Write OUT/STEM.<format> per video (batch: required; named as extract names features, so b.avi "
            "beside b.mp4 writes OUT/b.avi.* in a batch or one call; by folder where two step files share a "
            "stem); stdout then gets one JSON line per video."
        ),
    ] = None,
    pairs: Annotated[
        Optional[Path], typer.Option(help="Batch: a CSV of video,steps rows instead of two folders.")
    ] = None,
    reference: Annotated[
        Optional[tuple[Path, Path]],
        typer.Option(
            metavar="REF_VIDEO REF_STEPS",
            help="Transfer the timed steps of an annotated video of the same procedure "
            "(REF_STEPS: a tempclr JSON, SRT, VTT or YouCookII annotation) instead of reading STEPS.",
        ),
    ] = None,
    match: Annotated[
        TransferMatch,
        typer.Option(
            help="--reference: steps (each reference step's mean clip, Drop-DTW on VIDEO), clips (the two clip "
            "sequences matched with drops on both sides; better with a weak encoder) or subsequence (the reference "
            "found whole inside a longer VIDEO, whose clips before and after it are background)."
        ),
    ] = TransferMatch.steps,
    plot: Annotated[
        Optional[Path],
        typer.Option(
            help="Save the step x time similarity heatmap with the alignment (.png, .jpg, .svg or .pdf).",
            callback=figure,
        ),
    ] = None,
    embed_video: Annotated[
        bool, typer.Option(help="html: embed the video in the page (up to 50 MB) instead of linking it.")
    ] = False,
    mix_encoders: Annotated[
        bool,
        typer.Option(
            "--mix-encoders",
            help="Embed the steps with --model/--pretrained even when a .npy's index names another "
            "encoder (refused by default: the two embeddings do not compare).",
            rich_help_panel="Encoder",
        ),
    ] = False,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Batch: a video without its STEM.txt counts as a failure (exit 3) instead of being skipped.",
        ),
    ] = False,
    background: Annotated[bool, typer.Option(help="Let clips that match no step stay unassigned (Drop-DTW).")] = True,
    drop_cost: Annotated[
        Optional[float],
        typer.Option(
            help="Cost (1 - cosine) of leaving a clip as background; default: automatic (Otsu threshold).",
            callback=number(),
        ),
    ] = None,
    model: Model = None,
    pretrained: Pretrained = None,
    checkpoint: Checkpoint = None,
    tokenizer: Tokenizer = None,
    sentence_embeddings: SentenceEmbeddings = None,
    fps: Annotated[
        float, typer.Option(help="Frames sampled per second (video input).", callback=number(0, above=True))
    ] = 1.0,
    clip_seconds: Annotated[
        float,
        typer.Option(help="Clip length in seconds (video input; .npy without index).", callback=number(0, above=True)),
    ] = 1.0,
    device: Device = "auto",
    seed: Seed = 0,
    verbose: Verbose = False,
    quiet: Quiet = False,
) -> None:
    """When does each step happen? Start, end and score per step.

    The video's clips and the step sentences are embedded with the same encoder (for
    a .npy file, the one recorded in its index.jsonl unless --model is given; with a
    --checkpoint of VideoCLIP / TempCLR, that network) and split into one segment per
    step by dynamic programming. A warning says when the text did not tell the steps
    apart (on stderr, in JSON and HTML, a NOTE in WebVTT, the --plot title; the CSV
    has its numbers).

    Batch: give a folder of videos or .npy files and a folder of STEM.txt step files
    (or --pairs pairs.csv) with --output-dir OUT. The model loads once; each video's
    files go to OUT, stdout gets one JSON line per video, a video without its steps
    file is skipped (--strict: failed), and a pair that fails is reported on stderr and
    in OUT/failures.jsonl while the others finish (exit 3). -o and --plot write one
    video's result: a batch refuses them (-f html has each video's heatmap).

    -f html writes a self-contained review page: the video with one chapter per
    step, the steps with thumbnails (click one to seek there), and the heatmap.

    --reference REF_VIDEO REF_STEPS labels VIDEO (or a folder of videos) from one
    annotated video of the same procedure: each reference step becomes the mean of its
    clips and VIDEO's clips are split into those steps in order, background dropped
    (--match clips: the two videos' clips are matched one by one instead;
    --match subsequence: the reference's procedure is found inside a longer VIDEO).

    Examples:

    \b
      tempclr align cooking.mp4 steps.txt --model ViT-B-32 --pretrained openai
      tempclr align feats/cooking.npy steps.txt -o cooking.srt --plot cooking.png
      tempclr align feats/ steps/ --output-dir aligned/ -f all
      tempclr align new.mp4 --reference labelled.mp4 labelled.srt -f srt
    """
    from tempclr_cli.core.align.aligner import Aligner, stored_video

    _refuse_swapped(video, steps)  # before any model loads
    writable(output, "--output", folder=False)
    writable(output_dir, "--output-dir", folder=True)
    fmt = _format(format_, output, output_dir)
    for path, what in (
        (video, "no such file"),
        (None if steps in (None, "-") else Path(steps), "steps file not found"),
        *((r, "no such file") for r in reference or ()),
    ):
        if path is not None and not path.exists() and (path is not video or stored_video(path) is None):
            raise TempclrError(f"{path}: {what}")
    aligner = Aligner(
        model,
        pretrained,
        checkpoint,
        device,
        seed,
        fps,
        clip_seconds,
        log=lambda m: log(m, quiet),
        mix_encoders=mix_encoders,
        sentence_embeddings=sentence_embeddings,
        tokenizer=tokenizer,
    )
    align_one = _aligning(aligner, reference, background, drop_cost, match.value)
    if (
        video is not None
        and video.is_dir()
        and not (pairs or reference)
        and (steps == "-" or (steps and not Path(steps).is_dir()))
    ):
        raise TempclrError(
            f"{video}: is a folder, and STEPS ({steps}) one steps file; give a video file or a .npy "
            "feature file (to align a folder, give a folder of STEM.txt step files and --output-dir)"
        )
    if video is not None and video.is_file() and not (pairs or reference) and steps and Path(steps).is_dir():
        raise TempclrError(
            f"{steps}: is a folder, and VIDEO ({video}) one file; give that video's steps file (to "
            "align a folder, give a folder of videos or .npy files and --output-dir)"
        )
    if pairs or (video is not None and video.is_dir()):
        if plot or output:
            raise TempclrError(
                f"{'--plot' if plot else '-o'} writes one video's result; a batch writes OUT/NAME.<format> per "
                "video into --output-dir (-f html for a page with each video's heatmap, -f all for every format)"
            )
        _batch(align_one, aligner, video, steps, pairs, output_dir, fmt, reference is not None, strict, quiet)
        return
    if video is None or (steps is None and reference is None):
        raise TempclrError(
            "give VIDEO and STEPS (or folders of them, or --pairs CSV, or --reference REF_VIDEO REF_STEPS)"
        )
    from tempclr_cli.core.align.batch import Pair

    result = align_one(Pair(video, None if reference else Path(steps)), sys.stdin.read() if steps == "-" else None)
    _warn_if_unseparated(result, aligner, set())
    if plot:
        from tempclr_cli.core.plot import alignment_plot

        log(f"plot: {alignment_plot(result, plot)}", quiet)
    if output_dir:
        from tempclr_cli.core.align.batch import own_name, write_outputs

        formats = FORMATS if fmt is Format.all else (fmt.value,)
        for path in write_outputs(result, output_dir, own_name(video), formats):
            log(f"wrote {path}", quiet)
        return
    _emit(result, fmt, output, embed_video, quiet)


def _format(fmt: Optional[Format], output: Optional[Path], output_dir: Optional[Path]) -> Format:
    """-f, else the suffix of -o (x.srt: srt), else table on a terminal and json in a pipe."""
    if fmt is Format.all and not output_dir:
        raise TempclrError("-f all writes one file per format: add --output-dir OUT")
    if fmt is Format.table and output_dir:
        raise TempclrError("-f table is for the terminal: with --output-dir use json, csv, srt, vtt, html or all")
    suffix = output.suffix.lower().lstrip(".") if output else ""
    if fmt and suffix in FORMATS and fmt.value != suffix:
        raise TempclrError(f"-o {output} names {suffix} but -f says {fmt.value}: make them agree")
    if fmt:
        return fmt
    if suffix in FORMATS:
        return Format(suffix)
    if output:
        raise TempclrError(
            f"-o {output}: the suffix names no format tempclr writes ({', '.join(FORMATS)}); "
            "rename it, or say the format with -f"
        )
    if output_dir:
        return Format.json
    return Format.table if stdout_is_terminal() else Format.json


def _aligning(aligner, reference, background: bool, drop_cost, match: str):
    """pair (, stdin text) -> Alignment: with text steps, or transferred from `reference`."""
    from tempclr_cli.core.align.steps import read_steps, read_timed_steps

    if reference:
        ref_video, ref_steps = reference
        timed = read_timed_steps(str(ref_steps), ref_video.stem)
        return lambda pair, stdin=None: aligner.transfer(pair.video, ref_video, timed, drop_cost, match)
    return lambda pair, stdin=None: aligner.align(pair.video, read_steps(str(pair.steps), stdin), background, drop_cost)


def _warn_if_unseparated(result, aligner, said: set[str]) -> None:
    """Said even with --quiet: timestamps that follow the steps' order alone look as good as real ones.
    What the weights do not know (`said`: caveats already given in this run) is said once."""
    if result.warning is None:
        return
    warn(
        f"{escape(result.video)}: {escape(result.warning)}; use an encoder that knows this kind of video "
        "(--model/--pretrained) or trained heads (--checkpoint)"
    )
    for caveat in sorted(aligner.caveats - said):
        warn(escape(caveat))
        said.add(caveat)


def _refuse_swapped(video: Optional[Path], steps: Optional[str]) -> None:
    """A video or .npy given as STEPS: say the arguments look swapped (or, with a video as
    VIDEO too, what STEPS must be), instead of failing on the file's bytes."""
    from tempclr_cli.core.media.video import VIDEO_EXTENSIONS

    media = VIDEO_EXTENSIONS | {".npy"}
    if steps in (None, "-") or Path(steps).suffix.lower() not in media:
        return
    if video is not None and video.suffix.lower() in media:
        raise TempclrError(f"{steps}: STEPS is a text file with one step a line, not a video or feature file")
    raise TempclrError(
        f"the arguments look swapped: {steps} is a video or feature file and {video} a steps "
        "file; the order is tempclr align VIDEO STEPS"
    )


def _batch(
    align_one, aligner, video, steps, pairs, output_dir, fmt: Format, with_reference: bool, strict: bool, quiet
) -> None:
    """One JSON line per video on stdout (aligned, skipped or failed: every input is accounted
    for), one summary line on stderr that counts what was written."""
    from tempclr_cli.core.align.batch import align_pairs, pair_by_stem, read_pairs, without_steps

    if not output_dir:
        raise TempclrError(f"{pairs or video}: batch alignment writes one file per video: add --output-dir OUT")
    formats = FORMATS if fmt is Format.all else (fmt.value,)
    skipped = []
    if pairs:
        todo = read_pairs(pairs)
    else:
        if steps is None and not with_reference:
            raise TempclrError("STEPS: give the folder of STEM.txt step files after the video folder")
        todo = pair_by_stem(video, None if with_reference else Path(steps))
        if not strict:  # a video of the folder without its STEM.txt is left out, and said so, not failed
            todo, skipped = without_steps(todo)
            if not todo:
                raise TempclrError(
                    f"{steps}: holds no STEM.txt steps file for any video of {video} (looked for "
                    f"{', '.join(p.steps.name for p in skipped[:3])}{' ...' if len(skipped) > 3 else ''})"
                )
    for pair in skipped:  # said even with -q: a summary that counts only what was done hides them
        warn(
            f"skipped {escape(str(pair.video))}: no steps file {escape(pair.steps.name)} (--strict: count it as failed)"
        )
        print(json.dumps({"video": str(pair.video), "steps": str(pair.steps), "skipped": "no steps file"}), flush=True)
    failed, written, said = 0, set(), set()
    for row in align_pairs(todo, align_one, output_dir, formats):
        if row["ok"]:
            _warn_if_unseparated(row["alignment"], aligner, said)
            written.update(row["outputs"])
            print(json.dumps({**row["alignment"].to_dict(), "outputs": row["outputs"]}), flush=True)
        else:
            failed += 1
            err.print(
                f"[yellow]failed[/yellow] {escape(row['video'])}: {escape(row['reason'])}", markup=True, highlight=False
            )
            print(json.dumps({"video": row["video"], "steps": row["steps"], "failed": row["reason"]}), flush=True)
    total = len(todo) + len(skipped)
    log(
        f"{len(todo) - failed} of {total} aligned into {output_dir} ({len(written)} files)"
        + (f"; {len(skipped)} skipped (no steps file)" if skipped else "")
        + (f"; {failed} failed ({output_dir / 'failures.jsonl'})" if failed else ""),
        quiet,
    )
    if failed:
        raise typer.Exit(EXIT_SOME_FAILED)


def _emit(result, fmt: Format, output: Optional[Path], embed_video: bool, quiet: bool) -> None:
    from tempclr_cli.core import io
    from tempclr_cli.render import alignment_table

    if fmt is Format.table:
        text = alignment_table(result, force_terminal=stdout_is_terminal() and not output)  # a file: plain text
    else:
        text = result.render(fmt.value, str(output) if output else None, embed_video)
    if output:
        io.write_text(output, text)
        log(f"wrote {output}", quiet)
    else:
        sys.stdout.write(text)
