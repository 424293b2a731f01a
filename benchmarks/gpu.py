"""GPU figures for `scripts/gpu_check.sh`: soft-DTW, all-pairs DTW, the row scan's cost per row,
extraction clips/s and NVDEC decoding against the CPU's, written as JSON (and a table on stdout).

    python benchmarks/gpu.py --json OUT/gpu_figures.json            # on a GPU
    python benchmarks/gpu.py --device cpu --small --json figures.json  # the dry run's smoke version

CUDA times come from CUDA events around the measured region after warm-up (medians of
repeats); pysdtw's CUDA path runs beside tempclr's when pysdtw is importable.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from tempclr_cli.core.align.dtw import pairwise_dtw, soft_dtw


def timed(fn, device: torch.device, repeat: int = 5, warmup: int = 2) -> float:
    """Median milliseconds of fn() (synchronised on CUDA)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 3)


def unit(*shape, device) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.randn(*shape, device=device), dim=-1)


def soft_dtw_figures(device: torch.device, B: int, L: int) -> dict:
    """Soft-DTW value + gradient, B pairs of L x L, ours and pysdtw's."""
    a, b = unit(B, L, 64, device=device), unit(B, L, 64, device=device)

    def ours():
        x = a.clone().requires_grad_(True)
        cost = 1 - x @ b.transpose(1, 2)
        soft_dtw(cost, gamma=0.1).sum().backward()

    out = {"B": B, "L": L, "tempclr_ms": timed(ours, device)}
    try:
        import pysdtw

        sdtw = pysdtw.SoftDTW(gamma=0.1, dist_func=lambda x, y: 1 - x @ y.transpose(1, 2), use_cuda=device.type == "cuda")

        def theirs():
            x = a.clone().requires_grad_(True)
            sdtw(x, b).sum().backward()

        out["pysdtw_ms"] = timed(theirs, device)
        out["pysdtw_over_tempclr"] = round(out["pysdtw_ms"] / out["tempclr_ms"], 2)
    except Exception as e:  # noqa: BLE001 - a peer that does not install or run is reported, not fatal
        out["pysdtw"] = f"not run: {type(e).__name__}: {e}"[:200]
    return out


def all_pairs_figures(device: torch.device, P: int, N: int, M: int) -> dict:
    """Hard DTW of P paragraphs (N sentences) against P videos (M clips): P*P pairs."""
    x, y = unit(P, N, 64, device=device), unit(P, M, 64, device=device)
    ms = timed(lambda: pairwise_dtw(x, y), device)
    return {"pairs": P * P, "N": N, "M": M, "tempclr_ms": ms}


def row_scan_figures(device: torch.device, B: int, L: int) -> dict:
    """The row scan runs one Python step (a few kernels) per DP row: time per row, and how much
    of it is launch overhead (the same rows with 1 pair vs B pairs)."""
    from tempclr_cli.core.align import dtw

    one = torch.rand(1, L, L, device=device)
    many = torch.rand(B, L, L, device=device)
    compiled, dtw.USE_COMPILED = dtw.USE_COMPILED, False  # the row scan on any device (CUDA always uses it)
    try:
        t_one = timed(lambda: soft_dtw(one, gamma=0.1), device)
        t_many = timed(lambda: soft_dtw(many, gamma=0.1), device)
    finally:
        dtw.USE_COMPILED = compiled
    return {"rows": L, "ms_per_row_1_pair": round(t_one / L, 4), "ms_per_row_B_pairs": round(t_many / L, 4), "B": B}


def extraction_figures(device: torch.device, seconds: float) -> dict:
    """Clips per second of `extract` with the tiny encoder on a synthetic video, decode included."""
    from tempclr_cli.core.encode import extract
    from tempclr_cli.core.encode.encoders import load_encoder
    from tempclr_cli.core.media.video import write_video

    with tempfile.TemporaryDirectory() as tmp:
        frames = (torch.randint(0, 255, (96, 128, 3), dtype=torch.uint8).numpy() for _ in range(int(seconds * 25)))
        video = write_video(Path(tmp) / "v.mp4", frames, 25)
        encoder = load_encoder("tiny", "none", None, device, 0)
        cfg = extract.ExtractConfig(fps=8.0, clip_seconds=1.0, workers=0, batch_size=256)
        jobs = extract.plan([video], Path(tmp) / "out", Path(tmp))
        start = time.perf_counter()
        results = [e for e in extract.run(jobs, encoder, cfg, Path(tmp) / "out") if not isinstance(e, int)]
        elapsed = time.perf_counter() - start
    clips = sum(r.clips for r in results)
    return {"video_seconds": seconds, "clips": clips, "clips_per_s": round(clips / elapsed, 1)}


def s3d_figures(device: torch.device, batch: int, size: int) -> dict:
    """S3D (random weights, the released sizes) on 1-s clips of 30 frames: clips per second,
    float32 against autocast (bf16 on CUDA), and how far autocast moves the unit embeddings."""
    import numpy as np

    from tempclr_cli.core.models.s3d import S3D
    from tempclr_cli.core.runtime import autocast

    torch.manual_seed(0)
    model = S3D(np.array(["a"]), vocab=2).to(device).eval()
    clips = torch.rand(batch, 3, 30, size, size, device=device)
    out, rates = {}, {}
    for mode in ("float32", "autocast"):
        def run(mode=mode):
            with torch.inference_mode(), autocast(device, enabled=mode == "autocast"):
                out[mode] = model(clips)["video_embedding"].float()

        rates[mode] = round(batch / (timed(run, device, repeat=3, warmup=1) / 1000), 1)
    a, b = (torch.nn.functional.normalize(out[m], dim=-1) for m in ("float32", "autocast"))
    return {"batch": batch, "size": size, "clips_per_s_float32": rates["float32"],
            "clips_per_s_autocast": rates["autocast"], "autocast_cosine_min": round(float((a * b).sum(-1).min()), 5)}


def nvdec_figures(seconds: float) -> dict:
    """Decoding a 720p30 H.264 file (x264 medium: P-frames use B-frames) at 1 fps on NVDEC
    against the CPU, one decoding thread, each mode: seconds, and where it decoded."""
    import numpy as np

    from tempclr_cli.core.media.video import sample_frames, write_video

    figures: dict = {"video_seconds": seconds}
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        base = rng.integers(0, 255, (90, 160, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
        frames = (np.roll(base, 4 * k, axis=1) for k in range(int(seconds * 30)))
        video = write_video(Path(tmp) / "v.mp4", frames, 30, options={"preset": "medium"})
        for decode in ("exact", "fast"):
            for hwaccel in (None, "cuda"):
                info: dict = {}
                start = time.perf_counter()
                n = sum(1 for _ in sample_frames(video, 1.0, 224, info, decode=decode, hwaccel=hwaccel))
                figures[f"{decode}_{hwaccel or 'cpu'}"] = {"seconds": round(time.perf_counter() - start, 3),
                                                          "samples": n, "decoded_on": info["decoded_on"]}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--small", action="store_true", help="tiny sizes: a smoke run (the dry run)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    device = torch.device(args.device)
    small = args.small
    figures = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "soft_dtw": soft_dtw_figures(device, 4 if small else 32, 64 if small else 512),
        "all_pairs": all_pairs_figures(device, 20 if small else 200, 8, 60),
        "row_scan": row_scan_figures(device, 8 if small else 256, 32 if small else 512),
        "extract": extraction_figures(device, 4.0 if small else 60.0),
        "nvdec": nvdec_figures(2.0 if small else 60.0),
        "s3d": s3d_figures(device, 1 if small else 32, 64 if small else 224),
    }
    for name, row in figures.items():
        print(f"{name:>10}: {row}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
