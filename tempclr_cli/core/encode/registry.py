"""Encoders by name: one registration adds one (timm's `@register_model`, open_clip's factory).

An encoder module declares what it is with `@register_encoder(...)` on its loader: the
`--model` name (or, for a family such as open_clip, a function listing the names it
answers to), its kind, its clip (frames per clip, sampling rate, input size), its
embedding size and the weights it takes. Everything that picks an encoder by name reads
this table: `extract`, the text towers of `align` / `retrieve` / `localize` / `train`,
and `tempclr models`. Declarations are plain data, so listing them imports no model code.

A loaded encoder (what `load` returns) is an `Encoder` (a `TextEncoder` when it has a
text tower): the contract every registration's loader keeps, checked for each entry by
tests/test_registries.py. Its clip facts are those of its registration (`clip_facts`
states them once, on the encoder's class).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from tempclr_cli.core.errors import TempclrError

ENCODER_MODULES = ("clip_encoder", "r3d_encoder", "s3d")  # imported on first use; each registers its encoders
KINDS = ("image-text", "video-text", "video")


@dataclass(frozen=True)
class EncoderInfo:
    """What a user needs to know to pick an encoder, and how to load it."""

    name: str  # the --model name; a family's own name (its members come from `members`)
    kind: str  # image-text | video-text | video
    summary: str
    weights: str  # what --pretrained takes
    default_weights: str | None = None  # --pretrained when none is given
    frames_per_clip: int | str = 1  # frames one embedding sees; "16*": the weights decide (16 as released)
    fps: float | None = None  # the sampling rate the model fixes (None: --fps)
    input_size: int | str = ""
    dim: int | str = ""
    text: bool = True  # has a text tower (align, retrieve, localize, train can embed sentences)
    protocol: str = "frames"  # how frames are decoded: a name of media.sampling.FRAME_PROTOCOLS (data, not a switch)
    narrow_weights: tuple[tuple[str, str], ...] = ()  # (weights, the only world they know): said where it matters
    load: Callable = field(default=None, repr=False, compare=False)  # (model, pretrained, device, seed) -> encoder
    members: Callable[[str | None], Iterable[dict]] | None = field(default=None, repr=False, compare=False)

    def caveat(self, weights: str | None) -> str | None:
        """What `weights` do not know, for weights trained on a narrow world (None: no such caveat)."""
        world = dict(self.narrow_weights).get(weights or "")
        return f"{self.name}'s {weights} weights know only {world}" if world else None

    @property
    def per_frame(self) -> bool:
        """Whether `extract --per-frame` applies: only to encoders that see one frame."""
        return self.frames_per_clip == 1

    def row(self, **overrides) -> dict:
        """One row of `tempclr models`."""
        keys = (
            "name",
            "kind",
            "summary",
            "weights",
            "default_weights",
            "frames_per_clip",
            "fps",
            "input_size",
            "dim",
            "text",
            "protocol",
        )
        return {**{k: v for k, v in asdict(self).items() if k in keys}, **overrides}


@runtime_checkable
class Encoder(Protocol):
    """What `load_encoder` hands `extract`, `align` and the text towers. Frames arrive as
    (n, S, S, 3) uint8 RGB with S = `image_size` (short side, centre-cropped square), in whole
    clips of `frames_per_clip` consecutive samples; every frame gets its clip's feature."""

    name: str  # the --model name
    pretrained: str  # the weights it holds
    seed: int  # random weights ('none') are drawn from it
    device: Any
    image_size: int
    frames_per_clip: int  # 1: an image encoder, every frame embedded on its own
    fps: float | None  # the sampling rate the model fixes; None: --fps
    dim: int
    protocol: str  # how frames are decoded: a name of media.sampling.FRAME_PROTOCOLS ("frames", "videoclip")

    def encode_images(self, frames) -> Any:
        """(n, S, S, 3) uint8 -> (n, dim) float32 features (not normalised)."""


@runtime_checkable
class TextEncoder(Encoder, Protocol):
    """An `Encoder` with a text tower (the registration says `text=True`)."""

    def encode_text(self, sentences: list[str]) -> Any:
        """Sentences -> (n, dim) float32 embeddings (not normalised)."""


def clip_facts(encoder_class) -> dict:
    """The registration's clip facts read off an encoder class that fixes them (S3D), so they are
    stated once: `@register_encoder(..., **clip_facts(S3DEncoder))`."""
    return {
        "frames_per_clip": encoder_class.frames_per_clip,
        "fps": encoder_class.fps,
        "input_size": encoder_class.image_size,
        "dim": encoder_class.dim,
        "protocol": encoder_class.protocol,
    }


_ENCODERS: dict[str, EncoderInfo] = {}
_FAMILIES: list[EncoderInfo] = []


def register_encoder(
    name: str, kind: str, summary: str, weights: str, family: Callable | None = None, **clip
) -> Callable:
    """Decorator on a loader `(model, pretrained, device, seed) -> encoder`: registers `name`
    with its clip facts (`clip`: frames_per_clip, fps, input_size, dim, text, protocol). With
    `family`, a whole family: `family(None)` lists its members as rows that override these
    facts (name, dim, ...), and `family(model)` gives the rows of that one name (none if it
    is not a member), so a lookup stays cheaper than a listing."""
    if kind not in KINDS:
        raise ValueError(f"encoder kind {kind!r}: one of {KINDS}")

    def wrap(load: Callable) -> Callable:
        info = EncoderInfo(name, kind, summary, weights, load=load, members=family, **clip)
        if family:
            _FAMILIES.append(info)
        else:
            _ENCODERS[name] = info
        return load

    return wrap


def _import_all() -> None:
    for module in ENCODER_MODULES:
        importlib.import_module(f"tempclr_cli.core.encode.{module}")


def find_encoder(model: str) -> EncoderInfo:
    """The registration that answers to `--model model`: its own name first, then a family
    that lists it (for open_clip: any name open_clip knows)."""
    _import_all()
    if model in _ENCODERS:
        return _ENCODERS[model]
    for family in _FAMILIES:
        for row in family.members(model):
            return EncoderInfo(**{**asdict(family), **row, "load": family.load, "members": None})
    raise TempclrError(
        f"--model {model}: no such encoder; `tempclr models` lists them (e.g. {', '.join(sorted(_ENCODERS))}, ViT-B-32)"
    )


def list_encoders() -> list[dict]:
    """Every registered encoder as a `tempclr models` row, families expanded."""
    _import_all()
    rows = [info.row() for info in _ENCODERS.values()]
    for family in _FAMILIES:
        rows += [family.row(**row) for row in family.members(None)]
    return rows


def load_encoder(model: str, pretrained: str | None, checkpoint: str | None = None, device="cpu", seed: int = 0):
    """The encoder named on the command line, with its weights: `pretrained` (or, for the
    TCLR backbones, `checkpoint`, which means the same there; None: the encoder's default)."""
    import torch

    info = find_encoder(model)
    if checkpoint and info.kind != "video":
        raise TempclrError(
            f"--checkpoint names a video backbone's weights (r3d18, r2plus1d18); for {model} "
            "give its weights with --pretrained"
        )
    return info.load(
        model,
        checkpoint or pretrained or info.default_weights,
        torch.device(device) if isinstance(device, str) else device,
        seed,
    )


def text_encoder_of(model: str) -> EncoderInfo:
    """The registration of `model`, which must have a text tower (to embed step sentences)."""
    info = find_encoder(model)
    if not info.text:
        raise TempclrError(
            f"{model} has no text tower: features from it can be retrieved (--task nn), "
            "classified or compared video to video, not matched with sentences"
        )
    return info
