"""Step-grounding predictions: HT-Step's CSV of scored candidate segments, read and written.

The file is what HT-Step's `evaluation/eval_article_grounding.py` and its EvalAI server read:
a header, then one row per candidate, `video-id,t-start,t-end,label,score`. Columns are
found by name, as pandas finds them there, so the unnamed index column that
`example_predictions_val_seen.csv` starts with (pandas' `Unnamed: 0`) and any other extra
column are allowed. What `label` holds depends on the annotation layout (`Layout.labels`).

Reading is columnar (a 2.3M-row file in a few seconds): each block of rows is converted at
once, and only when a block holds a bad row is it read again row by row, so that the error
names the file, the line and the field.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.io import atomic_path, read_text

if TYPE_CHECKING:
    import numpy as np

    from tempclr_cli.core.data.annotations import Video

COLUMNS = ("video-id", "t-start", "t-end", "label", "score")
BLOCK = 1 << 16  # rows converted at once
CHARS = 1 << 22  # characters of a file without quotes cut at once (then to the end of the line)
_INTEGER = re.compile(r"[+-]?\d+(\.0*)?")


@dataclass
class Predictions:
    """N scored candidate segments as columns, in file order: row i is video `videos[video[i]]`,
    label `labels[label[i]]`, [start[i], end[i]] seconds, `score[i]` (higher is better)."""

    videos: list[str]
    labels: list[str]
    video: np.ndarray  # (N,) int64
    label: np.ndarray  # (N,) int64
    start: np.ndarray  # (N,) float64
    end: np.ndarray  # (N,) float64
    score: np.ndarray  # (N,) float64
    source: str = ""  # the file read, for messages

    def __len__(self) -> int:
        return len(self.score)


def canonical_label(text: str) -> str:
    """A label as it is compared: stripped, and an integer written as `513.0` is `513` (pandas
    reads a column of such numbers as numbers)."""
    text = text.strip()
    return str(int(float(text))) if _INTEGER.fullmatch(text) else text


def _header(path: Path, row: list[str] | None) -> list[int]:
    """The positions of COLUMNS in the header row."""
    names = [c.strip() for c in row or []]
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise TempclrError(
            f"{path}: line 1: no {', '.join(missing)} column; expected the header "
            f"{','.join(COLUMNS)} (an unnamed index column before it is allowed)"
        )
    twice = [c for c in COLUMNS if names.count(c) > 1]
    if twice:
        raise TempclrError(f"{path}: line 1: column {twice[0]} appears twice")
    return [names.index(c) for c in COLUMNS]


def _row_error(cells: list[str], width: int, at: list[int]) -> str | None:
    """What is wrong with one data row (field first), or None: the rule the fast path applies in bulk."""
    if len(cells) != width:
        return f"has {len(cells)} fields; the header has {width}"
    video, start, end, label, score = (cells[k] for k in at)
    if not video.strip():
        return "video-id: empty"
    times = []
    for name, value in (("t-start", start), ("t-end", end)):
        try:
            times.append(number(value))
        except ValueError:
            return f"{name}: expected a time in seconds, got {value!r}"
        if not 0 <= times[-1] < math.inf:
            return f"{name}: {value!r} is not a time in seconds (finite, >= 0)"
    if times[1] < times[0]:
        return f"t-end: ends ({end}) before it starts ({start})"
    if not label.strip():
        return "label: empty"
    try:
        ok = math.isfinite(number(score))
    except ValueError:
        ok = False
    return None if ok else f"score: expected a finite number, got {score!r}"


def _first_error(path: Path, text: str, width: int, at: list[int]) -> TempclrError:
    """Read the file again row by row: the first bad row's line and field."""
    reader = csv.reader(io.StringIO(text))
    try:
        next(reader)
        for cells in reader:
            problem = _row_error(cells, width, at) if cells else None
            if problem:
                return TempclrError(f"{path}: line {reader.line_num}: {problem}")
    except csv.Error as e:  # a carriage return or NUL inside an unquoted field, a quote left open
        return TempclrError(f"{path}: line {reader.line_num}: not CSV ({e})")
    return TempclrError(f"{path}: unreadable rows")  # the fast path and _row_error disagree: a bug


def number(text: str) -> float:
    """A number as NumPy's C reader takes it: Python's float() of ASCII text without underscores."""
    if "_" in text or not text.isascii():
        raise ValueError(text)
    return float(text)


def _csv_blocks(text: str, width: int, at: list[int]) -> Iterator[tuple[np.ndarray, np.ndarray] | None]:
    """`_blocks` through the csv module (quoted fields)."""
    import numpy as np

    reader = csv.reader(io.StringIO(text))
    next(reader)
    while rows := [r for r in itertools.islice(reader, BLOCK) if r]:
        try:
            numbers = np.array([[number(r[at[k]]) for k in (1, 2, 4)] for r in rows], dtype=np.float64)
        except (ValueError, IndexError):
            numbers = None
        if numbers is None or any(len(r) != width for r in rows):
            yield None
            return
        yield numbers, np.array([[r[at[0]], r[at[3]]] for r in rows], dtype=str)


def _blocks(text: str, width: int, at: list[int]) -> Iterator[tuple[np.ndarray, np.ndarray] | None]:
    """The data rows a block at a time: (start, end, score) (n, 3) and (video, label) (n, 2), or
    None for a block with a bad row. A file without quotes goes through NumPy's C reader a few MB
    at a time (the cells the csv module would give: blank lines skipped, spaces kept, no
    comments; every row as wide as the header, by its commas); one with quotes through csv."""
    import warnings

    import numpy as np

    if '"' in text or "\r" in text:
        yield from _csv_blocks(text, width, at)
        return
    start = text.find("\n") + 1 if "\n" in text else len(text)
    while start < len(text):
        stop = text.find("\n", start + CHARS)
        stop = len(text) if stop < 0 else stop
        block, start = text[start:stop], stop + 1
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "input contained no data": a block of blank lines
                numbers, words = (
                    np.loadtxt(io.StringIO(block), delimiter=",", comments=None, ndmin=2, dtype=dtype, usecols=columns)
                    for dtype, columns in ((np.float64, (at[1], at[2], at[4])), (str, (at[0], at[3], width - 1)))
                )
        except ValueError:
            yield None
            return
        same = len(numbers) == len(words) and block.count(",") == len(words) * (width - 1)
        yield (numbers.reshape(-1, 3), words[:, :2].reshape(-1, 2)) if same else None


def _codes(column: np.ndarray, known: dict[str, int]) -> np.ndarray | None:
    """Each value's code in `known` (new values added); None when a value is blank."""
    import numpy as np

    values, inverse = np.unique(column, return_inverse=True)
    values = values.tolist()
    if not all(v.strip() for v in values):
        return None
    return np.array([known.setdefault(v, len(known)) for v in values], dtype=np.int64)[inverse].reshape(-1)


def _convert(numbers: np.ndarray, words: np.ndarray, videos: dict[str, int], labels: dict[str, int]):
    """One block's (video codes, label codes, start, end, score), or None when a row is bad."""
    import numpy as np

    start, end, score = numbers.T
    if not (((start >= 0) & (end >= start) & (end < np.inf)).all() and np.isfinite(score).all()):
        return None
    video, label = _codes(words[:, 0], videos), _codes(words[:, 1], labels)
    return None if video is None or label is None else (video, label, start.copy(), end.copy(), score.copy())


def read_predictions(path: str | Path) -> Predictions:
    """The predictions CSV at `path`; a malformed row is an error naming the line and the field."""
    import numpy as np

    path = Path(path)
    text = read_text(path, "predictions file", "a predictions CSV file").replace("\r\n", "\n")  # csv's line ends
    try:
        header = next(csv.reader(io.StringIO(text)), None)
    except csv.Error as e:
        raise TempclrError(f"{path}: line 1: not CSV ({e})") from None
    at, width = _header(path, header), len(header or [])
    videos: dict[str, int] = {}
    labels: dict[str, int] = {}
    parts: list[tuple] = []
    try:
        for cells in _blocks(text, width, at):
            block = None if cells is None else _convert(*cells, videos, labels)
            if block is None:
                raise _first_error(path, text, width, at)
            parts.append(block)
    except csv.Error:
        raise _first_error(path, text, width, at) from None
    video, label, start, end, score = (
        np.concatenate([c[k] for c in parts]) if parts else np.zeros(0, dtype)
        for k, dtype in enumerate((np.int64, np.int64, float, float, float))
    )
    names = [canonical_label(x) for x in labels]  # labels equal once canonical share one code
    merged = {n: k for k, n in enumerate(dict.fromkeys(names))}
    remap = np.array([merged[n] for n in names], dtype=np.int64)
    return Predictions(
        list(videos), list(merged), video, remap[label] if len(label) else label, start, end, score, str(path)
    )


def write_predictions(path: str | Path, rows) -> int:
    """Write `(video, start, end, label, score)` rows as the CSV above (floats exact: `repr`
    round-trips), atomically; the number of rows written."""
    count = 0
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS)
        for video, start, end, label, score in rows:
            writer.writerow((video, repr(float(start)), repr(float(end)), label, repr(float(score))))
            count += 1
    return count


@dataclass
class Matched:
    """Predictions matched to the videos being scored (rows of other videos left out, file
    order kept): row i is `videos[video[i]]`; labels are codes into `labels`, which also
    holds every label of the videos' ground truth and queries."""

    video: np.ndarray  # (n,) int64 index into the scored videos
    label: np.ndarray  # (n,) int64
    start: np.ndarray  # (n,) float64
    end: np.ndarray
    score: np.ndarray
    labels: list[str]
    code: dict[str, int]  # label -> code
    outside: int  # rows naming a video that is not scored

    def __len__(self) -> int:
        return len(self.score)


def match(predictions: Predictions, videos: list[Video]) -> Matched:
    """The rows of `predictions` that name one of `videos`, with a label code for every label
    the videos know."""
    import numpy as np

    where = {v.id: k for k, v in enumerate(videos)}
    index = np.array([where.get(v, -1) for v in predictions.videos], dtype=np.int64)
    rows = index[predictions.video] >= 0 if len(predictions) else np.zeros(0, bool)
    labels = list(predictions.labels)
    code = {label: k for k, label in enumerate(labels)}
    for v in videos:
        for label in [s.id for s in v.steps] + [q.label for q in v.queries]:
            canonical = canonical_label(label)
            if canonical not in code:
                code[canonical] = len(labels)
                labels.append(canonical)
            code[label] = code[canonical]  # a layout's own spelling of a label finds the same code
    return Matched(
        index[predictions.video[rows]],
        predictions.label[rows],
        predictions.start[rows],
        predictions.end[rows],
        predictions.score[rows],
        labels,
        code,
        int((~rows).sum()),
    )
