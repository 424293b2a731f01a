"""Test accuracy of an action classifier: TCLR's multi-clip protocol.

A video's prediction is the mean softmax over N clips (`eval_clips`: the release's
starts, a centre crop of `eval.crop` x the short side; `linear_eval/dl_linear.py:237-293`
uses 10 clips and 0.8); top-1 / top-5 and the confusion matrix are reported for each N.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tempclr_cli.core.checkpoint import load_checkpoint
from tempclr_cli.core.data.clips import ClipSpec, eval_clips, source_side
from tempclr_cli.core.media.frames import to_channels
from tempclr_cli.core.data.splits import split_videos
from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.media.video import read_frames
from tempclr_cli.core.models.classifier import Classifier
from tempclr_cli.core.train.recipe import Recipe


def load_classifier(path: str | Path) -> tuple[Classifier, dict]:
    """A classification run's checkpoint -> (model with its weights, the checkpoint dict)."""
    state = load_checkpoint(path, kinds=("classify",))
    model = Classifier(**state["model_args"])
    model.load_state_dict(state["model"])
    return model, state


@torch.no_grad()
def classification_accuracy(model: Classifier, recipe: Recipe, meta: dict, device, clips: list[int] | None = None,
             progress=None) -> list[dict]:
    """Top-1 / top-5 test accuracy and confusion matrix for each count in `clips` (default
    `eval.clips`), with the run's `meta` (its classes and colour order): the mean softmax over that many evenly spaced clips per video. Each video
    is decoded once for all counts; `progress(1)` is called per video."""
    data, classes = recipe.data, meta["classes"]
    counts = clips or [recipe.eval.clips]
    items = split_videos(Path(data.root), data.format, Path(data.annotations) if data.annotations else None,
                         data.split, "test")
    if not items:
        raise TempclrError(f"{data.root}: no test videos in the split")
    ranked = predict(model, items, recipe, meta.get("channels", "rgb"), device, counts, progress)
    truth = [classes.index(cls) for _, cls in items]
    return [accuracy(k, ranked[k], truth, classes) for k in counts]


@torch.no_grad()
def predict(model: Classifier, items: list, recipe: Recipe, channels: str, device, counts: list[int],
            progress=None) -> dict[int, list[list[int]]]:
    """For each clip count, each video's top-5 classes (mean softmax over its clips). The
    model is left in the mode it came in (validation runs between training epochs)."""
    data = recipe.data
    spec = ClipSpec(data.clip_frames, data.stride, data.size)
    training = model.training
    model.eval().to(device)
    ranked = {k: [] for k in counts}  # clips -> per video, classes best first
    for path, _ in items:
        frames = to_channels(torch.from_numpy(read_frames(path, source_side(spec.size))), channels)
        for k in counts:
            clips_k = eval_clips(frames, spec, k, recipe.eval.crop).to(device)
            ranked[k].append(model(clips_k).softmax(-1).mean(0).argsort(descending=True)[:5].tolist())
        if progress:
            progress(1)
    model.train(training)
    return ranked


def accuracy(clips: int, ranked: list[list[int]], truth: list[int], classes: list[str]) -> dict:
    """Top-1 / top-5 (%) and the confusion matrix of per-video ranked classes against the truth."""
    confusion = np.zeros((len(classes), len(classes)), dtype=int)  # rows: truth, columns: prediction
    for r, t in zip(ranked, truth):
        confusion[t, r[0]] += 1
    n = len(truth)
    return {"clips": clips, "test_videos": n,
            "top1": round(100 * sum(r[0] == t for r, t in zip(ranked, truth)) / n, 2),
            "top5": round(100 * sum(t in r for r, t in zip(ranked, truth)) / n, 2),
            "classes": classes, "confusion": confusion.tolist()}


def evaluate_checkpoint(checkpoint, clips: list[int] | None = None, overrides: list[str] = (), device: str = "auto",
                        progress=None) -> list[dict]:
    """Test accuracy of a classification checkpoint on the data its stored recipe names
    (after `overrides`, e.g. a moved data.root), for each clip count (default: eval.clips)."""
    from tempclr_cli.core.runtime import resolve_device
    from tempclr_cli.core.train.recipe import recipe_from_dict

    model, state = load_classifier(checkpoint)
    recipe = recipe_from_dict(state["recipe"], f"the recipe stored in {checkpoint}", list(overrides))
    counts = sorted(set(clips or [recipe.eval.clips]))
    if counts[0] < 1:
        raise TempclrError("--clips: must be >= 1")
    return classification_accuracy(model, recipe, state["meta"], resolve_device(device), counts, progress)
