"""TempCLR as released: VideoCLIP fine-tuned with the sequence loss (`loss.kind: videoclip`).

The network starts from a released checkpoint (`model.checkpoint`: VideoCLIP's
`checkpoint_best.pt`, a TempCLR file, or their `tempclr convert` safetensors). With
`model.train: layernorm` only the parameters whose name ends `LayerNorm.weight/bias`
learn (`alignretritask.py:21-26`; 39 LayerNorms, 59,904 parameters at full size), and the
run's checkpoints hold those alone plus the path of their base; `all` trains every
weight and saves them all. Sequences are built as for TempCLR heads (`tempclr_heads`):
`data.units` non-overlapping steps of one video; each step's S3D features (at most 32 s)
go through the video encoder as one unit and its caption through the text encoder, as
the released pre-training pools each clip. The loss is `loss.sequence_weight` x the
sequence loss (cosine costs, shuffled step orders) + `loss.clip_weight` x MMContra on raw
dot products (0.7 / 0.3 as released).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from tempclr_cli.core.data.features import FeatureStore
from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.models.videoclip import MAX_VIDEO_LEN, VideoCLIP, layernorm_parameters, text_batch
from tempclr_cli.core.train.losses import clip_caption_loss, gather_with_grad, sequence_contrastive_loss
from tempclr_cli.core.train.registry import register_task
from tempclr_cli.core.train.tempclr_heads import TempCLRTask


class TunedVideoCLIP(nn.Module):
    """VideoCLIP with some parameters frozen; `state_dict` holds only the trainable ones when
    not every weight learns (they and `base` rebuild the whole network)."""

    def __init__(self, net: VideoCLIP, base: str, train: str):
        super().__init__()
        self.net, self.base, self.mode = net, base, train
        trainable = set(layernorm_parameters(net)) if train == "layernorm" else {n for n, _ in net.named_parameters()}
        for name, p in net.named_parameters():
            p.requires_grad_(name in trainable)
        self.trainable = {f"net.{n}" for n in trainable}

    def forward(self, segments: torch.Tensor, seg_mask: torch.Tensor, ids: torch.Tensor, id_mask: torch.Tensor):
        """(U, L, 512) step features with (U, L) masks, (U, W) caption ids -> units (U, H), captions (U, H)."""
        return self.net.video(segments, seg_mask), self.net.text(ids, id_mask)

    def state_dict(self, *args, **kwargs):
        full = super().state_dict(*args, **kwargs)
        return full if self.mode == "all" else {k: v for k, v in full.items() if k in self.trainable}

    def load_state_dict(self, state, strict: bool = True, assign: bool = False):
        if self.mode == "all":
            return super().load_state_dict(state, strict, assign)
        wrong = sorted(set(state) ^ self.trainable)
        if strict and wrong:
            raise TempclrError(f"the checkpoint's LayerNorm weights do not fit this network ({', '.join(wrong[:3])})")
        return super().load_state_dict(state, strict=False, assign=assign)


@dataclass
class SpanBatch:
    feats: torch.Tensor  # (B, T, D) padded clip features
    spans: torch.Tensor  # (B, K, 2) [first, last) clip of each step
    ids: torch.Tensor  # (B, K, W) caption token ids
    id_mask: torch.Tensor  # (B, K, W)
    rows: torch.Tensor  # (B, P, K) step order of each negative

    @property
    def size(self) -> int:
        return self.feats.shape[0]

    def to(self, device) -> "SpanBatch":
        return SpanBatch(
            *(t.to(device, non_blocking=True) for t in (self.feats, self.spans, self.ids, self.id_mask, self.rows))
        )


@register_task
class VideoCLIPTuning(TempCLRTask):
    kind = "videoclip"

    def __init__(self, recipe, device: torch.device, run_dir: Path | None = None):
        if not recipe.model.checkpoint:
            raise TempclrError("model.checkpoint: the released VideoCLIP (or TempCLR) checkpoint to start from")
        if recipe.data.unit != "pooled" or recipe.data.clip_frames < 2 or recipe.loss.shuffle != "steps":
            raise TempclrError(
                "loss.kind videoclip: needs data.unit pooled, data.clip_frames >= 2 (a step's first and "
                "last second) and loss.shuffle steps, as the released pre-training"
            )
        from tempclr_cli.core.checkpoint import identify
        from tempclr_cli.core.io import sha256_file

        identify(recipe.model.checkpoint)  # a missing or foreign file, by name, before anything loads
        self._base_sha256 = sha256_file(recipe.model.checkpoint)  # hashed once per run, not at every checkpoint
        super().__init__(recipe, device, run_dir)

    def sentence_table(self, sentences: list[str], store: FeatureStore, run_dir: Path | None) -> torch.Tensor:
        """Captions as token ids (the text encoder learns, so nothing is embedded up front)."""
        from tempclr_cli.core.models.videoclip import load_tokenizer

        tok = load_tokenizer(self.recipe.model.checkpoint, self.recipe.model.tokenizer)
        pieces = [tok(s, add_special_tokens=False)["input_ids"] for s in sentences]
        self.ids, self.id_mask = text_batch(pieces, tok.cls_token_id, tok.sep_token_id, tok.pad_token_id)
        self.cls_sep = (tok.cls_token_id, tok.sep_token_id)
        return self.ids

    def describe(self) -> str:
        return (
            f"{super().describe()}; VideoCLIP from {self.recipe.model.checkpoint}, training {self.recipe.model.train}"
        )

    def build_model(self) -> nn.Module:
        from tempclr_cli.core.models.videoclip import load_videoclip

        net = load_videoclip(self.recipe.model.checkpoint, self.cls_sep)
        return TunedVideoCLIP(net, str(Path(self.recipe.model.checkpoint).resolve()), self.recipe.model.train)

    def model_args(self) -> dict:
        """The base by path and by content: a LayerNorm-only checkpoint holds 59,904 numbers and needs its base,
        and a different file put at that path later is refused rather than silently used."""
        return {
            "base": str(Path(self.recipe.model.checkpoint).resolve()),
            "base_sha256": self._base_sha256,
            "train": self.recipe.model.train,
        }

    def meta(self) -> dict:
        from tempclr_cli.core.models.heads import VIDEOCLIP_META

        return {**VIDEOCLIP_META, "videos": len(self.video_ids)}

    def _collate(self, indices: list[int], epoch: int) -> SpanBatch:
        seqs = [self.sequences[i] for i in indices]
        feats, _ = self._padded(seqs)  # padding is in the spans: a step's clips all exist
        spans = torch.tensor([[[min(c), max(c) + 1] for c in s.clips] for s in seqs])
        sentences = torch.tensor([s.sentences for s in seqs])
        rows = torch.stack([self._negatives(i, epoch)[0] for i in indices])
        return SpanBatch(feats, spans, self.ids[sentences], self.id_mask[sentences], rows)

    def loss(self, model: nn.Module, batch: SpanBatch) -> dict[str, torch.Tensor]:
        cfg = self.recipe.loss
        B, K, _ = batch.spans.shape
        offsets = torch.arange(MAX_VIDEO_LEN, device=batch.feats.device)
        index = (batch.spans[..., :1] + offsets).clamp(max=batch.feats.shape[1] - 1)  # (B, K, 32)
        seg_mask = (batch.spans[..., :1] + offsets) < batch.spans[..., 1:]
        segments = batch.feats[torch.arange(B, device=index.device)[:, None, None], index]  # (B, K, 32, D)
        units, text = model(
            segments.flatten(0, 1), seg_mask.flatten(0, 1), batch.ids.flatten(0, 1), batch.id_mask.flatten(0, 1)
        )
        units, text = units.view(B, K, -1), text.view(B, K, -1)
        seq = sequence_contrastive_loss(
            text, units, batch.rows, cfg.distance, cfg.gamma, cfg.temperature, band=cfg.band
        )
        clip = clip_caption_loss(gather_with_grad(text.flatten(0, 1)), gather_with_grad(units.flatten(0, 1)))
        return {"sequence": seq, "clip_caption": clip, "total": cfg.sequence_weight * seq + cfg.clip_weight * clip}
