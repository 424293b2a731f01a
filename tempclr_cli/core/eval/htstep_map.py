"""HT-Step article-grounding mAP, as the release's `evaluation/eval_article_grounding.py` computes it.

That scorer (MIT, facebookresearch/htstep; ActivityNet's detection AP by way of
ActionFormer and EPIC-Kitchens) does, for one subset:

1. ground truth: per video, in file order, drop segments shorter than 1e-3 s and those
   within 1e-3 s of an earlier kept segment of the same step (`remove_duplicate_annotations`);
2. predictions: keep a row when its label is a step of the video's (activity, variation)
   and some kept ground-truth segment of the subset has that label;
3. one detection class per *activity*: a prediction may match any kept segment of its
   own video (of any step: labels only chose which rows are kept), greedily by score,
   each segment matched once per tIoU threshold, a prediction taking the unmatched segment
   of highest tIoU at or above the threshold (`compute_average_precision_detection`);
4. interpolated AP per activity (VOC 2011), averaged over the activities that have
   ground truth, at tIoU 0.3, 0.4, 0.5, 0.6, 0.7; the headline is their mean.

Computed here without pandas, a video at a time, in the same order of floating-point
operations, and with the same NumPy sorts on the same arrays (which decide ties), so the
values are the official ones to the bit; 2.3M candidates take seconds, not hours.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tempclr_cli.core.data.annotations import Video
from tempclr_cli.core.data.predictions import Matched

THRESHOLDS = np.linspace(0.3, 0.7, 5)  # the scorer's default --tiou_thresholds, these exact floats
TOLERANCE = 1e-3  # remove_duplicate_annotations' tol


def kept_segments(video: Video) -> list[tuple[float, float, str]]:
    """The video's ground truth the scorer keeps: (start, end, label) in file order."""
    kept: list[tuple[float, float, str]] = []
    for s in sorted(video.steps, key=lambda s: s.rank):
        if s.end - s.start >= TOLERANCE and not any(
            abs(s.start - a) <= TOLERANCE and abs(s.end - b) <= TOLERANCE and s.id == label for a, b, label in kept
        ):
            kept.append((s.start, s.end, s.id))
    return kept


def segment_iou(start: np.ndarray, end: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """tIoU of P candidates [start, end] (P,) with G segments gt (G, 2): (P, G), as the scorer's
    `segment_iou` computes each row."""
    inter = (np.minimum(end[:, None], gt[None, :, 1]) - np.maximum(start[:, None], gt[None, :, 0])).clip(0)
    union = (gt[None, :, 1] - gt[None, :, 0]) + (end - start)[:, None] - inter
    return inter.astype(float) / union


@njit(cache=True)
def _greedy(tiou: np.ndarray, order: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """True positives (len(thresholds), P) of P candidates taken in score order, each matching
    the unmatched segment of highest tIoU (`order`: each row's segments by falling tIoU) at or
    above the threshold; tiou, order (P, G)."""
    P, G = tiou.shape
    tp = np.zeros((len(thresholds), P), dtype=np.bool_)
    taken = np.zeros((len(thresholds), G), dtype=np.bool_)
    for p in range(P):
        for t in range(len(thresholds)):
            for j in order[p]:
                if tiou[p, j] < thresholds[t]:
                    break
                if taken[t, j]:
                    continue
                tp[t, p] = True
                taken[t, j] = True
                break
    return tp


def interpolated_ap(tp: np.ndarray, positives: int) -> np.ndarray:
    """VOC 2011 interpolated AP per threshold from true positives (T, P) in score order."""
    tp_sum = np.cumsum(tp, axis=1).astype(float)
    fp_sum = np.cumsum(~tp, axis=1).astype(float)
    recall, precision = tp_sum / positives, tp_sum / (tp_sum + fp_sum)
    ap = np.zeros(len(tp))
    for t in range(len(tp)):
        mprec = np.hstack([[0], precision[t], [0]])
        mrec = np.hstack([[0], recall[t], [1]])
        mprec = np.maximum.accumulate(mprec[::-1])[::-1]
        idx = np.where(mrec[1:] != mrec[:-1])[0] + 1
        ap[t] = np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx])
    return ap


def _activity_ap(rows: np.ndarray, pred: Matched, truth: dict[int, np.ndarray], positives: int) -> np.ndarray:
    """AP per threshold of one activity: `rows` its kept predictions in file order, `truth`
    its videos' kept segments (G, 2)."""
    if len(rows) == 0:
        return np.zeros(len(THRESHOLDS))
    rows = rows[pred.score[rows].argsort()[::-1]]  # the scorer's sort: its tie order too
    tp = np.zeros((len(THRESHOLDS), len(rows)), dtype=bool)
    for v, gt in truth.items():
        mine = np.flatnonzero(pred.video[rows] == v)
        if len(mine):
            tiou = segment_iou(pred.start[rows[mine]], pred.end[rows[mine]], gt)
            tp[:, mine] = _greedy(tiou, np.ascontiguousarray(tiou.argsort(axis=1)[:, ::-1]), THRESHOLDS)
    return interpolated_ap(tp, positives)


def article_grounding_map(videos: list[Video], pred: Matched) -> dict:
    """{"ap": (activities, T) AP, "map": (T,) mAP per threshold, "mean": their mean, "kept":
    predictions scored, "segments": ground-truth segments kept}."""
    kept = [kept_segments(v) for v in videos]
    truth_labels = {pred.code[label] for segments in kept for _, _, label in segments}
    allowed = np.zeros((len(videos), len(pred.labels)), dtype=bool)
    for k, v in enumerate(videos):
        allowed[k, [pred.code[q.label] for q in v.queries if pred.code[q.label] in truth_labels]] = True
    rows = np.flatnonzero(allowed[pred.video, pred.label]) if len(pred) else np.zeros(0, dtype=np.int64)
    activities: dict[str, list[int]] = {}
    for k, segments in enumerate(kept):
        if segments:
            activities.setdefault(videos[k].task, []).append(k)
    order = sorted(activities, key=lambda a: min(_label_order(label) for k in activities[a] for _, _, label in kept[k]))
    index = {activity: g for g, activity in enumerate(order)}  # a video without kept segments: its predictions miss
    activity_of = np.array([index.get(v.task, -1) for v in videos], dtype=np.int64)
    row_activity = activity_of[pred.video[rows]]
    ap = np.zeros((len(THRESHOLDS), len(order)))
    for g, activity in enumerate(order):
        truth = {k: np.array([(a, b) for a, b, _ in kept[k]], dtype=float) for k in activities[activity]}
        ap[:, g] = _activity_ap(rows[row_activity == g], pred, truth, sum(len(t) for t in truth.values()))
    per_threshold = ap.mean(axis=1) if order else np.zeros(len(THRESHOLDS))
    return {
        "ap": ap,
        "map": per_threshold,
        "mean": float(per_threshold.mean()),
        "kept": len(rows),
        "segments": sum(len(s) for s in kept),
        "activities": len(order),
    }


def _label_order(label: str) -> tuple[int, str]:
    """Activities are ordered as the scorer indexes them: by their steps' global_step_index."""
    return (int(label), "") if label.isdigit() else (0, label)
