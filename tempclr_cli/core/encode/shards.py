"""Where `extract`'s videos come from and how a run's share of them is chosen.

Inputs, each video with its key (its id in every output, `failures.jsonl` and later commands):

- video files and folders: the key is the path below the inputs' common folder (or --root) without
  its extension (`io.distinct_stems`: two that share a stem keep their extensions);
- a CSV of `video_path[,key]` (a header row naming `video_path` is skipped): the given key, else as above;
- webdataset tar shards in video2dataset's layout (`key.mp4`, `key.json`, `key.txt`; local paths or
  brace-expanded lists, `shards/{00000..00009}.tar`): the key is the member's name up to its first dot,
  as webdataset splits it. A video is read from the tar where it lies, never unpacked to disk: its
  bytes go to an anonymous in-memory file (`opened`) that PyAV opens by path.

Shares: a run (a torchrun rank, a SLURM array task, `--shard i/n`) takes whole output parts, by count
(every n-th) or, with durations, by greedy largest-first packing (`assign`), so that n tasks finish
together when videos vary tenfold in length. Every task computes the same assignment from the same
inputs, so together they cover every video once.
"""

from __future__ import annotations

import csv
import heapq
import json
import os
import re
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tempclr_cli.core import io
from tempclr_cli.core.errors import TempclrError

BALANCES = ("auto", "duration", "count")  # how --shard / array tasks split the parts; auto: duration where it reads
ENGINES = ("local", "ray")  # local: decoding processes beside one encoder (torchrun / SLURM scale it); ray: Ray Data
DURATIONS = "durations.json"  # in the output folder: declared durations by key, probed once for every task


@dataclass(frozen=True)
class Member:
    """A video inside an uncompressed tar shard: bytes `offset` to `offset + size` of `tar`."""

    tar: Path
    name: str
    offset: int
    size: int

    def __str__(self) -> str:
        return f"{self.tar}/{self.name}"


@dataclass(frozen=True)
class Video:
    source: Path | Member
    key: str
    shard: str | None = None  # the input shard it came from (its path below the shards' folder, no suffix)


def expand_braces(pattern: str) -> list[str]:
    """`a/{00000..00002}.tar` -> a/00000.tar, a/00001.tar, a/00002.tar (zero padding kept);
    `{x,y}` -> x, y; nested and repeated groups expand left to right, as webdataset's braceexpand."""
    match = re.search(r"\{([^{}]*)\}", pattern)
    if match is None:
        return [pattern]
    head, tail, body = pattern[: match.start()], pattern[match.end() :], match.group(1)
    span = re.fullmatch(r"(\d+)\.\.(\d+)", body)
    if span:
        lo, hi = span.groups()
        width = len(lo) if lo.startswith("0") else 0
        items = [str(k).zfill(width) for k in range(int(lo), int(hi) + 1)]
    elif "," in body:
        items = body.split(",")
    else:
        items = ["{" + body + "}"]  # not a brace expression: a literal part of a file name
        return [head + items[0] + rest for rest in expand_braces(tail)]
    return [x for item in items for x in expand_braces(head + item + tail)]


def read_inputs(sources: list, root: Path | None = None) -> list[Video]:
    """Every video of `sources` (files, folders, `.csv` lists, `.tar` shards, brace patterns), keyed;
    two videos with one key are refused (their outputs would overwrite each other)."""
    from tempclr_cli.core.media.video import find_videos

    items = [x for s in sources for x in expand_braces(str(s))]
    missing = [x for x in items if not Path(x).exists()]
    if missing:
        raise TempclrError(
            f"{', '.join(missing[:5])}: no such file or folder"
            + (f" (and {len(missing) - 5} more)" if len(missing) > 5 else "")
        )
    tars = [Path(x) for x in items if x.endswith(".tar")]
    lists = [Path(x) for x in items if x.endswith(".csv")]
    plain = [x for x in items if not x.endswith((".tar", ".csv"))]
    listed = [row for f in lists for row in _read_csv(f)]
    files = find_videos(plain + [p for p, _ in listed]) if plain or listed else []
    given = {Path(p).resolve(): key for p, key in listed if key}
    videos = [Video(p, given.get(p.resolve()) or key) for p, key in zip(files, keys_for(files, root))]
    videos += [v for tar, stem in zip(tars, _shard_names(tars)) for v in _members(tar, stem)]
    _refuse_duplicates(videos)
    return videos


def keys_for(files: list[Path], root: Path | None) -> list[str]:
    """Each file's path below `root` (default: the files' common folder) without its extension."""
    if not files:
        return []
    if root is not None and not root.is_dir():
        raise TempclrError(
            f"--root {root}: {'is a file' if root.exists() else 'not found'}; expected the folder to mirror"
        )
    resolved = [f.resolve() for f in files]
    base = (root or Path(os.path.commonpath([f.parent for f in resolved]))).resolve()
    relative = []
    for f in resolved:
        try:
            relative.append(f.relative_to(base))
        except ValueError:
            raise TempclrError(f"{f}: not under --root {base}") from None
    return [str(p) for p in io.distinct_stems(relative)]


def _shard_names(tars: list[Path]) -> list[str]:
    """The output part names of input shards: each tar's path below their common folder, no suffix."""
    return keys_for(tars, None) if tars else []


def _read_csv(path: Path) -> list[tuple[str, str | None]]:
    text = io.read_text(path, "--list CSV", "a CSV file: video_path[,key] a line")
    rows = [r for r in csv.reader(text.splitlines()) if r and r[0].strip() and not r[0].startswith("#")]
    if rows and rows[0][0].strip() == "video_path":
        rows = rows[1:]
    return [(_beside(path, r[0].strip()), r[1].strip() if len(r) > 1 and r[1].strip() else None) for r in rows]


def _beside(csv_file: Path, video: str) -> str:
    """A listed path as given (absolute, or found from here), else below the CSV's own folder."""
    return video if Path(video).is_absolute() or Path(video).exists() else str(csv_file.parent / video)


def _members(tar: Path, shard: str) -> list[Video]:
    """The videos of one shard, in the tar's order (read in one pass), keyed as webdataset keys them."""
    from tempclr_cli.core.media.video import VIDEO_EXTENSIONS

    try:
        with tarfile.open(tar, "r:") as t:
            members = [m for m in t if m.isfile()]
    except tarfile.ReadError as e:
        raise TempclrError(
            f"{tar}: not an uncompressed tar shard ({e}); tempclr reads videos in place, so "
            "decompress it first (gunzip, zstd -d)"
        ) from None
    videos = []
    for m in members:
        folder, _, name = m.name.rpartition("/")
        if Path(name).suffix.lower() in VIDEO_EXTENSIONS:
            key = (f"{folder}/" if folder else "") + name.split(".", 1)[0]
            videos.append(Video(Member(tar, m.name, m.offset_data, m.size), key, shard))
    if not videos:
        raise TempclrError(f"{tar}: no video members (looked for key.mp4 and the other video extensions)")
    return videos


def _refuse_duplicates(videos: list[Video]) -> None:
    seen: dict[str, Video] = {}
    for v in videos:
        if v.key in seen:
            raise TempclrError(
                f"{seen[v.key].source} and {v.source} have one key, {v.key!r}: their features would "
                "overwrite each other (give distinct keys in the CSV, or separate runs)"
            )
        seen[v.key] = v


class _Range:
    """Bytes `offset` to `offset + size` of a file as a file object (read, seek, tell), for PyAV."""

    def __init__(self, member: Member):
        self._file, self._offset, self._size, self._at = open(member.tar, "rb"), member.offset, member.size, 0

    def read(self, n: int = -1) -> bytes:
        n = self._size - self._at if n is None or n < 0 else min(n, self._size - self._at)
        self._file.seek(self._offset + self._at)
        data = self._file.read(max(n, 0))
        self._at += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        self._at = {0: offset, 1: self._at + offset, 2: self._size + offset}[whence]
        return self._at

    def tell(self) -> int:
        return self._at

    def close(self) -> None:
        self._file.close()


@contextmanager
def opened(source: Path | Member) -> Iterator[Path]:
    """A path the decoders open: a file as it is; a tar member copied into an anonymous in-memory
    file (memfd, gone when closed, also after a kill), seen as /proc/self/fd/N. Where there is no
    memfd (not Linux) a temporary file holds it."""
    if isinstance(source, Path):
        yield source
        return
    reader = _Range(source)
    try:
        if hasattr(os, "memfd_create"):
            fd = os.memfd_create(Path(source.name).name)
            try:
                _copy(reader, fd)
                yield Path(f"/proc/self/fd/{fd}")
            finally:
                os.close(fd)
        else:
            import tempfile

            with tempfile.NamedTemporaryFile(suffix=Path(source.name).suffix) as f:
                _copy(reader, f.fileno())
                yield Path(f.name)
    finally:
        reader.close()


def _copy(reader: _Range, fd: int, chunk: int = 1 << 22) -> None:
    while data := reader.read(chunk):
        os.write(fd, data)


def declared_duration(source: Path | Member) -> float | None:
    """The duration a video's container header declares (seconds), read without decoding (a tar
    member in place, through a file object); None where it declares none or cannot be opened."""
    import av

    from tempclr_cli.core.media.decode import declared_durations

    handle = _Range(source) if isinstance(source, Member) else None
    try:
        with av.open(handle or str(source)) as container:
            if not container.streams.video:
                return None
            return min(declared_durations(container, container.streams.video[0]), default=None)
    except (av.FFmpegError, OSError, ValueError):
        return None
    finally:
        if handle is not None:
            handle.close()


def durations(videos: list, out: Path, log=lambda message: None) -> dict[str, float | None]:
    """Declared durations by key, cached in OUT/durations.json: the first task (or `extract --plan`)
    probes the headers, later tasks of an array read them, so all of them pack the same shards."""
    cache = out / DURATIONS
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    missing = [v for v in videos if v.key not in known]
    if missing:
        log(f"reading the declared durations of {len(missing)} videos (once: cached in {cache})")
        known.update({v.key: declared_duration(v.source) for v in missing})
        try:
            io.write_json(cache, known)
        except OSError:  # a read-only output folder: the next task probes again
            pass
    return {v.key: known[v.key] for v in videos}


def assign(parts: int, index: int, count: int, weights: list[float] | None = None) -> list[int]:
    """The parts (0 .. parts - 1) that task `index` of `count` takes: with weights, greedy largest-first
    (each part, heaviest first, to the task with the least so far; ties by number), else every
    count-th part. Every task gets the same answer for the same weights."""
    if not 0 <= index < count:
        raise TempclrError(f"--shard {index}/{count}: need 0 <= i < n")
    if weights is None:
        return list(range(index, parts, count))
    loads = [(0.0, task) for task in range(count)]
    mine = []
    for part in sorted(range(len(weights)), key=lambda p: (-weights[p], p)):
        load, task = heapq.heappop(loads)
        if task == index:
            mine.append(part)
        heapq.heappush(loads, (load + weights[part], task))
    return sorted(mine)


def filled(values: list[float | None]) -> list[float] | None:
    """Durations with the unreadable ones taken as the mean of the others (None: none readable)."""
    known = [v for v in values if v is not None and v > 0]
    if not known:
        return None
    mean = sum(known) / len(known)
    return [v if v is not None and v > 0 else mean for v in values]
