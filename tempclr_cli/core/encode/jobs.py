"""Which videos a run extracts, where each goes, and which of them are still to do.

A *job* is one video and the part its features go into (its own `.npy`, or the shard it shares
with others); jobs are planned from the inputs (`plan`, `plan_jobs`), shared among the tasks of
a run by whole parts (`share`: by count or by declared duration), and filtered to the parts not
yet done (`pending`: a part is done when it reads and each of its videos has its index row).
`extract.run` does the jobs.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

from tempclr_cli.core import io
from tempclr_cli.core.data.features import INDEX
from tempclr_cli.core.data.stores import LAYOUTS, Layout, Stored, problem
from tempclr_cli.core.encode.shards import BALANCES, Member, Video, assign
from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.runtime import process_share


@dataclass(frozen=True)
class Job:
    source: Path | Member  # a video file, or a video inside a tar shard
    target: Path  # the part its features go into: its own .npy, or the shard it shares with others
    key: str = ""  # its id in the store ("": the target's path in the output folder without suffix, a .npy's)


def key_of(job: Job, out: Path) -> str:
    return job.key or str(job.target.relative_to(out).with_suffix(""))


def plan(videos: list[Path], out: Path, root: Path | None = None) -> list[Job]:
    """Map each video to `out/<path relative to root>.npy` (root: the inputs' common folder)."""
    from tempclr_cli.core.encode.shards import keys_for

    # clip.mp4 and clip.mkv would share clip.npy: each of them keeps its extension (clip.mp4.npy,
    # clip.mkv.npy), recorded in index.jsonl like every video's features path; the others are untouched
    return plan_jobs([Video(v.resolve(), key) for v, key in zip(videos, keys_for(videos, root))], out)


def plan_jobs(videos: list[Video], out: Path, layout: Layout | None = None, per_part: int = 1000) -> list[Job]:
    """Each video's job: its own part (npy: `out/<key>.npy`), else the part of its input shard
    (`out/<shard>.tar`), videos from files grouped `per_part` at a time (`out/part-00000.tar`)."""
    layout = layout or LAYOUTS["npy"]
    if layout.per_video:
        return [Job(v.source, out / f"{v.key}{layout.suffix}", v.key) for v in videos]
    loose = [v for v in videos if v.shard is None]
    group = {v.key: f"part-{n // per_part:05d}" for n, v in enumerate(loose)}
    return [Job(v.source, out / f"{v.shard or group[v.key]}{layout.suffix}", v.key) for v in videos]


def parts_of(jobs: list[Job]) -> list[list[int]]:
    """The jobs (numbers) of each part, parts in the order they first appear."""
    groups: dict[Path, list[int]] = {}
    for i, job in enumerate(jobs):
        groups.setdefault(job.target, []).append(i)
    return list(groups.values())


def renamed(jobs: list[Job]) -> list[Job]:
    """The jobs whose features keep their video's extension (a stem shared in one folder)."""
    return [j for j in jobs if j.target.name == Path(j.source.name).name + ".npy"]


def shard(jobs: list[Job], index: int, count: int, weights: list[float] | None = None) -> list[Job]:
    """Task `index` of `count`'s jobs: whole parts, every count-th, or packed by `weights` (one per
    part: durations) largest first (`shards.assign`); deterministic for a sorted job list."""
    parts = parts_of(jobs)
    return [jobs[i] for p in assign(len(parts), index, count, weights) for i in parts[p]]


def pending(
    jobs: list[Job],
    out: Path,
    overwrite: bool = False,
    layout: Layout | None = None,
    verify: bool = False,
    on_broken=lambda problem: None,
) -> list[Job]:
    """The jobs still to do: those of every part that is not done. Done means the part's file reads
    *and* each of its videos has an index row, an ok one matching the stored array's shape (with
    `verify`: the whole array read and checked, `stores.problem`; what is wrong goes to `on_broken`):
    a run killed between the two writes left a part without rows, and it is redone. Temporary files
    that killed runs left behind are removed first."""
    if not out.is_dir():
        return list(jobs)
    io.remove_stale_temporaries(out)
    if overwrite:
        return list(jobs)
    layout, rows = layout or LAYOUTS["npy"], last_rows(out / INDEX)
    todo = []
    for members in parts_of(jobs):
        group = [jobs[i] for i in members]
        if not _part_done(group, layout, out, rows, verify, on_broken):
            todo += group
    return todo


def _part_done(group: list[Job], layout: Layout, out: Path, rows: dict, verify: bool, on_broken) -> bool:
    target = group[0].target
    if not target.is_file():
        return False
    try:
        part = layout.reader(target, out)
    except (OSError, ValueError, EOFError, tarfile.TarError) as e:
        on_broken(f"{target}: unreadable ({e})")
        return False
    for job in group:
        stored = Stored(layout, part, key_of(job, out))
        row = rows.get(stored.features)
        if row is None:
            return False  # a part written but not indexed (killed between the two): done again
        if row["status"] != "ok":
            continue  # its failure is recorded in the part (a shard); a failed .npy video has no part
        wrong = _check(stored, row, verify)
        if wrong:
            on_broken(wrong)
            return False
    return True


def _check(stored: Stored, row: dict, verify: bool) -> str | None:
    """What is wrong with a stored video: its whole array (`verify`), else its shape from the header."""
    if verify:
        return problem(stored, row)
    try:
        shape = tuple(stored.shape())
    except TempclrError as e:
        return str(e)
    return None if shape == (row["clips"], row["dim"]) else f"{stored.name}: shape {shape}, its row says {row['clips']}"


def last_rows(index: Path) -> dict[str, dict]:
    """The last row of each features path in `index` (status, clips, dim only: the rest is not kept,
    so 100k rows cost little); rows torn by a crash are skipped."""
    rows: dict[str, dict] = {}
    if not index.exists():
        return rows
    with open(index, "rb") as f:
        for line in f:
            try:
                row = json.loads(line)
                rows[row["features"]] = {"status": row.get("status"), "clips": row.get("clips"), "dim": row.get("dim")}
            except (ValueError, KeyError, TypeError):
                pass
    return rows


def parse_shard(spec: str | None) -> tuple[int, int]:
    """`i/n` from --shard, else this process's share: torchrun's rank, a SLURM array task (times the
    `srun` tasks inside it), SLURM's task, else 0/1."""
    if spec is None:
        return process_share()
    try:
        i, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise TempclrError(f"--shard {spec}: expected i/n, e.g. 0/4") from None
    return i, n


def share(
    videos: list[Video],
    out: Path,
    layout: Layout,
    per_part: int,
    shard_spec: str | None,
    balance: str = "auto",
    log=lambda message: None,
) -> list[Job]:
    """This task's jobs: the whole run's parts, split among the tasks by declared duration (greedy
    largest first) or by count. `auto` balances by duration when there are several tasks and some
    duration reads; one task takes everything without reading any."""
    if balance not in BALANCES:
        raise TempclrError(f"--balance {balance}: use one of {', '.join(BALANCES)}")
    jobs = plan_jobs(videos, out, layout, per_part)
    index, count = parse_shard(shard_spec)
    weights = None
    if balance == "duration" or (balance == "auto" and count > 1):
        weights = part_durations(jobs, videos, out, log)
        if weights is None and balance == "duration":
            log("--balance duration: no video declares a duration; the shards are balanced by count")
    return shard(jobs, index, count, weights)


def part_durations(jobs: list[Job], videos: list[Video], out: Path, log) -> list[float] | None:
    """The declared duration of each part (the sum over its videos; an unreadable one counts as the mean)."""
    from tempclr_cli.core.encode.shards import durations, filled

    seconds = durations(videos, out, log)
    by_key = dict(zip(seconds, filled(list(seconds.values())) or [None] * len(seconds)))
    if not any(by_key.values()):
        return None
    return [sum(by_key[key_of(jobs[i], out)] for i in part) for part in parts_of(jobs)]
