"""Which encoder: the one a user names on the command line, or the one recorded with features.

`EncoderSpec` is the (model, pretrained, seed) triple that made a feature store
(`index.jsonl`) or that a TempCLR heads checkpoint was trained over (`meta`); its text
tower must embed the sentences compared with those features.
"""

from __future__ import annotations

from dataclasses import dataclass

from tempclr_cli.core.errors import TempclrError


@dataclass(frozen=True)
class EncoderSpec:
    model: str
    pretrained: str
    seed: int = 0  # random weights ('none') are drawn from this seed

    @classmethod
    def from_row(cls, row: dict) -> "EncoderSpec":
        """From an `index.jsonl` row written by `tempclr extract`."""
        return cls(row["model"], row["pretrained"], row.get("seed", 0))

    @classmethod
    def from_meta(cls, meta: dict) -> "EncoderSpec":
        """From a TempCLR heads checkpoint's `meta`."""
        return cls(meta["encoder_model"], meta["encoder_pretrained"], meta.get("encoder_seed", 0))

    def to_meta(self) -> dict:
        return {"encoder_model": self.model, "encoder_pretrained": self.pretrained, "encoder_seed": self.seed}

    def load(self, device):
        return load_encoder(self.model, self.pretrained, None, device, self.seed)


DEFAULT = EncoderSpec("ViT-B-32", "openai")


def choose_encoder(model: str | None, pretrained: str | None, seed: int,
                   made_by: EncoderSpec | None = None) -> EncoderSpec:
    """The encoder to embed with: what the user named, else what made the features or trained
    the heads (`made_by`), else ViT-B-32 with OpenAI weights. `made_by`'s seed rebuilds its
    random towers; `seed` applies only when nothing is recorded."""
    base = made_by or EncoderSpec(DEFAULT.model, DEFAULT.pretrained, seed)
    return EncoderSpec(model or base.model, pretrained or base.pretrained, base.seed)


TCLR_BACKBONES = ("r3d18", "r2plus1d18")  # --model names that take a TCLR --checkpoint (it names the backbone)


def load_encoder(model: str, pretrained: str, checkpoint: str | None, device, seed: int = 0):
    """The encoder named on the command line: open_clip models, or a TCLR R3D-18 checkpoint."""
    if model in TCLR_BACKBONES:
        if not checkpoint:
            raise TempclrError(f"--model {model} needs --checkpoint (a `tempclr train` TCLR run's last.pt or best.pt, "
                               "or the authors' released .pth)")
        from tempclr_cli.core.encode.r3d_encoder import load_r3d

        return load_r3d(checkpoint, device)  # the checkpoint says which backbone
    if checkpoint:
        raise TempclrError("--checkpoint is for --model r3d18; for open_clip weights use --pretrained FILE")
    from tempclr_cli.core.encode.clip_encoder import load_clip

    return load_clip(model, pretrained, device, seed)
