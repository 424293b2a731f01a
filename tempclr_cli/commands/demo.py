"""`tempclr demo`: the whole pipeline offline, on a synthetic dataset, in a few minutes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tempclr_cli.commands._common import (
    Device,
    Quiet,
    Seed,
    Verbose,
    bar_factory,
    command,
    log,
    number,
    progress,
    train_with_progress,
    writable,
)


@command
def demo(
    workdir: Annotated[Path, typer.Option(help="Folder for the dataset, features, run and outputs (re-used).")] = Path(
        "tempclr-demo"
    ),
    fast: Annotated[bool, typer.Option("--fast", help="A smaller, quicker run (fewer videos and epochs).")] = False,
    hue_shift: Annotated[
        float,
        typer.Option(
            help="The demo camera's colour cast in degrees of hue (60: red looks yellow, blue looks magenta), "
            "which the encoder never saw and TempCLR training learns; 0 films the encoder's own world.",
            callback=number(),
        ),
    ] = 60.0,
    device: Device = "auto",
    seed: Seed = 0,
    verbose: Verbose = False,
    quiet: Quiet = False,
) -> None:
    """The whole pipeline offline, on synthetic data.

    Generate data, extract features, train TempCLR heads, then align, retrieve and run few-shot.

    Uses the shipped `tiny` encoder with its `synthetic` weights (no download), trained
    on this synthetic world only (coloured shapes sliding, rising, growing), never on
    the demo's videos: the numbers show the method working on data the encoder has
    not seen, not what it does on real video. The demo films its videos with a colour
    cast (--hue-shift 60), as a new camera or light differs from an encoder's training
    data: zero-shot the encoder misreads the colour names, and TempCLR training of the
    heads (recipes/tempclr_synthetic.yaml) on the 120 training videos learns the cast.
    README's "With real weights" section gives the same steps for your own data.
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import TextColumn

    from tempclr_cli.core.demo import Demo, DemoConfig
    from tempclr_cli.render import alignment_table, boundary_table, fewshot_table, retrieval_table

    writable(workdir, "--workdir", folder=True)
    d = Demo(
        workdir, DemoConfig.fast(hue_shift=hue_shift, seed=seed) if fast else DemoConfig(hue_shift=hue_shift, seed=seed)
    )
    with progress(quiet, TextColumn("{task.fields[info]}")) as bar:
        result = d.run(
            device,
            bar_factory(bar),
            lambda m: log(escape(m), quiet),
            lambda recipe, run_dir, dev, resume: train_with_progress(recipe, run_dir, dev, resume, quiet, bar),
        )
    for note in result.notes:
        log(f"[yellow]{escape(note)}[/yellow] (pip install 'tempclr\\[plot]')", quiet)
    out = Console()
    if hue_shift % 360:
        out.print(
            f"The demo's videos are filmed with every hue turned {hue_shift:g} degrees, which the encoder "
            "never saw: before training it misreads the colours, TempCLR training learns them."
        )
    out.rule("paragraph-to-video retrieval, validation videos")
    out.print("before training (raw encoder features):")
    retrieval_table(result.before)
    out.print("after TempCLR training:")
    retrieval_table(result.after)
    out.rule("align: step boundaries on the validation videos")
    boundary_table(result.boundaries)
    out.rule(f"align: held-out video {result.alignment.video}")
    out.print(alignment_table(result.alignment, force_terminal=out.is_terminal, truth=result.truth), end="")
    errors = [
        abs(a - b)
        for got, want in zip(result.alignment.steps, result.truth.steps)
        for a, b in ((got.start, want.start), (got.end, want.end))
    ]
    out.print(f"mean boundary error: {sum(errors) / len(errors):.2f} s (annotated times in the last columns)")
    out.rule("few-shot action recognition, 5-way 1-shot")
    fewshot_table(result.fewshot, per_class=False)
    out.rule("artefacts")
    for name, path in result.artefacts.items():
        out.print(f"{name:>15}: {path or '(not written)'}")
    log("done; run `tempclr demo` again to re-use everything, or see README for real weights", quiet)
