"""Few-shot training (the `fewshot` task): TempCLR's sequence loss between videos.

The paper's third task trains video against video; the authors released no code for it,
so this follows the paper's description. Data: class labels of the meta-train videos (any
layout `tempclr fewshot --labels` reads: UCF101/HMDB51 splits, `class/video` lists, a
CSV, class folders) and their features. Every video is resampled to `data.units`
uniformly spaced segments (the OTAM protocol, `fewshot --frames`). For each anchor video:

    positive   another video of its class
    negatives  `loss.negatives` keys: half are videos of other classes, half are copies
               of the positive with its segments in a shuffled (non-identity) order

All pass through the video head; logits are -distance / `loss.temperature` over
cost = 1 - cosine (eps 0.01), target the positive. Episodes come from these classes only:
evaluate on meta-test classes with `tempclr fewshot FEATURES --labels TEST --checkpoint`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tempclr_cli.core.data.features import FeatureStore, segment_centres
from tempclr_cli.core.data.labels import read_labels
from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.models.heads import HeadsConfig, TempCLRHeads
from tempclr_cli.core.train.losses import video_contrastive_loss
from tempclr_cli.core.train.recipe import Recipe
from tempclr_cli.core.train.registry import register_task


@dataclass
class VideoBatch:
    query: torch.Tensor  # (B,) video indices
    keys: torch.Tensor  # (B, 1+P) video indices, key 0 the positive
    orders: torch.Tensor  # (B, 1+P, N) segment order of each key (identity but for shuffled copies)

    @property
    def size(self) -> int:
        return self.query.shape[0]

    def to(self, device) -> "VideoBatch":
        return VideoBatch(*(t.to(device, non_blocking=True) for t in (self.query, self.keys, self.orders)))


@register_task
class FewshotTask:
    kind = "fewshot"
    unit = "videos"  # what a batch's size counts (progress: videos/s)
    channels_last = False

    def __init__(self, recipe: Recipe, device: torch.device, run_dir: Path | None = None):
        data = recipe.data
        if not data.annotations:
            raise TempclrError("data.annotations: required for few-shot training (the meta-train classes' labels)")
        self.recipe, self.device = recipe, device
        store = FeatureStore(data.root)
        labelled = sorted((vid, cls) for vid, cls in read_labels(data.annotations).items() if vid in store)
        self.classes = sorted({cls for _, cls in labelled})
        if len(self.classes) < 2 or len(labelled) < 2 * len(self.classes):
            raise TempclrError(
                f"{data.annotations}: few-shot training needs >= 2 classes with >= 2 videos that have "
                f"features in {data.root} (found {len(labelled)} videos in {len(self.classes)} classes)"
            )
        self.ids = [vid for vid, _ in labelled]
        self.labels = np.array([self.classes.index(cls) for _, cls in labelled])
        self.members = [np.flatnonzero(self.labels == c) for c in range(len(self.classes))]
        small = [self.classes[c] for c, m in enumerate(self.members) if len(m) < 2]
        if small:
            raise TempclrError(f"class {small[0]} has one video: a positive needs another of its class")
        arrays = [segment_centres(store.load(vid)[0], data.units) for vid in self.ids]
        self.feats = torch.nn.functional.normalize(torch.from_numpy(np.stack(arrays)), dim=-1).to(device)  # (V, N, D)
        self.dim = self.feats.shape[-1]
        if recipe.model.dim != self.dim:
            raise TempclrError(f"model.dim: {recipe.model.dim} but the features have dim {self.dim}")
        self.encoder = store.encoder() if store.offsets else None

    def describe(self) -> str:
        return f"{len(self.ids)} videos in {len(self.classes)} meta-train classes"

    def heads_config(self) -> HeadsConfig:
        model = self.recipe.model
        return HeadsConfig(dim=self.dim, layers=model.layers, dropout=model.dropout, text=False)

    def build_model(self) -> torch.nn.Module:
        return TempCLRHeads(self.heads_config())

    def model_args(self) -> dict:
        return self.heads_config().__dict__

    def meta(self) -> dict:
        encoder = self.encoder.to_meta() if self.encoder else {}
        return {**encoder, "classes": self.classes, "frames": self.recipe.data.units, "videos": len(self.ids)}

    def steps_per_epoch(self, world: int) -> int:
        from tempclr_cli.core.train.trainer import steps_per_epoch

        return steps_per_epoch(len(self.ids), self.recipe, world)

    def batches(self, epoch: int, rank: int, world: int):
        """This rank's batches of anchors; the keys of anchor i in epoch e depend on (seed, e, i)
        only, so one process and several ranks draw the same ones."""
        from tempclr_cli.core.train.trainer import rank_batches

        for anchors in rank_batches(len(self.ids), self.recipe, epoch, rank, world):
            keys, orders = zip(*(self._keys(i, epoch) for i in anchors))
            yield VideoBatch(torch.tensor(anchors), torch.stack(keys), torch.stack(orders)).to(self.device)

    def _keys(self, anchor: int, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Key video indices (1+P,) and segment orders (1+P, N) of one anchor."""
        from tempclr_cli.core.train.trainer import epoch_generator

        gen = epoch_generator(self.recipe.train.seed * 1_000_003 + anchor, epoch)
        N, P = self.recipe.data.units, self.recipe.loss.negatives
        own = self.members[self.labels[anchor]]
        same = own[own != anchor]
        positive = int(same[torch.randint(len(same), (1,), generator=gen)])
        others = np.flatnonzero(self.labels != self.labels[anchor])
        n_shuffled = P // 2 if N > 1 else 0
        n_other = P - n_shuffled
        pick = (
            torch.randperm(len(others), generator=gen)[:n_other]
            if n_other <= len(others)
            else torch.randint(len(others), (n_other,), generator=gen)
        )
        shuffled = torch.stack([_non_identity(N, gen) for _ in range(n_shuffled)]) if n_shuffled else torch.empty(0, N)
        keys = torch.tensor([positive, *others[pick.numpy()].tolist(), *[positive] * n_shuffled])
        orders = torch.cat([torch.arange(N).expand(1 + n_other, N), shuffled.long()])
        return keys, orders

    def loss(self, model: torch.nn.Module, batch: VideoBatch) -> dict[str, torch.Tensor]:
        loss = self.recipe.loss
        B, K = batch.keys.shape
        query, _ = model(self.feats[batch.query], None)  # (B, N, D)
        keys, _ = model(self.feats[batch.keys.flatten()], None)  # (B*K, N, D)
        keys = keys.view(B, K, *keys.shape[1:])
        keys = keys.gather(2, batch.orders[..., None].expand(-1, -1, -1, keys.shape[-1]))  # shuffled copies
        seq = video_contrastive_loss(query, keys, loss.distance, loss.gamma, loss.temperature, loss.band)
        return {"sequence": seq, "total": seq}


def _non_identity(n: int, gen: torch.Generator) -> torch.Tensor:
    while True:
        order = torch.randperm(n, generator=gen)
        if not bool((order == torch.arange(n)).all()):
            return order
