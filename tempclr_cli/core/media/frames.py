"""Frame tensors: the crops shared by encoders and clip samplers."""

from __future__ import annotations


def center_crop(x, size: int):
    """Crop the centre size x size of (..., H, W); pads nothing (H, W >= size)."""
    h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top : top + size, left : left + size]


def to_channels(frames, channels: str):
    """RGB frames (..., 3) in the order a model expects: the released TCLR weights saw BGR
    (OpenCV's order)."""
    return frames.flip(-1) if channels == "bgr" else frames
