"""Action classification on top of a (TCLR pre-trained) R3D: linear probe or full fine-tuning.

`loss.kind: classify`. The backbone is initialised from `model.checkpoint` (a TCLR
run's checkpoint; none means random initialisation, the ablation's baseline) and
frozen when `model.freeze` (linear evaluation: globally pooled 512-d features and a
linear classifier). Training clips: `clip_frames` frames at `stride` from a random
start, augmented with `data.augment` (the release's linear/fine-tune loader uses the
lighter `linear` strengths). With `model.freeze`, BatchNorm stays in train mode as
released (its statistics follow the new data); `model.bn_stats: frozen` keeps the
pre-trained statistics. Testing lives in `eval.classification`. `data.label_fraction` keeps a class-balanced,
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
from tempclr_cli.core.errors import TempclrError
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


def _no_span(n_frames: int, spec: ClipSpec) -> bool:
    """The linear/fine-tune loader fails on videos no longer than one clip's span (`dl_linear.py:82`)."""
    return n_frames <= spec.frames * spec.stride


class ClassifyVideos(SeededVideos):
    """Items: (clip (3, T, S, S), label), or None for an undecodable (or, as released, too short) video.

    A clip: `frames` frames at `stride` from a random start in [0, N - span)
    (`linear_eval/dl_linear.py:74-90`)."""

    def __init__(
        self, videos: list[Path], labels: list[int], spec: ClipSpec, seed: int, data=None, channels: str = "bgr"
    ):
        super().__init__(videos, spec, seed, data, channels)
        self.labels = labels

    def __getitem__(self, i: int):
        rng, frames = self.load(i, _no_span)
        if frames is None:
            return None
        n, span = len(frames), self.spec.frames * self.spec.stride
        start = int(rng.integers(0, n - span)) if n > span else 0
        idx = (start + np.arange(self.spec.frames) * self.spec.stride) % n
        return augment(frames[idx], self.spec, rng, self.strengths, self.crop_x), self.labels[i]


class LabelledClips(NamedTuple):
    clips: torch.Tensor  # (B, 3, T, S, S)
    labels: torch.Tensor  # (B,)
    skipped: int = 0  # videos of the batch that did not decode

    @property
    def size(self) -> int:
        return len(self.labels)

    def to(self, device) -> LabelledClips:
        return LabelledClips(
            self.clips.to(device, non_blocking=True), self.labels.to(device, non_blocking=True), self.skipped
        )


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
        held = set(
            label_subset([items[k][1] for k in keep], data.val_fraction, recipe.train.seed + 1)
            if data.val_fraction
            else []
        )
        self.validation = [items[keep[k]] for k in sorted(held)]  # never the test split
        keep = [k for j, k in enumerate(keep) if j not in held]
        self.videos = [items[k][0] for k in keep]
        self.labels = [self.classes.index(items[k][1]) for k in keep]
        checkpoint = recipe.model.checkpoint  # read once: its colour order here, its weights in build_model
        self.pretrained = backbone_weights(checkpoint) if checkpoint else None
        channels = self.pretrained[2]["channels"] if self.pretrained else recipe.model.channels
        self.dataset = ClassifyVideos(self.videos, self.labels, self.spec, recipe.train.seed, data, channels)

    def describe(self) -> str:
        held = f", {len(self.validation)} held out for validation" if self.validation else ""
        return f"{len(self.videos)} training videos in {len(self.classes)} classes{held}"

    def validate(self, model: nn.Module) -> dict:
        """Top-1 (%) on the held-out training videos, the test protocol's clips; {} without any.
        best.pt is the best of these (the release selects nothing for fine-tuning, and its
        linear evaluation picks the best epoch on the test split)."""
        if not self.validation:
            return {}
        from tempclr_cli.core.models.classifier import accuracy, predict

        clips, data = self.recipe.eval.clips, self.recipe.data
        spec = ClipSpec(data.clip_frames, data.stride, data.size)
        ranked = predict(
            model, self.validation, spec, self.recipe.eval.crop, self.dataset.channels, self.device, [clips]
        )[clips]
        return {
            "val_top1": accuracy(clips, ranked, [self.classes.index(c) for _, c in self.validation], self.classes)[
                "top1"
            ]
        }

    def build_model(self) -> nn.Module:
        model = Classifier(**self.model_args())
        if self.pretrained:
            name, weights, _ = self.pretrained
            if name != self.recipe.model.name:
                raise TempclrError(
                    f"model.checkpoint {self.recipe.model.checkpoint} holds a {name} backbone; set model.name: {name}"
                )
            model.backbone.load_state_dict(weights)
        return model

    def model_args(self) -> dict:
        model = self.recipe.model
        return {
            "name": model.name,
            "classes": len(self.classes),
            "freeze": model.freeze,
            "bn_frozen": model.freeze and model.bn_stats == "frozen",
        }

    def meta(self) -> dict:
        return {
            "classes": self.classes,
            "clip_frames": self.spec.frames,
            "stride": self.spec.stride,
            "size": self.spec.size,
            "train_videos": len(self.videos),
            "channels": self.dataset.channels,
        }

    def steps_per_epoch(self, world: int) -> int:
        return max(1, len(self.videos) // max(1, self.recipe.train.batch_size))

    def loss(self, model: nn.Module, batch: LabelledClips) -> dict[str, torch.Tensor]:
        clips, labels, _ = batch
        ce = nn.functional.cross_entropy(model(clips), labels)
        return {"cross_entropy": ce, "total": ce}
