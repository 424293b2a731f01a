"""The `tempclr` command: one Typer app, one thin module per subcommand.

Command modules import only typer/rich at module level; torch, open_clip and av load
inside the command that needs them, so `tempclr --help` stays fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

from tempclr_cli import __version__
from tempclr_cli.commands import align, demo, evaluate, extract, fewshot, localize, retrieve, sweep, synth, train

app = typer.Typer(
    name="tempclr",
    help="Temporal alignment of video: extract features, align steps, train (TempCLR, TCLR), "
    "retrieve, few-shot. Results go to stdout, logs and progress to stderr.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"tempclr {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Temporal alignment of video."""


app.command("extract")(extract.extract)
app.command("train")(train.train)
app.command("align")(align.align)
app.command("retrieve")(retrieve.retrieve)
app.command("evaluate")(evaluate.evaluate)
app.command("fewshot")(fewshot.fewshot)
app.command("localize")(localize.localize)
app.command("sweep")(sweep.sweep)
app.command("synth")(synth.synth)
app.command("demo")(demo.demo)


def main() -> None:
    app()
