"""A TCLR backbone as a frame encoder for `extract`."""

from __future__ import annotations

from dataclasses import dataclass

from tempclr_cli.core.encode.registry import register_encoder
from tempclr_cli.core.errors import TempclrError


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
    fps = None  # frames_per_clip samples per --clip-seconds window
    protocol = "frames"  # media.sampling.FRAME_PROTOCOLS: tempclr's sampler
    dim = 512

    def encode_images(self, frames):
        """(n, S, S, 3) uint8 -> (n, C) float32: each frame gets its clip's feature."""
        import torch

        from tempclr_cli.core.media.frames import to_channels
        from tempclr_cli.core.models.r3d import feature_map

        x = to_channels(torch.as_tensor(frames), self.channels).to(self.device, non_blocking=True).float().div_(255)
        n, F = x.shape[0], self.frames_per_clip
        if n % F:
            x = torch.cat([x, x[-1:].expand(F - n % F, *x.shape[1:])])
        clips = x.view(-1, F, *x.shape[1:]).permute(0, 4, 1, 2, 3)  # (clips, 3, F, S, S)
        with torch.inference_mode():
            feats = feature_map(self.backbone, clips).mean(-1).float()
        return feats.repeat_interleave(F, dim=0)[:n]


WEIGHTS = "CHECKPOINT (a tempclr TCLR run's .pt, the authors' .pth)"


@register_encoder(
    "r2plus1d18",
    "video",
    "TCLR R(2+1)D-18 backbone, layer4 pooled per clip; weights by --pretrained or --checkpoint",
    WEIGHTS,
    frames_per_clip="16*",
    input_size="112*",
    dim=512,
    text=False,
)
@register_encoder(
    "r3d18",
    "video",
    "TCLR R3D-18 backbone, layer4 pooled per clip; weights by --pretrained or --checkpoint",
    WEIGHTS,
    frames_per_clip="16*",
    input_size="112*",
    dim=512,
    text=False,
)
def load_r3d(model: str, checkpoint: str | None, device, seed: int = 0) -> R3DEncoder:
    """The backbone of a `tempclr train` TCLR (or classify) checkpoint, or of a released
    `.pth`; the checkpoint says which backbone it is."""
    from tempclr_cli.core.models.r3d import load_backbone

    if not checkpoint or checkpoint.lower() == "none":
        raise TempclrError(
            f"--model {model} needs --checkpoint (or --pretrained): a `tempclr train` TCLR run's last.pt "
            "or best.pt, or the authors' released .pth"
        )
    backbone, meta = load_backbone(checkpoint, ("tclr", "classify"))
    return R3DEncoder(
        backbone.eval().to(device),
        meta["clip_frames"],
        meta["size"],
        device,
        meta["name"],
        str(checkpoint),
        channels=meta["channels"],
    )
