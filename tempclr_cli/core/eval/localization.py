"""Zero-shot step grounding: scored candidate segments per step, and the protocols that score them.

Per video, every query (a step of its task, article or goal) is scored against every clip
of its features (`step_scores`): log_softmax over the video's queries of the dot products
(as the COIN / CrossTask release does, `predictor.py:277-341`; -score is CrossTask's `dp`
cost), or raw cosine similarity. Then, by `mode`:

- ordered (COIN / CrossTask as released): a dynamic program gives each step exactly one
  clip, in the listed order (strictly increasing), maximising the summed score; clips left
  over are free background. One candidate per step: that clip, scored by its score there.
- unordered (HT-Step, Goal-Step): each step on its own over time, so a step may be
  missing, repeated or out of order. Its top-k candidates (`candidates`): smooth the step's
  score with a centred moving average over SMOOTH clips; take the best clip not yet used
  (the earliest of equals); its candidate extends from that peak on both sides while the
  smoothed score stays at or above peak - NEAR * (peak - the step's median score), never
  into an earlier candidate; the clips of the extent are then used (non-maximum
  suppression by extent). A candidate spans its clips' start to end and is scored by the
  smoothed peak value.

The candidates are then scored with the layout's protocols (`core.eval.grounding`), so
`localize` reports what `tempclr score` reports on the predictions file it writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tempclr_cli.core.data.annotations import Video
from tempclr_cli.core.data.layouts import ReadOptions, get, read_layout
from tempclr_cli.core.data.predictions import Predictions, canonical_label, write_predictions
from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.eval.grounding import Scores, score_matched
from tempclr_cli.core.eval import STEP_SCORES
from tempclr_cli.core.models.heads import apply_heads

SMOOTH = 3  # clips in the centred moving average of a step's score (unordered mode)
NEAR = 0.5  # an extent keeps clips within NEAR of the peak's height above the step's median score


def assign_steps(scores: torch.Tensor) -> list[int]:
    """One second per step, strictly increasing, maximising the total score. scores (K, T)."""
    K, T = scores.shape
    if K > T:
        raise TempclrError(f"{K} steps but only {T} seconds")
    s = scores.double()
    best = s[0].clone()
    choices = []
    for k in range(1, K):
        before, where = torch.cummax(best, dim=0)  # best total with step k-1 at or before t
        shifted = torch.cat([torch.tensor([-torch.inf], dtype=s.dtype), before[:-1]])
        choices.append(torch.cat([torch.tensor([0]), where[:-1]]))
        best = s[k] + shifted
    t = int(torch.argmax(best))
    seconds = [t]
    for k in range(K - 1, 0, -1):
        t = int(choices[k - 1][t])
        seconds.append(t)
    return seconds[::-1]


def step_scores(text: torch.Tensor, clips: torch.Tensor, scores: str = "log-softmax") -> torch.Tensor:
    """(K, T) score of each of K steps at each of T seconds (higher is better).
    text [shape=(K, D)], clips [shape=(T, D)]."""
    if scores == "cosine":
        return F.normalize(text, dim=-1) @ F.normalize(clips, dim=-1).T
    if scores != "log-softmax":
        raise TempclrError(f"--scores {scores}: choose from {', '.join(STEP_SCORES)}")
    return torch.log_softmax(text @ clips.T, dim=0)  # over the task's steps, per second


def smoothed(score: np.ndarray, width: int = SMOOTH) -> np.ndarray:
    """Centred moving average (T,) -> (T,); at the ends, the mean of the clips there are."""
    kernel = np.ones(width)
    return np.convolve(score, kernel, "same") / np.convolve(np.ones_like(score), kernel, "same")


def candidates(score: np.ndarray, top_k: int) -> list[tuple[int, int, float]]:
    """Up to `top_k` (first clip, last clip, score) of one step's score (T,), best first
    (the rule in the module docstring)."""
    s = smoothed(np.asarray(score, dtype=np.float64))
    free = np.ones(len(s), dtype=bool)
    median = float(np.median(s)) if len(s) else 0.0
    found = []
    while len(found) < top_k and free.any():
        t = int(np.argmax(np.where(free, s, -np.inf)))
        stop = ~free | (s < s[t] - NEAR * (s[t] - median))
        before, after = np.flatnonzero(stop[:t]), np.flatnonzero(stop[t + 1 :])
        first, last = (int(before[-1]) + 1 if len(before) else 0), (t + int(after[0]) if len(after) else len(s) - 1)
        found.append((first, last, float(s[t])))
        free[first : last + 1] = False
    return found


@dataclass
class Localized:
    """What `localize` found: candidate rows, the videos it localised, and those it could not."""

    rows: list[tuple[str, float, float, str, float]]  # (video, start, end, label, score)
    videos: list[Video]
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> videos


def localize_video(
    video: Video, clips: torch.Tensor, starts, ends, encode_text, heads, scores: str, mode: str, top_k: int
) -> list[tuple[str, float, float, str, float]]:
    """Candidate rows of one video's queries; clips (T, D) its features."""
    from tempclr_cli.core.encode.sentence_embeddings import same_dim

    sentences = encode_text([q.text for q in video.queries])
    if heads is None or not heads.embeds_text:  # sentence vectors from a text tower or a file: the features' space
        same_dim(sentences.shape[1], clips.shape[1], "the sentence vectors", f"{video.id}'s features")
    clips, text = apply_heads(heads, clips, sentences, f"{video.id}'s features")
    matrix = step_scores(text, clips, scores).double().cpu().numpy()  # (K, T)
    if mode == "ordered":
        picks = [[(t, t, float(matrix[k, t]))] for k, t in enumerate(assign_steps(torch.from_numpy(matrix)))]
    else:
        picks = [candidates(row, top_k) for row in matrix]
    return [
        (video.id, float(starts[a]), float(ends[b]), q.label, value)
        for q, found in zip(video.queries, picks)
        if q.label
        for a, b, value in found
    ]


def localize_videos(
    videos: list[Video],
    store,
    encode_text,
    heads=None,
    scores: str = "log-softmax",
    mode: str = "ordered",
    top_k: int = 1,
) -> Localized:
    """Candidates for every video that has queries and features (ordered: no more queries than clips)."""
    done = Localized([], [])
    for video in videos:
        reason = "no queries" if not video.queries else "no features" if video.id not in store else None
        if reason is None:
            clips, starts, ends = store.load(video.id)
            if mode == "ordered" and len(video.queries) > len(starts):
                reason = "more steps than clips (ordered)"
            else:
                done.rows += localize_video(
                    video, torch.from_numpy(clips), starts, ends, encode_text, heads, scores, mode, top_k
                )
                done.videos.append(video)
        if reason:
            done.skipped[reason] = done.skipped.get(reason, 0) + 1
    if not any(v.steps for v in done.videos) and not done.rows:
        raise TempclrError(f"{store.folder}: no video with features and queries to localise")
    return done


def as_predictions(rows: list[tuple[str, float, float, str, float]]) -> Predictions:
    """Candidate rows as the columns `tempclr score` reads back from the file they are written to."""
    videos: dict[str, int] = {}
    labels: dict[str, int] = {}
    video = np.array([videos.setdefault(r[0], len(videos)) for r in rows], dtype=np.int64)
    label = np.array([labels.setdefault(canonical_label(r[3]), len(labels)) for r in rows], dtype=np.int64)
    start, end, score = (np.array([r[k] for r in rows], dtype=np.float64) for k in (1, 2, 4))
    return Predictions(list(videos), list(labels), video, label, start, end, score)


def localize_steps(
    features,
    annotations,
    fmt: str = "coin",
    split: str = "all",
    checkpoint: str | None = None,
    device: str = "auto",
    scores: str = "log-softmax",
    mode: str | None = None,
    top_k: int | None = None,
    predictions_out: str | Path | None = None,
    options: ReadOptions | None = None,
    log=lambda message: None,
    sentence_embeddings: str | Path | None = None,
    tokenizer: str | Path | None = None,
) -> Scores:
    """`tempclr localize`: candidates for every video of `split` with features, written to
    `predictions_out` when given, scored with the layout's protocols (videos it localised)."""
    from dataclasses import replace

    from tempclr_cli.core.data.features import FeatureStore
    from tempclr_cli.core.encode.encoders import heads_and_sentence_encoder

    mode = mode or get(fmt, grounding=True).mode
    top_k = top_k or (1 if mode == "ordered" else 5)
    if mode == "ordered" and top_k != 1:
        raise TempclrError(f"--top-k {top_k} needs --mode unordered (ordered gives each step one clip)")
    store = FeatureStore(features)
    options = replace(options or ReadOptions(), split=split, has_features=store.__contains__)
    videos = read_layout(annotations, fmt, options, grounding=True)
    heads, encode = heads_and_sentence_encoder(checkpoint, store, device, sentence_embeddings, tokenizer)
    found = localize_videos(videos, store, encode, heads, scores, mode, top_k)
    for reason, n in found.skipped.items():
        log(f"{n} videos left out ({reason})")
    if predictions_out:
        log(f"{write_predictions(predictions_out, found.rows)} candidates written to {predictions_out}")
    return score_matched(found.videos, as_predictions(found.rows), fmt, split)
