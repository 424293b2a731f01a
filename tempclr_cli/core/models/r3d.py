"""The TCLR model: torchvision's R3D-18 with a dilated layer4, and the projection head.

TCLR replaces layer4's temporal stride with temporal dilation (first conv: stride
(1, 2, 2), padding (2, 1, 1), dilation (2, 1, 1); shortcut stride (1, 2, 2)), so a
16-frame clip keeps 4 time steps: layer4 maps (512, 4, 7, 7) at 112 px. Space is
average-pooled, time kept: (512, 4). The head, shared by every clip and loss, is
Linear -> BN -> ReLU -> Linear (no bias) -> BN -> L2-normalise.

`r3d18-small` is the same design with 1 block per layer and a quarter of the widths
(16..128 channels), for CPU runs on small data.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.video import resnet as tv


class _NarrowVideoResNet(tv.VideoResNet):
    """torchvision's VideoResNet with every width scaled by width/64."""

    def __init__(self, width: int, layers: list[int]):
        self._width = width
        stem = lambda: nn.Sequential(  # noqa: E731 - BasicStem with `width` channels
            nn.Conv3d(3, width, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False), nn.BatchNorm3d(width), nn.ReLU(inplace=True)
        )
        super().__init__(tv.BasicBlock, [tv.Conv3DSimple] * 4, layers, stem)

    def _make_layer(self, block, conv_builder, planes, blocks, stride=1):
        if planes == 64:
            self.inplanes = self._width
        return super()._make_layer(block, conv_builder, planes * self._width // 64, blocks, stride)


def _dilate_layer4(net: tv.VideoResNet) -> None:
    block = net.layer4[0]
    old = block.conv1[0]
    block.conv1[0] = nn.Conv3d(old.in_channels, old.out_channels, 3, stride=(1, 2, 2), padding=(2, 1, 1),
                               dilation=(2, 1, 1), bias=False)
    block.downsample[0].stride = (1, 2, 2)


BACKBONES = {
    "r3d18": lambda: tv.r3d_18(weights=None),
    "r3d18-small": lambda: _NarrowVideoResNet(16, [1, 1, 1, 1]),
}


def build_backbone(name: str = "r3d18") -> tv.VideoResNet:
    """R3D backbone with layer4 dilated in time and no classifier (fc = Identity)."""
    net = BACKBONES[name]()
    _dilate_layer4(net)
    net.fc = nn.Identity()
    return net


def backbone_weights(checkpoint, kinds: tuple[str, ...] = ("tclr",)) -> tuple[str, dict, dict]:
    """(backbone name, its `backbone.` weights, the run's meta: clip_frames, stride, size) of a
    `tempclr train` checkpoint."""
    from tempclr_cli.core.checkpoint import load_checkpoint

    state = load_checkpoint(checkpoint, kinds=kinds)
    prefix = "backbone."
    weights = {k[len(prefix):]: v for k, v in state["model"].items() if k.startswith(prefix)}
    return state["model_args"]["name"], weights, state["meta"]


def load_backbone(checkpoint, kinds: tuple[str, ...] = ("tclr",)) -> tuple[tv.VideoResNet, dict]:
    """The backbone of a `tempclr train` checkpoint, with its weights, and the run's meta."""
    name, weights, meta = backbone_weights(checkpoint, kinds)
    backbone = build_backbone(name)
    backbone.load_state_dict(weights)
    return backbone, meta


def feature_map(backbone: tv.VideoResNet, clips: torch.Tensor) -> torch.Tensor:
    """clips (N, 3, T, H, W) in [0, 1] -> layer4 map pooled over space (N, C, T/4)."""
    x = backbone.stem(clips)
    x = backbone.layer4(backbone.layer3(backbone.layer2(backbone.layer1(x))))
    return x.mean(dim=(3, 4))


class ProjectionHead(nn.Sequential):
    def __init__(self, width: int, out: int = 128):
        super().__init__(nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True),
                         nn.Linear(width, out, bias=False), nn.BatchNorm1d(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(super().forward(x), dim=-1)


class TCLRModel(nn.Module):
    """Backbone + head. forward(global (2, B, 3, T, H, W), local (2, B, L, 3, T, H, W)) returns
    the unit embeddings `tclr_losses` takes: (2, B, D), (2, B, T', D), (2, B, L, D)."""

    def __init__(self, name: str = "r3d18", proj_dim: int = 128):
        super().__init__()
        self.config = {"name": name, "proj_dim": proj_dim}
        self.backbone = build_backbone(name)
        self.width = self.backbone.layer4[-1].conv2[0].out_channels
        self.head = ProjectionHead(self.width, proj_dim)

    def forward(self, global_clips: torch.Tensor, local_clips: torch.Tensor):
        V, B = global_clips.shape[:2]
        L = local_clips.shape[2]
        maps = feature_map(self.backbone, torch.cat([global_clips.flatten(0, 1), local_clips.flatten(0, 2)]))
        g, loc = maps[: V * B], maps[V * B :]  # (2B, C, T'), (2BL, C, T')
        views = self.head(g.mean(-1)).view(V, B, -1)
        slices = self.head(g.transpose(1, 2).flatten(0, 1)).view(V, B, g.shape[-1], -1)
        local = self.head(loc.mean(-1)).view(V, B, L, -1)
        return views, slices, local
