"""An action classifier over an R3D backbone: linear probe (frozen) or full fine-tuning."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from tempclr_cli.core.data.clips import ClipSpec, eval_clips, video_frames

from tempclr_cli.core.models.r3d import build_backbone, feature_map, width


class Classifier(nn.Module):
    """`freeze`: only the classifier learns (linear evaluation). The release keeps the frozen
    backbone's BatchNorm in train mode (`linear_eval/train.py:43`): `bn_frozen` keeps the
    pre-trained statistics instead."""

    def __init__(self, name: str, classes: int, freeze: bool, bn_frozen: bool = False):
        super().__init__()
        self.config = {"name": name, "classes": classes, "freeze": freeze, "bn_frozen": bn_frozen}
        self.backbone = build_backbone(name)
        self.fc = nn.Linear(width(self.backbone), classes)
        self.bn_frozen = bn_frozen
        if freeze:
            self.backbone.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.bn_frozen:
            self.backbone.eval()
        return self

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """clips (B, 3, T, H, W) -> logits (B, classes), from the globally pooled layer4 map."""
        return self.fc(feature_map(self.backbone, clips).mean(-1))


@torch.no_grad()
def predict(
    model: Classifier,
    items: list,
    spec: ClipSpec,
    crop: float,
    channels: str,
    device,
    counts: list[int],
    advance=lambda n=1: None,
) -> dict[int, list[list[int]]]:
    """For each clip count, each video's top-5 classes (mean softmax over its clips, each a
    centre crop of `crop` x the short side); `advance(1)` after each video (core.progress). The
    model is left in the mode it came in (validation runs between training epochs)."""
    training = model.training
    model.eval().to(device)
    ranked = {k: [] for k in counts}  # clips -> per video, classes best first
    for path, _ in items:
        frames = video_frames(path, spec.size, channels)
        for k in counts:
            clips_k = eval_clips(frames, spec, k, crop).to(device)
            ranked[k].append(model(clips_k).softmax(-1).mean(0).argsort(descending=True)[:5].tolist())
        advance(1)
    model.train(training)
    return ranked


def accuracy(clips: int, ranked: list[list[int]], truth: list[int], classes: list[str]) -> dict:
    """Top-1 / top-5 (%) and the confusion matrix of per-video ranked classes against the truth."""
    confusion = np.zeros((len(classes), len(classes)), dtype=int)  # rows: truth, columns: prediction
    for r, t in zip(ranked, truth):
        confusion[t, r[0]] += 1
    n = len(truth)
    return {
        "clips": clips,
        "test_videos": n,
        "top1": round(100 * sum(r[0] == t for r, t in zip(ranked, truth)) / n, 2),
        "top5": round(100 * sum(t in r for r, t in zip(ranked, truth)) / n, 2),
        "classes": classes,
        "confusion": confusion.tolist(),
    }
