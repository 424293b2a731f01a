"""Video files: finding them in folders and writing them (PyAV).

Reading is `media.decode` (opening, packet-level decoding, filter graphs, NVDEC) and
`media.sampling` (frames at a rate, and the rules for what the decoder may skip).
`sample_frames` is importable from here too, where docs/architecture.md once named it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from tempclr_cli.core import io
from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.media.sampling import sample_frames

__all__ = ["VIDEO_EXTENSIONS", "find_videos", "sample_frames", "write_video"]

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mkv", ".webm", ".avi", ".mov", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ts", ".gif"}
)
_CONTAINER = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mkv": "matroska",
    ".webm": "webm",
    ".avi": "avi",
    ".mov": "mov",
    ".ts": "mpegts",
}
_CODEC = {".webm": "libvpx", ".avi": "mpeg4"}


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: float,
    times: Sequence[float] | None = None,
    codec: str | None = None,
    gop: int | None = None,
    options: dict[str, str] | None = None,
) -> Path:
    """Encode RGB frames (H, W, 3) uint8 to `path` atomically; container from the suffix.

    `times` (seconds, increasing) gives each frame's presentation time for
    variable-frame-rate files; by default frame k is shown at k / fps. `gop` sets the
    keyframe interval in frames; `options`, encoder options over the defaults (for x264,
    `{"x264-params": "ref=3"}` replaces its `mbtree=0`).
    """
    import av

    path = Path(path)
    suffix = path.suffix.lower()
    codec = codec or _CODEC.get(suffix, "libx264")
    time_base = Fraction(1, 1000) if times is not None else Fraction(1, int(round(fps)))
    with io.atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format=_CONTAINER.get(suffix, "mp4")) as container:
            stream = container.add_stream(codec, rate=Fraction(int(round(fps)), 1))
            stream.pix_fmt = "yuv420p"
            stream.codec_context.time_base = time_base
            if codec == "libx264":
                # one thread, and no macroblock-tree rate control: with it, the bundled x264 gave 2-4
                # different streams for the same frames in 8 tries (one seed, one video: same bytes)
                stream.options = {"preset": "veryfast", "crf": "20", "x264-params": "mbtree=0"}
                stream.codec_context.thread_count = 1
            stream.options = {**stream.options, **(options or {})}
            if gop:
                stream.codec_context.gop_size = gop
            for k, image in enumerate(frames):
                if k == 0:
                    stream.height, stream.width = image.shape[:2]
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
                frame.pts = round(times[k] / time_base) if times is not None else k
                frame.time_base = time_base
                container.mux(stream.encode(frame))
            container.mux(stream.encode())
    return path


def find_videos(inputs: Iterable[str | Path]) -> list[Path]:
    """Expand folders (recursively, by video extension) and keep files as given, sorted."""
    found: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found.extend(q for q in p.rglob("*") if q.suffix.lower() in VIDEO_EXTENSIONS and q.is_file())
        elif p.exists():
            found.append(p)
        else:
            raise TempclrError(f"{p}: no such file or folder")
    if not found:  # an empty run would exit 0 with a table of zeros
        raise TempclrError(
            f"no videos found in {', '.join(map(str, inputs))} (looked for {' '.join(sorted(VIDEO_EXTENSIONS))})"
        )
    return sorted(set(found))
