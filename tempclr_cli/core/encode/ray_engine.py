"""`extract --engine ray`: one Ray Data pipeline, CPU decoding and GPU encoding as separate stages.

    videos -> flat_map(decode_video)            CPU tasks: one video each, its sampled frames in chunks
           -> map_batches(EncodeFrames)         actors (num_gpus=1 each where there are GPUs), the model
                                                loaded once per actor; a pool of 1 to --gpus actors
           -> this process                      pooling into clips, then the store's writers (stores.py)

Ray schedules the two stages against each other (its streaming executor gives the slower stage
more of the cluster), so neither the GPUs wait for decoding nor the decoders for the GPUs. Chunks
are the plain run's (`--batch-size` frames, one encoder call each, in order), so the features are
the plain run's, bit for bit with `--decode exact`. Parts, claims and resume are the plain run's
too: the driver claims each part before its videos enter the pipeline, writes it whole, and a
rerun skips whole parts.

For a pipeline of one's own, `decode_video` and `EncodeFrames` are the pieces:

    import ray.data
    from tempclr_cli.core.encode.ray_engine import EncodeFrames, decode_video, video_rows

    ds = ray.data.from_items(video_rows(["a.mp4", "b.mp4"]))
    ds = ds.flat_map(decode_video, fn_kwargs={"fps": 1.0, "size": 224})
    ds = ds.map_batches(EncodeFrames, fn_constructor_kwargs={"model": "ViT-B-32", "pretrained": "openai"},
                        batch_size=1, concurrency=1, num_gpus=1)
    for row in ds.iter_rows(): ...   # row: i, chunk, last, times, embeddings (n, dim), report, error

Ray is an optional extra (`pip install 'tempclr[ray]'`), imported only here and only when used.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from tempclr_cli.core.encode.extract import DecodeStream, ExtractConfig, Sink, VideoResult, claim_path, failure, finish
from tempclr_cli.core.encode.jobs import Job, parts_of
from tempclr_cli.core.encode.shards import Member
from tempclr_cli.core.errors import TempclrError


def _ray():
    try:
        import ray
        import ray.data
    except ImportError:
        raise TempclrError("--engine ray needs Ray: pip install 'tempclr[ray]' (or use the default engine)") from None
    return ray


def video_rows(sources: list) -> list[dict]:
    """Pipeline rows for videos (paths or tar `Member`s): number, file, and the member's place in it."""
    rows = []
    for i, source in enumerate(sources):
        member = source if isinstance(source, Member) else None
        rows.append(
            {
                "i": i,
                "path": str(member.tar if member else source),
                "name": member.name if member else "",
                "offset": member.offset if member else 0,
                "size": member.size if member else 0,
            }
        )
    return rows


def _source(row: dict) -> Path | Member:
    return (
        Member(Path(row["path"]), row["name"], int(row["offset"]), int(row["size"]))
        if row["name"]
        else Path(row["path"])
    )


def decode_video(
    row: dict,
    fps: float = 1.0,
    size: int = 224,
    clip_seconds: float = 1.0,
    batch_size: int = 64,
    decode: str = "fast",
    protocol: str = "frames",
) -> list[dict]:
    """One video's sampled frames, centre-cropped to `size`, in chunks of `batch_size` (extract's
    `DecodeStream`, so the chunks are the plain run's): rows of i, chunk, last, frames (n, S, S, 3)
    uint8, times, frame_times, report (JSON of the DecodeReport, on the last chunk) and error ("" or why)."""
    cfg = ExtractConfig(fps=fps, clip_seconds=clip_seconds, batch_size=batch_size, workers=0, decode=decode)
    rows = []
    for k, item in enumerate(DecodeStream([Job(_source(row), Path("ray.npy"))], cfg, size, protocol=protocol)):
        frames = item.get("frames")
        rows.append(
            {
                "i": row["i"],
                "chunk": k,
                "last": bool(item.get("last", True)),
                "frames": np.zeros((0, size, size, 3), np.uint8) if frames is None else frames.numpy(),
                "times": list(item.get("times", [])),
                "frame_times": list(item.get("frame_times", [])),
                "report": json.dumps(asdict(item["report"])) if "report" in item else "",
                "error": item.get("error", ""),
            }
        )
    return rows


class EncodeFrames:
    """A Ray Data callable class: loads the encoder once per actor, then embeds each batch's frames.
    Use with `batch_size=1` (one decoded chunk per call: the plain run's encoder batches); adds
    `embeddings` ((n, dim) float32 per row) and drops the frames."""

    def __init__(
        self,
        model: str,
        pretrained: str | None = None,
        checkpoint: str | None = None,
        device: str = "auto",
        seed: int = 0,
    ):
        from tempclr_cli.core.encode.registry import load_encoder
        from tempclr_cli.core.runtime import resolve_device

        self.encoder = load_encoder(model, pretrained, checkpoint, resolve_device(device), seed)

    def __call__(self, batch: dict) -> dict:
        import torch

        embedded = []
        for frames in batch["frames"]:
            clock = time.perf_counter()
            emb = self.encoder.encode_images(torch.from_numpy(np.ascontiguousarray(frames))) if len(frames) else None
            embedded.append(
                (
                    np.zeros((0, self.encoder.dim), np.float32) if emb is None else emb.cpu().numpy(),
                    time.perf_counter() - clock,
                )
            )
        out = {k: v for k, v in batch.items() if k != "frames"}
        out["embeddings"] = _objects([e for e, _ in embedded])
        out["encode_seconds"] = np.array([s for _, s in embedded])
        return out


def _objects(arrays: list) -> np.ndarray:
    """A column of arrays of different lengths (numpy would try to stack them)."""
    column = np.empty(len(arrays), dtype=object)
    column[:] = arrays
    return column


def run_ray(
    jobs: list[Job],
    encoder,
    cfg: ExtractConfig,
    out: Path,
    model: str,
    pretrained: str | None,
    checkpoint: str | None,
    device: str,
    seed: int,
    layout,
    address: str | None = None,
    gpus: int | None = None,
):
    """`extract.run` on Ray: the same events (frame counts, VideoResults once their part is written).
    `address`: a running cluster ("auto", "ray://host:10001"), else a local instance with this
    machine's CPUs; `cfg.workers` decoding tasks run at once (at least one)."""
    import torch

    from tempclr_cli.core import io
    from tempclr_cli.core.media.decode import DecodeReport

    ray = _ray()
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # its progress lines would drown extract's
    gpus = int(ray.cluster_resources().get("GPU", 0)) if gpus is None else gpus
    for job in jobs:
        job.target.parent.mkdir(parents=True, exist_ok=True)
    claimed = [m for m in parts_of(jobs) if io.claim(claim_path(jobs[m[0]].target))]  # another run has the rest
    mine = [jobs[i] for m in claimed for i in m]
    taken = {i for m in claimed for i in m}
    yield from (VideoResult(j, "skipped") for i, j in enumerate(jobs) if i not in taken)
    if not mine:
        return
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # a video's chunks in order, as the plain run pools them
    ds = ray.data.from_items(video_rows([j.source for j in mine]), override_num_blocks=len(mine))
    ds = ds.flat_map(
        decode_video,
        fn_kwargs={
            "fps": cfg.fps,
            "size": encoder.image_size,
            "clip_seconds": cfg.clip_seconds,
            "batch_size": cfg.batch_size,
            "decode": cfg.decode,
            "protocol": encoder.protocol,
        },
        num_cpus=1,
        compute=ray.data.TaskPoolStrategy(size=max(cfg.workers, 1)),
    )
    ds = ds.map_batches(
        EncodeFrames,
        fn_constructor_kwargs={
            "model": model,
            "pretrained": pretrained,
            "checkpoint": checkpoint,
            "device": device,
            "seed": seed,
        },
        batch_size=1,
        batch_format="numpy",
        num_gpus=1 if gpus else 0,
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=max(gpus, 1)),
    )
    sink, partial = Sink(mine, layout, out), {}
    for row in ds.iter_rows():
        i, job = int(row["i"]), mine[int(row["i"])]
        if row["error"]:
            partial.pop(i, None)
            yield from sink.add(job, None, failure(job, row["error"], out, layout))
            continue
        acc = partial.setdefault(
            i, {"emb": [], "times": [], "frame_times": [], "start": time.perf_counter(), "encode": 0.0, "waited": 0.0}
        )
        acc["encode"] += float(row["encode_seconds"])
        if len(row["times"]):
            acc["emb"].append(torch.from_numpy(np.array(row["embeddings"])))  # a writable copy of Ray's buffer
            acc["times"] += [float(t) for t in row["times"]]
            acc["frame_times"] += [float(t) for t in row["frame_times"]]
            yield len(row["times"])
        if row["last"]:
            report = DecodeReport(**json.loads(row["report"]))
            array, result = finish(job, {**partial.pop(i), "report": report}, encoder, cfg, out, layout)
            yield from sink.add(job, array, result)
