"""Real video files made by the tests with PyAV: CFR, VFR, rotated, other containers, broken ones."""

from __future__ import annotations

import struct
from pathlib import Path

import av
import numpy as np

from tempclr_cli.core.media.video import write_video


def frame_with_index(k: int, size: int = 32) -> np.ndarray:
    """A frame whose brightness encodes its index, so tests can tell which frame was picked."""
    return np.full((size, size, 3), (k * 9) % 250, dtype=np.uint8)


def frame_index(image: np.ndarray) -> int:
    return int(round(float(image.mean()) / 9))


def cfr(path: Path, seconds: float, fps: int = 10, size: int = 32) -> Path:
    return write_video(path, (frame_with_index(k, size) for k in range(int(seconds * fps))), fps)


def vfr(path: Path, times: list[float], size: int = 32) -> Path:
    return write_video(path, (frame_with_index(k, size) for k in range(len(times))), 10, times=times)


def rotated_mp4(path: Path) -> Path:
    """A 64x32 video whose left half is white, flagged 'display rotated 90 degrees clockwise'."""
    image = np.zeros((32, 64, 3), np.uint8)
    image[:, :32] = 255
    write_video(path, (image for _ in range(8)), 8)
    data = bytearray(path.read_bytes())
    matrix = data.index(b"tkhd") + 4 + 40  # version-0 track header: the display matrix
    struct.pack_into(">9i", data, matrix, 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    path.write_bytes(bytes(data))
    return path


def audio_only(path: Path) -> Path:
    with av.open(str(path), "w", format="mp4") as c:
        stream = c.add_stream("aac", rate=16000)
        samples = np.zeros((1, 16000), dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = 16000
        c.mux(stream.encode(frame))
        c.mux(stream.encode())
    return path


def truncated(path: Path, source: Path, keep: float = 0.5) -> Path:
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


# (name, codec, pixel format, container format, suffix, width, height, encoder options): every
# codec and pixel format this PyAV can encode, in the containers they usually come in
CODEC_MATRIX = [
    ("h264_420", "libx264", "yuv420p", "mp4", ".mp4", 64, 48, {}),
    ("h264_444", "libx264", "yuv444p", "matroska", ".mkv", 64, 48, {}),
    ("h264_10bit", "libx264", "yuv420p10le", "matroska", ".mkv", 64, 48, {}),
    ("h264_odd", "libx264", "yuv444p", "matroska", ".mkv", 33, 17, {}),
    ("hevc_420", "libx265", "yuv420p", "mp4", ".mp4", 64, 48, {"x265-params": "log-level=none"}),
    (
        "hevc_10bit_hdr",
        "libx265",
        "yuv420p10le",
        "matroska",
        ".mkv",
        64,
        48,
        {"x265-params": "log-level=none:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:hdr10=1"},
    ),
    ("hevc_12bit", "libx265", "yuv420p12le", "matroska", ".mkv", 64, 48, {"x265-params": "log-level=none"}),
    ("vp8", "libvpx", "yuv420p", "webm", ".webm", 64, 48, {}),
    ("vp9_420", "libvpx-vp9", "yuv420p", "webm", ".webm", 64, 48, {}),
    ("vp9_444", "libvpx-vp9", "yuv444p", "webm", ".webm", 64, 48, {}),
    ("av1", "libsvtav1", "yuv420p", "matroska", ".mkv", 64, 64, {}),
    ("av1_10bit", "libsvtav1", "yuv420p10le", "mp4", ".mp4", 64, 64, {}),
    ("mpeg4", "mpeg4", "yuv420p", "avi", ".avi", 64, 48, {}),
    ("mpeg2", "mpeg2video", "yuv420p", "mpegts", ".ts", 64, 48, {}),
    ("mpeg2_ps", "mpeg2video", "yuv422p", "mpeg", ".mpg", 64, 48, {}),
    ("mjpeg", "mjpeg", "yuvj420p", "avi", ".avi", 64, 48, {}),
    ("ffv1_rgb", "ffv1", "bgr0", "matroska", ".mkv", 64, 48, {}),
    ("ffv1_16bit", "ffv1", "yuv420p16le", "matroska", ".mkv", 64, 48, {}),
    ("prores", "prores_ks", "yuv422p10le", "mov", ".mov", 64, 48, {}),
    ("huffyuv", "huffyuv", "yuv422p", "avi", ".avi", 64, 48, {}),
    ("utvideo", "utvideo", "gbrp", "avi", ".avi", 64, 48, {}),
    ("png_mov", "png", "rgb24", "mov", ".mov", 64, 48, {}),
    ("qtrle", "qtrle", "rgb24", "mov", ".mov", 64, 48, {}),
    ("gif", "gif", "rgb8", "gif", ".gif", 64, 48, {}),
    ("flv1", "flv", "yuv420p", "flv", ".flv", 64, 48, {}),
    ("h263", "h263", "yuv420p", "avi", ".avi", 128, 96, {}),
    ("msmpeg4", "msmpeg4", "yuv420p", "avi", ".avi", 64, 48, {}),
    ("wmv2", "wmv2", "yuv420p", "asf", ".wmv", 64, 48, {}),
    ("cinepak", "cinepak", "rgb24", "mov", ".mov", 64, 48, {}),
]


def encode_with(
    path: Path,
    codec: str,
    pix_fmt: str,
    fmt: str,
    width: int,
    height: int,
    options: dict,
    seconds: float = 2.0,
    fps: int = 10,
    container_options: dict | None = None,
) -> Path:
    """A `seconds`-long moving pattern encoded with exactly this codec and pixel format."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=fmt, options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.options = dict(options)
        for k in range(int(seconds * fps)):
            image = np.zeros((height, width, 3), np.uint8)
            image[:, : max(1, (k * width) // int(seconds * fps))] = (200, 80 + k, 40)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format=pix_fmt)
            frame.pts = k
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def fuzzed(source: Path, out: Path, count: int = 50, seed: int = 0) -> list[Path]:
    """`count` damaged copies of `source`: truncations, flipped bytes in the header (first 2 KB)
    and in the payload, zeroed ranges; a quarter each, seeded."""
    rng = np.random.default_rng(seed)
    data = source.read_bytes()
    out.mkdir(parents=True, exist_ok=True)
    made = []
    for k in range(count):
        damaged = bytearray(data)
        kind = ("cut", "header", "payload", "zeros")[k % 4]
        if kind == "cut":
            damaged = damaged[: int(len(data) * rng.uniform(0.05, 0.95))]
        elif kind in ("header", "payload"):
            lo, hi = (0, 2048) if kind == "header" else (2048, len(data))
            for at in rng.integers(lo, hi, size=int(rng.integers(1, 9))):
                damaged[at] ^= 1 << int(rng.integers(0, 8))
        else:
            n = int(rng.integers(64, 2048))
            at = int(rng.integers(0, len(data) - n))
            damaged[at : at + n] = bytes(n)
        made.append(out / f"{kind}{k:02d}.mp4")
        made[-1].write_bytes(bytes(damaged))
    return made


def faststart_h264(path: Path, seconds: float = 4.0, preset: str = "medium") -> Path:
    """An H.264 MP4 with its index (moov) first, as web videos are: a cut copy still plays.
    x264's medium preset lets P-frames use B-frames; veryfast does not (fast mode skips B-frames)."""
    return encode_with(
        path,
        "libx264",
        "yuv420p",
        "mp4",
        64,
        48,
        {"g": "10", "preset": preset},
        seconds,
        container_options={"movflags": "faststart"},
    )
