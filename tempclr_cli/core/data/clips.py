"""Which frames make a clip: TCLR's training clips and its evaluation clips, as released.

Training (`tclr_pretraining/dl_tclr.py:73-94`): per video and step, a global clip of
`frames` frames at `stride` (a span of frames x stride from a random start in
[0, N - span)) and `frames`/4 local clips of `frames` consecutive frames tiling that span.
Videos of (frames - 2) x stride frames or fewer (56 at 16 x 4) are dropped; a clip that
runs past the end is mirror-padded (`clip + clip[::-1][1:]`). `pad="loop"` wraps frame
indices around instead and keeps every video.

Evaluation (`nn_retrieval/dl_ret.py:81-140`, `linear_eval/dl_linear.py:237-293`): `clips`
clips at `stride` whose starts are int(linspace(0, N - frames x stride - 10, clips)) (a
negative start becomes the clip's number), a centre crop of `crop` x the short side,
resized to `size`.

Frames are decoded at a short side of `source_side(size)` (240 at 112, as UCF101's
320 x 240), so crops are cut from full-resolution frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class ClipSpec:
    frames: int = 16
    stride: int = 4
    size: int = 112
    hflip: float = 0.5  # 0 where a mirror image changes the class (left vs right motions)

    @property
    def locals_(self) -> int:
        return max(1, self.frames // 4)  # one local clip per layer4 time step


def source_side(size: int) -> int:
    """Short side to decode at: the release crops from 240-px frames for 112-px clips."""
    return max(size, round(size * 240 / 112))


def too_short(n_frames: int, spec: ClipSpec) -> bool:
    """The release drops videos of (frames - 2) x stride frames or fewer (`dl_tclr.py:76`)."""
    return n_frames <= (spec.frames - 2) * spec.stride


def mirror(idx: np.ndarray, n_frames: int) -> np.ndarray:
    """Indices past the end replaced by the clip's own frames in reverse (`dl_tclr.py:195-208`)."""
    valid = idx[idx < n_frames]
    if len(valid) == len(idx):
        return idx
    if len(valid) < 2:
        return np.resize(valid if len(valid) else np.array([n_frames - 1]), len(idx))
    return np.pad(valid, (0, len(idx) - len(valid)), mode="reflect")


def tclr_indices(
    n_frames: int, spec: ClipSpec, rng: np.random.Generator, pad: str = "mirror"
) -> tuple[np.ndarray, np.ndarray]:
    """Frame indices of the global clip (T,) and of the local clips (L, T)."""
    span = spec.frames * spec.stride
    start = int(rng.integers(0, n_frames - span)) if n_frames > span else 0
    global_idx = start + np.arange(spec.frames) * spec.stride
    offsets = start + np.arange(spec.locals_)[:, None] * (span // spec.locals_)
    local_idx = offsets + np.arange(spec.frames)[None, :]
    if pad == "loop":
        return global_idx % n_frames, local_idx % n_frames
    return mirror(global_idx, n_frames), np.stack([mirror(i, n_frames) for i in local_idx])


def eval_starts(n_frames: int, spec: ClipSpec, clips: int) -> np.ndarray:
    """int(linspace(0, N - frames x stride - 10, clips)); a negative start becomes its clip number."""
    starts = np.linspace(0, n_frames - spec.frames * spec.stride - 10, clips).astype(int)
    return np.where(starts < 0, np.arange(clips), starts)


def eval_clips(frames: torch.Tensor, spec: ClipSpec, clips: int, crop: float = 0.8) -> torch.Tensor:
    """Evaluation clips (NN retrieval, multi-clip classification): frames (N, H, W, 3) uint8 ->
    (clips, 3, T, size, size) in [0, 1]: `clips` clips at `spec.stride`, centre crop of
    `crop` x the short side, resized to `spec.size`."""
    from torchvision.transforms.v2 import functional as TF

    n = len(frames)
    idx = np.stack([mirror(s + np.arange(spec.frames) * spec.stride, n) for s in eval_starts(n, spec, clips)])
    x = frames[torch.from_numpy(idx)].permute(0, 1, 4, 2, 3).float().div_(255)  # (clips, T, 3, H, W)
    side = max(1, int(min(x.shape[-2:]) * crop))
    x = TF.resize(TF.center_crop(x.flatten(0, 1), [side, side]), [spec.size, spec.size], antialias=True)
    return x.view(clips, spec.frames, 3, spec.size, spec.size).transpose(1, 2).contiguous()


def video_frames(path, size: int, channels: str = "rgb") -> torch.Tensor:
    """Every frame of a video as a TCLR model reads it: (F, H, W, 3) uint8, short side
    `source_side(size)`, in the model's colour order (`channels`: rgb, or bgr as released)."""
    from tempclr_cli.core.media.frames import to_channels
    from tempclr_cli.core.media.decode import read_frames

    return to_channels(torch.from_numpy(read_frames(path, source_side(size))), channels)
