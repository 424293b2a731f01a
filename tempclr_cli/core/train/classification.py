"""Action classification on top of a (TCLR pre-trained) R3D: linear probe or full fine-tuning.

`loss.kind: classify`. The backbone is initialised from `model.checkpoint` (a TCLR
run's checkpoint; none means random initialisation, the ablation's baseline) and
frozen when `model.freeze` (linear evaluation: globally pooled 512-d features and a
linear classifier). Training clips: `clip_frames` frames at `stride` from a random
start, augmented as in pre-training. Testing lives in `eval.classification`. `data.label_fraction` keeps a class-balanced,
seeded share of the training videos (limited-label fine-tuning).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from tempclr_cli.core.data.clips import ClipSpec
from tempclr_cli.core.data.splits import split_videos
from tempclr_cli.core.models.classifier import Classifier
from tempclr_cli.core.models.r3d import backbone_weights
from tempclr_cli.core.train.augment import augment
from tempclr_cli.core.train.recipe import Recipe
from tempclr_cli.core.train.registry import register_task
from tempclr_cli.core.train.video_tasks import SeededVideos, VideoTask


def label_subset(labels: list[str], fraction: float, seed: int) -> list[int]:
    """Indices of a class-balanced, seeded `fraction` of the items (at least one per class)."""
    rng = np.random.default_rng(seed)
    keep = []
    for cls in sorted(set(labels)):
        members = [i for i, c in enumerate(labels) if c == cls]
        n = max(1, int(round(len(members) * fraction)))
        keep += rng.choice(members, size=n, replace=False).tolist()
    return sorted(keep)


class ClassifyVideos(SeededVideos):
    """Items: (clip (3, T, S, S), label) or None for an undecodable video."""

    def __init__(self, videos: list[Path], labels: list[int], spec: ClipSpec, seed: int):
        super().__init__(videos, spec, seed)
        self.labels = labels

    def __getitem__(self, i: int):
        rng, frames = self.load(i)
        if frames is None:
            return None
        span = self.spec.frames * self.spec.stride
        start = int(rng.integers(0, max(1, len(frames) - span + 1)))
        idx = (start + np.arange(self.spec.frames) * self.spec.stride) % len(frames)
        return augment(frames[idx], self.spec, rng), self.labels[i]


class LabelledClips(NamedTuple):
    clips: torch.Tensor  # (B, 3, T, S, S)
    labels: torch.Tensor  # (B,)
    skipped: int = 0  # videos of the batch that did not decode

    @property
    def size(self) -> int:
        return len(self.labels)

    def to(self, device) -> LabelledClips:
        return LabelledClips(self.clips.to(device, non_blocking=True), self.labels.to(device, non_blocking=True), self.skipped)


def _collate(items) -> LabelledClips | None:
    good = [it for it in items if it is not None]
    if not good:
        return None
    return LabelledClips(torch.stack([c for c, _ in good]), torch.tensor([y for _, y in good]), len(items) - len(good))


@register_task
class ClassifyTask(VideoTask):
    kind = "classify"
    unit = "clips"  # what a batch's size counts (progress: clips/s)
    channels_last = True
    collate_fn, full_batches = staticmethod(_collate), False  # every video once per epoch

    def __init__(self, recipe: Recipe, device: torch.device, run_dir: Path | None = None):
        data = recipe.data
        self.recipe, self.device = recipe, device
        self.spec = ClipSpec(data.clip_frames, data.stride, data.size, data.hflip)
        annotations = Path(data.annotations) if data.annotations else None
        items = split_videos(Path(data.root), data.format, annotations, data.split, "train")
        self.classes = sorted({c for _, c in items})
        keep = label_subset([c for _, c in items], data.label_fraction, recipe.train.seed)
        self.videos = [items[k][0] for k in keep]
        self.labels = [self.classes.index(items[k][1]) for k in keep]
        self.dataset = ClassifyVideos(self.videos, self.labels, self.spec, recipe.train.seed)

    def describe(self) -> str:
        return f"{len(self.videos)} training videos in {len(self.classes)} classes"

    def build_model(self) -> nn.Module:
        model_cfg = self.recipe.model
        model = Classifier(model_cfg.name, len(self.classes), model_cfg.freeze)
        if model_cfg.checkpoint:
            model.backbone.load_state_dict(backbone_weights(model_cfg.checkpoint)[1])
        return model

    def model_args(self) -> dict:
        return {"name": self.recipe.model.name, "classes": len(self.classes), "freeze": self.recipe.model.freeze}

    def meta(self) -> dict:
        return {"classes": self.classes, "clip_frames": self.spec.frames, "stride": self.spec.stride, "size": self.spec.size,
                "train_videos": len(self.videos)}

    def steps_per_epoch(self, world: int) -> int:
        return max(1, len(self.videos) // max(1, self.recipe.train.batch_size))

    def loss(self, model: nn.Module, batch: LabelledClips) -> dict[str, torch.Tensor]:
        clips, labels, _ = batch
        ce = nn.functional.cross_entropy(model(clips), labels)
        return {"cross_entropy": ce, "total": ce}
