"""Step-grounding protocols: one scorer for predictions made by anything (`tempclr score`, `localize`).

A protocol turns the videos of a layout (ground truth in `Video.steps`, labelled by
`Step.id`) and the matched predictions into named values in percent, with the convention
written out (what counts as a hit, what is averaged). The layouts' table says which
protocols apply to which layout (`Layout.protocols`); adding one is one `@register_protocol`.

Shared rules: a candidate's *second* is its midpoint, floored; among a (video, label)'s
candidates the top one has the highest score, ties going to the earlier midpoint, then the
earlier row; a video or a step with no candidate counts as missed. Videos are those of the
annotations (and split) that have ground truth; predictions for other videos are counted
and left out.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from tempclr_cli.core.data.annotations import Video
from tempclr_cli.core.data.layouts import ReadOptions, get, read_layout
from tempclr_cli.core.data.predictions import Matched, Predictions, match, read_predictions
from tempclr_cli.core.errors import TempclrError


@dataclass(frozen=True)
class Protocol:
    name: str
    title: str  # how a table heads it
    convention: str  # the rule in words, and whose code it follows
    score: Callable[[list[Video], Matched], dict] = field(repr=False)  # -> {"values": {...}, "units": n, ...}


PROTOCOLS: dict[str, Protocol] = {}


def register_protocol(name: str, title: str, convention: str) -> Callable:
    """Decorator on `score(videos, matched) -> {"values": {name: percent}, "units": n, ...}`."""

    def wrap(score: Callable) -> Callable:
        PROTOCOLS[name] = Protocol(name, title, convention, score)
        return score

    return wrap


def units(videos: list[Video]) -> list[tuple[int, str, list[tuple[float, float]]]]:
    """Every (video, label) with ground truth, and its segments: what recall counts."""
    found = []
    for k, v in enumerate(videos):
        segments: dict[str, list[tuple[float, float]]] = {}
        for s in v.steps:
            segments.setdefault(s.id, []).append((s.start, s.end))
        found += [(k, label, segs) for label, segs in segments.items()]
    return found


def ranked(pred: Matched) -> tuple[np.ndarray, dict[tuple[int, int], tuple[int, int]]]:
    """Rows best first within each (video, label) (score, then earlier midpoint, then file
    order), and where each pair's rows lie in that order: {(video, label code): (from, to)}."""
    mid = (pred.start + pred.end) / 2
    order = np.lexsort((np.arange(len(pred)), mid, -pred.score, pred.label, pred.video))
    v, lab = pred.video[order], pred.label[order]
    cuts = np.flatnonzero((v[1:] != v[:-1]) | (lab[1:] != lab[:-1])) + 1
    starts, ends = np.r_[0, cuts], np.r_[cuts, len(order)]
    spans = {(int(v[a]), int(lab[a])): (int(a), int(b)) for a, b in zip(starts, ends)} if len(order) else {}
    return order, spans


def top_seconds(pred: Matched) -> dict[tuple[int, int], int]:
    """The top candidate's second of each (video, label code) that has candidates."""
    order, spans = ranked(pred)
    mid = (pred.start + pred.end) / 2
    return {key: math.floor(mid[order[a]]) for key, (a, _) in spans.items()}


@register_protocol(
    "point-recall",
    "point R@1 (HT-Step R@1 of VINA, NaSVA, BaGLM)",
    "per (video, step) with ground truth, the top candidate's second (midpoint, floored) hits when "
    "floor(start) <= t <= ceil(end) of one of the step's segments (BaGLM src/htstep_recall.py); "
    "mean over (video, step) pairs",
)
def point_recall(videos: list[Video], pred: Matched) -> dict:
    best, pairs = top_seconds(pred), units(videos)
    hits = [
        any(math.floor(a) <= best[key] <= math.ceil(b) for a, b in segs)
        for k, label, segs in pairs
        for key in [(k, pred.code[label])]
        if key in best
    ]
    n = len(pairs)
    return {"values": {"R@1": 100 * sum(hits) / n if n else 0.0}, "units": n}


@register_protocol(
    "step-recall",
    "step recall (CrossTask / COIN zero-shot localisation)",
    "per (video, step) with ground truth, the top candidate's second t hits when floor(start) <= t < "
    "ceil(end) of one of the step's segments (the CrossTask release's Y[floor(s):ceil(e)]); pooled per "
    "task, then the mean over tasks (Drop-DTW's 3.2-s clips and released dp count differently)",
)
def step_recall(videos: list[Video], pred: Matched) -> dict:
    best = top_seconds(pred)
    counts: dict[str, list[int]] = {}
    for k, label, segs in units(videos):
        t = best.get((k, pred.code[label]))
        hit = t is not None and any(math.floor(a) <= t < math.ceil(b) for a, b in segs)
        tally = counts.setdefault(videos[k].task, [0, 0])
        tally[0] += hit
        tally[1] += 1
    per_task = {task: 100 * h / n for task, (h, n) in sorted(counts.items())}
    recall = sum(per_task.values()) / len(per_task) if per_task else 0.0
    return {
        "values": {"recall": recall},
        "units": sum(n for _, n in counts.values()),
        "tasks": len(per_task),
        "per_task": per_task,
    }


def _seconds_of(segments, length: int) -> np.ndarray:
    """Which of `length` seconds the [start, end] segments cover: floor(start) <= t < ceil(end)."""
    covered = np.zeros(length, dtype=bool)
    for a, b in segments:
        covered[math.floor(a) : math.ceil(b)] = True
    return covered


LONGEST = 10**7  # seconds: a candidate ending later is refused, not painted second by second


def _framewise_video(video: Video, rows: np.ndarray, pred: Matched) -> tuple[float, float] | None:
    """(accuracy, IoU) of one video, or None without labelled seconds."""
    length = max([math.ceil(s.end) for s in video.steps] + [math.ceil(e) for e in pred.end[rows]] + [0])
    if length > LONGEST:
        raise TempclrError(
            f"video {video.id}: a segment ends at {length} s; framewise scores paint every second (at most {LONGEST})"
        )
    truth = np.full(length, -1)
    for s in video.steps:  # in time order: a later segment overwrites an earlier one
        truth[math.floor(s.start) : math.ceil(s.end)] = pred.code[s.id]
    guess = np.full(length, -1)
    for r in rows[np.lexsort((-rows, pred.score[rows]))]:  # best last, so it wins; equal scores: the earlier row
        guess[math.floor(pred.start[r]) : math.ceil(pred.end[r])] = pred.label[r]
    labelled = truth >= 0
    if not labelled.any():
        return None
    steps = np.unique(truth[labelled])
    inter = sum(int(((truth == s) & (guess == s)).sum()) for s in steps)
    union = sum(int(((truth == s) | (guess == s)).sum()) for s in steps)
    return float((guess[labelled] == truth[labelled]).mean()), inter / union


@register_protocol(
    "framewise",
    "framewise accuracy / IoU (COIN, Drop-DTW's metrics)",
    "each second t takes the label of the best-scoring candidate with floor(start) <= t < ceil(end) "
    "(ground truth likewise, a later segment over an earlier one); accuracy over the seconds a step "
    "covers (background left out, as Drop-DTW eval/metrics.py by default), IoU = sum over the video's "
    "steps of |pred & truth| / sum of |pred | truth|; both the mean over videos",
)
def framewise(videos: list[Video], pred: Matched) -> dict:
    by_video = np.argsort(pred.video, kind="stable")
    cuts = np.searchsorted(pred.video[by_video], np.arange(len(videos) + 1))
    found = [_framewise_video(v, by_video[cuts[k] : cuts[k + 1]], pred) for k, v in enumerate(videos)]
    found = [f for f in found if f is not None]
    if not found:
        return {"values": {"accuracy": 0.0, "IoU": 0.0}, "units": 0}
    return {
        "values": {
            "accuracy": 100 * float(np.mean([a for a, _ in found])),
            "IoU": 100 * float(np.mean([i for _, i in found])),
        },
        "units": len(found),
    }


NLQ_THRESHOLDS, NLQ_TOP = (0.3, 0.5), (1, 5)


def nlq_iou(windows: np.ndarray, start: float, end: float) -> np.ndarray:
    """IoU of windows (K, 2) with [start, end] as Ego4D's evaluate_ego4d_nlq.py computes it
    (union = the hull)."""
    inter = np.maximum(0.0, np.minimum(windows[:, 1], end) - np.maximum(windows[:, 0], start))
    union = np.maximum(0.0, np.maximum(windows[:, 1], end) - np.minimum(windows[:, 0], start))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num(inter / union)


@register_protocol(
    "nlq-recall",
    "Ego4D NLQ recall (Goal-Step step grounding)",
    "per query (a ground-truth segment), its label's candidates by score (ties: file order); R@k at "
    "IoU θ: one of the top k overlaps the segment with IoU > θ (strict, as Ego4D "
    "evaluate_ego4d_nlq.py); mIoU: the mean IoU of the top candidate (0 without one)",
)
def nlq_recall(videos: list[Video], pred: Matched) -> dict:
    order = np.lexsort((np.arange(len(pred)), -pred.score, pred.label, pred.video))
    _, spans = ranked(pred)  # the same (video, label) groups; within them, by score then row
    windows = np.stack([pred.start, pred.end], axis=1)[order] if len(pred) else np.zeros((0, 2))
    hits = np.zeros((len(NLQ_THRESHOLDS), len(NLQ_TOP)))
    top_iou, n = [], 0
    for k, label, segs in units(videos):
        a, b = spans.get((k, pred.code[label]), (0, 0))
        for start, end in segs:
            iou = nlq_iou(windows[a : min(b, a + max(NLQ_TOP))], start, end)
            hits += [[bool((iou[:top] > th).any()) for top in NLQ_TOP] for th in NLQ_THRESHOLDS]
            top_iou.append(float(iou[0]) if len(iou) else 0.0)
            n += 1
    values = {
        f"R@{top} IoU>{th}": 100 * hits[i, j] / n if n else 0.0
        for j, top in enumerate(NLQ_TOP)
        for i, th in enumerate(NLQ_THRESHOLDS)
    }
    return {"values": {**values, "mIoU": 100 * float(np.mean(top_iou)) if n else 0.0}, "units": n}


@register_protocol(
    "htstep-map",
    "HT-Step article-grounding mAP (official scorer)",
    "evaluation/eval_article_grounding.py: predictions kept when their label is a step of the "
    "video's (activity, variation) with ground truth in the split; segments shorter than 1e-3 s or "
    "duplicated dropped; ActivityNet interpolated AP per activity (a candidate may match any segment "
    "of its video), averaged over activities, at tIoU 0.3-0.7; mAP = their mean",
)
def htstep_map(videos: list[Video], pred: Matched) -> dict:
    from tempclr_cli.core.eval.htstep_map import THRESHOLDS, article_grounding_map

    found = article_grounding_map(videos, pred)
    values = {f"mAP@{t:.1f}": 100 * float(m) for t, m in zip(THRESHOLDS, found["map"])}
    return {
        "values": {**values, "mAP": 100 * found["mean"]},
        "units": found["segments"],
        "kept": found["kept"],
        "activities": found["activities"],
    }


@dataclass
class Scores:
    """What `score` and `localize` report: the protocols' values and what they counted."""

    layout: str
    split: str
    videos: int  # with ground truth
    queries: int  # (video, label) pairs with ground truth
    predictions: int  # rows read
    outside: int  # rows naming a video not scored
    results: dict[str, dict] = field(default_factory=dict)  # protocol -> its score()

    def to_text(self) -> str:
        """A table for a terminal: what was scored, each protocol's values, its convention."""
        lines = [
            f"{self.layout}, split {self.split}: {self.videos} videos, {self.queries} queries with ground truth; "
            f"{self.predictions} predictions ({self.outside} for videos not scored)"
        ]
        for name, result in self.results.items():
            lines.append(f"\n{PROTOCOLS[name].title} [{name}]")
            lines += [f"  {metric:<14} {value:6.2f}" for metric, value in result["values"].items()]
            lines.append(f"  ({PROTOCOLS[name].convention})")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "format": self.layout,
            "split": self.split,
            "videos": self.videos,
            "queries": self.queries,
            "predictions": self.predictions,
            "outside": self.outside,
            "metrics": {
                name: {"title": PROTOCOLS[name].title, "convention": PROTOCOLS[name].convention, **result}
                for name, result in self.results.items()
            },
        }


def score_matched(videos: list[Video], predictions: Predictions, layout: str, split: str = "all") -> Scores:
    """Every protocol of `layout` on `predictions` against `videos`."""
    matched = match(predictions, videos)
    scored = [v for v in videos if v.steps]
    results = {name: PROTOCOLS[name].score(videos, matched) for name in get(layout, grounding=True).protocols}
    return Scores(layout, split, len(scored), len(units(videos)), len(predictions), matched.outside, results)


def score_file(predictions: str | Path, annotations: str | Path, layout: str, options: ReadOptions) -> Scores:
    """`tempclr score`: read both files, score every protocol that applies."""
    found = read_predictions(predictions)
    if options.has_features is None:  # CrossTask's split: the videos a predictions file covers count as localised
        options = replace(options, has_features=set(found.videos).__contains__)
    videos = read_layout(annotations, layout, options, grounding=True)
    if not any(v.steps for v in videos):
        raise TempclrError(f"{annotations}: no video of --split {options.split} has ground truth to score")
    return score_matched(videos, found, layout, options.split)
