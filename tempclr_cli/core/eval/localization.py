"""Zero-shot action-step localisation (COIN / CrossTask protocol, REFERENCE section 3).

For each video, every step of its task's ordered step list is scored against every
second of video (cosine similarity). A dynamic program assigns each step exactly one
second, in order (strictly increasing), maximising the summed score; seconds left over
are free background. A ground-truth step counts as recalled when its assigned second
falls inside one of its annotated segments. Recall = recalled / present, pooled over a
task's videos, then averaged over tasks.
"""

from __future__ import annotations

import torch

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


def localization_recall(videos: list[Video], tasks: dict[str, list[str]], store, encode_text, heads=None) -> dict:
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
        assigned = assign_steps(text @ clips.T)
        centres = [(starts[t] + ends[t]) / 2 for t in assigned]
        present = {s.text for s in video.steps}
        recalled = sum(
            any(s.start <= centres[steps.index(name)] < s.end for s in video.steps if s.text == name)
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
                   device: str = "auto") -> dict:
    """The `localize` command's protocol from files; returns {"recall", "tasks", "per_task"}."""
    from tempclr_cli.core.data.annotations import read_tasks
    from tempclr_cli.core.data.features import FeatureStore
    from tempclr_cli.core.models.heads import heads_and_sentence_encoder

    store = FeatureStore(features)
    videos, tasks = read_tasks(annotations, fmt)
    videos = [v for v in videos if split == "all" or v.subset == split]
    heads, encode = heads_and_sentence_encoder(checkpoint, store, device)
    return localization_recall(videos, tasks, store, encode, heads)
