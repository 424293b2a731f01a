"""Frame and sentence encoders: OpenCLIP models by name, with weights chosen explicitly.

`--pretrained` takes an open_clip tag (`openai`, `laion2b_s34b_b79k`, ...), a local
checkpoint file, `local-dir:PATH` (an open_clip model folder), or `none` for random
weights. Weights that cannot be had offline raise a clear error; there is no silent
fallback to random weights.

The package ships a `tiny` model config (random weights only) for tests and the
offline demo: `--model tiny --pretrained none`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tempclr_cli.core.errors import TempclrError

CONFIG_DIR = Path(__file__).parent / "model_configs"
_registered = False


def _register_shipped_configs() -> None:
    global _registered
    if not _registered:
        import open_clip

        open_clip.add_model_config(CONFIG_DIR)
        _registered = True


@dataclass
class ClipEncoder:
    """An open_clip model with its preprocessing; inputs are uint8 RGB frames."""

    model: object
    tokenizer: object
    image_size: int
    mean: object  # (1, 3, 1, 1) tensors on the device
    std: object
    device: object
    name: str
    pretrained: str
    seed: int = 0  # random weights ('none') are drawn from this seed

    @property
    def dim(self) -> int:
        return int(self.model.text_projection.shape[1]) if hasattr(self.model, "text_projection") else int(
            self.model.visual.output_dim
        )

    def preprocess(self, frames):
        """(n, H, W, 3) uint8 with short side = image_size -> normalised (n, 3, S, S) float."""
        import torch

        x = torch.as_tensor(frames).to(self.device, non_blocking=True)
        x = x.permute(0, 3, 1, 2).float().div_(255)
        x = center_crop(x, self.image_size)
        return (x - self.mean) / self.std

    def encode_images(self, frames):
        """(n, H, W, 3) uint8 -> (n, dim) float32 embeddings (not normalised)."""
        import torch

        from tempclr_cli.core.runtime import autocast

        with torch.inference_mode(), autocast(self.device):
            return self.model.encode_image(self.preprocess(frames)).float()

    def encode_text(self, texts: list[str]):
        """Sentences -> (n, dim) float32 embeddings (not normalised)."""
        import torch

        from tempclr_cli.core.runtime import autocast

        tokens = self.tokenizer(texts).to(self.device)
        with torch.inference_mode(), autocast(self.device):
            return self.model.encode_text(tokens).float()


def center_crop(x, size: int):
    """Crop the centre size x size of (..., H, W); pads nothing (H, W >= size)."""
    h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top : top + size, left : left + size]


def load_clip(model: str = "ViT-B-32", pretrained: str = "openai", device="cpu", seed: int = 0) -> ClipEncoder:
    """Build an open_clip model with the weights named by `pretrained` (see module docstring).

    Random initialisation is seeded with `seed`, so `--pretrained none` gives the same
    towers in every command run with the same seed (extract, align, train).
    """
    import open_clip
    import torch

    _register_shipped_configs()
    torch.manual_seed(seed)
    device = torch.device(device)
    name = pretrained if pretrained.startswith("local-dir:") else model
    if pretrained.startswith("local-dir:"):
        kwargs = {}
    elif pretrained.lower() == "none":
        kwargs = {"pretrained": None}
    else:
        kwargs = {"pretrained": _weights_source(model, pretrained), "require_pretrained": True}
    if name not in open_clip.list_models() and not name.startswith("local-dir:"):
        raise TempclrError(f"--model {model}: unknown open_clip model; e.g. ViT-B-32, ViT-B-16, tiny")
    loggers = [logging.getLogger(), logging.getLogger("huggingface_hub")]
    previous = [lg.level for lg in loggers]
    for lg in loggers:  # open_clip warns about purposely random weights; the hub about retries
        lg.setLevel(logging.CRITICAL)
    try:
        net = open_clip.create_model(name, device=device, **kwargs)
    except (FileNotFoundError, ValueError) as e:
        raise TempclrError(f"--pretrained {pretrained}: {e}") from None
    except Exception as e:  # noqa: BLE001 - download failures come in many types
        raise TempclrError(_download_help(model, pretrained, e)) from None
    finally:
        for lg, level in zip(loggers, previous):
            lg.setLevel(level)
    net.eval()
    cfg = open_clip.get_model_preprocess_cfg(net)
    size = cfg["size"][0] if isinstance(cfg["size"], (tuple, list)) else cfg["size"]
    as_tensor = lambda v: torch.tensor(v, device=device).view(1, 3, 1, 1)  # noqa: E731
    return ClipEncoder(
        model=net,
        tokenizer=open_clip.get_tokenizer(name),
        image_size=int(size),
        mean=as_tensor(cfg["mean"]),
        std=as_tensor(cfg["std"]),
        device=device,
        name=model,
        pretrained=pretrained,
        seed=seed,
    )


def _weights_source(model: str, pretrained: str) -> str:
    """A local file path as is; an open_clip tag after checking it exists for `model`."""
    import open_clip

    path = Path(pretrained).expanduser()
    if path.is_file():
        return str(path)
    looks_like_path = "/" in pretrained or path.suffix in {".pt", ".pth", ".bin", ".safetensors"}
    if looks_like_path:
        raise TempclrError(f"--pretrained {pretrained}: no such checkpoint file")
    tags = open_clip.list_pretrained_tags_by_model(model)
    if pretrained not in tags:
        known = ", ".join(tags[:6]) + (" ..." if len(tags) > 6 else "") if tags else "none"
        raise TempclrError(
            f"--pretrained {pretrained}: not a weight tag for {model} (known: {known}); "
            "or give a checkpoint file, local-dir:PATH, or 'none' for random weights"
        )
    return pretrained


def _download_help(model: str, pretrained: str, error: Exception) -> str:
    return (
        f"weights {model}/{pretrained} are not in the local cache and could not be downloaded "
        f"({type(error).__name__}; set HF_HUB_OFFLINE=1 to skip the download attempt). On a connected machine run: python -c \"import open_clip; "
        f"open_clip.create_model('{model}', pretrained='{pretrained}')\" to fill the cache "
        "(~/.cache/huggingface), or pass --pretrained /path/to/checkpoint.pt; "
        "--pretrained none uses random weights"
    )


def l2_normalize(x, eps: float = 1e-12):
    """Row-wise unit length (numpy or torch)."""
    if isinstance(x, np.ndarray):
        return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)
    return x / x.norm(dim=-1, keepdim=True).clamp_min(eps)


@dataclass
class R3DEncoder:
    """A TCLR backbone as a frame encoder for `extract`: frames come in whole clips of
    `frames_per_clip` consecutive samples, and every frame of a clip receives that clip's
    feature (the globally pooled layer4 map), so the per-clip mean is the clip feature."""

    backbone: object
    frames_per_clip: int
    image_size: int
    device: object
    name: str
    pretrained: str
    seed: int = 0

    def encode_images(self, frames):
        import torch

        from tempclr_cli.core.r3d import feature_map

        x = torch.as_tensor(frames).to(self.device, non_blocking=True).float().div_(255)  # (n, S, S, 3)
        n, F = x.shape[0], self.frames_per_clip
        if n % F:
            x = torch.cat([x, x[-1:].expand(F - n % F, *x.shape[1:])])
        clips = x.view(-1, F, *x.shape[1:]).permute(0, 4, 1, 2, 3)  # (clips, 3, F, S, S)
        with torch.inference_mode():
            feats = feature_map(self.backbone, clips).mean(-1).float()
        return feats.repeat_interleave(F, dim=0)[:n]


def load_r3d(checkpoint: str, device) -> R3DEncoder:
    """The backbone of a `tempclr train` TCLR (or classify) checkpoint."""
    from tempclr_cli.core.checkpoint import load_checkpoint
    from tempclr_cli.core.r3d import build_backbone

    state = load_checkpoint(checkpoint)
    if state.get("kind") not in ("tclr", "classify"):
        raise TempclrError(f"--checkpoint {checkpoint}: not a TCLR checkpoint (kind {state.get('kind')!r})")
    backbone = build_backbone(state["model_args"]["name"])
    prefix = "backbone."
    backbone.load_state_dict({k[len(prefix):]: v for k, v in state["model"].items() if k.startswith(prefix)})
    meta = state["meta"]
    return R3DEncoder(backbone.eval().to(device), meta["clip_frames"], meta["size"], device, "r3d18", str(checkpoint))


def load_encoder(model: str, pretrained: str, checkpoint: str | None, device, seed: int = 0):
    """The encoder named on the command line: open_clip models, or a TCLR R3D-18 checkpoint."""
    if model == "r3d18":
        if not checkpoint:
            raise TempclrError("--model r3d18 needs --checkpoint (a `tempclr train` TCLR run's last.pt or best.pt)")
        return load_r3d(checkpoint, device)
    if checkpoint:
        raise TempclrError("--checkpoint is for --model r3d18; for open_clip weights use --pretrained FILE")
    return load_clip(model, pretrained, device, seed)
