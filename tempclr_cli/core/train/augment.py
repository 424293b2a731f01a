"""TCLR's clip augmentation as released (`tclr_pretraining/dl_tclr.py:124-142, 224-262`):
one parameter draw per clip, applied to every frame of it.

In the release's order, with its probabilities (the `PRETRAINING` strengths):

1. a square crop of side U(0.6, 1) x the short side, resized to `size` (bilinear);
2. contrast (U(0.75, 1.25)) at one of two slots, before and after the other colour
   changes (p 0.125 each, 0.25 in all); hue (+-0.1), saturation, brightness
   (U(0.75, 1.25)), p 0.3 each;
3. grayscale p 0.175, then gamma (U(0.75, 1.25)) in 3 of 4 of those; else channel drop
   p 0.125 (one draw decides: never both);
4. horizontal flip (`data.hflip`, 0.5 as released);
5. erase (to 0) of a rectangle with sides drawn apart from 9-18 px at 112 px (scaled
   with `size`), placed anywhere (it may run off the edge), p 0.5.

`LINEAR` holds the lighter strengths of the linear-evaluation and fine-tuning loader
(`linear_eval/dl_linear.py:74-112`): half the probabilities, narrower ranges, no channel
drop, grayscale p 0.1.

The crop's x-range: the release draws x0 from [0, W - W x f] where the crop is only
H x f wide (`dl_tclr.py:126`), so on 320 x 240 frames the crop never reaches the right
edge (at f = 0.6 the right 48 px are never seen). That is a bug: by default x0 is
uniform over [0, W - side]; `crop_x="released"` keeps the release's range.

Frames are in [0, 1], not mean/std normalised; the operations run in float where the
release rounds to 8 bits between steps (PIL images).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF

from tempclr_cli.core.data.clips import ClipSpec


@dataclass(frozen=True)
class Strengths:
    jitter: tuple[float, float]  # contrast, saturation, brightness factor range
    hue: float  # hue shift range +-hue
    gamma: tuple[float, float]
    p_contrast: float  # per slot (two slots)
    p_colour: float  # hue, saturation, brightness each
    gray_from: float  # r4 above this: grayscale (below drop_from) or channel drop
    drop_from: float  # r4 above this: channel drop instead of grayscale (1: never)
    p_erase: float


PRETRAINING = Strengths((0.75, 1.25), 0.1, (0.75, 1.25), 0.125, 0.3, 0.7, 0.875, 0.5)
LINEAR = Strengths((0.9, 1.1), 0.05, (0.85, 1.15), 0.0625, 0.15, 0.9, 1.0, 0.25)
STRENGTHS = {"pretraining": PRETRAINING, "linear": LINEAR}
ERASE_AT_112 = 19  # the release's erase_size: sides randint(9, 19) at 112 px


def draw(
    spec: ClipSpec,
    height: int,
    width: int,
    rng: np.random.Generator,
    strengths: Strengths = PRETRAINING,
    crop_x: str = "uniform",
) -> dict:
    """One clip's augmentation parameters for frames of height x width (the release's draws)."""
    f = rng.uniform(0.6, 1.0)
    side = max(1, int(min(height, width) * f))
    x_hi = width - width * f if crop_x == "released" else width - side
    erase = max(2, round(ERASE_AT_112 * spec.size / 112))
    return {
        "r": rng.random(8),
        "side": side,
        "x0": int(rng.integers(0, int(x_hi) + 1)),
        "y0": int(rng.integers(0, height - side + 1)),
        "contrast": rng.uniform(*strengths.jitter),
        "hue": rng.uniform(-strengths.hue, strengths.hue),
        "saturation": rng.uniform(*strengths.jitter),
        "brightness": rng.uniform(*strengths.jitter),
        "gamma": rng.uniform(*strengths.gamma),
        "erase_at": (int(rng.integers(0, spec.size)), int(rng.integers(0, spec.size))),
        "erase_size": (int(rng.integers(erase // 2, erase)), int(rng.integers(erase // 2, erase))),
        "channel": int(rng.integers(0, 3)),
    }


def decisions(p: dict, strengths: Strengths, hflip: float) -> dict[str, bool]:
    """Which operations a parameter draw applies (the release's tests on its random array)."""
    r, s = p["r"], strengths
    colour_change = r[4] > s.gray_from
    return {
        "contrast_before": r[0] < s.p_contrast,
        "hue": r[1] < s.p_colour,
        "saturation": r[2] < s.p_colour,
        "brightness": r[3] < s.p_colour,
        "contrast_after": s.p_contrast < r[0] < 2 * s.p_contrast,
        "grayscale": colour_change and r[4] < s.drop_from,
        "gamma": colour_change and r[4] < s.drop_from and r[5] > 0.25,
        "channel_drop": colour_change and r[4] >= s.drop_from,
        "hflip": r[6] > 1 - hflip,
        "erase": r[7] < s.p_erase,
    }


def augment(
    frames: torch.Tensor,
    spec: ClipSpec,
    rng: np.random.Generator,
    strengths: Strengths = PRETRAINING,
    crop_x: str = "uniform",
) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (3, T, size, size) float in [0, 1], one parameter draw per clip."""
    x = frames.permute(0, 3, 1, 2).float().div_(255)  # (T, 3, H, W)
    p = draw(spec, *x.shape[-2:], rng, strengths, crop_x)
    do = decisions(p, strengths, spec.hflip)
    x = TF.resized_crop(x, p["y0"], p["x0"], p["side"], p["side"], [spec.size, spec.size], antialias=True)
    if do["contrast_before"]:
        x = TF.adjust_contrast(x, float(p["contrast"]))
    if do["hue"]:
        x = TF.adjust_hue(x, float(p["hue"]))
    if do["saturation"]:
        x = TF.adjust_saturation(x, float(p["saturation"]))
    if do["brightness"]:
        x = TF.adjust_brightness(x, float(p["brightness"]))
    if do["contrast_after"]:
        x = TF.adjust_contrast(x, float(p["contrast"]))
    if do["grayscale"]:
        x = TF.rgb_to_grayscale(x, num_output_channels=3).contiguous()
    if do["gamma"]:
        x = TF.adjust_gamma(x.clamp(0, 1), float(p["gamma"]))
    if do["channel_drop"]:
        x[:, p["channel"]] = 0.0
    if do["hflip"]:
        x = TF.hflip(x)
    if do["erase"]:
        (i, j), (h, w) = p["erase_at"], p["erase_size"]
        x[..., i : i + h, j : j + w] = 0.0
    return x.clamp(0, 1).permute(1, 0, 2, 3).contiguous()
