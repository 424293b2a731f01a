"""Extraction at dataset scale (#39): inputs, engines, store layouts, and a paper estimate for HowTo100M.

    python benchmarks/scale.py            # everything below, about two minutes on 2 loaded cores
    python benchmarks/scale.py --videos 50 --stores 1000

Rows (one run, one table, videos/s over the whole run, start-up included):
- 200 short synthetic videos (2 s, 10 fps, 64 px) as plain files, then the same in 2 webdataset tar
  shards, local engine with 1 and 2 decoding workers (tiny encoder, CPU);
- the shards under `--engine ray` with 1 and 2 decoding tasks on a local 2-CPU instance, with Ray's
  start-up (ray.init) reported apart;
- files (inodes) and bytes of a 10,000-video store in each layout (60 clips x 512 float16 each, plus
  the rows), written through the layouts' own writers (shards of 1,000);
- HowTo100M on paper: 1.2M videos, 134,000 h, from the per-core decode rate measured here on a real
  720p video (gradio's world.mp4, or --video) at 1 fps, and per-GPU encode rates (scripts/gpu_check.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))


def make_videos(root: Path, n: int) -> list[Path]:
    from videos import cfr

    return [cfr(root / "files" / f"{k:06d}.mp4", 2.0, size=64) for k in range(n)]


def make_shards(root: Path, videos: list[Path], shards: int = 2) -> str:
    (root / "shards").mkdir()
    per = -(-len(videos) // shards)
    for s in range(shards):
        with tarfile.open(root / "shards" / f"{s:05d}.tar", "w") as tar:
            for v in videos[s * per : (s + 1) * per]:
                tar.add(v, v.name)
    return str(root / "shards" / f"{{00000..{shards - 1:05d}}}.tar")


def timed_extract(source: str, out: Path, workers: int, engine: str = "local", fmt: str = "npy") -> dict:
    from tempclr_cli.core.encode.extract import ExtractConfig, extract_videos

    clock = time.perf_counter()
    summary = extract_videos(
        [source], out, ExtractConfig(workers=workers), "tiny", "none", device="cpu", output_format=fmt, engine=engine
    )
    seconds = time.perf_counter() - clock
    return {"videos": summary["ok"], "seconds": round(seconds, 2), "videos/s": round(summary["ok"] / seconds, 1)}


def engines(root: Path, n: int) -> list[dict]:
    videos = make_videos(root, n)
    shards = make_shards(root, videos)
    rows = []
    for label, source, fmt in (
        ("plain files -> npy", str(root / "files"), "npy"),
        ("2 tar shards -> webdataset", shards, "webdataset"),
    ):
        for workers in (1, 2):
            rows.append(
                {
                    "input": label,
                    "engine": "local",
                    "workers": workers,
                    **timed_extract(source, root / f"out-{fmt}-{workers}", workers, fmt=fmt),
                }
            )
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    clock = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    startup = round(time.perf_counter() - clock, 2)
    for workers in (1, 2):
        rows.append(
            {
                "input": "2 tar shards -> webdataset",
                "engine": "ray",
                "workers": workers,
                "ray_init": startup,
                **timed_extract(shards, root / f"out-ray-{workers}", workers, "ray", "webdataset"),
            }
        )
    ray.shutdown()
    return rows


def layouts(root: Path, videos: int, clips: int = 60, dim: int = 512, per_part: int = 1000) -> list[dict]:
    from tempclr_cli.core.data.stores import LAYOUTS
    from tempclr_cli.core.io import append_jsonl

    array = np.random.default_rng(0).standard_normal((clips, dim)).astype(np.float16)
    rows = []
    for name, layout in LAYOUTS.items():
        out = root / f"store-{name}"
        out.mkdir()
        clock, writer = time.perf_counter(), None
        for k in range(videos):
            key = f"{k:07d}"
            part = out / (f"{key}{layout.suffix}" if layout.per_video else f"{k // per_part:05d}{layout.suffix}")
            if writer is None or layout.per_video or k % per_part == 0:
                if writer is not None:
                    writer.close()
                writer = layout.writer(part)
            row = {
                "key": key,
                "features": layout.member(part.name, key),
                "clips": clips,
                "dim": dim,
                "starts": list(range(clips)),
                "ends": list(range(1, clips + 1)),
                "status": "ok",
            }
            writer.add(key, array, row)
            append_jsonl(out / "index.jsonl", row)
        writer.close()
        seconds = time.perf_counter() - clock
        files = [p for p in out.rglob("*") if p.is_file()]
        rows.append(
            {
                "format": name,
                "videos": videos,
                "files": len(files),
                "MB": round(sum(p.stat().st_size for p in files) / 1e6, 1),
                "disk MB": round(sum(p.stat().st_blocks * 512 for p in files) / 1e6, 1),
                "write s": round(seconds, 1),
            }
        )
        shutil.rmtree(out)
    return rows


def decode_rate(video: Path) -> float:
    """Video seconds decoded and sampled (1 fps, short side 224) per second, on one core."""
    from tempclr_cli.core.media.decode import DecodeReport
    from tempclr_cli.core.media.sampling import sample_frames

    report, clock = DecodeReport(), time.perf_counter()
    for _ in sample_frames(video, 1.0, 224, report, decode="fast"):
        pass
    return report.duration / (time.perf_counter() - clock)


def howto100m(
    rate: float, encode_rates: dict, hours: float = 134_000, cores: tuple = (8, 16, 32), gpus: tuple = (8, 64)
) -> list[dict]:
    """Wall hours for HowTo100M on N GPUs with M decoding cores each: decode needs hours*3600/rate
    core-seconds; each GPU encodes 3600 frames an hour of video at 1 fps."""
    rows = []
    for model, fps in encode_rates.items():
        for n in gpus:
            for m in cores:
                decode = hours / (rate * m * n)
                encode = hours * 3600 / (fps * n) / 3600
                rows.append(
                    {
                        "model": model,
                        "GPUs": n,
                        "cores per GPU": m,
                        "decode h": round(decode, 1),
                        "encode h": round(encode, 1),
                        "wall h": round(max(decode, encode), 1),
                        "GPU-hours": round(max(decode, encode) * n),
                    }
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=200)
    parser.add_argument("--stores", type=int, default=10_000)
    parser.add_argument("--video", type=Path, default=Path("/tmp/vids/world.mp4"))
    parser.add_argument(
        "--encode-rate",
        action="append",
        default=[],
        metavar="MODEL=FPS",
        help="per-GPU frames/s (scripts/gpu_check.sh prints them); default a placeholder",
    )
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        result = {"engines": engines(Path(tmp), args.videos), "layouts": layouts(Path(tmp), args.stores)}
    rate = decode_rate(args.video)
    rates = dict(r.split("=") for r in args.encode_rate) or {"ViT-B-32 (assumed)": "2000"}
    result["decode_rate_per_core"] = round(rate, 1)
    result["howto100m"] = howto100m(rate, {k: float(v) for k, v in rates.items()})
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
