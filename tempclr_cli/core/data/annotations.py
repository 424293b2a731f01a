"""Step annotations of instructional videos, read from YouCookII, COIN and CrossTask layouts.

Every reader returns `Video` records: the id, the subset, the duration if known and
the ordered steps `(start, end, text)` in seconds.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.io import read_text


@dataclass
class Step:
    start: float
    end: float
    text: str
    id: str = ""  # the dataset's step id (COIN), used to order a task's steps


@dataclass
class Video:
    id: str
    subset: str
    duration: float | None
    steps: list[Step] = field(default_factory=list)
    task: str = ""  # COIN/CrossTask task; the ordered step list of the task lives in `task_steps`


def _load_json(path: Path) -> dict:
    text = read_text(path, "annotation file", "an annotation JSON file", "; expected an annotation JSON file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise TempclrError(f"{path}: invalid JSON ({e.msg} at line {e.lineno})") from None


def _database(path: Path) -> dict:
    data = _load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("database"), dict):
        raise TempclrError(f"{path}: expected a JSON object with a 'database' mapping (YouCookII/COIN layout)")
    return data["database"]


def _seconds(value, where: str) -> float:
    """A finite, non-negative number of seconds, or an error naming the field."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise TempclrError(f"{where}: expected a number of seconds, got {value!r}") from None
    if not 0 <= x < 1e9:  # also false for nan
        raise TempclrError(f"{where}: {value!r} is not a time in seconds (finite, >= 0)")
    return x


def _step(path: Path, vid: str, k: int, a, list_key: str, text_key: str) -> Step:
    where = f"{path}: video {vid}: {list_key}[{k}]"
    if not isinstance(a, dict) or not isinstance(a.get("segment"), list) or len(a["segment"]) != 2:
        raise TempclrError(f"{where}: expected {{'segment': [start, end], '{text_key}': ...}}")
    if not isinstance(a.get(text_key), str):
        raise TempclrError(f"{where}.{text_key}: expected text, got {a.get(text_key)!r}")
    start, end = (_seconds(t, f"{where}.segment") for t in a["segment"])
    if end < start:
        raise TempclrError(f"{where}.segment: ends ({end}) before it starts ({start})")
    return Step(start, end, a[text_key], str(a.get("id", "")))


def read_entry(path: Path, vid: str, entry, list_key: str = "annotations", text_key: str = "sentence",
               task_key: str | None = None) -> Video:
    """One video's entry of a YouCookII-style database (COIN: `annotation` / `label`), its
    steps in time order; a malformed field is an error naming it."""
    if not isinstance(entry, dict) or not isinstance(entry.get(list_key), list):
        raise TempclrError(f"{path}: video {vid}: expected an object with a '{list_key}' list")
    steps = sorted((_step(path, vid, k, a, list_key, text_key) for k, a in enumerate(entry[list_key])),
                   key=lambda s: s.start)
    duration = entry.get("duration")
    duration = None if duration is None else _seconds(duration, f"{path}: video {vid}: duration")
    task = str(entry.get(task_key, "")) if task_key else ""
    return Video(vid, str(entry.get("subset", "")), duration, steps, task)


def _read_database(path: Path, list_key: str, text_key: str, task_key: str | None) -> list[Video]:
    return [read_entry(path, vid, entry, list_key, text_key, task_key) for vid, entry in _database(path).items()]


def read_youcook2(path: Path) -> list[Video]:
    """`{"database": {vid: {"subset", "duration", "annotations": [{"segment", "sentence"}]}}}`."""
    return _read_database(path, "annotations", "sentence", None)


def read_coin(path: Path) -> list[Video]:
    """COIN.json: `{"database": {vid: {"subset", "class", "duration", "annotation": [{"segment", "label"}]}}}`."""
    return _read_database(path, "annotation", "label", "class")


def read_crosstask_tasks(path: Path) -> dict[str, list[str]]:
    """tasks_primary.txt: blocks of task id, name, url, #steps, comma-separated steps, blank line."""
    lines = read_text(path, "CrossTask task file", "tasks_primary.txt").splitlines()
    tasks, k = {}, 0
    while k < len(lines):
        if not lines[k].strip():
            k += 1
            continue
        block = lines[k : k + 5]
        if len(block) < 5:
            raise TempclrError(f"{path}:{k + 1}: incomplete task block (id, name, url, #steps, steps)")
        steps = [s.strip() for s in block[4].split(",")]
        if not block[3].strip().isdigit():
            raise TempclrError(f"{path}:{k + 4}: expected the number of steps, got {block[3]!r}")
        if len(steps) != int(block[3]):
            raise TempclrError(f"{path}:{k + 1}: task {block[0]} lists {len(steps)} steps, header says {block[3]}")
        tasks[block[0].strip()] = steps
        k += 5
    return tasks


def read_crosstask(folder: Path) -> tuple[list[Video], dict[str, list[str]]]:
    """tasks_primary.txt plus `annotations/<task>_<vid>.csv` (step number 1-based, start, end)."""
    tasks = read_crosstask_tasks(folder / "tasks_primary.txt")
    videos = []
    for path in sorted((folder / "annotations").glob("*.csv")):
        task, vid = path.stem.split("_", 1)
        if task not in tasks:
            continue
        rows = [r for r in csv.reader(read_text(path, "annotation", "a CSV file").splitlines()) if r]
        steps = [_crosstask_step(path, k, r, tasks[task]) for k, r in enumerate(rows)]
        videos.append(Video(vid, "", None, sorted(steps, key=lambda s: s.start), task))
    return videos, tasks


def _crosstask_step(path: Path, k: int, row: list[str], steps: list[str]) -> Step:
    """One `step, start, end` row (step numbers from 1)."""
    where = f"{path}:{k + 1}"
    try:
        number = float(row[0])
    except (IndexError, ValueError):
        number = 0.0
    if len(row) < 3 or not number.is_integer() or not 1 <= number <= len(steps):
        raise TempclrError(f"{where}: expected 'step (1-{len(steps)}),start,end', got {','.join(row)!r}")
    start, end = _seconds(row[1], f"{where}: start"), _seconds(row[2], f"{where}: end")
    return Step(start, end, steps[int(number) - 1])


def crosstask_subsets(folder: Path, has_features, n_train: int = 30, seed: int = 0) -> dict[tuple[str, str], str]:
    """The release's CrossTask split (`dsprocessor.py:261-336`): {(task, video): subset}.

    The videos of `videos.csv` that have features (`has_features(video_id)`) and an annotation
    file, minus those of `videos_val.csv` ("validation"); of every primary task with more
    than `n_train` of them, `n_train` drawn with NumPy's seed 0 in file order are "train" and
    the rest "test"; other tasks' videos are all "train".
    """
    folder = Path(folder)

    def listed(name: str) -> dict[str, list[str]]:
        path = folder / name
        if not path.is_file():
            raise TempclrError(f"{path}: not found (the CrossTask release's video list)")
        found: dict[str, list[str]] = {}
        for k, row in enumerate(csv.reader(path.open(encoding="utf-8", newline=""))):
            if not row:
                continue
            if len(row) < 2:
                raise TempclrError(f"{path}:{k + 1}: expected 'task,video,url'")
            task, vid = row[0].strip(), row[1].strip()
            if has_features(vid) and (folder / "annotations" / f"{task}_{vid}.csv").is_file():
                found.setdefault(task, []).append(vid)
        return found

    validation = listed("videos_val.csv")
    primary = read_crosstask_tasks(folder / "tasks_primary.txt")
    rng = np.random.RandomState(seed)  # the release seeds NumPy's global generator with 0
    subsets = {(task, vid): "validation" for task, vids in validation.items() for vid in vids}
    for task, vids in listed("videos.csv").items():
        vids = [v for v in vids if v not in validation.get(task, [])]
        train = set(rng.choice(vids, n_train, replace=False).tolist()) if task in primary and len(vids) > n_train else set(vids)
        subsets.update({(task, vid): "train" if vid in train else "test" for vid in vids})
    return subsets


def task_steps(videos: list[Video]) -> dict[str, list[str]]:
    """Each task's ordered step list from its videos' annotations (COIN: by step id)."""
    found: dict[str, dict[str, float]] = {}
    for v in videos:
        for s in v.steps:
            key = float(s.id) if s.id.replace(".", "", 1).isdigit() else s.start
            found.setdefault(v.task, {}).setdefault(s.text, key)
    return {task: sorted(steps, key=steps.get) for task, steps in found.items()}


def read_howto100m(path: Path) -> list[Video]:
    """MMPT's HowTo100M captions (`raw_caption*.json`): `{vid: {"start": [...], "end": [...],
    "text": [...]}}`, every video a training video; captions in time order."""
    data = _load_json(path)
    if not isinstance(data, dict):
        raise TempclrError(f"{path}: expected a JSON object of videos, each {{'start', 'end', 'text'}} lists")
    videos = []
    for vid, entry in data.items():
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), list) for k in ("start", "end", "text")):
            raise TempclrError(f"{path}: video {vid}: expected 'start', 'end' and 'text' lists")
        if not len(entry["start"]) == len(entry["end"]) == len(entry["text"]):
            raise TempclrError(f"{path}: video {vid}: 'start', 'end' and 'text' differ in length")
        rows = [{"segment": [a, b], "sentence": t} for a, b, t in zip(entry["start"], entry["end"], entry["text"])]
        videos.append(read_entry(path, vid, {"annotations": rows, "subset": "training"}))
    return videos


FORMATS = {"youcook2": read_youcook2, "coin": read_coin, "crosstask": lambda p: read_crosstask(p)[0],
           "howto100m": read_howto100m}  # step-annotation layouts (`data.format`, `--format`)


def read_annotations(path: str | Path, fmt: str = "youcook2") -> list[Video]:
    """Read annotations in a format of `FORMATS` (crosstask: a folder)."""
    if fmt not in FORMATS:
        raise TempclrError(f"annotation format {fmt!r}: use {', '.join(FORMATS)}")
    return FORMATS[fmt](Path(path))


def read_tasks(path: str | Path, fmt: str = "coin") -> tuple[list[Video], dict[str, list[str]]]:
    """Videos and each task's ordered step list, for step localisation: CrossTask's task file,
    COIN's step ids, or YouCookII with every video its own task."""
    if fmt == "crosstask":
        return read_crosstask(Path(path))
    videos = read_annotations(path, fmt)
    if fmt == "youcook2":
        for v in videos:
            v.task = v.id
    return videos, task_steps(videos)
