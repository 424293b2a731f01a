"""The `tempclr` command: one Typer app, one thin module per subcommand.

Command modules import only typer/rich at module level; torch, open_clip and av load
inside the command that needs them, so `tempclr --help` stays fast.
"""

from __future__ import annotations

from typing import Annotated

import typer
from typer.core import TyperArgument, TyperCommand

from tempclr_cli import __version__
from tempclr_cli.commands import (
    align, convert, demo, evaluate, extract, fewshot, localize, models, retrieve, sweep, synth, train,
)


class Command(TyperCommand):
    """Usage lines name arguments the conventional way: `tempclr align [OPTIONS] VIDEO STEPS`."""

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = (param.metavar or param.name).upper() + ("..." if param.nargs != 1 else "")
                pieces.append(name if param.required else f"[{name}]")
        return pieces


app = typer.Typer(
    name="tempclr",
    help="Temporal alignment of video: extract features, align steps, train (TempCLR, TCLR), "
    "retrieve, few-shot. Results go to stdout, logs and progress to stderr.",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain click help: wraps cleanly at 80 columns, no per-flag type column
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


for module in (extract, train, align, retrieve, evaluate, fewshot, localize, sweep, synth, demo, models, convert):
    name = module.__name__.rsplit(".", 1)[1]
    app.command(name, cls=Command)(getattr(module, name))


def main() -> None:
    app(prog_name="tempclr")
