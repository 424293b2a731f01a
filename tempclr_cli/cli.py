"""The `tempclr` command: one Typer app, one thin module per subcommand.

Command modules import only typer/rich at module level; torch, open_clip and av load
inside the command that needs them, so `tempclr --help` stays fast.
"""

from __future__ import annotations

from typing import Annotated

import typer
from typer.core import TyperArgument, TyperCommand

from tempclr_cli import __version__

# in the order `tempclr --help` lists them; each is the module tempclr_cli.commands.<name>, with a function <name>
COMMANDS = (
    "extract",
    "index",
    "train",
    "align",
    "retrieve",
    "search",
    "evaluate",
    "fewshot",
    "localize",
    "score",
    "sweep",
    "synth",
    "demo",
    "models",
    "convert",
)


def plain_metavar(option) -> str | None:
    """What an option's value looks like, in words a user reads (N, X, TEXT, PATH, 1|2|3), not
    Python's type names (`int range`, `list[float]`); choices keep their a|b|c (None: as Typer shows it)."""
    from typing import get_args

    desc = option.type_descriptor
    if desc.is_choice and desc.is_list:  # repeatable: --measure capavg|dtw|otam (several times)
        return "|".join(str(getattr(c, "value", c)) for c in desc.choices or ())
    if desc.is_choice or desc.is_tuple:
        return None
    kind = get_args(desc.annotation)[0] if desc.is_list else desc.annotation
    if kind is int and option.min is not None and option.max is not None and option.max - option.min < 6:
        return "|".join(str(v) for v in range(option.min, option.max + 1))
    from pathlib import Path

    if desc.is_path or kind is Path:
        return "PATH"
    # a string reads as what it names (--model MODEL, --device DEVICE), as click names arguments
    return {int: "N", float: "X", str: option.name.rstrip("_").upper()}.get(kind)


def range_words(low, high) -> str | None:
    """A number option's bounds in words ("at least 1", "1 to 3"), not click's `x>=1`."""
    if low is None and high is None:
        return None
    return f"at least {low}" if high is None else f"at most {high}" if low is None else f"{low} to {high}"


class Command(TyperCommand):
    """Usage lines name arguments the conventional way: `tempclr align [OPTIONS] VIDEO STEPS`;
    options show plain metavars (`--ways N`, `--split-number 1|2|3`)."""

    def get_params(self, ctx):
        from typer.core import TyperArgument, TyperOption

        params = super().get_params(ctx)
        for p in params:
            if isinstance(p, TyperOption) and not p.is_flag and p.metavar is None:
                p.metavar = plain_metavar(p)
            if isinstance(p, TyperOption):
                p._get_number_range_help_str = lambda p=p: range_words(p.min, p.max)  # typer>=0.29's hook
            elif isinstance(p, TyperArgument) and plain_metavar(p):  # the name stays; the type reads plainly
                p.display_type = lambda ctx, plain=plain_metavar(p): plain
        return params

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        """A bad value reads as plain words: typer's validation prefixes "Value error, " to the message."""
        try:
            return super().parse_args(ctx, args)
        except typer.BadParameter as e:
            e.message = e.message.removeprefix("Value error, ")
            raise

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.name.upper() + ("..." if param.nargs != 1 else "")
                pieces.append(name if param.required else f"[{name}]")
        return pieces


def build_app(names: tuple[str, ...] = COMMANDS) -> typer.Typer:
    """The `tempclr` app with the commands `names` (their modules imported here). `main` builds it with
    only the command a shell asked for: the others' modules and parameters are not built on every call."""
    import importlib

    built = typer.Typer(
        name="tempclr",
        help="Temporal alignment of video: extract features, align steps, train (TempCLR, TCLR), "
        "retrieve, few-shot. Results go to stdout, logs and progress to stderr.",
        no_args_is_help=True,
        rich_markup_mode=None,  # plain click help: wraps cleanly at 80 columns, no per-flag type column
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    built.callback()(_main)
    for name in names:
        built.command(name, cls=Command)(getattr(importlib.import_module(f"tempclr_cli.commands.{name}"), name))
    return built


def _version(value: bool) -> None:
    if value:
        print(f"tempclr {__version__}")
        raise typer.Exit()


def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Temporal alignment of video."""


def __getattr__(name: str):
    """`app`, every command registered (tests, CliRunner), built on first use."""
    if name == "app":
        globals()["app"] = built = build_app()
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """The `tempclr` executable. On the way out every object still alive is frozen out of the
    garbage collector: the interpreter's teardown would otherwise walk all that torch, open_clip
    and pydantic built (0.3 s of every call in a shell loop; benchmarks/align.py) only to free
    memory the operating system frees anyway. Objects are still released, and atexit still runs."""
    import gc
    import sys

    asked = sys.argv[1] if len(sys.argv) > 1 else None
    try:
        build_app((asked,) if asked in COMMANDS else COMMANDS)(prog_name="tempclr")
    finally:
        gc.freeze()
