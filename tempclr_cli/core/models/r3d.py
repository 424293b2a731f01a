"""The TCLR model: torchvision's R3D-18 or R(2+1)D-18 with a dilated layer4, and the head.

TCLR replaces layer4's first convolution by a full 3x3x3 one with temporal dilation
instead of temporal stride (stride (1, 2, 2), padding (2, 1, 1), dilation (2, 1, 1);
shortcut stride (1, 2, 2)), so a 16-frame clip keeps 4 time steps: layer4 maps
(512, 4, 7, 7) at 112 px. Space is average-pooled, time kept: (512, 4). For R(2+1)D-18
(`--arch rpd18`, `nn_retrieval/model.py:109-116`) the release swaps the same full 3x3x3
convolution in for layer4's first (2+1)D one. The head, shared by every clip and loss, is
Linear -> BN -> ReLU -> Linear (no bias) -> BN -> L2-normalise.

`r3d18-small` is the same design with 1 block per layer and a quarter of the widths
(16..128 channels), for CPU runs on small data.

Checkpoints: `tempclr train` runs, or the authors' released `.pth` files (pre-training,
linear or fine-tuning, with or without DataParallel's `module.` prefix), read by
`backbone_weights` with no conversion step.
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
            nn.Conv3d(3, width, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False),
            nn.BatchNorm3d(width),
            nn.ReLU(inplace=True),
        )
        super().__init__(tv.BasicBlock, [tv.Conv3DSimple] * 4, layers, stem)

    def _make_layer(self, block, conv_builder, planes, blocks, stride=1):
        if planes == 64:
            self.inplanes = self._width
        return super()._make_layer(block, conv_builder, planes * self._width // 64, blocks, stride)


def _dilate_layer4(net: tv.VideoResNet) -> None:
    block = net.layer4[0]
    first = next(m for m in block.conv1.modules() if isinstance(m, nn.Conv3d))
    block.conv1[0] = nn.Conv3d(
        first.in_channels,
        block.conv1[1].num_features,
        3,
        stride=(1, 2, 2),
        padding=(2, 1, 1),
        dilation=(2, 1, 1),
        bias=False,
    )
    block.downsample[0].stride = (1, 2, 2)


BACKBONES = {
    "r3d18": lambda: tv.r3d_18(weights=None),
    "r2plus1d18": lambda: tv.r2plus1d_18(weights=None),
    "r3d18-small": lambda: _NarrowVideoResNet(16, [1, 1, 1, 1]),
}


def width(backbone: tv.VideoResNet) -> int:
    """Channels of the layer4 map (512 for the -18 models)."""
    return backbone.layer4[-1].conv2[1].num_features


def build_backbone(name: str = "r3d18") -> tv.VideoResNet:
    """R3D backbone with layer4 dilated in time and no classifier (fc = Identity)."""
    net = BACKBONES[name]()
    _dilate_layer4(net)
    net.fc = nn.Identity()
    return net


# what the authors' released runs were trained on (`tclr_pretraining/parameters.py`)
RELEASED_META = {"clip_frames": 16, "stride": 4, "size": 112, "channels": "bgr"}


def backbone_weights(checkpoint, kinds: tuple[str, ...] = ("tclr",)) -> tuple[str, dict, dict]:
    """(backbone name, its weights, the run's meta: clip_frames, stride, size, channels) of a
    `tempclr train` checkpoint or of an authors' released `.pth`."""
    from tempclr_cli.core.checkpoint import check_kind, load_checkpoint

    state = load_checkpoint(checkpoint)
    if "kind" not in state and isinstance(state.get("state_dict"), dict):  # the authors' release: no kind
        return released_backbone(state["state_dict"], checkpoint)
    check_kind(state, checkpoint, kinds)
    prefix = "backbone."
    weights = {k[len(prefix) :]: v for k, v in state["model"].items() if k.startswith(prefix)}
    return state["model_args"]["name"], weights, {"channels": "rgb", **state["meta"]}  # runs before channels: RGB


def released_backbone(state_dict: dict, source) -> tuple[str, dict, dict]:
    """The backbone in a released state dict: `module.` (DataParallel) and `0.` (the
    pre-training `Sequential(backbone, mlp)`) stripped; the head (`1.`) and classifier (`fc.`)
    left out (`nn_retrieval/model.py:39-53`). R(2+1)D is told by its two-convolution stem."""
    from tempclr_cli.core.errors import TempclrError

    weights = {}
    for key, value in state_dict.items():
        key = key.removeprefix("module.")
        if key.startswith("1.") or key.startswith("fc."):
            continue
        weights[key.removeprefix("0.")] = value
    if "stem.0.weight" not in weights:
        raise TempclrError(f"{source}: no R3D / R(2+1)D backbone in its state_dict (keys like stem.0.weight)")
    name = "r2plus1d18" if "stem.3.weight" in weights else "r3d18"
    return name, weights, dict(RELEASED_META)


def load_backbone(checkpoint, kinds: tuple[str, ...] = ("tclr",)) -> tuple[tv.VideoResNet, dict]:
    """The backbone of a `tempclr train` checkpoint or a released `.pth`, with its weights, and
    the run's meta (plus "name", the backbone's)."""
    from tempclr_cli.core.errors import TempclrError

    name, weights, meta = backbone_weights(checkpoint, kinds)
    backbone = build_backbone(name)
    try:
        backbone.load_state_dict(weights)
    except RuntimeError as e:
        raise TempclrError(
            f"{checkpoint}: its weights do not fit a {name} backbone ({str(e).splitlines()[0]})"
        ) from None
    return backbone, {**meta, "name": name}


def feature_map(backbone: tv.VideoResNet, clips: torch.Tensor) -> torch.Tensor:
    """clips (N, 3, T, H, W) in [0, 1] -> layer4 map pooled over space (N, C, T/4)."""
    x = backbone.stem(clips)
    x = backbone.layer4(backbone.layer3(backbone.layer2(backbone.layer1(x))))
    return x.mean(dim=(3, 4))


class ProjectionHead(nn.Sequential):
    def __init__(self, width: int, out: int = 128):
        super().__init__(
            nn.Linear(width, width),
            nn.BatchNorm1d(width),
            nn.ReLU(inplace=True),
            nn.Linear(width, out, bias=False),
            nn.BatchNorm1d(out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(super().forward(x), dim=-1)


class TCLRModel(nn.Module):
    """Backbone + head. forward(global (2, B, 3, T, H, W), local (2, B, L, 3, T, H, W)) returns
    the unit embeddings `tclr_losses` takes: (2, B, D), (2, B, T', D), (2, B, L, D).

    `batchnorm="per-view"` runs the network as the release does
    (`train_gen_all_step.py:71-82`, `mlp.py:26-45`): once per global view and once per local
    clip and draw (ten backbone passes of B clips), and the head once per embedding kind
    (a view's pooled map, each of its time slices, each local clip), so every BatchNorm
    normalises with that pass's statistics. "joint" makes one pass over all 10B clips:
    faster, but the statistics mix views (a different loss on the same inputs).
    """

    def __init__(self, name: str = "r3d18", proj_dim: int = 128, batchnorm: str = "per-view"):
        super().__init__()
        self.config = {"name": name, "proj_dim": proj_dim, "batchnorm": batchnorm}
        self.backbone = build_backbone(name)
        self.width = width(self.backbone)
        self.head = ProjectionHead(self.width, proj_dim)
        self.batchnorm = batchnorm

    def forward(self, global_clips: torch.Tensor, local_clips: torch.Tensor):
        if self.batchnorm == "per-view":
            return self._per_view(global_clips, local_clips)
        V, B = global_clips.shape[:2]
        L = local_clips.shape[2]
        maps = feature_map(self.backbone, torch.cat([global_clips.flatten(0, 1), local_clips.flatten(0, 2)]))
        g, loc = maps[: V * B], maps[V * B :]  # (2B, C, T'), (2BL, C, T')
        views = self.head(g.mean(-1)).view(V, B, -1)
        slices = self.head(g.transpose(1, 2).flatten(0, 1)).view(V, B, g.shape[-1], -1)
        local = self.head(loc.mean(-1)).view(V, B, L, -1)
        return views, slices, local

    def _per_view(self, global_clips: torch.Tensor, local_clips: torch.Tensor):
        views, slices = [], []
        for clips in global_clips:  # the release's order: view 1, view 2, then the local clips
            m = feature_map(self.backbone, clips)  # (B, C, T')
            views.append(self.head(m.mean(-1)))
            slices.append(torch.stack([self.head(m[:, :, t]) for t in range(m.shape[-1])], 1))
        local = [
            torch.stack([self.head(feature_map(self.backbone, clips[:, k]).mean(-1)) for k in range(clips.shape[1])], 1)
            for clips in local_clips
        ]
        return torch.stack(views), torch.stack(slices), torch.stack(local)
