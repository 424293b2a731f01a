"""A TCLR backbone as a frame encoder for `extract`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class R3DEncoder:
    """Frames come in whole clips of `frames_per_clip` consecutive samples, and every frame
    of a clip receives that clip's feature (the globally pooled layer4 map), so the
    per-clip mean is the clip feature."""

    backbone: object
    frames_per_clip: int
    image_size: int
    device: object
    name: str
    pretrained: str
    seed: int = 0
    channels: str = "rgb"  # the colour order the backbone was trained on

    def encode_images(self, frames):
        """(n, S, S, 3) uint8 -> (n, C) float32: each frame gets its clip's feature."""
        import torch

        from tempclr_cli.core.models.r3d import feature_map

        from tempclr_cli.core.data.clips import to_channels

        x = to_channels(torch.as_tensor(frames), self.channels).to(self.device, non_blocking=True).float().div_(255)
        n, F = x.shape[0], self.frames_per_clip
        if n % F:
            x = torch.cat([x, x[-1:].expand(F - n % F, *x.shape[1:])])
        clips = x.view(-1, F, *x.shape[1:]).permute(0, 4, 1, 2, 3)  # (clips, 3, F, S, S)
        with torch.inference_mode():
            feats = feature_map(self.backbone, clips).mean(-1).float()
        return feats.repeat_interleave(F, dim=0)[:n]


def load_r3d(checkpoint: str, device) -> R3DEncoder:
    """The backbone of a `tempclr train` TCLR (or classify) checkpoint, or of a released `.pth`."""
    from tempclr_cli.core.models.r3d import load_backbone

    backbone, meta = load_backbone(checkpoint, ("tclr", "classify"))
    return R3DEncoder(backbone.eval().to(device), meta["clip_frames"], meta["size"], device, meta["name"],
                      str(checkpoint), channels=meta["channels"])
