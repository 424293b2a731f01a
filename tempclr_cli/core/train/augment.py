"""TCLR's clip augmentation: one parameter draw per clip, applied to all of its frames.

The TCLR release's set, probabilities as published: random square crop of side
U(0.6, 1) x the short side resized to `size`, horizontal flip 0.5, colour jitter
(brightness, contrast, saturation in [0.75, 1.25], hue +-0.1, each with p 0.3),
grayscale 0.175, channel drop 0.125, random erase of a 9-18 px box (at 112 px, scaled)
0.5. Frames are in [0, 1], not mean/std normalised. The flip probability is a recipe
option (`data.hflip`): mirroring turns "moves left" into "moves right", so datasets whose
classes depend on direction (the synthetic clips, Something-Something) set it to 0.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF

from tempclr_cli.core.data.clips import ClipSpec


def augment(frames: torch.Tensor, spec: ClipSpec, rng: np.random.Generator) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (3, T, size, size) float in [0, 1], one parameter draw per clip."""
    size = spec.size
    x = frames.permute(0, 3, 1, 2).float().div_(255)  # (T, 3, H, W)
    H, W = x.shape[-2:]
    side = max(1, int(min(H, W) * rng.uniform(0.6, 1.0)))
    top, left = int(rng.integers(0, H - side + 1)), int(rng.integers(0, W - side + 1))
    x = TF.resized_crop(x, top, left, side, side, [size, size], antialias=True)
    if rng.random() < spec.hflip:
        x = TF.hflip(x)
    for adjust in (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation):
        if rng.random() < 0.3:
            x = adjust(x, float(rng.uniform(0.75, 1.25)))
    if rng.random() < 0.3:
        x = TF.adjust_hue(x, float(rng.uniform(-0.1, 0.1)))
    if rng.random() < 0.175:
        x = TF.rgb_to_grayscale(x, num_output_channels=3).contiguous()
    if rng.random() < 0.125:
        x[:, int(rng.integers(3))] = 0.0
    if rng.random() < 0.5:
        box = int(round(rng.uniform(9, 18) * size / 112)) or 1
        i, j = int(rng.integers(0, size - box + 1)), int(rng.integers(0, size - box + 1))
        x = TF.erase(x, i, j, box, box, torch.zeros(()))
    return x.clamp(0, 1).permute(1, 0, 2, 3).contiguous()
