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
