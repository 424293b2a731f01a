"""Test accuracy of an action classifier: TCLR's multi-clip protocol.

A video's prediction is the mean softmax over N clips (`eval_clips`: the release's
starts, a centre crop of `eval.crop` x the short side; `linear_eval/dl_linear.py:237-293`
uses 10 clips and 0.8); top-1 / top-5 and the confusion matrix are reported for each N.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from tempclr_cli.core.checkpoint import load_checkpoint
from tempclr_cli.core.data.clips import ClipSpec
from tempclr_cli.core.data.splits import split_videos
from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.progress import Progress, silent
from tempclr_cli.core.models.classifier import Classifier, accuracy, predict


def load_classifier(path: str | Path) -> tuple[Classifier, dict]:
    """A classification run's checkpoint -> (model with its weights, the checkpoint dict)."""
    state = load_checkpoint(path, kinds=("classify",))
    model = Classifier(**state["model_args"])
    model.load_state_dict(state["model"])
    return model, state


@dataclass(frozen=True)
class EvalSet:
    """Where the test videos are and how they are clipped: what the protocol needs, no more."""

    root: Path
    format: str
    annotations: Path | None
    split: int
    spec: ClipSpec  # clip frames, stride, size
    crop: float  # centre crop, x the short side
    clips: int  # clips per video by default

    @classmethod
    def of(cls, recipe) -> "EvalSet":
        """The test set a classification recipe names."""
        data = recipe.data
        return cls(
            Path(data.root),
            data.format,
            Path(data.annotations) if data.annotations else None,
            data.split,
            ClipSpec(data.clip_frames, data.stride, data.size),
            recipe.eval.crop,
            recipe.eval.clips,
        )


@torch.no_grad()
def classification_accuracy(
    model: Classifier, test: EvalSet, meta: dict, device, clips: list[int] | None = None, progress: Progress = silent
) -> list[dict]:
    """Top-1 / top-5 test accuracy and confusion matrix for each count in `clips` (default
    `test.clips`), with the run's `meta` (its classes and colour order): the mean softmax over
    that many evenly spaced clips per video. Each video is decoded once for all counts
    (`progress`: one task, a step per video)."""
    classes, counts = meta["classes"], clips or [test.clips]
    items = split_videos(test.root, test.format, test.annotations, test.split, "test")
    if not items:
        raise TempclrError(f"{test.root}: no test videos in the split")
    ranked = predict(
        model, items, test.spec, test.crop, meta.get("channels", "rgb"), device, counts, progress("testing", len(items))
    )
    truth = [classes.index(cls) for _, cls in items]
    return [accuracy(k, ranked[k], truth, classes) for k in counts]


def with_test_accuracy(run, recipe, device, log=lambda _: None):
    """A finished `train.run.run_training` result with, for a classification recipe, the
    test accuracy of the checkpoint chosen on validation (best.pt; last.pt without a
    validation split), never chosen on the test split."""
    from dataclasses import replace

    from tempclr_cli.core.runtime import resolve_device

    if recipe.loss.kind != "classify":
        return run
    chosen = run.run_dir / ("best.pt" if recipe.data.val_fraction else "last.pt")
    model, state = load_classifier(chosen)
    log(f"testing {chosen.name} (mean softmax over clips)")
    row = classification_accuracy(model, EvalSet.of(recipe), state["meta"], resolve_device(device))[0]
    return replace(run, metrics={**run.metrics, **row})


def evaluate_checkpoint(
    checkpoint,
    clips: list[int] | None = None,
    overrides: list[str] = (),
    device: str = "auto",
    progress: Progress = silent,
) -> list[dict]:
    """Test accuracy of a classification checkpoint on the data its stored recipe names
    (after `overrides`, e.g. a moved data.root), for each clip count (default: eval.clips)."""
    from tempclr_cli.core.runtime import resolve_device
    from tempclr_cli.core.train.recipe import recipe_from_dict

    model, state = load_classifier(checkpoint)
    recipe = recipe_from_dict(state["recipe"], f"the recipe stored in {checkpoint}", list(overrides))
    counts = sorted(set(clips or [recipe.eval.clips]))
    if counts[0] < 1:
        raise TempclrError("--clips: must be >= 1")
    return classification_accuracy(model, EvalSet.of(recipe), state["meta"], resolve_device(device), counts, progress)
