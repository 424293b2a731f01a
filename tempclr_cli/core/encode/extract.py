"""Per-clip features for many videos: decode in worker processes, encode in batches, write atomically.

Output layout (the one VideoCLIP/TempCLR tools read): one `<name>.npy` of shape
(clips, dim) per video, mirroring the input tree under the output folder, plus

    index.jsonl     one row per processed video: source, features, clips, starts, ends,
                    frame_times, duration, start_offset, truncated, decode, max_offset,
                    skipping, decoded_on, fps, clip_seconds, model, pretrained, dim, status
    failures.jsonl  one row per video that could not be decoded, with the reason

Rows are appended (a rerun with --overwrite appends a newer row; readers keep the
last row per features path). A video whose `.npy` and index row exist is skipped. Runs
that share an output folder (two shells, a SLURM array) claim each video first, with a
`.<name>.npy.claim` file beside its output, so every video is extracted once. A file
that decodes but ends well before its declared duration (cut off) is kept, flagged
`"truncated": true` in its row, and reported (`summary["truncated"]`, a warning).
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from tempclr_cli.core import io
from tempclr_cli.core.data.features import INDEX, EncoderSpec, index_offsets
from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.media.decode import HWACCELS, DecodeReport, VideoError, filter_frames
from tempclr_cli.core.media.sampling import rules_for, sample_frames
from tempclr_cli.core.runtime import release_free_memory

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
    hwaccel: str = "none"  # media.decode.HWACCELS: cuda decodes on NVDEC where it opens (logged per video where not)

    def check(self) -> None:
        if self.fps <= 0 or self.clip_seconds <= 0:
            raise TempclrError("--fps and --clip-seconds must be > 0")
        if not self.per_frame and self.fps * self.clip_seconds < 1 - 1e-9:
            raise TempclrError(
                f"--fps {self.fps} x --clip-seconds {self.clip_seconds} < 1: some clips would get no frame"
            )
        if self.dtype not in ("float16", "float32"):
            raise TempclrError(f"--dtype {self.dtype}: use float16 or float32")
        if self.batch_size < 1 or self.workers < 0:
            raise TempclrError("--batch-size must be >= 1 and --workers >= 0")
        rules_for(self.decode)  # an unknown --decode is refused here, before any video is read
        if self.hwaccel not in HWACCELS:
            raise TempclrError(f"--hwaccel {self.hwaccel}: use one of {', '.join(HWACCELS)}")


def sampling_for(encoder, cfg: ExtractConfig) -> ExtractConfig:
    """The sampling a loaded encoder needs: image encoders take `cfg` as it is; a video
    encoder sees `frames_per_clip` consecutive samples per clip, at its own rate (S3D: 30
    fps, 1-s clips) or at frames_per_clip / clip_seconds (TCLR), in batches of whole clips."""
    from dataclasses import replace

    frames = encoder.frames_per_clip
    if frames == 1:
        return cfg
    fps = encoder.fps or frames / cfg.clip_seconds
    return replace(cfg, fps=fps, clip_seconds=frames / fps, batch_size=max(frames, cfg.batch_size // frames * frames))


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path


@dataclass
class VideoResult:
    job: Job
    status: str  # "ok" | "failed" | "skipped" (another run claimed it)
    clips: int = 0
    reason: str = ""
    row: dict = field(default_factory=dict)


def plan(videos: list[Path], out: Path, root: Path | None = None) -> list[Job]:
    """Map each video to `out/<path relative to root>.npy` (root: the inputs' common folder)."""
    if not videos:
        return []
    resolved = [v.resolve() for v in videos]
    base = (root or Path(os.path.commonpath([v.parent for v in resolved]))).resolve()
    relative = []
    for v in resolved:
        try:
            relative.append(v.relative_to(base))
        except ValueError:
            raise TempclrError(f"{v}: not under --root {base}") from None
    # clip.mp4 and clip.mkv would share clip.npy: each of them keeps its extension (clip.mp4.npy,
    # clip.mkv.npy), recorded in index.jsonl like every video's features path; the others are untouched
    return [Job(v, out / f"{stem}.npy") for v, stem in zip(resolved, io.distinct_stems(relative))]


def renamed(jobs: list[Job]) -> list[Job]:
    """The jobs whose features keep their video's extension (a stem shared in one folder)."""
    return [j for j in jobs if j.target.name == j.source.name + ".npy"]


def shard(jobs: list[Job], index: int, count: int) -> list[Job]:
    """Every count-th job starting at index: deterministic for a sorted job list."""
    if not 0 <= index < count:
        raise TempclrError(f"--shard {index}/{count}: need 0 <= i < n")
    return jobs[index::count]


def is_done(target: Path) -> bool:
    """True when `target` exists and is a readable 2-D .npy (header check only)."""
    try:
        arr = np.load(target, mmap_mode="r")
    except (OSError, ValueError, EOFError):
        return False
    return arr.ndim == 2 and arr.shape[0] > 0


def pending(jobs: list[Job], out: Path, overwrite: bool = False) -> list[Job]:
    """The jobs still to do. Done means a readable .npy *and* its index row: a run killed
    between the two writes left a .npy without one, and it is redone. Temporary files that
    killed runs left behind are removed first."""
    if not out.is_dir():
        return list(jobs)
    io.remove_stale_temporaries(out)
    indexed = index_offsets(out / INDEX)
    return [j for j in jobs if overwrite or not (is_done(j.target) and str(j.target.relative_to(out)) in indexed)]


# --- decoding in worker processes --------------------------------------------------------


class DecodeStream(IterableDataset):
    """Chunks of sampled frames per video; with workers, worker w takes videos w, w+n, ...

    Yields dicts: {"video", "frames" (n, S, S, 3) uint8, "times", "frame_times", "last"} (the last
    one also "report": the video's DecodeReport, with the time spent decoding it),
    or {"video", "error"} for a video that cannot be decoded (never raises),
    or {"video", "skipped"} for one another run claimed, or finished after `since` (with `owner`).
    """

    def __init__(self, jobs: list[Job], cfg: ExtractConfig, size: int, owner: str | None = None,
                 since: float | None = None, protocol: str = "frames"):
        self.jobs, self.cfg, self.size, self.owner, self.since = jobs, cfg, size, owner, since
        self.protocol = protocol  # frames: tempclr's sampler; videoclip: ffmpeg's fps/scale/crop filters

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        wid, n = (info.id, info.num_workers) if info else (0, 1)
        for i in range(wid, len(self.jobs), n):
            if self.owner and not self._claim(self.jobs[i].target):
                yield {"video": i, "skipped": True}
                continue
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

    def _frames(self, source: Path, report: DecodeReport) -> Iterator:
        """The sampler for this protocol, one decoder thread each (more cores: more --workers).
        The videoclip protocol decodes every frame on the CPU: its rows say so (decode, decoded_on)."""
        if self.protocol == "videoclip":
            if self.cfg.hwaccel != "none":  # said in the row, and warned: --hwaccel was asked for
                report.decoded_on = f"cpu ({self.cfg.hwaccel}: VideoCLIP's ffmpeg filters decode on the CPU)"
            return filter_frames(source, self.cfg.fps, self.size, report)
        hwaccel = None if self.cfg.hwaccel == "none" else self.cfg.hwaccel
        return sample_frames(source, self.cfg.fps, self.size, report, decode=self.cfg.decode, hwaccel=hwaccel)

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


def run(jobs: list[Job], encoder, cfg: ExtractConfig, out: Path, since: float | None = None) -> Iterator[VideoResult | int]:
    """Extract every job that no concurrent run claims or has written since `since` (the
    time.time() of the plan, when given); yields the number of frames encoded (progress) and each VideoResult."""
    cfg.check()
    out.mkdir(parents=True, exist_ok=True)
    workers = min(cfg.workers, len(jobs))
    loader = DataLoader(
        DecodeStream(jobs, cfg, encoder.image_size, owner=io.OWNER, since=since, protocol=encoder.protocol),
        batch_size=None,
        num_workers=workers,
        pin_memory=encoder.device.type == "cuda",
        prefetch_factor=4 if workers else None,
        persistent_workers=False,
        multiprocessing_context="spawn" if workers and cfg.hwaccel != "none" else None,  # CUDA cannot start in a fork
    )
    partial: dict[int, dict] = {}
    items = iter(loader)
    for n in itertools.count():
        if n % TRIM_EVERY == 0:
            release_free_memory()  # memory flat in video length
        clock = time.perf_counter()
        item = next(items, None)
        waited = time.perf_counter() - clock  # this process idle, waiting for these frames (decode-bound if it dominates)
        if item is None:
            break
        i = item["video"]
        if "skipped" in item:
            yield VideoResult(jobs[i], "skipped")
            continue
        if "error" in item:
            partial.pop(i, None)
            yield _record_failure(jobs[i], item["error"], out)
            claim_path(jobs[i].target).unlink(missing_ok=True)
            continue
        acc = partial.setdefault(i, {"emb": [], "times": [], "frame_times": [], "start": time.perf_counter(),
                                     "encode": 0.0, "waited": 0.0})
        acc["waited"] += waited
        if item["frames"] is not None:
            clock = time.perf_counter()
            acc["emb"].append(encoder.encode_images(item["frames"]))
            acc["encode"] += time.perf_counter() - clock
            acc["times"] += item["times"]
            acc["frame_times"] += item["frame_times"]
            yield len(item["times"])
        if item["last"]:
            done = {**partial.pop(i), "report": item["report"]}
            yield _finish_or_fail(jobs[i], done, encoder, cfg, out)
            claim_path(jobs[i].target).unlink(missing_ok=True)


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


def _finish(job: Job, acc: dict, encoder, cfg: ExtractConfig, out: Path) -> VideoResult:
    clock = time.perf_counter()
    feats, starts, ends = clip_features(torch.cat(acc["emb"]), acc["times"], cfg)
    array = feats.cpu().numpy().astype(cfg.dtype)  # on a GPU this waits for the encoder: encoding time
    acc["encode"] += time.perf_counter() - clock
    io.save_npy(job.target, array)
    row = {
        "source": str(job.source),
        "features": str(job.target.relative_to(out)),
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
    io.append_jsonl(out / INDEX, row)
    return VideoResult(job, "ok", clips=array.shape[0], row=row)


def _finish_or_fail(job: Job, acc: dict, encoder, cfg: ExtractConfig, out: Path) -> VideoResult:
    """`_finish`, or, when the disk refuses the write (full, read-only, quota), a failed result
    that leaves nothing half-written (the writes are atomic) for a rerun to finish."""
    try:
        return _finish(job, acc, encoder, cfg, out)
    except OSError as e:
        reason = f"{job.source}: cannot write its features to {out} ({e.strerror or e}); free space and rerun"
        try:
            io.append_jsonl(out / FAILURES, {"source": str(job.source), "status": "failed", "reason": reason})
        except OSError:  # the failure list may not fit either: the summary still reports it
            pass
        return VideoResult(job, "failed", reason=reason)


def _record_failure(job: Job, reason: str, out: Path) -> VideoResult:
    row = {"source": str(job.source), "features": str(job.target.relative_to(out)), "status": "failed",
           "reason": reason}
    io.append_jsonl(out / FAILURES, row)
    io.append_jsonl(out / INDEX, row)
    return VideoResult(job, "failed", reason=reason, row=row)


def parse_shard(spec: str | None) -> tuple[int, int]:
    """`i/n` from --shard, else this process's rank and world size (torchrun, then SLURM), else 0/1."""
    if spec is None:
        from tempclr_cli.core.runtime import process_rank

        return process_rank()
    try:
        i, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise TempclrError(f"--shard {spec}: expected i/n, e.g. 0/4") from None
    return i, n


def extract_videos(sources: list, out: Path, cfg: ExtractConfig, model: str = "ViT-B-32", pretrained: str | None = None,
                   checkpoint: str | None = None, root: Path | None = None, shard_spec: str | None = None,
                   overwrite: bool = False, device: str = "auto", seed: int = 0,
                   on_plan=lambda jobs, todo: None, on_event=lambda event: None) -> dict:
    """The `extract` command: plan the shard's jobs, skip finished ones, encode the rest.

    `on_plan(jobs, todo)` hears the plan, `on_event` every frame count (int) and VideoResult.
    Returns the summary {"out", "videos", "skipped", "ok", "failed", "clips", "seconds"}.
    """
    from tempclr_cli.core.encode.registry import find_encoder, load_encoder
    from tempclr_cli.core.media.video import find_videos
    from tempclr_cli.core.runtime import resolve_device

    cfg.check()
    if not find_encoder(model).per_frame and cfg.per_frame:  # an unknown name fails here, before any work
        raise TempclrError(f"--per-frame does not apply to --model {model}: it embeds whole clips, not frames")
    if not sources:
        raise TempclrError("no input: give video files/folders or --list FILE (or --list - for stdin)")
    jobs = shard(plan(find_videos(sources), out, root), *parse_shard(shard_spec))
    # weights are checked on every run, also one with nothing left to do: a wrong file is an error, not a no-op
    encoder = load_encoder(model, pretrained, checkpoint, resolve_device(device), seed)
    cfg = sampling_for(encoder, cfg)
    since = time.time()
    todo = pending(jobs, out, overwrite)
    on_plan(jobs, todo)
    summary = {"out": str(out), "videos": len(jobs), "skipped": len(jobs) - len(todo), "ok": 0, "failed": [],
               "truncated": [], "clips": 0, "decode_seconds": 0.0, "encode_seconds": 0.0, "waited_seconds": 0.0,
               "renamed": [{"source": str(j.source), "features": str(j.target.relative_to(out))} for j in renamed(jobs)]}
    if not todo:
        return merged_over_ranks(summary)
    start = time.perf_counter()
    for event in run(todo, encoder, cfg, out, since):
        on_event(event)
        if isinstance(event, int):
            continue
        if event.status == "skipped":
            summary["skipped"] += 1
        elif event.status == "ok":
            summary["ok"] += 1
            summary["clips"] += event.clips
            for key in ("decode_seconds", "encode_seconds", "waited_seconds"):
                summary[key] = round(summary[key] + event.row[key], 3)
            if event.row["truncated"]:
                summary["truncated"].append(str(event.job.source))
        else:
            summary["failed"].append({"source": str(event.job.source), "reason": event.reason})
    summary["seconds"] = round(time.perf_counter() - start, 2)
    summary["bound"] = bound(summary)
    return merged_over_ranks(summary)


def bound(summary: dict) -> str | None:
    """What limited the run: "decode" when the encoder mostly waited for decoded frames (add
    --workers or cores), "encode" when decoding kept up (a faster encoder or a GPU helps);
    None when no video was encoded (nothing was measured)."""
    if not summary["ok"]:
        return None
    return "decode" if summary["waited_seconds"] > summary["encode_seconds"] else "encode"


def merged_over_ranks(summary: dict) -> dict:
    """Under torchrun (a rendezvous in the environment) every rank's summary, summed: the
    same answer as one process. Elsewhere (one process, SLURM tasks) this process's own."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", 1)) < 2 or "MASTER_ADDR" not in os.environ:
        return summary
    if not dist.is_initialized():
        dist.init_process_group("gloo")
    parts: list = [None] * dist.get_world_size()
    dist.all_gather_object(parts, summary)
    merged = {"out": summary["out"], "ranks": len(parts), "seconds": max(p.get("seconds", 0) for p in parts)}
    for key in ("videos", "skipped", "ok", "clips", "decode_seconds", "encode_seconds", "waited_seconds"):
        merged[key] = sum(p[key] for p in parts)
    merged["bound"] = bound(merged)
    for key in ("failed", "truncated", "renamed"):
        merged[key] = [x for p in parts for x in p[key]]
    return merged
