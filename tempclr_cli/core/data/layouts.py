"""Step-annotation layouts: one table that the readers, `localize`, `score`, training and retrieval read.

A layout is the way one dataset writes down where the steps of its videos happen. Each is
one reader `read(path, options) -> list[Video]` registered with `@register_layout`, which
declares, as data, what the rest of tempclr needs to know about it:

- what `--annotations` points at (a file or a folder, and which);
- the subsets `--split` can pick (none: the file is one split);
- the evaluation protocols that apply (`core.eval.grounding.PROTOCOLS` names them);
- what the `label` column of a predictions file holds for it;
- the reading options it takes beyond `--split` (`--taxonomy`, `--step-text`, `--levels`);
- whether its steps are done in a known order (`localize`'s default `--mode`).

A reader returns `annotations.Video` records: the ground truth as `steps` (each `Step.id`
is the label a prediction names it by) and, for layouts that have something to ground,
the ordered `queries` a model is asked to find (label and text). Layout modules are
imported on first use (`LAYOUT_MODULES`), so listing names costs no reading code.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tempclr_cli.core.errors import TempclrError

if TYPE_CHECKING:
    from tempclr_cli.core.data.annotations import Video

LAYOUT_MODULES = ("annotations", "htstep", "goalstep", "baglm")  # imported on first use; each registers its layouts
STEP_TEXTS = ("headline", "paragraph", "both")  # HT-Step: which taxonomy text a step is grounded by
LEVELS = ("both", "steps", "substeps")  # Ego4D Goal-Step: which levels of the hierarchy are queries
MODES = ("ordered", "unordered")


@dataclass(frozen=True)
class ReadOptions:
    """What a reader may need beyond the path; each layout declares which fields it reads."""

    split: str = "all"
    taxonomy: Path | None = None  # htstep: taxonomy.csv
    step_text: str = "headline"  # htstep: one of STEP_TEXTS
    levels: str = "both"  # goalstep: one of LEVELS
    has_features: Callable[[str], bool] | None = field(default=None, compare=False)  # crosstask's split needs it


@dataclass(frozen=True)
class Layout:
    """One step-annotation layout and the facts the commands and protocols read."""

    name: str
    summary: str  # one line for --help and the docs
    reads: str  # "file" or "folder"
    annotations: str  # what --annotations names
    read: Callable[[Path, ReadOptions], list[Video]] = field(repr=False)
    splits: tuple[str, ...] = ()  # subsets --split picks; () = the file is one split
    protocols: tuple[
        str, ...
    ] = ()  # evaluation protocols that apply (grounding.PROTOCOLS); () = not for localize/score
    labels: str = ""  # what a predictions file's `label` column holds
    options: tuple[str, ...] = ()  # ReadOptions fields read beyond `split`
    mode: str = "unordered"  # localize's default --mode: ordered when steps follow a known order

    @property
    def grounding(self) -> bool:
        """Whether `localize` and `score` take it: it has queries and a protocol to score them."""
        return bool(self.protocols)


_LAYOUTS: dict[str, Layout] = {}


def register_layout(
    name: str,
    summary: str,
    reads: str,
    annotations: str,
    *,
    splits: tuple[str, ...] = (),
    protocols: tuple[str, ...] = (),
    labels: str = "",
    options: tuple[str, ...] = (),
    mode: str = "unordered",
) -> Callable:
    """Decorator on `read(path, options) -> list[Video]`: adds the layout `name` to the table."""
    if reads not in ("file", "folder") or mode not in MODES:
        raise ValueError(f"layout {name}: reads is 'file' or 'folder', mode one of {MODES}")
    unknown = set(options) - set(ReadOptions.__dataclass_fields__) - {"split"}
    if unknown or (protocols and not labels):
        raise ValueError(f"layout {name}: unknown options {sorted(unknown)} or protocols without a label convention")

    def wrap(read: Callable) -> Callable:
        _LAYOUTS[name] = Layout(
            name, summary, reads, annotations, read, tuple(splits), tuple(protocols), labels, tuple(options), mode
        )
        return read

    return wrap


def layouts() -> dict[str, Layout]:
    """Every registered layout by name, in registration order."""
    for module in LAYOUT_MODULES:
        importlib.import_module(f"tempclr_cli.core.data.{module}")
    return dict(_LAYOUTS)


def names(grounding: bool = False) -> tuple[str, ...]:
    """The layout names (`grounding`: only those `localize` and `score` take)."""
    return tuple(n for n, lay in layouts().items() if lay.grounding or not grounding)


def get(name: str, grounding: bool = False) -> Layout:
    """The layout `name`; a clear error naming the choices otherwise."""
    table = layouts()
    if name not in names(grounding):
        raise TempclrError(f"--format {name}: choose from {', '.join(names(grounding))}")
    return table[name]


def check_options(layout: Layout, options: ReadOptions) -> None:
    """Refuse a reading option the layout does not take, or a subset it does not know, by name."""
    defaults = ReadOptions()
    for option, flag in (("taxonomy", "--taxonomy"), ("step_text", "--step-text"), ("levels", "--levels")):
        if option not in layout.options and getattr(options, option) != getattr(defaults, option):
            takers = [n for n, lay in layouts().items() if option in lay.options]
            raise TempclrError(f"{flag} applies to --format {' / '.join(takers)}, not {layout.name}")
    if options.split != "all" and options.split not in layout.splits:
        known = f"one of {', '.join(layout.splits)} or all" if layout.splits else "all (the file is one split)"
        raise TempclrError(f"--split {options.split}: --format {layout.name} knows {known}")


def read_layout(
    path: str | Path, name: str, options: ReadOptions | None = None, grounding: bool = False
) -> list[Video]:
    """The videos of `path` in layout `name`, those of `options.split` only (all: every one)."""
    layout, options = get(name, grounding), options or ReadOptions()
    check_options(layout, options)
    videos = layout.read(Path(path), options)
    return [v for v in videos if options.split == "all" or v.subset == options.split]
