"""Action classification on top of a (TCLR pre-trained) R3D: linear probe or full fine-tuning.

`loss.kind: classify`. The backbone is initialised from `model.checkpoint` (a TCLR
run's checkpoint; none means random initialisation, the ablation's baseline) and
frozen when `model.freeze` (linear evaluation: globally pooled 512-d features and a
linear classifier). Training clips: `clip_frames` frames at `stride` from a random
start, augmented as in pre-training. Test: the mean softmax over `eval.clips` clips
per video, evenly spaced, centre crop. `data.label_fraction` keeps a class-balanced,
seeded share of the training videos (limited-label fine-tuning).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from tempclr_cli.core.checkpoint import load_checkpoint
from tempclr_cli.core.clips import ClipSpec, SeededVideos, VideoTask, augment, test_clips, train_videos
from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.nn_retrieval import test_videos
from tempclr_cli.core.r3d import build_backbone, feature_map
from tempclr_cli.core.recipe import Recipe
from tempclr_cli.core.video import read_frames


def label_subset(labels: list[str], fraction: float, seed: int) -> list[int]:
    """Indices of a class-balanced, seeded `fraction` of the items (at least one per class)."""
    rng = np.random.default_rng(seed)
    keep = []
    for cls in sorted(set(labels)):
        members = [i for i, c in enumerate(labels) if c == cls]
        n = max(1, int(round(len(members) * fraction)))
        keep += rng.choice(members, size=n, replace=False).tolist()
    return sorted(keep)


class Classifier(nn.Module):
    def __init__(self, name: str, classes: int, freeze: bool):
        super().__init__()
        self.config = {"name": name, "classes": classes, "freeze": freeze}
        self.backbone = build_backbone(name)
        self.fc = nn.Linear(self.backbone.layer4[-1].conv2[0].out_channels, classes)
        self.freeze = freeze
        if freeze:
            self.backbone.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze:
            self.backbone.eval()  # linear evaluation: batch-norm statistics stay as pre-trained
        return self

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """clips (B, 3, T, H, W) -> logits (B, classes), from the globally pooled layer4 map."""
        return self.fc(feature_map(self.backbone, clips).mean(-1))


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


class ClassifyTask(VideoTask):
    kind = "classify"
    unit = "clips"  # what a batch's size counts (progress: clips/s)
    channels_last = True
    collate_fn, full_batches = staticmethod(_collate), False  # every video once per epoch

    def __init__(self, recipe: Recipe, device: torch.device):
        data = recipe.data
        self.recipe, self.device = recipe, device
        self.spec = ClipSpec(data.clip_frames, data.stride, data.size, data.hflip)
        annotations = Path(data.annotations) if data.annotations else None
        items = train_videos(Path(data.root), data.format, annotations, data.split)
        self.classes = sorted({c for _, c in items})
        keep = label_subset([c for _, c in items], data.label_fraction, recipe.train.seed)
        self.videos = [items[k][0] for k in keep]
        self.labels = [self.classes.index(items[k][1]) for k in keep]
        self.dataset = ClassifyVideos(self.videos, self.labels, self.spec, recipe.train.seed)

    def build_model(self) -> nn.Module:
        model_cfg = self.recipe.model
        model = Classifier(model_cfg.name, len(self.classes), model_cfg.freeze)
        if model_cfg.checkpoint:
            state = load_checkpoint(model_cfg.checkpoint)
            if state.get("kind") != "tclr":
                raise TempclrError(f"model.checkpoint {model_cfg.checkpoint}: not a TCLR checkpoint")
            backbone = {k[len("backbone."):]: v for k, v in state["model"].items() if k.startswith("backbone.")}
            model.backbone.load_state_dict(backbone)
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


def load_classifier(path: str | Path) -> tuple[Classifier, dict]:
    """A classification run's checkpoint -> (model with its weights, the checkpoint dict)."""
    state = load_checkpoint(path)
    if state.get("kind") != "classify":
        raise TempclrError(f"{path}: not a classification checkpoint (kind {state.get('kind')!r}); "
                           "train one with a loss.kind: classify recipe")
    model = Classifier(**state["model_args"])
    model.load_state_dict(state["model"])
    return model, state


@torch.no_grad()
def evaluate(model: Classifier, recipe: Recipe, classes: list[str], device, clips: list[int] | None = None,
             progress=None) -> list[dict]:
    """Top-1 / top-5 test accuracy and confusion matrix for each count in `clips` (default
    `eval.clips`): the mean softmax over that many evenly spaced clips per video. Each video
    is decoded once for all counts; `progress(1)` is called per video."""
    data = recipe.data
    spec = ClipSpec(data.clip_frames, data.stride, data.size)
    counts = clips or [recipe.eval.clips]
    items = test_videos(Path(data.root), data.format, Path(data.annotations) if data.annotations else None, data.split)
    if not items:
        raise TempclrError(f"{data.root}: no test videos in the split")
    model.eval().to(device)
    ranked = {k: [] for k in counts}  # clips -> per video, classes best first
    for path, _ in items:
        frames = torch.from_numpy(read_frames(path, spec.size))
        for k in counts:
            ranked[k].append(model(test_clips(frames, spec, k).to(device)).softmax(-1).mean(0).argsort(descending=True)[:5].tolist())
        if progress:
            progress(1)
    truth = [classes.index(cls) for _, cls in items]
    return [_accuracy(k, ranked[k], truth, classes) for k in counts]


def _accuracy(clips: int, ranked: list[list[int]], truth: list[int], classes: list[str]) -> dict:
    confusion = np.zeros((len(classes), len(classes)), dtype=int)  # rows: truth, columns: prediction
    for r, t in zip(ranked, truth):
        confusion[t, r[0]] += 1
    n = len(truth)
    return {"clips": clips, "test_videos": n,
            "top1": round(100 * sum(r[0] == t for r, t in zip(ranked, truth)) / n, 2),
            "top5": round(100 * sum(t in r for r, t in zip(ranked, truth)) / n, 2),
            "classes": classes, "confusion": confusion.tolist()}
