"""An action classifier over an R3D backbone: linear probe (frozen) or full fine-tuning."""

from __future__ import annotations

import torch
from torch import nn

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
