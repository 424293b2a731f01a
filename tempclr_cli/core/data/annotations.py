"""Step annotations of instructional videos, read from YouCookII, COIN, CrossTask and HowTo100M layouts.

Every reader returns `Video` records: the id, the subset, the duration if known, the
steps `(start, end, text, id)` in seconds in time order and, for step grounding, the
ordered `queries` (label, text) a model is asked to find. Each reader is registered in
the table of layouts (`layouts.register_layout`); HT-Step, Ego4D Goal-Step and BaGLM's
unified files have their own modules.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from tempclr_cli.core.data.layouts import ReadOptions, read_layout, register_layout
from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.io import read_text


@dataclass
class Step:
    start: float
    end: float
    text: str
    id: str = ""  # the label a predictions file names this step by (the dataset's step id where it has one)
    rank: int = 0  # its place in the annotation file, where a scorer reads segments in file order (HT-Step)


@dataclass(frozen=True)
class Query:
    """One thing a model is asked to find in a video: its predictions-file label and its text."""

    label: str
    text: str


@dataclass
class Video:
    id: str
    subset: str
    duration: float | None
    steps: list[Step] = field(default_factory=list)  # the ground truth, in time order
    task: str = ""  # the task / activity / goal: steps come from its list, metrics average within it
    queries: list[Query] = field(default_factory=list)  # what to ground, in the layout's order


def load_json(path: Path) -> dict:
    text = read_text(path, "annotation file", "an annotation JSON file", "; expected an annotation JSON file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise TempclrError(f"{path}: invalid JSON ({e.msg} at line {e.lineno})") from None


def _database(path: Path) -> dict:
    data = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("database"), dict):
        raise TempclrError(f"{path}: expected a JSON object with a 'database' mapping (YouCookII/COIN layout)")
    return data["database"]


def seconds(value, where: str) -> float:
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
    start, end = (seconds(t, f"{where}.segment") for t in a["segment"])
    if end < start:
        raise TempclrError(f"{where}.segment: ends ({end}) before it starts ({start})")
    return Step(start, end, a[text_key], str(a.get("id", "")))


def read_entry(
    path: Path, vid: str, entry, list_key: str = "annotations", text_key: str = "sentence", task_key: str | None = None
) -> Video:
    """One video's entry of a YouCookII-style database (COIN: `annotation` / `label`), its
    steps in time order; a malformed field is an error naming it."""
    if not isinstance(entry, dict) or not isinstance(entry.get(list_key), list):
        raise TempclrError(f"{path}: video {vid}: expected an object with a '{list_key}' list")
    steps = sorted(
        (_step(path, vid, k, a, list_key, text_key) for k, a in enumerate(entry[list_key])), key=lambda s: s.start
    )
    duration = entry.get("duration")
    duration = None if duration is None else seconds(duration, f"{path}: video {vid}: duration")
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
    start, end = seconds(row[1], f"{where}: start"), seconds(row[2], f"{where}: end")
    return Step(start, end, steps[int(number) - 1], str(int(number)))


def crosstask_subsets(folder: Path, has_features, n_train: int = 30, seed: int = 0) -> dict[tuple[str, str], str]:
    """The release's CrossTask split (`dsprocessor.py:261-336`): {(task, video): subset}.

    The videos of `videos.csv` that have features (`has_features(video_id)`) and an annotation
    file, minus those of `videos_val.csv` ("validation"); of every primary task with more
    than `n_train` of them, `n_train` drawn with NumPy's seed 0 in file order are "train" and
    the rest "test"; other tasks' videos are all "train".
    """
    import numpy as np

    folder = Path(folder)

    def listed(name: str) -> dict[str, list[str]]:
        path = folder / name
        if not path.is_file():
            raise TempclrError(f"{path}: not found (the CrossTask release's video list)")
        found: dict[str, list[str]] = {}
        text = read_text(path, "CrossTask video list", "the release's videos.csv")
        for k, row in enumerate(csv.reader(text.splitlines())):
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
        train = (
            set(rng.choice(vids, n_train, replace=False).tolist())
            if task in primary and len(vids) > n_train
            else set(vids)
        )
        subsets.update({(task, vid): "train" if vid in train else "test" for vid in vids})
    return subsets


def task_queries(videos: list[Video]) -> dict[str, list[Query]]:
    """Each task's ordered step list from its videos' annotations: by step id where the steps
    have numeric ids (COIN), else by first start; a step's label is its id (else its index)."""
    found: dict[str, dict[str, tuple[float, str]]] = {}
    for v in videos:
        for s in v.steps:
            key = float(s.id) if s.id.replace(".", "", 1).isdigit() else s.start
            found.setdefault(v.task, {}).setdefault(s.text, (key, s.id))
    ordered = {task: sorted(steps, key=lambda text: steps[text][0]) for task, steps in found.items()}
    return {
        task: [Query(found[task][text][1] or str(k), text) for k, text in enumerate(texts)]
        for task, texts in ordered.items()
    }


def with_queries(videos: list[Video], tasks: dict[str, list[Query]]) -> list[Video]:
    """Give every video its task's steps as queries, and each ground-truth step its query's label."""
    for v in videos:
        v.queries = list(tasks.get(v.task, []))
        labels = {q.text: q.label for q in reversed(v.queries)}  # a text listed twice: its first label
        for s in v.steps:
            s.id = labels.get(s.text, s.id)
    return videos


def read_howto100m(path: Path) -> list[Video]:
    """MMPT's HowTo100M captions (`raw_caption*.json`): `{vid: {"start": [...], "end": [...],
    "text": [...]}}`, every video a training video; captions in time order."""
    data = load_json(path)
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


TASK_LABELS = "the step's id in the annotation file (else its index in the task's step list)"


@register_layout(
    "youcook2",
    "YouCookII: each video's captioned segments, the video its own task",
    "file",
    "youcookii_annotations_trainval.json",
    splits=("training", "validation", "testing"),
    protocols=("step-recall",),
    labels=TASK_LABELS,
    mode="ordered",
)
def _youcook2_layout(path: Path, options: ReadOptions) -> list[Video]:
    videos = read_youcook2(path)
    for v in videos:
        v.task = v.id
    return with_queries(videos, task_queries(videos))


@register_layout(
    "coin",
    "COIN: steps of 180 tasks, a task's step list ordered by step id",
    "file",
    "COIN.json",
    splits=("training", "testing"),
    protocols=("step-recall", "framewise"),
    labels=TASK_LABELS,
    mode="ordered",
)
def _coin_layout(path: Path, options: ReadOptions) -> list[Video]:
    videos = read_coin(path)
    return with_queries(videos, task_queries(videos))


@register_layout(
    "crosstask",
    "CrossTask: primary tasks' ordered step lists and per-video step CSVs",
    "folder",
    "a CrossTask folder (tasks_primary.txt, annotations/, videos.csv, videos_val.csv)",
    splits=("train", "test", "validation"),
    protocols=("step-recall",),
    labels="the step's number in its task (1-based, as in annotations/*.csv)",
    mode="ordered",
)
def _crosstask_layout(folder: Path, options: ReadOptions) -> list[Video]:
    """The release's split (`crosstask_subsets`) depends on which videos have features:
    `options.has_features` says (every video when not given)."""
    videos, tasks = read_crosstask(folder)
    if options.split != "all":
        subsets = crosstask_subsets(folder, options.has_features or (lambda vid: True))
        for v in videos:
            v.subset = subsets.get((v.task, v.id), "")
    return with_queries(videos, {t: [Query(str(k + 1), s) for k, s in enumerate(steps)] for t, steps in tasks.items()})


@register_layout(
    "howto100m",
    "HowTo100M narrations (MMPT raw_caption*.json): captions to train on",
    "file",
    "raw_caption_dedup.json",
    splits=("training",),
)
def _howto100m_layout(path: Path, options: ReadOptions) -> list[Video]:
    return read_howto100m(path)


def read_annotations(path: str | Path, fmt: str = "youcook2") -> list[Video]:
    """Every video of `path` in layout `fmt` (`layouts.names()`; crosstask: a folder)."""
    return read_layout(path, fmt)
