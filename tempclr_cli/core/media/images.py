"""Small images for the self-contained HTML review page: PNG bytes (torchvision's encoder),
a perceptual colour map, and thumbnails of a video at given times."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# viridis at 0, 0.25, 0.5, 0.75, 1 (matplotlib's), interpolated linearly between
_VIRIDIS = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=float)


def png(rgb: np.ndarray) -> bytes:
    """(H, W, 3) uint8 -> PNG file bytes (8-bit RGB)."""
    import torch
    from torchvision.io import encode_png

    image = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.uint8)).permute(2, 0, 1).contiguous()
    return encode_png(image, compression_level=6).numpy().tobytes()


def viridis(values: np.ndarray) -> np.ndarray:
    """Values (any shape) scaled to their own min..max -> (..., 3) uint8 colours."""
    v = np.asarray(values, dtype=float)
    lo, hi = float(v.min()), float(v.max())
    x = (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)
    pos = x * (len(_VIRIDIS) - 1)
    i = np.clip(pos.astype(int), 0, len(_VIRIDIS) - 2)
    frac = (pos - i)[..., None]
    return np.round(_VIRIDIS[i] * (1 - frac) + _VIRIDIS[i + 1] * frac).astype(np.uint8)


def thumbnails(video: str | Path, times: list[float], short_side: int = 90) -> list[bytes]:
    """A PNG of the frame shown at each of `times` (seconds from the first frame), in one pass."""
    from tempclr_cli.core.media.sampling import sample_frames

    wanted = sorted(set(times))
    found: dict[float, np.ndarray] = {}
    last = None
    for sample in sample_frames(video, 2.0, short_side):  # every half second is close enough for a thumbnail
        while wanted and sample.time >= wanted[0]:
            found[wanted.pop(0)] = sample.image
        last = sample.image
    for t in wanted:  # past the last sample
        found[t] = last
    return [png(found[t]) for t in times]
