"""TempCLR heads over frozen features: a temporal video head and a text adapter.

Both are residual with a zero-initialised output layer, so an untrained model is the
identity: similarities before training are exactly the encoder's (the "before" row).

    VideoHead: x (B, T, D) -> x + W · Transformer(x + sinusoidal position(t))
    TextHead:  s (N, D)    -> s + W · MLP(s)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class Heads(Protocol):
    """What `--checkpoint` hands every command that compares clips with sentences or videos with
    videos: TempCLR's trained heads, VideoCLIP's released network, or `IDENTITY` (no checkpoint).
    Callers go through `apply_heads` / `apply_video_head` / `apply_text_head` and these facts;
    nothing probes for attributes. A new kind of heads implements this and comes out of
    `load_heads` (tests/test_registries.py checks every implementation against it)."""

    raw: bool  # compared by raw dot products (VideoCLIP, as released); False: unit vectors in and out
    embeds_text: bool  # sentences are embedded by `encode_text` here, not by the features' encoder's text tower
    segment_pooling: Literal["clips", "network"]  # an annotated segment: the mean of its transformed clips, or
    #                                                its raw features through the network (`segment`)
    input_dim: int | None  # the dim of the clip features the heads take (None: any)

    @property
    def device(self) -> torch.device: ...  # where the inputs go

    def to(self, device) -> Heads:
        """The heads on `device` (nn.Module's `to`; heads without weights return themselves)."""

    def video(self, feats: torch.Tensor, padding: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, D) clip features (padding (B, T) True on padded clips) -> (B, T, D') embeddings."""

    def text(self, sentences: torch.Tensor) -> torch.Tensor:
        """(K, D) sentence vectors -> (K, D') embeddings (VideoCLIP: already embedded, returned as they are)."""

    def segment(self, feats: torch.Tensor) -> torch.Tensor:
        """(t, D) raw features of one segment -> its pooled (D',) embedding (segment_pooling "network")."""

    def encode_text(self, sentences: list[str]) -> torch.Tensor:
        """Sentences -> (K, D') embeddings (embeds_text heads only)."""


class IdentityHeads:
    """No checkpoint: clips and sentences as the encoder made them, unit length."""

    raw = False
    embeds_text = False
    segment_pooling = "clips"
    input_dim = None
    device = torch.device("cpu")

    def video(self, feats: torch.Tensor, padding: torch.Tensor | None = None) -> torch.Tensor:
        return feats

    def text(self, sentences: torch.Tensor) -> torch.Tensor:
        return sentences

    def segment(self, feats: torch.Tensor) -> torch.Tensor:
        return feats.mean(0)

    def encode_text(self, sentences: list[str]) -> torch.Tensor:
        raise TypeError("IdentityHeads embed no text: the features' encoder does")

    def to(self, device) -> IdentityHeads:
        return self


IDENTITY = IdentityHeads()


@dataclass
class HeadsConfig:
    dim: int = 512
    layers: int = 1
    heads: int = 4
    hidden: int = 2  # MLP width multiplier
    dropout: float = 0.1
    text: bool = True  # a text adapter too (video-to-video training has none)


def sinusoidal(T: int, dim: int, device=None) -> torch.Tensor:
    """Fixed temporal position encoding (T, dim): any video length, no learned table."""
    pos = torch.arange(T, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    enc = torch.zeros(T, dim, device=device)
    enc[:, 0::2] = torch.sin(pos * freq)
    enc[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
    return enc


def _zero(linear: nn.Linear) -> nn.Linear:
    nn.init.zeros_(linear.weight)
    nn.init.zeros_(linear.bias)
    return linear


class VideoHead(nn.Module):
    def __init__(self, cfg: HeadsConfig):
        super().__init__()
        layer = nn.TransformerEncoderLayer(
            cfg.dim, cfg.heads, cfg.hidden * cfg.dim, cfg.dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False) if cfg.layers else None
        self.out = _zero(nn.Linear(cfg.dim, cfg.dim))

    def forward(self, x: torch.Tensor, padding: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, T, D); padding (B, T) True where a clip is padding."""
        if self.encoder is None:
            return x + self.out(x)
        h = self.encoder(x + sinusoidal(x.shape[1], x.shape[2], x.device).to(x.dtype), src_key_padding_mask=padding)
        return x + self.out(h)


class TextHead(nn.Module):
    def __init__(self, cfg: HeadsConfig):
        super().__init__()
        self.mlp = nn.Sequential(nn.LayerNorm(cfg.dim), nn.Linear(cfg.dim, cfg.hidden * cfg.dim), nn.GELU())
        self.out = _zero(nn.Linear(cfg.hidden * cfg.dim, cfg.dim))

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return s + self.out(self.mlp(s))


class TempCLRHeads(nn.Module):
    """The two heads together; `config` rebuilds the model from a checkpoint. A `Heads`."""

    raw = False
    embeds_text = False
    segment_pooling = "clips"

    def __init__(self, cfg: HeadsConfig):
        super().__init__()
        self.config = cfg
        self.video = VideoHead(cfg)
        self.text = TextHead(cfg) if cfg.text else None

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def input_dim(self) -> int:
        return self.config.dim

    def forward(self, feats: torch.Tensor, padding: torch.Tensor | None, sentences: torch.Tensor | None = None):
        """(clips (B, T, D), padding (B, T), sentences (..., D) or None) -> transformed clips and sentences."""
        return self.video(feats, padding), None if sentences is None else self.text(sentences)

    def segment(self, feats: torch.Tensor) -> torch.Tensor:
        """(t, D) -> (D,): the mean of the segment's clips through the video head (segment_pooling "clips"
        pools the whole video's transformed clips instead; this serves a segment on its own)."""
        return self.video(torch.nn.functional.normalize(feats.float(), dim=-1)[None])[0].mean(0)

    def encode_text(self, sentences: list[str]) -> torch.Tensor:
        raise TypeError("TempCLR heads adapt the features' encoder's sentence vectors: they embed no text")


def apply_heads(heads: Heads | None, clips: torch.Tensor, sentences: torch.Tensor, source: str = "the features"):
    """Inputs through trained heads (`IDENTITY` when `heads` is None), on the heads' device.

    clips (T, D) of one video, sentences (K, D) -> the transformed (T, D'), (K, D') on the CPU.
    """
    return apply_video_head(heads, clips, source), apply_text_head(heads, sentences)


@torch.no_grad()
def apply_video_head(heads: Heads | None, clips: torch.Tensor, source: str = "the features") -> torch.Tensor:
    """clips (T, D) of one video through the video head: (T, D') on the CPU; unit-normalised
    first unless the heads compare raw dot products. Features of another dim than the heads
    take are refused naming `source` (where the clips came from)."""
    heads = IDENTITY if heads is None else heads
    check_input_dim(heads, clips.shape[-1], source)
    clips = clips.float() if heads.raw else torch.nn.functional.normalize(clips.float(), dim=-1)
    return heads.video(clips.to(heads.device)[None], None)[0].cpu()


def check_input_dim(heads: Heads, dim: int, source: str) -> None:
    """Refuse features of another dim than the heads take, naming `source` (where they came from)."""
    if heads.input_dim is not None and dim != heads.input_dim:
        from tempclr_cli.core.errors import TempclrError

        raise TempclrError(
            f"{source}: features of dim {dim}, but the --checkpoint heads take dim {heads.input_dim}: "
            "give features of the encoder they were trained over"
        )


@torch.no_grad()
def apply_text_head(heads: Heads | None, sentences: torch.Tensor) -> torch.Tensor:
    """sentences (K, D) through the text head (each on its own): (K, D') on the CPU; unit-normalised
    first unless the heads compare raw dot products (then they embedded the sentences themselves)."""
    heads = IDENTITY if heads is None else heads
    sentences = sentences.float() if heads.raw else torch.nn.functional.normalize(sentences.float(), dim=-1)
    return heads.text(sentences.to(heads.device)).cpu()


VIDEOCLIP_META = {"encoder_model": "s3d-howto100m", "encoder_pretrained": "", "encoder_seed": 0}  # over S3D features

# checkpoint kind -> (path, checkpoint dict, tokenizer folder) -> Heads; `sentences`: compares clips with sentences
# (False: a video head alone, which serves where videos are compared with videos)
HEADS: dict[str, tuple[Callable, bool]] = {}


def register_heads(kind: str, sentences: bool = True) -> Callable:
    """Decorator on a builder `(path, state, tokenizer) -> Heads` for checkpoints whose `kind` is `kind`
    (the training task that wrote them, `core.checkpoint.KINDS`, or any other a module saves)."""

    def wrap(build: Callable) -> Callable:
        HEADS[kind] = (build, sentences)
        return build

    return wrap


@register_heads("tempclr")
@register_heads("fewshot", sentences=False)
def _trained_heads(path, state: dict, tokenizer=None) -> TempCLRHeads:
    heads = TempCLRHeads(HeadsConfig(**state["model_args"]))
    heads.load_state_dict(state["model"])
    return heads.eval()


def load_heads(path, device="cpu", videos_only: bool = False, tokenizer=None) -> tuple[Heads, dict]:
    """Heads from a checkpoint, on `device`; returns (heads, meta). A `tempclr train` checkpoint
    (weights_only) is built by the `HEADS` entry of its kind; a released VideoCLIP / TempCLR
    checkpoint (or its `tempclr convert` safetensors) loads as `videoclip.VideoCLIPHeads` over
    S3D features, its BERT tokenizer from `tokenizer` (a folder) where given. `videos_only`:
    video heads alone (few-shot) serve too, where videos are compared with videos."""
    from tempclr_cli.core.checkpoint import load_checkpoint
    from tempclr_cli.core.errors import TempclrError
    from tempclr_cli.core.models.videoclip import is_released, load_videoclip_heads

    if is_released(path):
        return load_videoclip_heads(path, tokenizer).to(device), dict(VIDEOCLIP_META)
    kinds = tuple(kind for kind, (_, sentences) in HEADS.items() if sentences or videos_only)
    state = load_checkpoint(path, device, kinds=kinds)
    build, _ = HEADS[state["kind"]]
    try:
        return build(path, state, tokenizer).to(device), state.get("meta", {})
    except (KeyError, TypeError, RuntimeError) as e:  # a field missing or of another version, weights that do not fit
        raise TempclrError(
            f"{path}: a {state['kind']} checkpoint whose contents do not fit it "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
        ) from None


@register_heads("videoclip")
def _tuned_videoclip(path, state: dict, tokenizer=None):
    """VideoCLIP heads from a tuning run (`loss.kind: videoclip`): the base checkpoint it names, then the
    weights it trained."""
    from tempclr_cli.core.errors import TempclrError
    from tempclr_cli.core.io import sha256_file
    from tempclr_cli.core.models.videoclip import load_videoclip_heads

    base, digest = state["model_args"]["base"], state["model_args"].get("base_sha256")
    if digest and Path(base).is_file() and sha256_file(base) != digest:
        raise TempclrError(
            f"{path}: its base {base} is not the file it was trained from (another SHA-256); put the "
            "original checkpoint back at that path"
        )
    try:
        heads = load_videoclip_heads(base, tokenizer)
    except TempclrError as e:
        raise TempclrError(f"{path}: its base VideoCLIP checkpoint cannot be loaded ({e})") from None
    weights = {k.removeprefix("net."): v for k, v in state["model"].items()}
    missing = set(weights) - set(heads.model.state_dict())
    if missing:
        raise TempclrError(f"{path}: weights {sorted(missing)[:3]} do not fit its base {base}")
    heads.model.load_state_dict(weights, strict=state["model_args"]["train"] == "all")
    return heads.eval()
