"""Zero-shot action-step localisation (COIN / CrossTask protocol, REFERENCE section 3).

As released (`predictor.py:277-341`, `metric.py:582-596`): for each video, every step of
its task's ordered step list is scored against every second of video; the score is
log_softmax over the task's steps of the dot products (so -score is CrossTask's `dp`
cost); `scores="cosine"` uses raw cosine similarity instead. A dynamic program assigns
each step exactly one second, in order (strictly increasing), maximising the summed
score; seconds left over are free background. A ground-truth step [s, e] covers the
seconds floor(s) <= t < ceil(e) (the release's `Y[floor(s):ceil(e)]`); a step counts as
recalled when its assigned second is covered by one of its segments. Recall = recalled /
present, pooled over a task's videos, then averaged over tasks.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from tempclr_cli.core.data.annotations import Video
from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.models.heads import apply_heads


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


SCORES = ("log-softmax", "cosine")


def step_scores(text: torch.Tensor, clips: torch.Tensor, scores: str = "log-softmax") -> torch.Tensor:
    """(K, T) score of each of K steps at each of T seconds (higher is better).
    text [shape=(K, D)], clips [shape=(T, D)]."""
    if scores == "cosine":
        return F.normalize(text, dim=-1) @ F.normalize(clips, dim=-1).T
    if scores != "log-softmax":
        raise TempclrError(f"--scores {scores}: choose from {', '.join(SCORES)}")
    return torch.log_softmax(text @ clips.T, dim=0)  # over the task's steps, per second


def covers(step, second: float) -> bool:
    """Whether the ground-truth `step` [start, end] covers `second`, as the release counts it."""
    return math.floor(step.start) <= second < math.ceil(step.end)


def localization_recall(videos: list[Video], tasks: dict[str, list[str]], store, encode_text, heads=None,
                        scores: str = "log-softmax") -> dict:
    """Recall per task and averaged over tasks, for videos that have features."""
    hits: dict[str, list[int]] = {}
    for video in videos:
        steps = tasks.get(video.task)
        if not steps or not video.steps or video.id not in store:
            continue
        clips, starts, ends = store.load(video.id)
        if len(steps) > len(starts):
            continue
        clips, text = apply_heads(heads, torch.from_numpy(clips), encode_text(steps))
        seconds = [starts[t] for t in assign_steps(step_scores(text, clips, scores))]
        present = {s.text for s in video.steps}
        recalled = sum(
            any(covers(s, seconds[steps.index(name)]) for s in video.steps if s.text == name)
            for name in present if name in steps
        )
        counts = hits.setdefault(video.task, [0, 0])
        counts[0] += recalled
        counts[1] += len(present)
    if not hits:
        raise TempclrError("no video with features and a known task step list to evaluate")
    per_task = {task: round(100 * h / n, 2) for task, (h, n) in sorted(hits.items())}
    return {"recall": round(sum(per_task.values()) / len(per_task), 2), "tasks": len(per_task), "per_task": per_task}


def localize_steps(features, annotations, fmt: str = "coin", split: str = "all", checkpoint: str | None = None,
                   device: str = "auto", scores: str = "log-softmax") -> dict:
    """The `localize` command's protocol from files; returns {"recall", "tasks", "per_task"}.

    CrossTask videos get the release's subsets (`crosstask_subsets`), so `split="test"` is
    its test set."""
    from tempclr_cli.core.data.annotations import crosstask_subsets, read_tasks
    from tempclr_cli.core.data.features import FeatureStore
    from tempclr_cli.core.encode.encoders import heads_and_sentence_encoder

    store = FeatureStore(features)
    videos, tasks = read_tasks(annotations, fmt)
    if fmt == "crosstask" and split != "all":
        subsets = crosstask_subsets(annotations, lambda vid: vid in store)
        for v in videos:
            v.subset = subsets.get((v.task, v.id), "")
    videos = [v for v in videos if split == "all" or v.subset == split]
    heads, encode = heads_and_sentence_encoder(checkpoint, store, device)
    return localization_recall(videos, tasks, store, encode, heads, scores)
