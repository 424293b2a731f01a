"""Paragraph-to-video retrieval as in TempCLR's evaluation (REFERENCE section 3).

Query = a video's step captions in order; candidates = the videos; the right answer is
the paragraph's own video. Units on the video side:

    background removed  one unit per annotated segment (mean of its clips, <= 32 s)
    background kept     non-overlapping 16 s windows over the whole video; for DTW the
                        int(1.3 x #captions) windows with the lowest best-caption cost,
                        in temporal order

Measures (higher score = better match), with s = the raw dot product as released
(`similarity="cosine"`: cosine similarity):

    capavg  mean over captions of the max over units of s
    dtw     -DTW(1 - s) over captions x units, on the real L x U matrix
    otam    -OTAM(1 - s), symmetrised, hard (gamma 0)

The released scorer rescales D by T^2/(L*M) and pads it to T x T, which lets the last
caption be skipped; here DTW runs on each pair's own L x U block (per-pair lengths), and
`scorer="released"` reproduces the release (`released_scorer`).
"""

from __future__ import annotations

from pathlib import Path

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from tempclr_cli.core.align import dtw, measures
from tempclr_cli.core.data.annotations import Video
from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.eval import SCORERS, SIMILARITIES
from tempclr_cli.core.eval.released_scorer import RELEASED_MEASURES, released_distances
from tempclr_cli.core.models.heads import apply_text_head, apply_video_head, check_input_dim
from tempclr_cli.core.progress import Progress, silent

MEASURES = measures.names("retrieve")
WINDOW_SECONDS = 16.0
SEGMENT_SECONDS = 32.0


@dataclass
class Padded:
    """Variable-length sequences of unit vectors: x (N, Lmax, D), lengths (N,)."""

    x: torch.Tensor
    lengths: torch.Tensor

    @classmethod
    def of(cls, seqs: Iterable[torch.Tensor], normalize: bool = True, n: int | None = None) -> "Padded":
        """Pad `seqs` (each (L_i, D); `n` of them when `seqs` is a generator); `normalize`
        makes every vector unit length (cosine). Each is copied in as it comes, so a stream
        of them is never held twice (the width grows when a longer one arrives)."""
        n = len(seqs) if n is None else n
        x, lengths = None, torch.zeros(n, dtype=torch.long)
        for k, s in enumerate(seqs):
            if x is None:
                x = torch.zeros(n, len(s), s.shape[1])
            elif len(s) > x.shape[1]:
                x = torch.cat([x, x.new_zeros(n, len(s) - x.shape[1], x.shape[2])], 1)
            x[k, : len(s)] = F.normalize(s.float(), dim=-1) if normalize else s.float()
            lengths[k] = len(s)
        return cls(x, lengths)

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, rows: slice) -> "Padded":
        return Padded(self.x[rows], self.lengths[rows])


def pool(clips: torch.Tensor, starts: list[float], spans: list[tuple[float, float]], reduce=None) -> torch.Tensor:
    """Mean clip feature of each time span (clips starting inside it; nearest clip if none);
    `reduce` (t, D) -> (D,) instead of the mean (VideoCLIP pools a segment with its encoder)."""
    t = torch.tensor(starts)
    out = []
    for start, end in spans:
        inside = (t >= start - 1e-6) & (t < end - 1e-6)
        if not bool(inside.any()):
            inside = torch.zeros_like(inside)
            inside[int(torch.argmin((t - start).abs()))] = True
        out.append(clips[inside].mean(0) if reduce is None else reduce(clips[inside]))
    return torch.stack(out)


def video_units(
    video: Video, clips: torch.Tensor, starts: list[float], ends: list[float], background: str, reduce=None
) -> torch.Tensor:
    """(U, D) units of one video: its segments ('removed') or 16 s windows ('kept'), each
    pooled by `reduce` (default: the mean)."""
    if background == "removed":
        spans = [(s.start, min(s.end, s.start + SEGMENT_SECONDS)) for s in video.steps]
    elif background == "kept":
        end = ends[-1]
        n = max(1, int(np.ceil(end / WINDOW_SECONDS - 1e-9)))
        spans = [(k * WINDOW_SECONDS, (k + 1) * WINDOW_SECONDS) for k in range(n)]
    else:
        raise TempclrError(f"background {background!r}: use removed or kept")
    return pool(clips, starts, spans, reduce)


def _similarity(text: Padded, units: Padded, videos: slice) -> tuple[torch.Tensor, torch.Tensor]:
    """s (P, V, L, U) for a chunk of videos, and the validity mask of each (L, U) cell."""
    u = units.x[videos]
    sim = torch.einsum("pld,vud->pvlu", text.x, u)
    rows = torch.arange(text.x.shape[1])[None, None, :, None] < text.lengths[:, None, None, None]
    cols = torch.arange(u.shape[1])[None, None, None, :] < units.lengths[videos][None, :, None, None]
    return sim, rows & cols


def kept_windows(captions: torch.Tensor) -> torch.Tensor:
    """int(1.3 x L) in integer arithmetic, as Python's float64 gives it (float32 loses one at
    L = 90, 170, 180, ...), at least 1."""
    return (13 * captions.long() // 10).clamp(min=1)


def _select_windows(cost: torch.Tensor, valid: torch.Tensor, text_len: torch.Tensor, unit_len: torch.Tensor):
    """Keep the int(1.3 L) windows with the lowest best-caption cost, in temporal order."""
    P, V, L, U = cost.shape
    best = cost.masked_fill(~valid, float("inf")).amin(2)  # (P, V, U)
    keep = torch.minimum(kept_windows(text_len)[:, None], unit_len[None, :])  # (P, V)
    order = best.argsort(-1)  # cheapest first
    rank = torch.empty_like(order).scatter_(-1, order, torch.arange(U).expand(P, V, U))
    chosen = rank < keep[..., None]  # (P, V, U)
    idx = torch.where(chosen, torch.arange(U).expand(P, V, U), U).sort(-1).values[..., : int(keep.max())]
    idx = idx.clamp(max=U - 1)
    picked = cost.gather(3, idx[:, :, None, :].expand(P, V, L, idx.shape[-1]))
    return picked, keep


def score_matrix(
    text: Padded,
    units: Padded,
    measure: str,
    background: str = "removed",
    chunk_cells: int = 2**25,
    scorer: str = "corrected",
) -> torch.Tensor:
    """Scores (P, V): paragraph p against video v (minus the measure's distance; higher is
    closer); chunks over videos bound the memory.

    `scorer="released"` scores DTW and OTAM as TempCLR's release does (`released_scorer`)."""
    m = measures.get(measure, "retrieve")
    if scorer not in SCORERS:
        raise TempclrError(f"--scorer {scorer}: choose from {', '.join(SCORERS)}")
    released = scorer == "released" and measure in RELEASED_MEASURES
    P, L = text.x.shape[:2]
    V, U = units.x.shape[:2]
    per_chunk = max(1, chunk_cells // max(1, P * L * U))
    out = []
    for v0 in range(0, V, per_chunk):
        videos = slice(v0, min(V, v0 + per_chunk))
        if measure == "dtw" and background == "removed" and not released:  # all pairs from one GEMM
            out.append(-dtw.pairwise_dtw(text.x, units.x[videos], text.lengths, units.lengths[videos]).float())
            continue
        sim, valid = _similarity(text, units, videos)
        Vc = sim.shape[1]
        cost = (1 - sim).masked_fill(~valid, 0.0)
        cols = units.lengths[videos][None, :].expand(P, Vc)
        if background == "kept" and m.ordered:
            cost, cols = _select_windows(cost, valid, text.lengths, units.lengths[videos])
        lengths = torch.stack([text.lengths[:, None].expand(P, Vc), cols], -1).reshape(-1, 2)
        flat = cost.reshape(P * Vc, L, cost.shape[-1])
        if released:
            values = released_distances(flat, lengths[:, 0], lengths[:, 1], measure, L, U)
        else:
            values = m.distance(flat, lengths, 0.0)  # hard minima: retrieval ranks by the exact measure
        out.append(-values.view(P, Vc).float())
    return torch.cat(out, dim=1)


def own_ranks(
    text: Padded,
    units: Padded,
    measure: str,
    task: str = "paragraph-video",
    background: str = "removed",
    scorer: str = "corrected",
    budget: int = 2**24,
) -> Iterator[tuple[slice, torch.Tensor]]:
    """Rank of each query's own item among all candidates (paragraph i belongs to video i;
    1 = best, ties count against), yielded per chunk of queries as (queries, ranks).

    Only one (queries, candidates) block of at most `budget` scores exists at a time, never
    the whole P x V matrix (40 GB at 100k videos), so memory stays that of the units."""
    n = len(text)
    per = max(1, budget // n)
    for q0 in range(0, n, per):
        queries = slice(q0, min(n, q0 + per))
        rows, own = torch.arange(queries.stop - q0), torch.arange(q0, queries.stop)
        if task == "paragraph-video":  # this chunk's paragraphs against every video: rows of the matrix
            block = score_matrix(text[queries], units, measure, background, scorer=scorer)
            yield queries, (block >= block[rows, own][:, None]).sum(1)
        else:  # this chunk's videos against every paragraph: columns
            block = score_matrix(text, units[queries], measure, background, scorer=scorer)
            yield queries, (block >= block[own, rows][None, :]).sum(0)


def recall_from_ranks(ranks: torch.Tensor, ks=(1, 5, 10)) -> dict[str, float]:
    """R@k in percent and the median rank, from each query's rank of its own item."""
    out = {f"R@{k}": round(float((ranks <= k).float().mean() * 100), 2) for k in ks}
    out["median_rank"] = float(ranks.float().median())
    return out


def recall_at(scores: torch.Tensor, ks=(1, 5, 10)) -> dict[str, float]:
    """Row i's correct column is i. R@k in percent and the median rank (1 = best; ties count against)."""
    return recall_from_ranks((scores >= scores.diagonal()[:, None]).sum(1), ks)


def prepare(
    videos: list[Video],
    store,
    encode_text,
    heads=None,
    background: str = "removed",
    similarity: str = "dot",
    progress: Progress = silent,
):
    """Paragraphs and video units of the annotated videos that have features.

    `encode_text(list[str]) -> (N, D)` embeds captions; `heads` (trained TempCLR heads)
    transform clips and captions first. `similarity="dot"` keeps the vectors as they are
    (the release scores raw dot products, `predictor.py:130,228`); "cosine" makes them unit
    length. Returns (text Padded, units Padded, video ids).
    """
    if similarity not in SIMILARITIES:
        raise TempclrError(f"--similarity {similarity}: choose from {', '.join(SIMILARITIES)}")
    kept = [v for v in videos if v.steps and v.id in store]
    if len(kept) < 2:
        raise TempclrError(
            f"{store.folder}: retrieval needs at least 2 annotated videos with features here, found {len(kept)}"
        )
    sentences = sorted({s.text for v in kept for s in v.steps})
    emb = apply_text_head(heads, encode_text(sentences))
    index = {s: k for k, s in enumerate(sentences)}
    unit = similarity == "cosine"
    text = Padded.of((emb[[index[s.text] for s in v.steps]] for v in kept), unit, len(kept))
    del emb  # a store of 100k videos: every caption's vector is as large as all the paragraphs
    advance = progress("loading features", len(kept))

    def units_of(v: Video) -> torch.Tensor:
        clips, starts, ends = store.load(v.id)
        advance(1)
        if heads is not None and heads.segment_pooling == "network":  # VideoCLIP, as released
            check_input_dim(heads, clips.shape[-1], f"{v.id}'s features")
            return video_units(v, torch.from_numpy(clips).float(), starts, ends, background, heads.segment)
        return video_units(
            v, apply_video_head(heads, torch.from_numpy(clips), f"{v.id}'s features"), starts, ends, background
        )

    return text, Padded.of(map(units_of, kept), unit, len(kept)), [v.id for v in kept]


def paragraph_retrieval(
    text: Padded,
    units: Padded,
    measures: list[str],
    task: str = "paragraph-video",
    background: str = "removed",
    scorer: str = "corrected",
    progress: Progress = silent,
) -> dict:
    """R@1/5/10 and median rank per measure; `video-paragraph` ranks paragraphs per video.
    Scores stream a chunk of queries at a time (`own_ranks`)."""
    if task not in ("paragraph-video", "video-paragraph"):
        raise TempclrError(f"--task {task}: use paragraph-video or video-paragraph")
    results = {}
    for measure in measures:
        ranks, advance = torch.empty(len(text), dtype=torch.long), progress(f"scoring {measure}", len(text))
        for queries, chunk in own_ranks(text, units, measure, task, background, scorer):
            ranks[queries] = chunk
            advance(queries.stop - queries.start)
        results[measure] = recall_from_ranks(ranks)
    return results


def retrieve_paragraphs(
    features,
    annotations,
    fmt: str = "youcook2",
    split: str = "validation",
    checkpoint: str | None = None,
    measures: list[str] = ("capavg", "dtw"),
    task: str = "paragraph-video",
    background: str = "removed",
    device: str = "auto",
    scorer: str = "corrected",
    similarity: str = "dot",
    strict: bool = False,
    progress: Progress = silent,
    sentence_embeddings: str | Path | None = None,
    tokenizer: str | Path | None = None,
) -> dict:
    """The `retrieve` command's protocol from files: a features folder, an annotation file,
    optionally trained heads, and the captions embedded by the text tower of the encoder that made
    the features (or looked up in `sentence_embeddings`, for an encoder tempclr has no text tower
    for). Returns {"videos", "task", "background", "scorer", "similarity", "missing_features"
    (annotated videos without features: left out, or an error when `strict`), "results"}."""
    from tempclr_cli.core.data.annotations import read_annotations
    from tempclr_cli.core.data.features import FeatureStore
    from tempclr_cli.core.encode.encoders import heads_and_sentence_encoder
    from tempclr_cli.core.encode.sentence_embeddings import same_dim

    store = FeatureStore(features)
    videos = [v for v in read_annotations(annotations, fmt) if split == "all" or v.subset == split]
    missing = [v.id for v in videos if v.steps and v.id not in store]
    if missing and strict:
        raise TempclrError(
            f"{len(missing)} annotated videos have no features in {features}: "
            f"{', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}"
        )
    heads, encode = heads_and_sentence_encoder(checkpoint, store, device, sentence_embeddings, tokenizer)
    text, units, ids = prepare(videos, store, encode, heads, background, similarity, progress)
    if sentence_embeddings is not None:  # before any product: the vectors must live in the features' space
        same_dim(text.x.shape[-1], units.x.shape[-1], str(sentence_embeddings), features)
    results = paragraph_retrieval(text, units, list(measures), task, background, scorer, progress)
    return {
        "videos": len(ids),
        "task": task,
        "background": background,
        "scorer": scorer,
        "similarity": similarity,
        "missing_features": missing,
        "results": results,
    }
