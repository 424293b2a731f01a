"""Class labels for videos, read from the layouts datasets ship with.

Every reader returns `{video_id: class_name}`, where `video_id` is the video's path
relative to the dataset root without extension (`ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01`),
or a bare id for formats that have no folders (HMDB51, CSV, few-shot lists).
"""

from __future__ import annotations

import csv
from pathlib import Path

from tempclr_cli.core.data.splits import hmdb51_lists, ucf101_classes, ucf101_list
from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.io import read_text
from tempclr_cli.core.media.video import VIDEO_EXTENSIONS


def _strip(video: str) -> str:
    p = Path(video.strip())
    return str(p.with_suffix("")) if p.suffix.lower() in VIDEO_EXTENSIONS | {".npy"} else str(p)


def read_ucf101(folder: Path, split: int | None = None) -> dict[str, str]:
    """classInd.txt + trainlistNN.txt / testlistNN.txt (all splits' files when split is None)."""
    classes = ucf101_classes(folder)
    pattern = f"*list{split:02d}.txt" if split else "*list*.txt"
    labels = {_strip(rel): cls for path in sorted(folder.glob(pattern)) for rel, cls in ucf101_list(path)}
    if not labels:
        raise TempclrError(f"{folder}: classInd.txt found but no trainlist/testlist files")
    unknown = set(labels.values()) - set(classes.values())
    if unknown:
        raise TempclrError(f"{folder}: classes {sorted(unknown)[:3]} are not in classInd.txt")
    return labels


def read_hmdb51(folder: Path, split: int = 1) -> dict[str, str]:
    """Per-class `<class>_test_split<k>.txt` files of `<video> <0|1|2>` lines (all used)."""
    return {_strip(video): cls for video, cls, _ in hmdb51_lists(folder, split)}


def read_csv(path: Path) -> dict[str, str]:
    """Rows `video,class` (a header row naming `video` is skipped)."""
    labels = {}
    for k, row in enumerate(csv.reader(read_text(path, "labels file", "a video,class CSV file").splitlines())):
        if not row or (k == 0 and row[0].strip().lower() in ("video", "video_id", "id")):
            continue
        if len(row) < 2:
            raise TempclrError(f"{path}:{k + 1}: expected 'video,class'")
        labels[_strip(row[0])] = row[1].strip()
    return labels


def read_class_lines(path: Path) -> dict[str, str]:
    """Few-shot split lists: one `class/video_id` a line (Kinetics-100, SSv2 few-shot)."""
    labels = {}
    for k, line in enumerate(read_text(path, "labels file", "a text file of class/video_id lines").splitlines()):
        if line.strip():
            if "/" not in line:
                raise TempclrError(f"{path}:{k + 1}: expected 'class/video_id', got {line.strip()!r}")
            labels[_strip(line)] = line.strip().split("/")[0]
    return labels


def read_folders(folder: Path) -> dict[str, str]:
    """Class sub-folders of videos or feature files: `<class>/<video>.*`."""
    labels = {}
    for path in sorted(folder.glob("*/*")):
        if path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS | {".npy"}:
            labels[_strip(str(path.relative_to(folder)))] = path.parent.name
    return labels


def read_labels(path: str | Path) -> dict[str, str]:
    """Detect the layout of `path` and read it (see the readers above)."""
    path = Path(path)
    if not path.exists():
        raise TempclrError(f"{path}: labels file or folder not found")
    if path.is_dir():
        if (path / "classInd.txt").exists():
            labels = read_ucf101(path)
        elif list(path.glob("*_test_split1.txt")):
            labels = read_hmdb51(path)
        else:
            labels = read_folders(path)
    elif path.suffix.lower() == ".csv":
        labels = read_csv(path)
    else:
        labels = read_class_lines(path)
    if not labels:
        raise TempclrError(
            f"{path}: no labelled videos found (expected UCF101/HMDB51 split files, a video,class CSV, "
            "class/video lines, or class sub-folders)"
        )
    return labels
