"""An action classifier over an R3D backbone: linear probe (frozen) or full fine-tuning."""

from __future__ import annotations

import torch
from torch import nn

from tempclr_cli.core.models.r3d import build_backbone, feature_map


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
