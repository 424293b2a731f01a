"""TCLR pre-training (the `tclr` task of the trainer): clips from a video dataset, TCLR losses.

Under DDP the embeddings of every rank are gathered with gradients before the losses, so
instance-contrastive negatives come from the global batch and each rank's loss equals
the single-process loss on that batch.
"""

from __future__ import annotations

from pathlib import Path

import torch

from tempclr_cli.core.clips import ClipSpec, TCLRVideos, VideoTask, collate, train_videos
from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.losses import gather_with_grad, tclr_losses
from tempclr_cli.core.r3d import TCLRModel
from tempclr_cli.core.recipe import Recipe


class TCLRTask(VideoTask):
    kind = "tclr"
    unit = "clips"  # what a batch's size counts (progress: clips/s)
    channels_last = True
    collate_fn, full_batches = staticmethod(collate), True  # equal whole batches on every rank (BN, negatives)

    def __init__(self, recipe: Recipe, device: torch.device):
        data = recipe.data
        self.recipe, self.device = recipe, device
        self.spec = ClipSpec(data.clip_frames, data.stride, data.size, data.hflip)
        items = train_videos(Path(data.root), data.format, Path(data.annotations) if data.annotations else None, data.split)
        if not items:
            raise TempclrError(f"{data.root}: no training videos found")
        self.videos = [path for path, _ in items]
        self.dataset = TCLRVideos(self.videos, self.spec, recipe.train.seed)

    def build_model(self) -> torch.nn.Module:
        return TCLRModel(self.recipe.model.name, self.recipe.model.proj_dim)

    def model_args(self) -> dict:
        return {"name": self.recipe.model.name, "proj_dim": self.recipe.model.proj_dim}

    def meta(self) -> dict:
        return {"clip_frames": self.spec.frames, "stride": self.spec.stride, "size": self.spec.size}

    def steps_per_epoch(self, world: int) -> int:
        return max(1, len(self.videos) // world // max(1, self.recipe.train.batch_size // world))

    def loss(self, model: torch.nn.Module, batch) -> dict[str, torch.Tensor]:
        views, slices, local = model(batch.global_clips, batch.local_clips)
        loss = self.recipe.loss
        weights = {"ic_global": loss.ic_global, "ic_local": loss.ic_local, "local_local": loss.local_local,
                   "global_local": loss.global_local}
        return tclr_losses(*(gather_with_grad(x, dim=1) for x in (views, slices, local)), loss.temperature, loss.scaling, weights)
