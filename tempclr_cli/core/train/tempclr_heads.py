"""TempCLR training of heads over frozen features (the `tempclr` task of the trainer).

Data: annotations (YouCookII / COIN / CrossTask layouts) + a features folder. A
training sequence is `data.units` steps of one video, as released
(`alignretritask.py:120-163`): the non-overlapping steps (each starts after the previous
one ends) that have clips, `data.units` of them picked with floor(linspace); videos with
fewer are skipped. Each step has its sentence and `data.clip_frames` clips resampled
evenly from its segment (clipped to 32 s). With `data.unit: pooled` (the release's
pre-training) a step's clips are pooled after the video head into one unit, so the cost
is units x units; with `data.unit: clips` every clip is a unit (units x units*clips).
Sentence embeddings come from the text tower that made the features, computed once.

Negatives per sequence (`loss.shuffle`, `loss.negatives` of them), all through one DTW call:

    steps           distinct non-identity permutations of the step (sentence) order against
                    the fixed clip order (the HowTo100M task; at most units! - 1 of them)
    steps+units     each negative permutes the steps (never the identity) AND shuffles the
                    clips inside every step, repeats allowed (CrossTask fine-tuning,
                    `alignlocaltask.py:94-117`); needs `data.unit: clips`
    steps-or-units  half the negatives permute steps, the others shuffle clips inside steps

Logits are -distance / `loss.temperature` (1, as released). The clip-caption term is the
symmetric InfoNCE over raw dot products of pooled units and captions (MMContra,
`losses/nce.py:41-50`); `loss.clip_similarity: cosine` normalises them and divides by
the temperature instead.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tempclr_cli.core.data.annotations import Video, read_annotations
from tempclr_cli.core.data.features import FeatureStore
from tempclr_cli.core.encode.encoders import encode_sentences
from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.models.heads import HeadsConfig, TempCLRHeads
from tempclr_cli.core.train.losses import clip_caption_loss, gather_with_grad, sequence_contrastive_loss
from tempclr_cli.core.train.recipe import Recipe
from tempclr_cli.core.train.registry import register_task

MAX_SEGMENT_SECONDS = 32.0


@dataclass
class Sequence:
    video: int  # index into the task's clip tensors
    sentences: list[int]  # indices into the sentence table, temporal order
    clips: list[list[int]]  # per unit: clip indices into the video


@dataclass
class Batch:
    feats: torch.Tensor  # (B, T, D) padded clip features
    padding: torch.Tensor  # (B, T) True at padding
    text: torch.Tensor  # (B, K, D) sentence embeddings
    clips: torch.Tensor  # (B, K, S) clip indices of each unit
    rows: torch.Tensor  # (B, P, K) row (step) order of each negative
    cols: torch.Tensor  # (B, P, K*S) column (clip) order of each negative

    @property
    def size(self) -> int:
        return self.feats.shape[0]

    def to(self, device) -> "Batch":
        fields = (self.feats, self.padding, self.text, self.clips, self.rows, self.cols)
        return Batch(*(t.to(device, non_blocking=True) for t in fields))


def unit_clips(starts: list[float], start: float, end: float, per_unit: int) -> list[int]:
    """`per_unit` clip indices spread evenly over the clips that begin inside [start, end)."""
    end = min(end, start + MAX_SEGMENT_SECONDS)
    first = int(np.searchsorted(starts, start - 1e-6))
    last = int(np.searchsorted(starts, end - 1e-6))
    if last <= first:
        return []
    return np.linspace(first, last - 1, per_unit).round().astype(int).tolist()


def non_overlapping(steps: list) -> list:
    """The steps each of which starts after the previous kept one ends (steps sorted by start)."""
    kept, end = [], float("-inf")
    for step in steps:
        if step.start > end:
            kept.append(step)
            end = step.end
    return kept


def build_sequences(videos: list[Video], store: FeatureStore, units: int, per_unit: int, sentence_ids: dict):
    """Sequences, the clip feature tensors they index, and the ids of the videos kept."""
    sequences, feats, kept = [], [], []
    for video in videos:
        if video.id not in store or len(video.steps) < units:
            continue
        array, starts, _ = store.load(video.id)
        usable = [(s, unit_clips(starts, s.start, s.end, per_unit)) for s in non_overlapping(video.steps)]
        usable = [(s, c) for s, c in usable if c]
        if len(usable) < units:
            continue
        pick = np.linspace(0, len(usable) - 1, units).astype(int)  # int(f), as released
        sequences.append(
            Sequence(len(feats), [sentence_ids[usable[k][0].text] for k in pick], [usable[k][1] for k in pick])
        )
        feats.append(torch.from_numpy(array).half())
        kept.append(video.id)
    return sequences, feats, kept


SHUFFLES = ("steps", "steps+units", "steps-or-units")


def negative_count(K: int, count: int, shuffle: str) -> int:
    """How many negatives a sequence gets: `steps` has only K! - 1 distinct orders."""
    return min(count, math.factorial(K) - 1) if shuffle == "steps" else count


def negative_orders(K: int, S: int, count: int, shuffle: str, B: int, gen: torch.Generator):
    """Row orders (B, P, K) and column orders (B, P, K*S) of the P negatives of each sequence.

    K steps of S units each (S = 1 for pooled units); see the module docstring for `shuffle`.
    """
    if shuffle not in SHUFFLES:
        raise TempclrError(f"loss.shuffle {shuffle}: choose from {', '.join(SHUFFLES)}")
    if K < 2 and shuffle != "steps-or-units":
        raise TempclrError(f"loss.shuffle {shuffle}: needs data.units >= 2 (steps to permute)")
    if shuffle == "steps+units" and S < 2:
        raise TempclrError("loss.shuffle steps+units: needs data.unit: clips and data.clip_frames >= 2")
    perms = torch.tensor(list(itertools.permutations(range(K)))[1:], dtype=torch.long).view(-1, K)  # non-identity
    identity_cols = torch.arange(K * S)
    if shuffle == "steps":
        P = negative_count(K, count, shuffle)
        rows = perms[torch.rand(B, len(perms), generator=gen).argsort(-1)[:, :P]]  # distinct, without replacement
        return rows, identity_cols.expand(B, P, K * S)
    if shuffle == "steps+units":
        rows = perms[torch.randint(len(perms), (B, count), generator=gen)]
        return rows, _inner_shuffles(B, count, K, S, gen)
    use_unit, use_seg = S > 1, K > 1
    if not (use_unit or use_seg):
        raise TempclrError(
            "loss.shuffle steps-or-units: needs data.units > 1 or data.unit: clips with data.clip_frames > 1"
        )
    n_seg = (count if not use_unit else math.ceil(count / 2)) if use_seg else 0
    n_unit = count - n_seg
    if n_seg <= len(perms):
        pick = torch.rand(B, len(perms), generator=gen).argsort(-1)[:, :n_seg]
    else:  # fewer distinct orders than negatives: repeat some
        pick = torch.randint(len(perms), (B, n_seg), generator=gen)
    rows = torch.cat(
        [perms[pick] if n_seg else torch.empty(B, 0, K, dtype=torch.long), torch.arange(K).expand(B, n_unit, K)], 1
    )
    cols = torch.cat([identity_cols.expand(B, n_seg, K * S), _inner_shuffles(B, n_unit, K, S, gen)], 1)
    return rows, cols


def _inner_shuffles(B: int, P: int, K: int, S: int, gen: torch.Generator) -> torch.Tensor:
    """(B, P, K*S) column orders that shuffle the S clips inside each of the K steps."""
    inner = torch.rand(B, P, K, S, generator=gen).argsort(-1) + torch.arange(K)[:, None] * S
    return inner.flatten(2)


@register_task
class TempCLRTask:
    kind = "tempclr"
    unit = "sequences"  # what a batch's size counts (progress: sequences/s)
    channels_last = False  # heads over features: nothing to convert

    def __init__(self, recipe: Recipe, device: torch.device, run_dir: Path | None = None):
        data = recipe.data
        if not data.annotations:
            raise TempclrError(
                "data.annotations: required for TempCLR training (e.g. youcookii_annotations_trainval.json)"
            )
        self.recipe, self.device = recipe, device
        store = FeatureStore(data.root)
        videos = [v for v in read_annotations(data.annotations, data.format) if v.subset in ("training", "")]
        sentences = sorted({s.text for v in videos for s in v.steps})
        ids = {s: k for k, s in enumerate(sentences)}
        self.sequences, self.feats, self.video_ids = build_sequences(videos, store, data.units, data.clip_frames, ids)
        if not self.sequences:
            raise TempclrError(
                f"no training sequences: no video in {data.annotations} has {data.units} annotated steps "
                f"with features in {data.root} (lower data.units?)"
            )
        self.text = self.sentence_table(sentences, store, run_dir)
        self.per_unit = 1 if data.unit == "pooled" else data.clip_frames  # units per step in the cost
        negative_orders(data.units, self.per_unit, 1, recipe.loss.shuffle, 1, torch.Generator())  # fail early
        self.dim = self.feats[0].shape[1]
        if recipe.model.dim != self.dim:
            raise TempclrError(f"model.dim: {recipe.model.dim} but the features have dim {self.dim}")

    def sentence_table(self, sentences: list[str], store: FeatureStore, run_dir: Path | None) -> torch.Tensor:
        """(N, D) embeddings of every sentence, from the text tower that made the features (cached)."""
        self.encoder = store.encoder()
        return encode_sentences(sentences, self.encoder, run_dir and run_dir / "sentences.pt", self.device)

    # -- what the trainer asks for ------------------------------------------------------

    def describe(self) -> str:
        return f"{len(self.sequences)} training sequences from {len(self.video_ids)} videos"

    def build_model(self) -> torch.nn.Module:
        return TempCLRHeads(self.heads_config())

    def heads_config(self) -> HeadsConfig:
        return HeadsConfig(dim=self.dim, layers=self.recipe.model.layers, dropout=self.recipe.model.dropout)

    def model_args(self) -> dict:
        return self.heads_config().__dict__

    def meta(self) -> dict:
        return {**self.encoder.to_meta(), "videos": len(self.video_ids)}

    def steps_per_epoch(self, world: int) -> int:
        from tempclr_cli.core.train.trainer import steps_per_epoch

        return steps_per_epoch(len(self.sequences), self.recipe, world)

    def batches(self, epoch: int, rank: int, world: int):
        """This rank's batches of epoch `epoch`. Negatives of sequence i in epoch e depend on
        (seed, e, i) only, so one process and several ranks draw the same ones."""
        from tempclr_cli.core.train.trainer import rank_batches

        for indices in rank_batches(len(self.sequences), self.recipe, epoch, rank, world):
            yield self._collate(indices, epoch).to(self.device)

    def _negatives(self, index: int, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        from tempclr_cli.core.train.trainer import epoch_generator

        gen = epoch_generator(self.recipe.train.seed * 1_000_003 + index, epoch)
        loss = self.recipe.loss
        rows, cols = negative_orders(self.recipe.data.units, self.per_unit, loss.negatives, loss.shuffle, 1, gen)
        return rows[0], cols[0]

    def _padded(self, seqs: list[Sequence]) -> tuple[torch.Tensor, torch.Tensor]:
        """The sequences' videos' clip features, padded: (B, T, D) and the padding mask (B, T)."""
        T = max(self.feats[s.video].shape[0] for s in seqs)
        feats = torch.zeros(len(seqs), T, self.dim)
        padding = torch.ones(len(seqs), T, dtype=torch.bool)
        for b, s in enumerate(seqs):
            n = self.feats[s.video].shape[0]
            feats[b, :n] = self.feats[s.video].float()
            padding[b, :n] = False
        return feats, padding

    def _collate(self, indices: list[int], epoch: int) -> Batch:
        seqs = [self.sequences[i] for i in indices]
        feats, padding = self._padded(seqs)
        text = self.text[torch.tensor([s.sentences for s in seqs])]
        clips = torch.tensor([s.clips for s in seqs])
        rows, cols = zip(*(self._negatives(i, epoch) for i in indices))
        return Batch(feats, padding, text, clips, torch.stack(rows), torch.stack(cols))

    def loss(self, model: torch.nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        loss_cfg = self.recipe.loss
        B, K, S = batch.clips.shape
        video, text = model(batch.feats, batch.padding, batch.text)  # (B, T, D), (B, K, D)
        clips = video.gather(1, batch.clips.flatten(1)[..., None].expand(-1, -1, video.shape[-1]))  # (B, K*S, D)
        pooled = clips.view(B, K, S, -1).mean(2)  # (B, K, D): one unit per step
        pooled_units = self.per_unit == 1
        units = pooled if pooled_units else clips
        seq = sequence_contrastive_loss(
            text,
            units,
            batch.rows,
            loss_cfg.distance,
            loss_cfg.gamma,
            loss_cfg.temperature,
            None if pooled_units else batch.cols,
            loss_cfg.band,
        )
        caps, segs = text.flatten(0, 1), pooled.flatten(0, 1)
        if loss_cfg.clip_similarity == "cosine":
            caps, segs = F.normalize(caps, dim=-1), F.normalize(segs, dim=-1) / loss_cfg.temperature
        clip = clip_caption_loss(gather_with_grad(caps), gather_with_grad(segs))
        total = loss_cfg.sequence_weight * seq + loss_cfg.clip_weight * clip
        return {"sequence": seq, "clip_caption": clip, "total": total}
