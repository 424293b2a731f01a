"""Align step sentences with a video file or a `.npy` feature file: the `align` command's core,
and the library's (`tempclr_cli.Aligner`, `tempclr_cli.align`).

The encoder is chosen once per input (`encode.encoders.choose_encoder`): the one named,
else the one recorded with the features (`index.jsonl`) or the one trained TempCLR
heads were trained over, else ViT-B-32 / OpenAI. Loaded encoders are kept, so aligning
many inputs loads each model once.
"""

from __future__ import annotations

import math

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tempclr_cli.core.align import TRANSFER_MATCHES
from tempclr_cli.core.align.steps import Alignment, read_steps
from tempclr_cli.core.align.steps import align as align_embeddings
from tempclr_cli.core.encode.encoders import EncoderSpec, choose_encoder, load_spec
from tempclr_cli.core.errors import TempclrError

if TYPE_CHECKING:
    from torch import Tensor


@dataclass
class VideoFeatures:
    clips: object  # (T, D) tensor
    starts: list[float]
    ends: list[float]
    duration: float | None
    source: str  # the video file behind them, if known
    spec: EncoderSpec  # the encoder that made them
    encoder: object


def _clip_labels(starts: list[float], ends: list[float], steps: list[tuple[float, float, str]]) -> Tensor:
    """The step of each clip of an annotated video: the step covering its midpoint, or for a
    step shorter than a clip the clip nearest its middle; -1 for background."""
    import torch

    mids = (torch.tensor(starts, dtype=torch.float64) + torch.tensor(ends, dtype=torch.float64)) / 2
    labels = torch.full((len(starts),), -1, dtype=torch.long)
    for k, (start, end, _) in enumerate(steps):
        inside = (mids >= start) & (mids < end)
        labels[inside if bool(inside.any()) else int((mids - (start + end) / 2).abs().argmin())] = k
    return labels


def _matched_clips(ref_clips: Tensor, clips: Tensor, match: str, drop_cost: float | None) -> Tensor:
    """The reference clip each target clip is matched to (-1: none). match "clips": DTW that may
    drop clips of either side (`segment.match_with_drops`); "subsequence": the reference matched whole
    inside the target, with a free start and end (subsequence DTW), the target's clips outside that
    stretch matched to none: a reference procedure found inside a longer video."""
    import torch

    from tempclr_cli.core.align.dtw import dtw
    from tempclr_cli.core.align.segment import match_with_drops
    from tempclr_cli.core.align.steps import auto_drop_cost

    cost = 1 - ref_clips @ clips.T  # (reference clips, target clips)
    if match == "subsequence":
        path = dtw(cost, subsequence=True).paths  # (L, 2): (reference clip, target clip), in order
        matched = torch.full((clips.shape[0],), -1, dtype=torch.long)
        matched[path[:, 1].flip(0)] = path[:, 0].flip(0)  # each target clip: the first reference clip on it
        return matched
    drop = auto_drop_cost(cost.reshape(1, -1)) if drop_cost is None else drop_cost
    return match_with_drops(cost, drop, drop)[0]


def _segment_by_matched_clips(matched: Tensor, labels: Tensor):
    """Split the target into the reference's steps so that each clip's span agrees with its match's
    step label (`_matched_clips`; -1: a clip matched to none is background)."""
    import torch

    from tempclr_cli.core.align.segment import segment

    step_of = torch.where(matched >= 0, labels[matched.clamp(min=0)], -1)
    K = int(labels.max()) + 1
    disagree = (step_of[None, :] != torch.arange(K)[:, None]).double()  # (K, target clips)
    return segment(disagree, drop_cost=0.5)  # a clip labelled with a step prefers it; a background one, no step


def _enough_clips(steps: int, clips: int, what: str, video) -> None:
    """Each step needs at least one clip: say so, naming the files, before any text is embedded."""
    if steps > clips:
        raise TempclrError(
            f"{what} but {video} has only {clips} clips: each step needs at least one clip "
            f"(sample more: --fps {max(2, math.ceil(steps / clips))})"
        )


class Aligner:
    def __init__(
        self,
        model: str | None = None,
        pretrained: str | None = None,
        checkpoint: str | None = None,
        device: str = "auto",
        seed: int = 0,
        fps: float = 1.0,
        clip_seconds: float = 1.0,
        log: Callable[[str], None] = lambda _: None,
        mix_encoders: bool = False,
        sentence_embeddings: str | Path | None = None,
        tokenizer: str | Path | None = None,
    ):
        from tempclr_cli.core.runtime import resolve_device

        self.model, self.pretrained, self.seed = model, pretrained, seed
        self.fps, self.clip_seconds, self.log = fps, clip_seconds, log
        self.mix_encoders = mix_encoders  # allow text from another encoder than the one that made the features
        self.device = resolve_device(device)
        from tempclr_cli.core.models.heads import IDENTITY, load_heads

        self.heads, self.trained_over = IDENTITY, None
        if checkpoint:
            self.heads, meta = load_heads(checkpoint, self.device, tokenizer=tokenizer)
            self.trained_over = EncoderSpec.from_meta(meta)
        self._encoders: dict[EncoderSpec, object] = {}
        self.text_file = None  # precomputed sentence vectors: the text tower of features tempclr cannot embed text for
        if sentence_embeddings is not None:
            from tempclr_cli.core.encode.sentence_embeddings import SentenceEmbeddings

            if self.heads.embeds_text:
                raise TempclrError(
                    f"--checkpoint {checkpoint} embeds sentences with its own text tower; "
                    "--sentence-embeddings applies to an encoder's features"
                )
            self.text_file = SentenceEmbeddings(sentence_embeddings)  # read and checked once
        self.caveats: set[str] = set()  # what the weights loaded so far do not know (`EncoderInfo.caveat`)

    def encoder(self, made_by: EncoderSpec | None):
        if self.text_file is not None:  # sentences from the file, clips from the .npy: no model runs
            return made_by or EncoderSpec(self.text_file.name, self.text_file.pretrained), self.text_file
        if made_by and not self.mix_encoders:
            named = [
                (what, mine, theirs)
                for what, mine, theirs in (
                    ("--model", self.model, made_by.model),
                    ("--pretrained", self.pretrained, made_by.pretrained),
                )
                if mine is not None and mine != theirs
            ]
            if named:
                what, mine, theirs = named[0]
                raise TempclrError(
                    f"{what} {mine}, but these features were made by {made_by.model} ({made_by.pretrained}): "
                    "sentences from one encoder and clips from another do not compare; leave "
                    f"{what} out to use the features' own, or add --mix-encoders if you mean it"
                )
        spec = choose_encoder(self.model, self.pretrained, self.seed, self.trained_over or made_by)
        if spec not in self._encoders:
            from tempclr_cli.core.encode.registry import find_encoder

            self.log(f"model {spec.model} ({spec.pretrained})")
            self._encoders[spec] = load_spec(spec, self.device)
            if caveat := find_encoder(spec.model).caveat(spec.pretrained):
                self.caveats.add(caveat)
        return spec, self._encoders[spec]

    def align(
        self, video: str | Path, steps: list[str] | str | Path, background: bool = True, drop_cost: float | None = None
    ) -> Alignment:
        """Locate each step of `steps` (in order; a list of sentences, or a steps file) in
        `video`, a video file or a `.npy`."""
        source = f" in {steps}" if isinstance(steps, (str, Path)) else ""
        if isinstance(steps, (str, Path)):
            steps = read_steps(str(steps))
        v = self.features(video)
        _enough_clips(len(steps), len(v.clips), f"{len(steps)} steps{source}", video)
        if self.heads.embeds_text:  # VideoCLIP / TempCLR's own text tower
            clips, step_emb = self._heads(v.clips, self.heads.encode_text(steps), video)
            return align_embeddings(
                step_emb, clips, steps, v.starts, v.ends, background, drop_cost, str(video), v.duration, v.source
            )
        step_emb = v.encoder.encode_text(steps).cpu()
        if step_emb.shape[1] != v.clips.shape[1]:
            if self.text_file is not None:
                from tempclr_cli.core.encode.sentence_embeddings import same_dim

                same_dim(step_emb.shape[1], v.clips.shape[1], str(self.text_file.path), video)
            raise TempclrError(
                f"{video}: features have dim {v.clips.shape[1]} but {v.spec.model} text embeddings have "
                f"{step_emb.shape[1]}; use the --model/--pretrained that made the features"
            )
        clips, step_emb = self._heads(v.clips, step_emb, video)
        return align_embeddings(
            step_emb, clips, steps, v.starts, v.ends, background, drop_cost, str(video), v.duration, v.source
        )

    def transfer(
        self,
        video: str | Path,
        reference: str | Path,
        reference_steps: list[tuple[float, float, str]],
        drop_cost: float | None = None,
        match: str = "steps",
    ) -> Alignment:
        """Label `video` with the steps of an annotated `reference` video of the same procedure,
        with background on both sides: reference clips in no step, and target clips with no
        counterpart, are left out. Both videos go through the same encoder (and heads).

        match="steps": each reference step becomes the mean of its clips, and the target's
        clips are split into those steps in order with Drop-DTW (`steps.align`).
        match="clips": the two clip sequences are matched with DTW that may drop clips of
        either side (`segment.match_with_drops`; drop cost: `drop_cost`, else the Otsu threshold
        of all clip-pair costs); each target clip takes its match's step, and the steps'
        spans are the ordered, contiguous split that agrees with those labels best. It wins
        with a weak encoder (random weights: 81% of boundaries within 1 s, against 60%) and
        loses with a good one (synthetic weights: 92%, against 100%; docs/results.md).
        match="subsequence": the reference's clips are found whole inside `video` (subsequence
        DTW: a free start and end along the target), for a procedure inside a longer video;
        the target's clips before and after it are background, the rest labelled as for "clips"."""
        import torch

        if match not in TRANSFER_MATCHES:
            raise TempclrError(f"match {match!r}: use {' or '.join(TRANSFER_MATCHES)}")
        ref = self.features(reference)
        target = self.features(video, made_by=ref.spec)
        if target.spec != ref.spec or target.clips.shape[1] != ref.clips.shape[1]:
            raise TempclrError(
                f"{video} was encoded with {target.spec.model} ({target.spec.pretrained}, dim "
                f"{target.clips.shape[1]}) and {reference} with {ref.spec.model} ({ref.spec.pretrained}, "
                f"dim {ref.clips.shape[1]}): features of one encoder are needed"
            )
        from tempclr_cli.core.models.heads import apply_video_head

        ref_clips, clips = (
            torch.nn.functional.normalize(
                apply_video_head(self.heads, torch.as_tensor(v.clips), str(p)).double(), dim=-1
            )
            for v, p in ((ref, reference), (target, video))
        )
        s, e = torch.tensor(ref.starts), torch.tensor(ref.ends)
        covered = [(s < end) & (e > start) for start, end, _ in reference_steps]
        for (start, end, text), inside in zip(reference_steps, covered):
            if not bool(inside.any()):
                raise TempclrError(f"{reference}: step {text!r} ({start}-{end} s) covers no clip of the reference")
        prototypes = torch.stack([ref_clips[inside].mean(0) for inside in covered])
        texts = [t for _, _, t in reference_steps]
        if match == "steps":
            return align_embeddings(
                prototypes,
                clips,
                texts,
                target.starts,
                target.ends,
                True,
                drop_cost,
                str(video),
                target.duration,
                target.source,
            )
        from tempclr_cli.core.align.steps import alignment_of

        _enough_clips(len(texts), len(clips), f"{len(texts)} steps", video)
        if match == "subsequence" and len(clips) < len(ref_clips):
            raise TempclrError(
                f"--match subsequence finds the whole reference inside a longer video, and {video} has "
                f"{len(clips)} clips, the reference {len(ref_clips)}: use --match steps or --match clips"
            )
        matched = _matched_clips(ref_clips, clips, match, drop_cost)
        seg = _segment_by_matched_clips(matched, _clip_labels(ref.starts, ref.ends, reference_steps))
        sim = torch.nn.functional.normalize(prototypes, dim=-1) @ clips.T  # the heatmap and the scores
        return alignment_of(seg, sim, texts, target.starts, target.ends, str(video), target.duration, target.source)

    def features(self, video: str | Path, made_by: EncoderSpec | None = None) -> VideoFeatures:
        """Clip features of a video file (encoded here), a `.npy` (read, with its index row), or
        `STORE/KEY`: one video of a feature store in any layout (webdataset or parquet shards: `stored_video`)."""
        video = Path(video)
        stored = None if video.exists() else stored_video(video)
        if not video.exists() and stored is None:
            raise TempclrError(f"{video}: no such file (nor a video KEY of a feature store {video.parent})")
        if video.is_dir():
            raise TempclrError(f"{video}: is a folder; expected a video file or a .npy feature file")
        if stored is not None or video.suffix.lower() == ".npy":
            feats, starts, ends, recorded, duration, source = self._load_features(video, stored)
            if self.heads.embeds_text:  # VideoCLIP embeds the steps itself: no encoder needed
                return VideoFeatures(feats, starts, ends, duration, source, recorded or self.trained_over, None)
            spec, encoder = self.encoder(recorded)
            return VideoFeatures(feats, starts, ends, duration, source, spec, encoder)
        if self.text_file is not None:
            raise TempclrError(
                f"{video}: --sentence-embeddings aligns .npy features (from `tempclr extract` or "
                "`tempclr index`); a video file needs an encoder tempclr runs"
            )
        from tempclr_cli.core.encode.extract import ExtractConfig, encode_video

        spec, encoder = self.encoder(made_by)
        self.log(f"encoding {video}")
        feats, starts, ends, duration = encode_video(
            video, encoder, ExtractConfig(fps=self.fps, clip_seconds=self.clip_seconds)
        )
        return VideoFeatures(feats, starts, ends, duration, str(video), spec, encoder)

    def _heads(self, clips, step_emb, video):
        import torch

        from tempclr_cli.core.models.heads import apply_heads

        return apply_heads(self.heads, torch.as_tensor(clips), step_emb, str(video))

    def _load_features(self, path: Path, stored=None):
        """(features (T, D), starts, ends, the EncoderSpec recorded for them or None, duration or None,
        the source video recorded for them or "") of a `.npy`, or of `stored` (`stored_video`) with its row."""
        import torch

        from tempclr_cli.core.data.features import load_matrix, row_of

        row = row_of(path) if stored is None else stored[1]
        array, starts, ends = load_matrix(path if stored is None else stored[0], row, self.clip_seconds)
        spec = EncoderSpec.from_row(row) if row else None
        return torch.from_numpy(array), starts, ends, spec, row.get("duration"), row.get("source", "")


def stored_video(path: Path):
    """(Stored, index row) when `path` is STORE/KEY, a video of a feature store; else None."""
    from tempclr_cli.core.data.features import FeatureStore

    if not path.parent.is_dir():
        return None
    store = FeatureStore(path.parent)
    found = store.find(path.name)
    return None if found is None else (found, store.row(path.name))


def align(
    video: str | Path,
    steps: list[str] | str | Path,
    model: str | None = None,
    pretrained: str | None = None,
    checkpoint: str | None = None,
    device: str = "auto",
    **options,
) -> Alignment:
    """One-shot `Aligner(model, pretrained, checkpoint, device).align(video, steps)`; `options`
    go to `Aligner.align` (background, drop_cost). Load an Aligner once for many videos."""
    return Aligner(model, pretrained, checkpoint, device).align(video, steps, **options)
