"""Per-clip features for many videos: decode in worker processes, encode in batches, write atomically.

Output: a feature store (`core.data.stores`), in the layout `--output-format` names:

    npy             one `<key>.npy` of shape (clips, dim) per video, mirroring the input tree (the one
                    VideoCLIP/TempCLR tools read); webdataset and parquet: one part per input shard
    index.jsonl     one row per processed video: key, source, features (where its array lies), clips,
                    starts, ends, frame_times, duration, start_offset, truncated, decode, max_offset,
                    skipping, decoded_on, fps, clip_seconds, model, pretrained, dim, status
    failures.jsonl  one row per video that could not be decoded, with the reason

Work is done a *part* at a time (a video, for npy; a shard of videos, for the others): runs that share
an output folder (two shells, a SLURM array, torchrun ranks) claim each part first, with a
`.<part>.claim` file beside it, so every video is extracted once; a part is written under a
temporary name and renamed when whole, then its rows are appended to the index (a rerun with
--overwrite appends newer rows; readers keep the last row per features path). A part whose file
reads and whose videos all have rows is skipped by a rerun; a partial one is redone (for npy, a
video that failed is tried again; in a shard, its failure is part of the shard). A file that
decodes but ends well before its declared duration (cut off) is kept, flagged
`"truncated": true` in its row, and reported (`summary["truncated"]`, a warning).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from tempclr_cli.core import io
from tempclr_cli.core.encode import FEATURE_DTYPES
from tempclr_cli.core.data.features import INDEX, EncoderSpec
from tempclr_cli.core.data.stores import LAYOUTS, Layout, PartWriter, get_layout
from tempclr_cli.core.encode.shards import ENGINES, Member, opened
from tempclr_cli.core.encode.jobs import Job, key_of, parts_of, pending, renamed, share
from tempclr_cli.core.encode.summary import bound, merged_over_ranks, tally, workers_to_keep_up
from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.media.decode import HWACCELS, DecodeReport, VideoError
from tempclr_cli.core.media.sampling import FRAME_PROTOCOLS, rules_for
from tempclr_cli.core.progress import Progress, silent
from tempclr_cli.core.runtime import release_free_memory, resolve_device

FAILURES = "failures.jsonl"
TRIM_EVERY = 16  # batches of frames between returns of the C heap's free pages to the system


@dataclass(frozen=True)
class ExtractConfig:
    fps: float = 1.0  # sampling rate (frames per second)
    clip_seconds: float = 1.0  # clip window; features are the mean over its frames
    per_frame: bool = False  # one feature per sampled frame instead of per clip
    dtype: str = "float16"
    normalize: bool = True
    batch_size: int = 64  # frames per encoder batch (and per decoded chunk)
    workers: int = 2  # decoder processes; 0 decodes in this process
    decode: str = "fast"  # media.sampling.DECODE_MODES: fast skips what no sample needs; exact decodes every frame
    hwaccel: str = "auto"  # media.decode.HWACCELS: auto (NVDEC where it wins), none, cuda (NVDEC where it opens)

    def check(self) -> None:
        if self.fps <= 0 or self.clip_seconds <= 0:
            raise TempclrError("--fps and --clip-seconds must be > 0")
        if not self.per_frame and self.fps * self.clip_seconds < 1 - 1e-9:
            raise TempclrError(
                f"--fps {self.fps} x --clip-seconds {self.clip_seconds} < 1: some clips would get no frame"
            )
        if self.dtype not in FEATURE_DTYPES:
            raise TempclrError(f"--dtype {self.dtype}: use {' or '.join(FEATURE_DTYPES)}")
        if self.batch_size < 1 or self.workers < 0:
            raise TempclrError("--batch-size must be >= 1 and --workers >= 0")
        rules_for(self.decode)  # an unknown --decode is refused here, before any video is read
        if self.hwaccel not in HWACCELS:
            raise TempclrError(f"--hwaccel {self.hwaccel}: use one of {', '.join(HWACCELS)}")


def sampling_for(encoder, cfg: ExtractConfig) -> ExtractConfig:
    """The sampling a loaded encoder needs: image encoders take `cfg` as it is; a video
    encoder sees `frames_per_clip` consecutive samples per clip, at its own rate (S3D: 30
    fps, 1-s clips) or at frames_per_clip / clip_seconds (TCLR), in batches of whole clips; and
    `--hwaccel auto` on the CPU unless the features are made on a CUDA device (extract, align, --plan)."""
    if cfg.hwaccel == "auto" and encoder.device.type != "cuda":
        cfg = replace(cfg, hwaccel="none")
    frames = encoder.frames_per_clip
    if frames == 1:
        return cfg
    fps = encoder.fps or frames / cfg.clip_seconds
    return replace(cfg, fps=fps, clip_seconds=frames / fps, batch_size=max(frames, cfg.batch_size // frames * frames))


@dataclass
class VideoResult:
    job: Job
    status: str  # "ok" | "failed" | "skipped" (another run claimed it)
    clips: int = 0
    reason: str = ""
    row: dict = field(default_factory=dict)


# --- decoding in worker processes --------------------------------------------------------


class DecodeStream(IterableDataset):
    """Chunks of sampled frames per video; with workers, worker w takes parts w, w+n, ... (a part: a
    video, or the videos of one output shard, read in order: one pass through an input tar).

    Yields dicts: {"video", "frames" (n, S, S, 3) uint8, "times", "frame_times", "last"} (the last
    one also "report": the video's DecodeReport, with the time spent decoding it),
    or {"video", "error"} for a video that cannot be decoded (never raises),
    or {"video", "skipped"} for each video of a part another run claimed, or finished after `since`
    (with `owner`).
    """

    def __init__(
        self,
        jobs: list[Job],
        cfg: ExtractConfig,
        size: int,
        owner: str | None = None,
        since: float | None = None,
        protocol: str = "frames",
    ):
        self.jobs, self.cfg, self.size, self.owner, self.since = jobs, cfg, size, owner, since
        self.protocol = protocol  # frames: tempclr's sampler; videoclip: ffmpeg's fps/scale/crop filters

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        wid, n = (info.id, info.num_workers) if info else (0, 1)
        parts = parts_of(self.jobs)
        for p in range(wid, len(parts), n):
            if self.owner and not self._claim(self.jobs[parts[p][0]].target):
                yield from ({"video": i, "skipped": True} for i in parts[p])
                continue
            for i in parts[p]:
                yield from self._decode_one(i)

    def _claim(self, target: Path) -> bool:
        """Claim `target` for this run; False when another run holds it or wrote it meanwhile."""
        target.parent.mkdir(parents=True, exist_ok=True)
        if not io.claim(claim_path(target), self.owner):
            return False
        if self.since is not None and target.exists() and target.stat().st_mtime >= self.since:
            claim_path(target).unlink(missing_ok=True)
            return False
        return True

    def _frames(self, source: Path | Member, report: DecodeReport) -> Iterator:
        """The samples of a video file or tar member (`shards.opened`; messages name the member)."""
        with opened(source) as path:
            try:
                yield from self._sampler(path, report)
            except TempclrError as e:
                raise type(e)(str(e).replace(str(path), str(source))) from None

    def _sampler(self, source: Path, report: DecodeReport) -> Iterator:
        """The encoder's frame protocol (`media.sampling.FRAME_PROTOCOLS`), one decoder thread each (more
        cores: more --workers). A protocol that fixes its decoding says so in the rows (decode, decoded_on)."""
        read = FRAME_PROTOCOLS[self.protocol].read
        return read(source, self.cfg.fps, self.size, report, self.cfg.decode, self.cfg.hwaccel)

    def _decode_one(self, i: int) -> Iterator[dict]:
        source, chunk, report = self.jobs[i].source, [], DecodeReport()
        clock = time.perf_counter()  # decoding time, measured where it happens (this worker), not waiting
        try:
            for s in self._frames(source, report):
                chunk.append(s)
                if len(chunk) == self.cfg.batch_size:
                    packed = self._pack(i, chunk, last=False)
                    report.decode_seconds += time.perf_counter() - clock
                    yield packed
                    chunk, clock = [], time.perf_counter()
        except Exception as e:  # noqa: BLE001 - any decode failure is recorded, never fatal
            reason = str(e) if isinstance(e, TempclrError) else f"{source}: {type(e).__name__}: {e}"
            yield {"video": i, "error": reason}
            return
        packed = self._pack(i, chunk, last=True)
        report.decode_seconds += time.perf_counter() - clock
        yield {**packed, "report": report}

    def _pack(self, i: int, chunk: list, last: bool) -> dict:
        frames = np.stack([_crop(s.image, self.size) for s in chunk]) if chunk else None
        return {
            "video": i,
            "frames": torch.from_numpy(frames) if frames is not None else None,
            "times": [s.time for s in chunk],
            "frame_times": [s.frame_time for s in chunk],
            "last": last,
        }


def _crop(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape[:2]
    top, left = max((h - size) // 2, 0), max((w - size) // 2, 0)
    return np.ascontiguousarray(image[top : top + size, left : left + size])


# --- the run -------------------------------------------------------------------------------


def claim_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.claim")


def run(
    jobs: list[Job], encoder, cfg: ExtractConfig, out: Path, since: float | None = None, layout: Layout | None = None
) -> Iterator[VideoResult | int]:
    """Extract every part that no concurrent run claims or has written since `since` (the
    time.time() of the plan, when given) into a store of `layout` (npy by default); yields the
    number of frames encoded (progress) and each VideoResult, once its part is written."""
    cfg.check()
    out.mkdir(parents=True, exist_ok=True)
    workers = min(cfg.workers, len(parts_of(jobs)))
    loader = DataLoader(
        DecodeStream(jobs, cfg, encoder.image_size, owner=io.OWNER, since=since, protocol=encoder.protocol),
        batch_size=None,
        num_workers=workers,
        pin_memory=encoder.device.type == "cuda",
        prefetch_factor=4 if workers else None,
        persistent_workers=False,
        multiprocessing_context="spawn" if workers and cfg.hwaccel != "none" else None,  # CUDA cannot start in a fork
    )
    sink = Sink(jobs, layout or LAYOUTS["npy"], out)
    partial: dict[int, dict] = {}
    items = iter(loader)
    for n in itertools.count():
        if n % TRIM_EVERY == 0:
            release_free_memory()  # memory flat in video length
        clock = time.perf_counter()
        item = next(items, None)
        waited = (
            time.perf_counter() - clock
        )  # this process idle, waiting for these frames (decode-bound if it dominates)
        if item is None:
            break
        i = item["video"]
        if "skipped" in item:
            yield VideoResult(jobs[i], "skipped")
            continue
        if "error" in item:
            partial.pop(i, None)
            yield from sink.add(jobs[i], None, failure(jobs[i], item["error"], out, sink.layout))
            continue
        acc = partial.setdefault(
            i, {"emb": [], "times": [], "frame_times": [], "start": time.perf_counter(), "encode": 0.0, "waited": 0.0}
        )
        acc["waited"] += waited
        if item["frames"] is not None:
            clock = time.perf_counter()
            acc["emb"].append(encoder.encode_images(item["frames"]))
            acc["encode"] += time.perf_counter() - clock
            acc["times"] += item["times"]
            acc["frame_times"] += item["frame_times"]
            yield len(item["times"])
        if item["last"]:
            array, result = finish(
                jobs[i], {**partial.pop(i), "report": item["report"]}, encoder, cfg, out, sink.layout
            )
            yield from sink.add(jobs[i], array, result)


class Sink:
    """The parts of a run being written: a video's array goes to its part's writer as it finishes;
    when the part's last video is in, the part is closed (renamed whole), its rows are appended to
    index.jsonl (and failures to failures.jsonl), its claim is released, and its results come back.
    A disk that refuses a part (full, read-only, quota) fails its videos, leaving nothing half-written
    for a rerun to finish."""

    def __init__(self, jobs: list[Job], layout: Layout, out: Path):
        self.layout, self.out = layout, out
        self.left = {jobs[m[0]].target: len(m) for m in parts_of(jobs)}
        self.open: dict[Path, _Open] = {}

    def add(self, job: Job, array: np.ndarray | None, result: VideoResult) -> list[VideoResult]:
        part = self.open.get(job.target) or self._start(job.target)
        if part.error is None:
            try:
                part.writer.add(key_of(job, self.out), array, result.row)
            except OSError as e:
                part.error = e
        part.results.append(result)
        self.left[job.target] -= 1
        return self._close(job.target) if self.left[job.target] == 0 else []

    def _start(self, target: Path) -> _Open:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            part = _Open(self.layout.writer(target))
        except OSError as e:
            part = _Open(None, error=e)
        self.open[target] = part
        return part

    def _close(self, target: Path) -> list[VideoResult]:
        part = self.open.pop(target)
        if part.error is None:
            try:
                part.writer.close()
            except OSError as e:
                part.error = e
        if part.error is not None:
            if part.writer is not None:
                part.writer.abort()
            results = [_unwritten(r, part.error, self.out) for r in part.results]
        else:
            results = part.results
            for r in results:
                if r.status == "failed":
                    io.append_jsonl(self.out / FAILURES, r.row)
                io.append_jsonl(self.out / INDEX, r.row)
        claim_path(target).unlink(missing_ok=True)
        return results


@dataclass
class _Open:
    writer: PartWriter | None
    results: list = field(default_factory=list)
    error: OSError | None = None


def pool_clips(emb, times: list[float], clip_seconds: float):
    """Mean of frame embeddings per clip window [c * clip_seconds, (c+1) * clip_seconds).

    emb [shape=(T, D)], times [len T] -> (C, D) with C = last clip index + 1.
    """
    ids = torch.tensor([math.floor(t / clip_seconds + 1e-9) for t in times], device=emb.device)
    n_clips = int(ids[-1]) + 1
    sums = torch.zeros(n_clips, emb.shape[1], device=emb.device, dtype=emb.dtype).index_add_(0, ids, emb)
    counts = torch.bincount(ids, minlength=n_clips).clamp_min(1).to(emb.dtype)
    return sums / counts[:, None]


def clip_features(emb, times: list[float], cfg: ExtractConfig):
    """Frame embeddings (T, D) at sample `times` -> (features (C, D), starts, ends) per cfg."""
    if cfg.per_frame:
        feats, half = emb, 0.5 / cfg.fps
        starts, ends = [t - half for t in times], [t + half for t in times]
    else:
        feats = pool_clips(emb, times, cfg.clip_seconds)
        starts = [c * cfg.clip_seconds for c in range(feats.shape[0])]
        ends = [s + cfg.clip_seconds for s in starts]
    if cfg.normalize:
        feats = torch.nn.functional.normalize(feats, dim=-1)
    return feats, starts, ends


def encode_video(path: Path, encoder, cfg: ExtractConfig):
    """Features of one video in this process (for `align` on a video file): clip_features
    plus the video's duration in seconds (the last frame's end)."""
    emb, times, end, cfg = [], [], 0.0, sampling_for(encoder, cfg)
    for item in DecodeStream([Job(Path(path), Path(path))], cfg, encoder.image_size, protocol=encoder.protocol):
        if "error" in item:
            raise VideoError(item["error"])
        if item["frames"] is not None:
            emb.append(encoder.encode_images(item["frames"]))
            times += item["times"]
        end = item["report"].duration if item["last"] else end
    return (*clip_features(torch.cat(emb), times, cfg), end)


def finish(job: Job, acc: dict, encoder, cfg: ExtractConfig, out: Path, layout: Layout):
    """A video's (clips, dim) array and its ok result, whose row the index and the part record."""
    clock = time.perf_counter()
    feats, starts, ends = clip_features(torch.cat(acc["emb"]), acc["times"], cfg)
    array = feats.cpu().numpy().astype(cfg.dtype)  # on a GPU this waits for the encoder: encoding time
    acc["encode"] += time.perf_counter() - clock
    row = {
        **_where(job, out, layout),
        "clips": int(array.shape[0]),
        "dim": int(array.shape[1]),
        "starts": [round(s, 4) for s in starts],
        "ends": [round(e, 4) for e in ends],
        "frame_times": [round(t, 4) for t in acc["frame_times"]],
        **acc["report"].row(),  # duration, start_offset, truncated, decode, ...: media.decode.DecodeReport
        "fps": cfg.fps,
        "clip_seconds": None if cfg.per_frame else cfg.clip_seconds,
        **EncoderSpec(encoder.name, encoder.pretrained, encoder.seed).to_row(),
        "protocol": encoder.protocol,  # frames: tempclr's sampler; videoclip: VideoCLIP's ffmpeg filters
        "dtype": cfg.dtype,
        "normalized": cfg.normalize,
        "seconds": round(time.perf_counter() - acc["start"], 3),  # wall time from its first frames to its row
        "encode_seconds": round(acc["encode"], 3),  # the encoder (and pooling), in this process
        "waited_seconds": round(acc["waited"], 3),  # this process idle, waiting for decoded frames
        "status": "ok",
    }
    return array, VideoResult(job, "ok", clips=array.shape[0], row=row)


def _where(job: Job, out: Path, layout: Layout) -> dict:
    """The fields that say which video a row is about and where its features lie."""
    key = key_of(job, out)
    return {"key": key, "source": str(job.source), "features": layout.member(str(job.target.relative_to(out)), key)}


def _unwritten(result: VideoResult, error: OSError, out: Path) -> VideoResult:
    """A video whose part the disk refused: failed, listed in failures.jsonl (where that fits), not
    indexed, so a rerun does it again."""
    source = result.job.source
    reason = f"{source}: cannot write its features to {out} ({error.strerror or error}); free space and rerun"
    try:
        io.append_jsonl(out / FAILURES, {"source": str(source), "status": "failed", "reason": reason})
    except OSError:  # the failure list may not fit either: the summary still reports it
        pass
    return VideoResult(result.job, "failed", reason=reason)


def failure(job: Job, reason: str, out: Path, layout: Layout) -> VideoResult:
    """A video that could not be decoded: its row goes to failures.jsonl, the index and its part."""
    return VideoResult(
        job, "failed", reason=reason, row={**_where(job, out, layout), "status": "failed", "reason": reason}
    )


def extract_videos(
    sources: list,
    out: Path,
    cfg: ExtractConfig,
    model: str = "ViT-B-32",
    pretrained: str | None = None,
    checkpoint: str | None = None,
    root: Path | None = None,
    shard_spec: str | None = None,
    overwrite: bool = False,
    device: str = "auto",
    seed: int = 0,
    progress: Progress = silent,
    on_result=lambda result: None,
    output_format: str = "npy",
    per_part: int = 1000,
    balance: str = "auto",
    verify: bool = False,
    log=lambda message: None,
    engine: str = "local",
    ray_address: str | None = None,
) -> dict:
    """The `extract` command: plan the shard's jobs, skip finished parts, encode the rest.

    `progress` (core.progress) gets two tasks, the videos to extract and the frames decoded (no total:
    a rate); `on_result` hears each video's VideoResult (ok, failed, or skipped: another run took it).
    Returns the summary {"out", "videos", "skipped", "ok", "failed", "clips", "seconds", "broken", ...}.
    """
    from tempclr_cli.core.encode.registry import find_encoder, load_encoder
    from tempclr_cli.core.encode.shards import read_inputs

    cfg.check()
    layout = get_layout(output_format)
    if engine not in ENGINES:
        raise TempclrError(f"--engine {engine}: use one of {', '.join(ENGINES)}")
    if not find_encoder(model).per_frame and cfg.per_frame:  # an unknown name fails here, before any work
        raise TempclrError(f"--per-frame does not apply to --model {model}: it embeds whole clips, not frames")
    if not sources:
        raise TempclrError("no input: give video files/folders, tar shards or --list FILE (or --list - for stdin)")
    jobs = share(read_inputs(sources, root), out, layout, per_part, shard_spec, balance, log)
    # weights are checked on every run, also one with nothing left to do: a wrong file is an error, not a no-op
    on = resolve_device(device)
    encoder = load_encoder(model, pretrained, checkpoint, on, seed)
    cfg = sampling_for(encoder, cfg)
    since, broken = time.time(), []
    todo = pending(jobs, out, overwrite, layout, verify, broken.append)
    log(f"{len(jobs)} videos, {len(jobs) - len(todo)} already done, {len(todo)} to extract")
    summary = {
        "out": str(out),
        "videos": len(jobs),
        "skipped": len(jobs) - len(todo),
        "ok": 0,
        "failed": [],
        "truncated": [],
        "clips": 0,
        "decode_seconds": 0.0,
        "encode_seconds": 0.0,
        "waited_seconds": 0.0,
        "broken": broken,
        "format": layout.name,
        "renamed": [{"source": str(j.source), "features": str(j.target.relative_to(out))} for j in renamed(jobs)],
    }
    if not todo:
        return merged_over_ranks(summary)
    start = time.perf_counter()
    if engine == "ray":
        from tempclr_cli.core.encode.ray_engine import run_ray

        events = run_ray(todo, encoder, cfg, out, model, pretrained, checkpoint, device, seed, layout, ray_address)
    else:
        events = run(todo, encoder, cfg, out, since, layout)
    videos, frames = progress("extracting", len(todo)), progress("frames decoded", None)
    for event in events:  # the engines' own stream: frame counts as they are decoded, then each video's result
        if isinstance(event, int):
            frames(event)
            continue
        videos(1)
        on_result(event)
        tally(summary, event)
    summary["seconds"] = round(time.perf_counter() - start, 2)
    summary["bound"] = bound(summary)
    summary["workers_to_keep_up"] = workers_to_keep_up(summary)
    return merged_over_ranks(summary)
