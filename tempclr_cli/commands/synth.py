"""`tempclr synth OUT`: write a small synthetic dataset in the real datasets' formats."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tempclr_cli.commands._common import Quiet, Seed, Verbose, choices, command, log, number, progress, writable
from tempclr_cli.core.media import CLASS_BY


ClassBy = choices("ClassBy", CLASS_BY)


@command
def synth(
    out: Annotated[Path, typer.Argument(help="Output folder (created).")],
    videos: Annotated[int, typer.Option(help="Instructional videos (YouCookII-style).", min=0)] = 20,
    classes: Annotated[
        Optional[int],
        typer.Option(
            help="Action classes (UCF101-style; default 12, or all 6 with --class-by motion); reverse pairs stay "
            "together.",
            min=0,
        ),
    ] = None,
    class_videos: Annotated[
        int,
        typer.Option(
            help="Clips per action class, 2 per group; the first 7/25 of the groups (at least 1) are the test split.",
            min=0,
        ),
    ] = 8,
    class_by: Annotated[
        ClassBy, typer.Option(help="What defines an action class: a shape doing a motion, or the motion alone.")
    ] = ClassBy.shape_motion,
    min_steps: Annotated[int, typer.Option(help="Fewest steps per instructional video.", min=1)] = 3,
    max_steps: Annotated[int, typer.Option(help="Most steps per instructional video.", min=1)] = 6,
    size: Annotated[int, typer.Option(help="Frame width and height in pixels (even).", min=16)] = 64,
    fps: Annotated[int, typer.Option(help="Frames per second of the written videos.", min=1)] = 8,
    background: Annotated[bool, typer.Option(help="Idle gaps between steps (background).")] = True,
    hue_shift: Annotated[
        float,
        typer.Option(
            help="A colour cast: every colour filmed with its hue turned by this many degrees (60: red looks "
            "yellow, blue looks magenta), so the step sentences' colour names no longer match the pixels.",
            callback=number(),
        ),
    ] = 0.0,
    seed: Seed = 0,
    verbose: Verbose = False,
    quiet: Quiet = False,
) -> None:
    """Write a synthetic dataset with known steps and action labels.

    Writes videos/*.mp4, steps/*.txt, youcookii_annotations_trainval.json and an
    actions/ folder in the UCF101 layout (classInd.txt, trainlist01.txt,
    testlist01.txt) with few-shot meta-splits of disjoint classes (fewshot_train.txt,
    fewshot_test.txt). The same --seed writes the same bytes: frames, annotations and the
    H.264 files (one encoder thread, no macroblock-tree rate control).

    Example:

    \b
      tempclr synth /tmp/synth --videos 20
    """
    from tempclr_cli.core.media.synth import SynthConfig, count_videos, generate

    if classes is None:
        classes = 6 if class_by is ClassBy.motion else 12
    cfg = SynthConfig(
        videos=videos,
        classes=classes,
        class_videos=class_videos,
        class_by=class_by.value,
        min_steps=min_steps,
        max_steps=max_steps,
        size=size,
        fps=fps,
        background=background,
        hue_shift=hue_shift,
        seed=seed,
    )
    cfg.check()
    writable(out, "OUT", folder=True)
    with progress(quiet) as bar:
        task = bar.add_task("writing videos", total=count_videos(cfg))
        for _ in generate(out, cfg):
            bar.advance(task)
    log(f"wrote {count_videos(cfg)} videos under {out}", quiet)
    print(out)
