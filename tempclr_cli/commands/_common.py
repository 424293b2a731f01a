"""What every subcommand shares: the common options, error handling, stderr console, progress.

Results go to stdout; logs, progress and errors to stderr, so `tempclr ... | jq` works.
"""

from __future__ import annotations

import functools
import sys
from contextlib import contextmanager
from typing import Annotated, Callable, Iterator, Optional

import typer
from rich.console import Console
from rich.markup import escape

from tempclr_cli.core.errors import TempclrError

err = Console(stderr=True, highlight=False, soft_wrap=True)

Device = Annotated[
    str,
    typer.Option("--device", help="auto | cpu | cuda | cuda:N | mps. 'auto' picks CUDA when present."),
]
Seed = Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives the same result.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="More logs; full traceback on errors.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or logs (errors still print).")]
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
Model = Annotated[
    Optional[str],
    typer.Option(
        help="Encoder: any open_clip model name (ViT-B-32, ViT-B-16, ...), 'tiny' (shipped, random "
        "weights only), or r3d18 (TCLR checkpoint).",
        rich_help_panel="Encoder",
    ),
]
Pretrained = Annotated[
    Optional[str],
    typer.Option(
        help="Weights: an open_clip tag (openai, laion2b_s34b_b79k, ...), a checkpoint file, "
        "local-dir:PATH, or 'none' for random weights (never chosen silently).",
        rich_help_panel="Encoder",
    ),
]
Checkpoint = Annotated[
    Optional[str],
    typer.Option(help="A tempclr training checkpoint (TCLR backbone or TempCLR heads).", rich_help_panel="Encoder"),
]


def command(func: Callable) -> Callable:
    """Wrap a command: a TempclrError becomes one red line and its exit code.

    Unexpected errors print one line too (and the traceback with --verbose), exit 1.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        verbose = kwargs.get("verbose", False)
        try:
            return func(*args, **kwargs)
        except TempclrError as e:
            if verbose:
                err.print_exception()
            err.print(f"[red]error:[/red] {escape(str(e))}")
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/yellow]")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as e:  # noqa: BLE001 - the CLI boundary: one line, not a traceback
            if verbose:
                err.print_exception()
            err.print(f"[red]error:[/red] {type(e).__name__}: {escape(str(e))} (rerun with --verbose for the traceback)")
            raise typer.Exit(1) from None

    return wrapper


def log(message: str, quiet: bool = False) -> None:
    if not quiet:
        err.print(message)


@contextmanager
def progress(quiet: bool, *extra_columns) -> Iterator:
    """A rich progress display on stderr (disabled with --quiet or when stderr is not a tty)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *extra_columns,
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=err, disable=quiet, transient=False) as bar:
        yield bar


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def not_implemented(what: str) -> None:
    """Stubs say so and exit 1: a command never pretends to work."""
    raise TempclrError(f"{what} is not implemented yet", exit_code=1)
