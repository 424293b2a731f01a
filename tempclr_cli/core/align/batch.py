"""`align` over many videos: pair inputs with step files, align each through one Aligner
(models load once), write every requested format, and keep going past a bad pair.

Pairs come from two folders matched by file stem (`cooking.npy` or `cooking.mp4` with
`cooking.txt`), or from a CSV of `video,steps` rows (paths relative to the CSV). Each pair's
files are named as `extract` names features (`output_names`), so no two pairs write one file.
A pair that fails is recorded in `OUT/failures.jsonl` with its reason; the others finish.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tempclr_cli.core import io
from tempclr_cli.core.errors import TempclrError

FAILURES = "failures.jsonl"


@dataclass(frozen=True)
class Pair:
    video: Path
    steps: Path | None  # None: the steps come from a reference video (`align --reference`)


def pair_by_stem(videos: Path, steps: Path | None) -> list[Pair]:
    """Every `.npy` or video file in `videos` with the `.txt` of the same stem in `steps`
    (a missing one is a pair with a missing steps file: it fails by name, the rest go on;
    `b.avi` and `b.mp4` both take `b.txt`); with `steps` None, the videos alone."""
    if steps is not None and not steps.is_dir():
        raise TempclrError(f"{steps}: expected a folder of step files (STEM.txt) to pair with {videos}")
    inputs = _alignable(videos)
    if not inputs:
        raise TempclrError(f"{videos}: no .npy or video files to align")
    return [Pair(p, steps / f"{p.stem}.txt" if steps else None) for p in inputs]


def _alignable(folder: Path) -> list[Path]:
    """The `.npy` and video files in `folder`, sorted."""
    from tempclr_cli.core.media.video import VIDEO_EXTENSIONS

    suffixes = {".npy", *VIDEO_EXTENSIONS}
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)


def own_name(video: Path) -> str:
    """The name one video's files take in OUT: what a batch over its folder names it
    (`output_names`), so a shell loop of single calls over `b.avi` and `b.mp4` writes `b.avi.json`
    and `b.mp4.json`, as `tempclr align DIR` does, instead of one `b.json` replacing the other."""
    try:
        beside = _alignable(video.parent)
    except OSError:  # a folder we may not list: the stem, as before
        return video.stem
    return str(dict(zip(beside, io.distinct_stems([Path(p.name) for p in beside]))).get(video, video.stem))


def without_steps(pairs: list[Pair]) -> tuple[list[Pair], list[Pair]]:
    """(pairs whose steps file exists or that need none, pairs whose STEM.txt is missing)."""
    missing = [p for p in pairs if p.steps is not None and not p.steps.exists()]
    return [p for p in pairs if p not in missing], missing


def read_pairs(path: Path) -> list[Pair]:
    """`video,steps` rows (a header row with those names is skipped), relative to the CSV's folder."""
    text = io.read_text(path, "pairs file", "a CSV file of video,steps rows")
    pairs = []
    for k, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or (k == 1 and [c.strip().lower() for c in row[:2]] == ["video", "steps"]):
            continue
        if len(row) < 2:
            raise TempclrError(f"{path}:{k}: expected 'video,steps', got {','.join(row)!r}")
        pairs.append(Pair(path.parent / row[0].strip(), path.parent / row[1].strip()))
    if not pairs:
        raise TempclrError(f"{path}: no video,steps rows")
    return pairs


def output_names(pairs: list[Pair]) -> list[Path]:
    """Where each pair's files go below OUT, without the format's suffix: the video's path below
    the videos' common folder, named as `extract` names features (`io.distinct_stems`: `b.avi` and
    `b.mp4` give `b.avi.json` and `b.mp4.json`); one video aligned with several step files adds what
    tells those files apart, by the same rule (`b.short.json`; `s1/steps.txt` and `s2/steps.txt`:
    `b.s1.steps.json`). The same pair twice is refused."""
    videos = [os.path.abspath(p.video) for p in pairs]
    rows: dict[str, list[int]] = {}  # each video -> the pairs it is in
    for k, video in enumerate(videos):
        rows.setdefault(video, []).append(k)
    named = dict(zip(rows, _names(list(rows))))
    names = [named[v] for v in videos]
    for video, at in ((v, at) for v, at in rows.items() if len(at) > 1):
        steps = [os.path.abspath(pairs[k].steps) if pairs[k].steps else "" for k in at]
        repeat = next(((a, b) for b in range(len(at)) for a in range(b) if steps[a] == steps[b]), None)
        if repeat:
            first, again = (at[n] for n in repeat)
            raise TempclrError(
                f"pairs {first + 1} and {again + 1} are the same ({pairs[again].video}, {pairs[again].steps}): "
                "each pair once"
            )
        stems = [Path(p).stem for p in steps]
        for k, tail in zip(at, stems if len(set(stems)) == len(stems) else _names(steps)):
            names[k] = Path(f"{named[video]}.{str(tail).replace(os.sep, '.')}")
    return names


def _names(paths: list[str]) -> list[Path]:
    """`io.distinct_stems` of absolute paths, relative to their common folder (flat when they share one)."""
    base = os.path.commonpath([os.path.dirname(p) for p in paths])
    return io.distinct_stems([Path(os.path.relpath(p, base)) for p in paths])


def write_outputs(alignment, out_dir: Path, name: str | Path, formats: tuple[str, ...]) -> list[Path]:
    """`OUT/NAME.<format>` for each format, each written atomically."""
    written = []
    for fmt in formats:
        path = out_dir / f"{name}.{fmt}"
        io.write_text(path, alignment.render(fmt, str(path)))
        written.append(path)
    return written


def align_pairs(
    pairs: list[Pair], align_one: Callable[[Pair], object], out_dir: Path, formats: tuple[str, ...]
) -> Iterator[dict]:
    """Align each pair with `align_one(pair) -> Alignment`; yields {"video", "steps", "ok": True,
    "outputs", "alignment"} or {"video", "steps", "ok": False, "reason"} (also appended to
    OUT/failures.jsonl)."""
    from tempclr_cli.core.media.decode import VideoError

    out_dir.mkdir(parents=True, exist_ok=True)
    for pair, name in zip(pairs, output_names(pairs)):
        row = {"video": str(pair.video), "steps": str(pair.steps) if pair.steps else None}
        try:
            result = align_one(pair)
            yield {
                **row,
                "ok": True,
                "outputs": [str(p) for p in write_outputs(result, out_dir, name, formats)],
                "alignment": result,
            }
        except (TempclrError, VideoError) as e:
            failure = {**row, "ok": False, "reason": str(e)}
            io.append_jsonl(out_dir / FAILURES, failure)
            yield failure
