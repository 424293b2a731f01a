"""Which frames make a clip: TCLR's training clips and the evenly spaced evaluation clips.

Per video and step: a global clip of `frames` frames at `stride` (a span of
frames x stride, from a random start) and `frames`/4 local clips of `frames` consecutive
frames tiling that span (local clip t starts at start + t x span/L). Videos shorter
than the span are looped (frame indices wrap around). Evaluation clips (NN retrieval,
multi-clip classification) are `clips` clips at `stride` with evenly spaced starts,
centre crop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tempclr_cli.core.media.frames import center_crop


@dataclass(frozen=True)
class ClipSpec:
    frames: int = 16
    stride: int = 4
    size: int = 112
    hflip: float = 0.5  # 0 where a mirror image changes the class (left vs right motions)

    @property
    def locals_(self) -> int:
        return max(1, self.frames // 4)  # one local clip per layer4 time step


def tclr_indices(n_frames: int, spec: ClipSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Frame indices of the global clip (T,) and of the local clips (L, T)."""
    span = spec.frames * spec.stride
    start = int(rng.integers(0, max(1, n_frames - span + 1)))
    global_idx = start + np.arange(spec.frames) * spec.stride
    offsets = start + np.arange(spec.locals_)[:, None] * (span // spec.locals_)
    local_idx = offsets + np.arange(spec.frames)[None, :]
    return global_idx % n_frames, local_idx % n_frames


def eval_clips(frames: torch.Tensor, spec: ClipSpec, clips: int) -> torch.Tensor:
    """Evaluation clips (NN retrieval, multi-clip classification): frames (N, H, W, 3) uint8 ->
    (clips, 3, T, size, size) in [0, 1], `clips` clips at `spec.stride` with evenly spaced
    starts, centre crop; short videos loop."""
    span = (spec.frames - 1) * spec.stride + 1
    starts = np.linspace(0, max(0, len(frames) - span), clips).round().astype(int)
    idx = (starts[:, None] + np.arange(spec.frames)[None, :] * spec.stride) % len(frames)
    return center_crop(frames[torch.from_numpy(idx)].permute(0, 4, 1, 2, 3).float().div_(255), spec.size)
