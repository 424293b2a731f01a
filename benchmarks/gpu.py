"""GPU figures for `scripts/gpu_check.sh`: soft-DTW, all-pairs DTW, the row scan's cost per row,
extraction clips/s and NVDEC decoding against the CPU's, written as JSON (and a table on stdout).

    python benchmarks/gpu.py --json OUT/gpu_figures.json            # on a GPU
    python benchmarks/gpu.py --device cpu --small --json figures.json  # the dry run's smoke version

Soft-DTW value + gradient at B = 32 and L = 128, 512, 1024, 4096, from D = 64 embeddings (the cost
inside the timing) and from a precomputed cost: tempclr's automatic backend (the fused triton
kernels on CUDA), the row scan (`backend="torch"`) and pysdtw's CUDA path when pysdtw imports, each
with its peak memory; a contender that cannot run a size says why. Published figures of other
implementations ride along under "published", as their authors give them (not measured here).
Times are medians of repeats after warm-up, synchronised around the measured region.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from tempclr_cli.core.align.dtw import backend_for, dtw, pairwise_dtw, soft_dtw


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


PUBLISHED = {  # anchors from their authors, not measured here: soft-DTW value + gradient, B = 32, 512 x 512, D = 64
    "sdtw-cuda-torch (BGU-CS-VIL), benchmark CSV": "20.1 ms",
    "sdtw-cuda-torch (BGU-CS-VIL), README": "42 ms",
    "pytorch-softdtw-cuda (Maghoumi)": "51.7 ms; out of memory at 1024",
}


def measured(fn, device: torch.device, repeat: int = 5, warmup: int = 2) -> dict:
    """{"ms": median, "peak_mb": memory allocated at the peak beyond what was there before (CUDA)}, or
    {"not_run": why} when it fails (pysdtw past its 1,024-thread limit, out of memory)."""
    try:
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
        out = {"ms": timed(fn, device, repeat, warmup)}
        if device.type == "cuda":
            out["peak_mb"] = round((torch.cuda.max_memory_allocated(device) - base) / 2**20, 1)
        return out
    except Exception as e:  # noqa: BLE001 - a contender that cannot run a size is reported, not fatal
        return {"not_run": f"{type(e).__name__}: {e}"[:200]}


def soft_dtw_figures(device: torch.device, B: int, L: int, precomputed: bool) -> dict:
    """Soft-DTW value + gradient, B pairs of L x L (gamma 0.1): tempclr's automatic backend (triton on
    CUDA), the row scan, and pysdtw, from D = 64 embeddings (the cost 1 - x y^T inside the timing,
    the gradient to x) or from a precomputed cost (the gradient to the cost)."""
    a, b = unit(B, L, 64, device=device), unit(B, L, 64, device=device)
    cost = (1 - a @ b.transpose(1, 2)).contiguous()
    big = L >= 2048  # the row scan takes seconds a call there: fewer repeats
    repeat, warmup = (2, 1) if big else (5, 2)

    def run(distance):
        def step():
            if precomputed:
                x = cost.clone().requires_grad_(True)
                distance(x, None)
            else:
                x = a.clone().requires_grad_(True)
                distance(x, b)

        return step

    def ours(backend):
        def distance(x, y):
            soft_dtw(x if y is None else 1 - x @ y.transpose(1, 2), gamma=0.1, backend=backend).sum().backward()

        return distance

    out = {
        "B": B,
        "L": L,
        "cost": "precomputed" if precomputed else "D=64 embeddings, cost included",
        "backend": backend_for(cost),
    }
    out["tempclr"] = measured(run(ours(None)), device, repeat, warmup)
    out["row_scan"] = measured(run(ours("torch")), device, repeat, warmup)
    try:
        import pysdtw

        sdtw = pysdtw.SoftDTW(
            gamma=0.1,
            use_cuda=device.type == "cuda",
            dist_func=(lambda x, y: x) if precomputed else (lambda x, y: 1 - x @ y.transpose(1, 2)),
        )

        def theirs(x, y):  # pysdtw reads the second length (and the feature size) from its second argument
            sdtw(x, cost if y is None else y).sum().backward()

        out["pysdtw"] = measured(run(theirs), device, repeat, warmup)
    except ImportError as e:
        out["pysdtw"] = {"not_run": f"{type(e).__name__}: {e}"[:200]}
    for peer in ("row_scan", "pysdtw"):
        if "ms" in out[peer] and "ms" in out["tempclr"]:
            out[f"{peer}_over_tempclr"] = round(out[peer]["ms"] / out["tempclr"]["ms"], 2)
    return out


def all_pairs_figures(device: torch.device, P: int, N: int, M: int) -> dict:
    """Hard DTW of P paragraphs (N sentences) against P videos (M clips): P*P pairs, from D = 64
    embeddings; tempclr's `pairwise_dtw` against the row scan on the same cost tensor."""
    x, y = unit(P, N, 64, device=device), unit(P, M, 64, device=device)

    def row_scan():
        cost = 1 - torch.einsum("pnd,vmd->pvnm", x, y)
        dtw(cost.reshape(P * P, N, M), paths=False, backend="torch")

    out = {
        "pairs": P * P,
        "N": N,
        "M": M,
        "tempclr": measured(lambda: pairwise_dtw(x, y), device),
        "row_scan": measured(row_scan, device),
    }
    if "ms" in out["row_scan"] and "ms" in out["tempclr"]:
        out["row_scan_over_tempclr"] = round(out["row_scan"]["ms"] / out["tempclr"]["ms"], 2)
    return out


def row_scan_figures(device: torch.device, B: int, L: int) -> dict:
    """The row scan runs one Python step (a few kernels) per DP row: time per row, and how much
    of it is launch overhead (the same rows with 1 pair vs B pairs); the automatic backend's time
    for the same rows beside it (on CUDA the fused kernels: one launch, no per-row cost)."""
    one = torch.rand(1, L, L, device=device)
    many = torch.rand(B, L, L, device=device)
    t_one = timed(lambda: soft_dtw(one, gamma=0.1, backend="torch"), device)
    t_many = timed(lambda: soft_dtw(many, gamma=0.1, backend="torch"), device)
    t_auto = timed(lambda: soft_dtw(many, gamma=0.1), device)
    return {
        "rows": L,
        "B": B,
        "ms_per_row_1_pair": round(t_one / L, 4),
        "ms_per_row_B_pairs": round(t_many / L, 4),
        "automatic_backend_ms_per_row_B_pairs": round(t_auto / L, 4),
    }


def random_weights(model: str, folder: Path) -> str:
    """The `--pretrained` for `model` with random weights: "none" for tiny, or S3D's two released
    files in their layout (the command never falls back to random weights by itself)."""
    if model == "tiny":
        return "none"
    import numpy as np

    from tempclr_cli.core.models.s3d import S3D

    words = np.array(["stir", "the", "pan"])
    torch.save(S3D(words, vocab=len(words) + 1).state_dict(), folder / "s3d_howto100m.pth")
    np.save(folder / "s3d_dict.npy", words)
    return str(folder)


def extraction_figures(device: torch.device, seconds: float, model: str = "tiny", size: tuple = (96, 128)) -> dict:
    """Clips per second of `extract` on a synthetic video, decode included: the tiny encoder at
    8 fps, or S3D (random weights) at its own 30 fps on 1-s clips, end to end."""
    from tempclr_cli.core.encode import extract
    from tempclr_cli.core.encode.encoders import load_encoder
    from tempclr_cli.core.encode.jobs import plan
    from tempclr_cli.core.media.video import write_video

    with tempfile.TemporaryDirectory() as tmp:
        frames = (torch.randint(0, 255, (*size, 3), dtype=torch.uint8).numpy() for _ in range(int(seconds * 30)))
        video = write_video(Path(tmp) / "v.mp4", frames, 30)
        encoder = load_encoder(model, random_weights(model, Path(tmp)), None, device, 0)
        cfg = extract.sampling_for(encoder, extract.ExtractConfig(fps=8.0, clip_seconds=1.0, workers=0, batch_size=256))
        jobs = plan([video], Path(tmp) / "out", Path(tmp))
        start = time.perf_counter()
        results = [e for e in extract.run(jobs, encoder, cfg, Path(tmp) / "out") if not isinstance(e, int)]
        elapsed = time.perf_counter() - start
    clips = sum(r.clips for r in results)
    return {
        "model": model,
        "video_seconds": seconds,
        "frame": list(size),
        "clips": clips,
        "clips_per_s": round(clips / elapsed, 1),
    }


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
    return {
        "batch": batch,
        "size": size,
        "clips_per_s_float32": rates["float32"],
        "clips_per_s_autocast": rates["autocast"],
        "autocast_cosine_min": round(float((a * b).sum(-1).min()), 5),
    }


def nvdec_figures(seconds: float, heights: tuple = (480, 720, 1080)) -> dict:
    """Decoding a 16:9 H.264 file (x264 medium: P-frames use B-frames) at 1 fps on NVDEC against
    the CPU, one decoding thread, at each height: seconds, and where it decoded (`--hwaccel auto`
    picks NVDEC from NVDEC_MIN_HEIGHT up; this is the table that threshold should come from)."""
    import numpy as np

    from tempclr_cli.core.media.decode import DecodeReport
    from tempclr_cli.core.media.sampling import sample_frames
    from tempclr_cli.core.media.video import write_video

    figures: dict = {"video_seconds": seconds}
    rng = np.random.default_rng(0)
    for height in heights:
        width = height * 16 // 9 // 8 * 8
        base = rng.integers(0, 255, (height // 8, width // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
        with tempfile.TemporaryDirectory() as tmp:
            frames = (np.roll(base, 4 * k, axis=1) for k in range(int(seconds * 30)))
            video = write_video(Path(tmp) / "v.mp4", frames, 30, options={"preset": "medium"})
            for decode in ("exact", "fast"):
                for hwaccel in (None, "cuda"):
                    report = DecodeReport()
                    start = time.perf_counter()
                    n = sum(1 for _ in sample_frames(video, 1.0, 224, report, decode=decode, hwaccel=hwaccel))
                    figures[f"{height}p_{decode}_{hwaccel or 'cpu'}"] = {
                        "seconds": round(time.perf_counter() - start, 3),
                        "samples": n,
                        "decoded_on": report.decoded_on,
                    }
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
        "soft_dtw": {
            "published": PUBLISHED,
            "rows": [
                soft_dtw_figures(device, 4 if small else 32, L, precomputed)
                for L in ((16, 48) if small else (128, 512, 1024, 4096))
                for precomputed in (False, True)
            ],
        },
        "all_pairs": all_pairs_figures(device, 20 if small else 200, 8, 60),
        "row_scan": row_scan_figures(device, 8 if small else 256, 32 if small else 512),
        "extract": extraction_figures(device, 4.0 if small else 60.0),
        "extract_s3d": extraction_figures(device, 2.0 if small else 30.0, "s3d-howto100m", (240, 320)),
        "nvdec": nvdec_figures(1.0 if small else 30.0),
        "s3d": s3d_figures(device, 1 if small else 32, 64 if small else 224),
    }
    for name, row in figures.items():
        print(f"{name:>10}: {row}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
