"""Split lists of action datasets: one parser per layout, shared by every reader.

UCF101 (`classInd.txt`, `trainlistNN.txt`, `testlistNN.txt`), HMDB51 (per-class
`<class>_test_split<k>.txt` of `<video> <0|1|2>`: 1 train, 2 test, 0 unused) and
Diving48 V2 (`Diving48_V2_<subset>.json`), and plain class folders. Each is one entry of
`ACTION_LAYOUTS` (`@register_action_layout`), the table that `data.format` in recipes,
`retrieve --format` (for `--task nn`) and `split_videos` read; `split_videos` turns a layout
into the (video path, class) lists that training and evaluation read; `data.labels` turns
them into the {video id: class} maps of few-shot evaluation. Step-annotation layouts have
their own table (`data.layouts`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.io import read_text
from tempclr_cli.core.media.video import VIDEO_EXTENSIONS

HMDB51_STATUS = {"train": "1", "test": "2"}


def ucf101_classes(folder: Path) -> dict[str, str]:
    """classInd.txt: `1 ApplyEyeMakeup` lines -> {"1": "ApplyEyeMakeup"}."""
    classes = {}
    path = folder / "classInd.txt"
    for k, line in enumerate(read_text(path, "UCF101 class list", "a classInd.txt file").splitlines(), 1):
        if line.strip():
            try:
                idx, name = line.split()
            except ValueError:
                raise TempclrError(f"{path}:{k}: expected '<number> <class>', got {line.strip()!r}") from None
            classes[idx] = name
    return classes


def ucf101_list(path: Path) -> list[tuple[str, str]]:
    """One train/test list: (relative video path, class) per line; the class is the folder."""
    text = read_text(path, "UCF101 split list", "a trainlistNN.txt / testlistNN.txt file")
    rels = [line.split()[0] for line in text.splitlines() if line.strip()]
    return [(rel, rel.split("/")[0]) for rel in rels]


def hmdb51_lists(folder: Path, split: int) -> list[tuple[str, str, str]]:
    """(video file name, class, status "0"|"1"|"2") from every `<class>_test_split<split>.txt`."""
    suffix = f"_test_split{split}.txt"
    rows = []
    for path in sorted(folder.glob(f"*{suffix}")):
        cls = path.name[: -len(suffix)]
        for parts in (line.split() for line in read_text(path, "HMDB51 split list", "a split file").splitlines()):
            if len(parts) == 2:
                rows.append((parts[0], cls, parts[1]))
    return rows


def read_diving48(root: Path, listing: Path) -> list[tuple[Path, str]]:
    """Diving48 V2 lists: a JSON list of {"vid_name", "label", "start_frame", "end_frame"}."""
    text = read_text(listing, "Diving48 list", "a Diving48_V2_<subset>.json file")
    try:
        rows = json.loads(text)
        return [(Path(root) / f"{r['vid_name']}.mp4", str(r["label"])) for r in rows]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise TempclrError(f"{listing}: expected a JSON list of {{vid_name, label, start_frame, end_frame}}") from None


@dataclass(frozen=True)
class ActionLayout:
    """One action dataset's layout: `read(root, lists folder, split number, subset)` gives (video, class)."""

    name: str
    summary: str
    read: Callable[[Path, Path, int, str], list[tuple[Path, str]]]


ACTION_LAYOUTS: dict[str, ActionLayout] = {}


def register_action_layout(name: str, summary: str) -> Callable:
    """Decorator on a reader `(root, folder, split, subset) -> [(video path, class)]`: one entry of the table."""

    def wrap(read: Callable) -> Callable:
        ACTION_LAYOUTS[name] = ActionLayout(name, summary, read)
        return read

    return wrap


@register_action_layout("ucf101", "UCF101: classInd.txt, trainlistNN.txt / testlistNN.txt (the split number NN)")
def _ucf101(root: Path, folder: Path, split: int, subset: str) -> list[tuple[Path, str]]:
    listing = folder / f"{subset}list{split:02d}.txt"
    if not listing.exists():
        raise TempclrError(f"{listing}: UCF101 {subset} list not found (data.annotations: the ucfTrainTestlist folder)")
    return [(root / rel, cls) for rel, cls in ucf101_list(listing)]


@register_action_layout("hmdb51", "HMDB51: <class>_test_split<k>.txt lists of '<video> <0|1|2>'")
def _hmdb51(root: Path, folder: Path, split: int, subset: str) -> list[tuple[Path, str]]:
    items = [
        (root / cls / video, cls)
        for video, cls, status in hmdb51_lists(folder, split)
        if status == HMDB51_STATUS[subset]
    ]
    if not items:
        raise TempclrError(f"{folder}: no HMDB51 split files (<class>_test_split{split}.txt) with {subset} videos")
    return items


@register_action_layout("diving48", "Diving48 V2: Diving48_V2_<subset>.json lists")
def _diving48(root: Path, folder: Path, split: int, subset: str) -> list[tuple[Path, str]]:
    return read_diving48(root, folder / f"Diving48_V2_{subset}.json")


@register_action_layout("folder", "class folders (root/<class>/<video>): every video is a training video")
def _folder(root: Path, folder: Path, split: int, subset: str) -> list[tuple[Path, str]]:
    if subset != "train":
        raise TempclrError(
            f"data.format folder has training videos only (no {subset} split); use ucf101, hmdb51 or "
            "diving48 lists for a test split"
        )
    return [(p, p.parent.name) for p in sorted(root.glob("*/*")) if p.suffix.lower() in VIDEO_EXTENSIONS]


def split_videos(root: Path, fmt: str, annotations: Path | None, split: int, subset: str) -> list[tuple[Path, str]]:
    """(video path, class) of the `subset` ("train" or "test") of an action layout of `ACTION_LAYOUTS`."""
    if fmt not in ACTION_LAYOUTS:
        raise TempclrError(f"data.format {fmt}: action videos come from {', '.join(ACTION_LAYOUTS)}")
    root = Path(root)
    return ACTION_LAYOUTS[fmt].read(root, Path(annotations) if annotations else root, split, subset)
