"""TCLR pre-training (the `tclr` task of the trainer): clips from a video dataset, TCLR losses.

Under DDP the embeddings of every rank are gathered with gradients before the losses, so
instance-contrastive negatives come from the global batch and each rank's loss equals
the single-process loss on that batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from tempclr_cli.core.data.clips import ClipSpec, tclr_indices
from tempclr_cli.core.data.splits import split_videos
from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.models.r3d import TCLRModel
from tempclr_cli.core.train.augment import augment
from tempclr_cli.core.train.losses import gather_with_grad, tclr_losses
from tempclr_cli.core.train.recipe import Recipe
from tempclr_cli.core.train.registry import register_task
from tempclr_cli.core.train.video_tasks import SeededVideos, VideoTask


class TCLRVideos(SeededVideos):
    """Items: {"global": (2, 3, T, S, S), "local": (2, L, 3, T, S, S)}, or None for a video that
    does not decode or that the release drops as too short."""

    def __getitem__(self, i: int):
        rng, frames = self.load(i)
        if frames is None:
            return None
        g, loc = tclr_indices(len(frames), self.spec, rng, self.pad)
        clip = lambda idx: augment(frames[idx], self.spec, rng, self.strengths, self.crop_x)  # noqa: E731
        views = torch.stack([clip(g) for _ in range(2)])
        local = torch.stack([torch.stack([clip(idx) for idx in loc]) for _ in range(2)])
        return {"global": views, "local": local}


@dataclass
class ClipBatch:
    global_clips: torch.Tensor  # (2, B, 3, T, S, S)
    local_clips: torch.Tensor  # (2, B, L, 3, T, S, S)
    skipped: int

    @property
    def size(self) -> int:
        return self.global_clips.shape[1] * (2 + 2 * self.local_clips.shape[2])  # clips

    def pin_memory(self) -> ClipBatch:  # DataLoader(pin_memory=True) calls this in its pinning thread
        return ClipBatch(self.global_clips.pin_memory(), self.local_clips.pin_memory(), self.skipped)

    def to(self, device) -> ClipBatch:
        return ClipBatch(
            self.global_clips.to(device, non_blocking=True),
            self.local_clips.to(device, non_blocking=True),
            self.skipped,
        )


def collate(items: list) -> ClipBatch | None:
    good = [it for it in items if it is not None]
    if not good:
        return None
    return ClipBatch(
        torch.stack([it["global"] for it in good], 1),
        torch.stack([it["local"] for it in good], 1),
        len(items) - len(good),
    )


@register_task
class TCLRTask(VideoTask):
    kind = "tclr"
    unit = "clips"  # what a batch's size counts (progress: clips/s)
    channels_last = True
    collate_fn, full_batches = staticmethod(collate), True  # equal whole batches on every rank (BN, negatives)

    def __init__(self, recipe: Recipe, device: torch.device, run_dir: Path | None = None):
        data = recipe.data
        self.recipe, self.device = recipe, device
        self.spec = ClipSpec(data.clip_frames, data.stride, data.size, data.hflip)
        items = split_videos(
            Path(data.root), data.format, Path(data.annotations) if data.annotations else None, data.split, "train"
        )
        if not items:
            raise TempclrError(f"{data.root}: no training videos found")
        self.videos = [path for path, _ in items]
        self.dataset = TCLRVideos(self.videos, self.spec, recipe.train.seed, data, recipe.model.channels)

    def describe(self) -> str:
        return f"{len(self.videos)} training videos"

    def build_model(self) -> torch.nn.Module:
        return TCLRModel(**self.model_args())

    def model_args(self) -> dict:
        model = self.recipe.model
        return {"name": model.name, "proj_dim": model.proj_dim, "batchnorm": model.batchnorm}

    def meta(self) -> dict:
        return {
            "clip_frames": self.spec.frames,
            "stride": self.spec.stride,
            "size": self.spec.size,
            "channels": self.recipe.model.channels,
        }

    def steps_per_epoch(self, world: int) -> int:
        return max(1, len(self.videos) // world // max(1, self.recipe.train.batch_size // world))

    def loss(self, model: torch.nn.Module, batch) -> dict[str, torch.Tensor]:
        views, slices, local = model(batch.global_clips, batch.local_clips)
        loss = self.recipe.loss
        weights = {
            "ic_global": loss.ic_global,
            "ic_local": loss.ic_local,
            "local_local": loss.local_local,
            "global_local": loss.global_local,
        }
        return tclr_losses(
            *(gather_with_grad(x, dim=1) for x in (views, slices, local)), loss.temperature, loss.scaling, weights
        )
