"""What the trainer tasks over videos share: seeded datasets and loaders, skip counting.

Item i of epoch e draws its randomness from (seed, e, i), so DataLoader workers and
resumed runs agree on every random choice; a video that cannot be decoded is counted
(`skipped_videos` in the epoch's metrics), never fatal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from tempclr_cli.core.data.clips import ClipSpec, too_short, video_frames
from tempclr_cli.core.train.augment import STRENGTHS


class SeededVideos(Dataset):
    """A list of videos whose item i in epoch e draws its randomness from (seed, e, i):
    DataLoader workers and resumed runs agree on every random choice. Frames come in the
    model's colour order (`channels`) with the augmentation settings of `data` (a recipe's
    DataConfig; None: the released defaults)."""

    def __init__(self, videos: list[Path], spec: ClipSpec, seed: int = 0, data=None, channels: str = "bgr"):
        self.videos, self.spec, self.seed, self.epoch, self.channels = videos, spec, seed, 0, channels
        self.strengths = STRENGTHS[data.augment if data else "pretraining"]
        self.crop_x = data.crop_x if data else "uniform"
        self.pad = "loop" if data and data.short_videos == "loop" else "mirror"

    def __len__(self) -> int:
        return len(self.videos)

    def load(self, i: int, too_short=too_short) -> tuple[np.random.Generator, torch.Tensor | None]:
        """The item's generator and its frames: None for a video that cannot be decoded, or
        that is `too_short(frames, spec)` under the released short-video rule."""
        rng = np.random.default_rng([self.seed, self.epoch, i])
        try:
            frames = video_frames(self.videos[i], self.spec.size, self.channels)
        except Exception:  # noqa: BLE001 - a broken video is skipped and counted, never fatal
            return rng, None
        if self.pad == "mirror" and too_short(len(frames), self.spec):
            return rng, None
        return rng, frames


def seeded_loader(
    dataset: SeededVideos, recipe, epoch: int, rank: int, world: int, collate_fn, pin_memory: bool, full_batches: bool
) -> tuple[DataLoader, int]:
    """This rank's loader for epoch `epoch` (a seeded shuffle split across ranks) and its batch size.

    `full_batches` keeps only whole batches, equal on every rank (batch norm, contrastive
    negatives); otherwise every video is used once.
    """
    from tempclr_cli.core.train.trainer import epoch_generator

    dataset.epoch = epoch
    order = torch.randperm(len(dataset), generator=epoch_generator(recipe.train.seed, epoch)).tolist()
    per_rank = max(1, recipe.train.batch_size // world)
    if full_batches:
        order = order[: len(order) // (per_rank * world) * per_rank * world]
    loader = DataLoader(
        dataset,
        batch_size=per_rank,
        sampler=order[rank::world],
        collate_fn=collate_fn,
        num_workers=recipe.data.num_workers,
        pin_memory=pin_memory,
    )
    return loader, per_rank


class VideoTask:
    """What the trainer tasks over videos share: this rank's seeded batches on the device,
    with undecodable videos counted (`skipped_videos` in the epoch's metrics), never fatal.
    Subclasses set dataset, recipe, device, collate_fn and full_batches."""

    skipped = 0

    def epoch_info(self) -> dict:
        skipped, self.skipped = self.skipped, 0
        return {"skipped_videos": skipped}

    def batches(self, epoch: int, rank: int, world: int):
        loader, per_rank = seeded_loader(
            self.dataset,
            self.recipe,
            epoch,
            rank,
            world,
            self.collate_fn,
            self.device.type == "cuda",
            self.full_batches,
        )
        for batch in loader:
            if batch is None:  # no video of the batch decoded
                self.skipped += per_rank
                continue
            self.skipped += batch.skipped
            yield batch.to(self.device)
