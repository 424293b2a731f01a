"""What every subcommand shares: the common options, error handling, stderr console, progress.

Results go to stdout; logs, progress and errors to stderr, so `tempclr ... | jq` works.
"""

from __future__ import annotations

import functools
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from tempclr_cli.core.errors import TempclrError

err = Console(stderr=True, highlight=False, soft_wrap=True)


def _rank() -> tuple[int, int]:
    from tempclr_cli.core.runtime import process_rank

    return process_rank()


def is_main_process() -> bool:
    """Rank 0, or not distributed: the process that prints results and progress."""
    return _rank()[0] == 0


def _rank_prefix() -> str:
    rank, world = _rank()
    return f"[rank {rank}] " if world > 1 else ""


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
        help="Encoder (`tempclr models` lists them): an open_clip model (ViT-B-32, ...), 'tiny' (shipped), "
        "s3d-howto100m (S3D MIL-NCE, VideoCLIP's features), or r3d18 / r2plus1d18 (TCLR backbones).",
        rich_help_panel="Encoder",
    ),
]
Pretrained = Annotated[
    Optional[str],
    typer.Option(
        help="The encoder's weights: an open_clip tag (openai, ...), a checkpoint file or folder, local-dir:PATH, "
        "or 'none' for random weights (never chosen silently); default: the encoder's (openai for open_clip).",
        rich_help_panel="Encoder",
    ),
]
Checkpoint = Annotated[
    Optional[str],
    typer.Option(
        help="Trained heads applied over the encoder's features: a `tempclr train` run's last.pt / "
        "best.pt, or VideoCLIP's / TempCLR's released network over S3D features (fairseq "
        "checkpoint_best.pt, checkpoint_layernorm_DTW.pt, ..., or their `tempclr convert` .safetensors).",
        rich_help_panel="Encoder",
    ),
]


SentenceEmbeddings = Annotated[
    Optional[Path],
    typer.Option(
        "--sentence-embeddings",
        help="Precomputed sentence vectors, for features whose encoder tempclr has no text tower "
        "for: .json {sentence: [floats]}, .npz (sentences, embeddings), or .npy with a .txt of its sentences.",
        rich_help_panel="Encoder",
    ),
]


Tokenizer = Annotated[
    Optional[Path],
    typer.Option(
        help="bert-base-uncased's tokenizer folder (vocab.txt) for a VideoCLIP / TempCLR --checkpoint; "
        "default: tokenizer/ beside the checkpoint, then the Hugging Face cache.",
        envvar="TEMPCLR_BERT_TOKENIZER",
        rich_help_panel="Encoder",
    ),
]


def writable(path: Optional[Path], option: str, folder: bool) -> None:
    """Refuse, before anything loads, an output that cannot be written: a folder where a file
    goes (or the reverse), or a place the file system will not write to (read-only, no rights)."""
    if path is None:
        return
    if path.exists() and path.is_dir() != folder:
        raise TempclrError(
            f"{option} {path}: is {'a file' if folder else 'a folder'}; expected "
            f"{'a folder' if folder else 'a file name'}"
        )
    # files are written beside their final name and renamed into place: the folder that will hold them must take writes
    real = path.resolve()
    holder = real if folder and real.exists() else next(p for p in real.parents if p.exists())
    if not holder.is_dir():
        raise TempclrError(f"{option} {path}: {holder} is a file, not a folder")
    if not os.access(holder, os.W_OK):
        raise TempclrError(f"{option} {path}: {holder} cannot be written to (read-only or no permission)")


def figure(value: Optional[Path]) -> Optional[Path]:
    """A Typer callback for an option that names a figure: its suffix must name a format the
    figure can be written in (x.docx is refused at once, not written as PNG bytes), and the
    file a place it can be written to (checked before the work that draws it)."""
    from tempclr_cli.core.plot import figure_format

    if value is not None:
        try:
            figure_format(value)
            writable(value, "", folder=False)
        except TempclrError as e:
            raise typer.BadParameter(str(e).lstrip()) from None
    return value


def choices(name: str, values: Iterable[str]) -> type[Enum]:
    """A command's choice list built from the core's declaration (never retyped): a str Enum
    whose members are the values, so `--help` lists them and click rejects the rest."""
    return Enum(name, {v.replace("-", "_").replace("+", "_"): v for v in values}, type=str)


def _grounding_choices():
    """The step-grounding layouts and Goal-Step's query levels, from the core's table (localize, score)."""
    from tempclr_cli.core.data import layouts

    return choices("StepLayout", layouts.names(grounding=True)), choices("Levels", layouts.LEVELS)


StepLayout, Levels = _grounding_choices()
Taxonomy = Annotated[Optional[Path], typer.Option(help="HT-Step's taxonomy.csv (--format htstep).")]


def number(low: float | None = None, high: float | None = None, above: bool = False) -> Callable:
    """A Typer callback: every value of a float option is finite and >= low (> low with
    `above`) and <= high; otherwise click's usage error names the option, exit 2."""

    def check(value):
        for v in value if isinstance(value, list) else [value]:
            if v is None:
                continue
            if not math.isfinite(v):
                raise typer.BadParameter(f"{v} is not a finite number")
            if low is not None and (v <= low if above else v < low):
                raise typer.BadParameter(f"{v} must be {'>' if above else '>='} {low:g}")
            if high is not None and v > high:
                raise typer.BadParameter(f"{v} must be <= {high:g}")
        return value

    return check


def command(func: Callable) -> Callable:
    """Wrap a command: a TempclrError becomes one red line and its exit code.

    Unexpected errors print one line too (and the traceback with --verbose), exit 1.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        verbose = kwargs.get("verbose", False)
        try:
            from tempclr_cli.core.runtime import torch_stack_mismatch

            if problem := torch_stack_mismatch():  # said before the import that would fail without saying why
                raise TempclrError(problem)
            return func(*args, **kwargs)
        except TempclrError as e:
            if verbose:
                err.print_exception()
            err.print(f"{_rank_prefix()}[red]error:[/red] {escape(str(e))}")
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/yellow]")
            raise typer.Exit(130) from None
        except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Unix tools do
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(141) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as e:  # noqa: BLE001 - the CLI boundary: one line, not a traceback
            if verbose:
                err.print_exception()
            err.print(
                f"{_rank_prefix()}[red]error:[/red] {type(e).__name__}: {escape(str(e))} "
                "(rerun with --verbose for the traceback)"
            )
            raise typer.Exit(1) from None

    return wrapper


EXIT_SOME_FAILED = 3  # extract, align in batch: some inputs failed (listed in failures.jsonl); the rest succeeded


def log(message: str, quiet: bool = False) -> None:
    """A progress message on stderr: not with --quiet, and only from the main process."""
    if not quiet and is_main_process():
        err.print(message)


def warn(message: str) -> None:
    """A warning on stderr, even with --quiet, from every process (prefixed with its rank)."""
    err.print(f"{_rank_prefix()}[yellow]warning:[/yellow] {message}")


class PlainProgress:
    """Progress as plain lines on stderr, at most one per task every `every` seconds (and at
    the end): for batch jobs, CI logs and `nohup`, where a bar would be a stream of glyphs.
    Takes the calls of rich's Progress that tempclr uses."""

    def __init__(self, every: float = 5.0):
        self.every, self.tasks = every, {}

    def add_task(self, description: str, total: Optional[float] = None, **fields) -> int:
        self.tasks[len(self.tasks)] = {
            "description": description,
            "total": total,
            "completed": 0,
            "fields": fields,
            "printed": 0.0,
        }
        return len(self.tasks) - 1

    def update(
        self,
        task: int,
        description: Optional[str] = None,
        completed: Optional[float] = None,
        total: Optional[float] = None,
        advance: float = 0,
        **fields,
    ) -> None:
        t = self.tasks[task]
        t["description"] = description or t["description"]
        t["total"] = total if total is not None else t["total"]
        t["completed"] = (completed if completed is not None else t["completed"]) + advance
        t["fields"].update(fields)
        self._maybe_print(t)

    def advance(self, task: int, advance: float = 1) -> None:
        self.update(task, advance=advance)

    def _maybe_print(self, t: dict) -> None:
        import time

        now, done = time.monotonic(), t["total"] is not None and t["completed"] >= t["total"]
        if now - t["printed"] < self.every and not done:
            return
        t["printed"] = now
        count = f"{t['completed']:g}/{t['total']:g}" if t["total"] else f"{t['completed']:g}"
        info = " ".join(str(v) for v in t["fields"].values() if v)
        err.print(f"{t['description']} {count} {info}".rstrip(), markup=False)


@contextmanager
def progress(quiet: bool, *extra_columns) -> Iterator:
    """Progress on stderr: a rich bar on a terminal, plain lines every few seconds off one
    (TEMPCLR_PROGRESS_SECONDS, default 5), nothing with --quiet or on ranks other than 0."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    if not quiet and is_main_process() and not err.is_terminal:
        yield PlainProgress(float(os.environ.get("TEMPCLR_PROGRESS_SECONDS", 5)))
        return
    quiet = quiet or not is_main_process()

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


def bar_factory(bar) -> Callable[[str, Optional[int]], Callable[[int], None]]:
    """A core `Progress` (description, total) -> advance(n) over a rich Progress."""

    def open_task(description: str, total: Optional[int] = None) -> Callable[[int], None]:
        task = bar.add_task(description, total=total, info="")
        return lambda n=1: bar.advance(task, n)

    return open_task


def train_with_progress(recipe, run_dir, device: str, resume: Optional[str], quiet: bool, bar=None):
    """`core.train.run.run_training` with a per-epoch step bar (loss, lr, rate); on `bar` when
    given (the demo's), else on a bar of its own."""
    from rich.progress import TextColumn

    from tempclr_cli.core.train.run import run_training

    def run(bar):
        epochs = bar.add_task("training", total=recipe.train.epochs, info="")
        steps = bar.add_task("epoch", total=None, info="")

        def on_step(row: dict) -> None:  # every train.log_every steps
            bar.update(
                steps,
                description=f"epoch {row['epoch']}",
                completed=row["step"],
                total=row["steps"],
                info=f"loss {row['loss']:.4f}  lr {row['lr']:.2e}  {row['items_per_s']:.1f} {row['unit']}/s",
            )

        def on_epoch(row: dict) -> None:
            bar.update(epochs, completed=row["epoch"], info=f"loss {row['total']:.4f}  lr {row['lr']:.2e}")

        from tempclr_cli.core.eval.classification import with_test_accuracy

        done = run_training(recipe, run_dir, device, resume, lambda m: log(m, quiet), on_step, on_epoch)
        return with_test_accuracy(done, recipe, device, lambda m: log(m, quiet))

    if bar is not None:
        result = run(bar)
    else:
        with progress(quiet, TextColumn("{task.fields[info]}")) as own:
            result = run(own)
    if result.already_done:
        log(f"nothing to do: the run in {run_dir} already finished its {recipe.train.epochs} epochs", quiet)
    return result
