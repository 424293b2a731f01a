"""Frame and sentence encoders: OpenCLIP models by name, with weights chosen explicitly.

`--pretrained` takes an open_clip tag (`openai`, `laion2b_s34b_b79k`, ...), a local
checkpoint file, `local-dir:PATH` (an open_clip model folder), or `none` for random
weights. Weights that cannot be had offline raise a clear error; there is no silent
fallback to random weights.

The package ships a `tiny` model config with two sets of weights: `none` (random, seeded)
for tests, and `synthetic`, trained on `tempclr synth`'s world for the offline demo
(`scripts/train_tiny_synthetic.py` rebuilds it from a seed). The synthetic weights know
only coloured shapes sliding, rising, growing on plain backdrops: they are the demo's
default and an explicit choice everywhere else.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from tempclr_cli.core.encode.open_clip_import import config_file, import_open_clip, open_clip_configs
from tempclr_cli.core.encode.registry import register_encoder
from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.media.frames import center_crop

CONFIG_DIR = Path(__file__).parent / "model_configs"
SYNTHETIC_WEIGHTS = Path(__file__).parent / "weights" / "tiny_synthetic.pt"
# printed by scripts/train_tiny_synthetic.py; checked at every load
SYNTHETIC_SHA256 = "1f28915bb9cef6403b498ee129717f8f0b3cafb6a6153d665e0c5ae03daa9986"
_registered = False


def _tokenizer(open_clip, name: str):
    """The model's tokenizer: for a config that asks for open_clip's default BPE tokenizer (no Hugging
    Face or SigLIP tokenizer, no options), the one open_clip builds when it is imported
    (`open_clip.tokenize`), instead of a second copy (0.1 s of every call); else `get_tokenizer`'s."""
    import functools

    text = (
        (open_clip.get_model_config(name) or {}).get("text_cfg")
        if not name.startswith(("local-dir:", "hf-hub:"))
        else None
    )
    if text is None or "hf_tokenizer_name" in text or "tokenizer_kwargs" in text or "siglip" in name.lower():
        return open_clip.get_tokenizer(name)
    return functools.partial(open_clip.tokenize, context_length=text.get("context_length", 77))


def _register_shipped_configs(open_clip) -> None:
    global _registered
    if not _registered:
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
    frames_per_clip = 1  # an image encoder: every sampled frame is embedded on its own
    fps = None  # sampled at --fps
    protocol = "frames"  # media.sampling.FRAME_PROTOCOLS: tempclr's sampler

    @property
    def dim(self) -> int:
        return (
            int(self.model.text_projection.shape[1])
            if hasattr(self.model, "text_projection")
            else int(self.model.visual.output_dim)
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


def _open_clip_members(name: str | None) -> list[dict]:
    """open_clip's architectures (its config files) as `tempclr models` rows; `tiny` has
    its own registration."""
    import json

    configs = [config_file(name)] if name else open_clip_configs()
    tags = import_open_clip().list_pretrained_tags_by_model if name is None else None  # a listing names the tags
    rows = []
    for path in configs:
        if path is None or path.stem == "tiny":
            continue
        cfg = json.loads(path.read_text())
        size = cfg.get("vision_cfg", {}).get("image_size", "")
        row = {
            "name": path.stem,
            "dim": cfg.get("embed_dim", ""),
            "input_size": size[0] if isinstance(size, list) else size,
        }
        if tags:
            known = tags(path.stem)
            row["weights"] = " | ".join(
                [*known[:2], *([f"+{len(known) - 2} tags"] if len(known) > 2 else []), "FILE", "none"]
            )
            row["tags"] = known
        rows.append(row)
    return rows


WEIGHTS = "TAG | FILE | local-dir:PATH | none"  # an open_clip weight tag, a checkpoint, a model folder, random


@register_encoder(
    "open_clip",
    "image-text",
    "open_clip image-text model, one frame per embedding",
    WEIGHTS,
    default_weights="openai",
    family=_open_clip_members,
)
@register_encoder(
    "tiny",
    "image-text",
    "tiny CLIP shipped with tempclr (tests, the offline demo)",
    "none | synthetic",
    input_size=64,
    dim=64,
    narrow_weights=(("synthetic", "`tempclr synth`'s world, no real video"),),
)
def load_clip(model: str = "ViT-B-32", pretrained: str | None = "openai", device="cpu", seed: int = 0) -> ClipEncoder:
    """Build an open_clip model with the weights named by `pretrained` (see module docstring).

    Random initialisation is drawn from `seed` (a generator of its own: the caller's global
    RNG is left as it was), so `--pretrained none` gives the same towers in every command
    run with the same seed (extract, align, train).
    """
    import torch

    if pretrained is None:
        raise TempclrError(
            f"--model {model} needs --pretrained: none (random, seeded) or synthetic (tempclr synth's world only)"
        )
    open_clip = import_open_clip(model, pretrained)
    _register_shipped_configs(open_clip)
    device = torch.device(device)
    name = pretrained if pretrained.startswith("local-dir:") else model
    if pretrained.startswith("local-dir:"):
        kwargs = {}
    elif pretrained.lower() in ("none", "synthetic"):
        if pretrained == "synthetic" and model != "tiny":
            raise TempclrError(f"--pretrained synthetic: only --model tiny has synthetic weights (not {model})")
        kwargs = {"pretrained": None}
    else:
        kwargs = {"pretrained": _weights_source(open_clip, model, pretrained), "require_pretrained": True}
    if name not in open_clip.list_models() and not name.startswith("local-dir:"):
        raise TempclrError(f"--model {model}: unknown open_clip model; e.g. ViT-B-32, ViT-B-16, tiny")
    loggers = [logging.getLogger(), logging.getLogger("huggingface_hub")]
    previous = [lg.level for lg in loggers]
    for lg in loggers:  # open_clip warns about purposely random weights; the hub about retries
        lg.setLevel(logging.CRITICAL)
    try:
        with torch.random.fork_rng(devices=[]):  # open_clip initialises from the global RNG
            torch.manual_seed(seed)
            net = open_clip.create_model(name, device=device, **kwargs)
    except (FileNotFoundError, ValueError) as e:
        raise TempclrError(f"--pretrained {pretrained}: {e}") from None
    except Exception as e:  # noqa: BLE001 - download failures come in many types, a local file's in as many
        if Path(pretrained).expanduser().is_file():
            raise TempclrError(
                f"--pretrained {pretrained}: not a readable open_clip checkpoint of {model} "
                f"({type(e).__name__}: {str(e)[:200]}); expected a state dict saved with "
                "torch.save, or an open_clip tag (`tempclr models`)"
            ) from None
        raise TempclrError(_download_help(model, pretrained, type(e).__name__)) from None
    finally:
        for lg, level in zip(loggers, previous):
            lg.setLevel(level)
    if pretrained == "synthetic":
        net.load_state_dict(synthetic_state(net.state_dict()))
    net.eval()
    cfg = open_clip.get_model_preprocess_cfg(net)
    size = cfg["size"][0] if isinstance(cfg["size"], (tuple, list)) else cfg["size"]
    as_tensor = lambda v: torch.tensor(v, device=device).view(1, 3, 1, 1)  # noqa: E731
    return ClipEncoder(
        model=net,
        tokenizer=_tokenizer(open_clip, name),
        image_size=int(size),
        mean=as_tensor(cfg["mean"]),
        std=as_tensor(cfg["std"]),
        device=device,
        name=model,
        pretrained=pretrained,
        seed=seed,
    )


def synthetic_state(template: dict, path: Path = SYNTHETIC_WEIGHTS, sha256: str | None = None) -> dict:
    """The shipped synthetic weights as a full state dict shaped like `template` (float32;
    the token rows the file omits are zero). The file's SHA-256 must match."""
    import hashlib

    import torch

    data = path.read_bytes() if path.is_file() else b""
    if hashlib.sha256(data).hexdigest() != (sha256 or SYNTHETIC_SHA256):
        raise TempclrError(
            f"{path}: missing or not the shipped synthetic weights (SHA-256 mismatch); reinstall "
            "tempclr or rebuild it with scripts/train_tiny_synthetic.py"
        )
    from tempclr_cli.core.checkpoint import read_weights

    payload = read_weights(path, "the shipped synthetic weights")
    state = {k: v.float() for k, v in payload["state"].items()}
    table = torch.zeros_like(template["token_embedding.weight"])
    table[payload["token_ids"]] = payload["token_rows"].float()
    return {**state, "token_embedding.weight": table}


def _weights_source(open_clip, model: str, pretrained: str) -> str:
    """A local file path as is; an open_clip tag after checking it exists for `model`."""
    path = Path(pretrained).expanduser()
    if path.is_file():
        return str(path)
    if path.is_dir():
        raise TempclrError(
            f"--pretrained {pretrained}: is a folder; expected a checkpoint file (or local-dir:PATH "
            "for an open_clip model folder)"
        )
    looks_like_path = "/" in pretrained or path.suffix in {".pt", ".pth", ".bin", ".safetensors"}
    if looks_like_path:
        raise TempclrError(f"--pretrained {pretrained}: no such checkpoint file")
    tags = open_clip.list_pretrained_tags_by_model(model)
    if not tags:
        from tempclr_cli.core.encode.registry import find_encoder

        takes = find_encoder(model).weights
        raise TempclrError(
            f"--pretrained {pretrained}: {model} has no published weights; it takes {takes} "
            "(`tempclr models` lists every encoder's weights, e.g. ViT-B-32 with openai)"
        )
    if pretrained not in tags:
        known = ", ".join(tags[:6]) + (" ..." if len(tags) > 6 else "") if tags else "none"
        raise TempclrError(
            f"--pretrained {pretrained}: not a weight tag for {model} (known: {known}); "
            "or give a checkpoint file or local-dir:PATH"
        )
    _cached_or_reachable(open_clip, model, pretrained)
    return pretrained


def _cached_or_reachable(open_clip, model: str, tag: str) -> None:
    """Fail in seconds when weights that are not cached cannot be fetched: on an air-gapped
    machine the hub's download retries would otherwise take about a minute."""
    import os
    import socket
    from urllib.parse import urlparse

    cfg = open_clip.get_pretrained_cfg(model, tag)
    if _cached(cfg):
        return
    if _offline():
        raise TempclrError(_download_help(model, tag, "HF_HUB_OFFLINE is set"))
    hub = cfg.get("hf_hub")
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co") if hub else cfg.get("url", ""))
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout=3).close()
    except (OSError, TypeError) as e:
        raise TempclrError(_download_help(model, tag, f"{url.hostname} unreachable: {e}")) from None


def _offline() -> bool:
    """HF_HUB_OFFLINE set as huggingface_hub reads it (1, true, yes, on)."""
    import os

    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def _cached(cfg: dict) -> bool:
    """Whether open_clip would find these weights without the network."""
    import os

    if cfg.get("hf_hub"):
        from huggingface_hub import try_to_load_from_cache

        repo, name = os.path.split(cfg["hf_hub"])
        names = {name or "open_clip_pytorch_model.bin", "open_clip_model.safetensors"}
        names.add(str(Path(name or "open_clip_pytorch_model.bin").with_suffix(".safetensors")))
        return any(isinstance(try_to_load_from_cache(repo, n), str) for n in names)
    return (Path("~/.cache/clip").expanduser() / os.path.basename(cfg.get("url", "") or "-")).is_file()


def _download_help(model: str, pretrained: str, reason: str) -> str:

    hint = "" if _offline() else "; set HF_HUB_OFFLINE=1 to skip the download attempt"
    return (
        f"weights {model}/{pretrained} are not in the local cache and could not be downloaded "
        f'({reason}{hint}). On a connected machine run: python -c "import open_clip; '
        f"open_clip.create_model('{model}', pretrained='{pretrained}')\" to fill the cache "
        "(~/.cache/huggingface), then copy it here, or pass --pretrained /path/to/checkpoint.pt "
        "(random weights would align by the steps' order alone); to try tempclr offline first: --model tiny "
        "--pretrained synthetic (shipped; it knows only `tempclr synth`'s world) on `tempclr synth` data, or "
        "`tempclr demo`"
    )
