"""How well an alignment matches annotated steps: boundary errors in seconds.

A step has two boundaries, its start and its end; the error of each is the distance in
seconds between the predicted and the annotated time. `within_1s` is the share of
boundaries at most one second off, the figure docs/results.md reports for `align`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from tempclr_cli.core.align.steps import Alignment
from tempclr_cli.core.data.annotations import Video


def boundary_errors(result: Alignment, truth: Video) -> list[float]:
    """|predicted - annotated| for every start and end, in step order."""
    if len(result.steps) != len(truth.steps):
        raise ValueError(f"{truth.id}: {len(result.steps)} aligned steps for {len(truth.steps)} annotated")
    errors = []
    for got, want in zip(result.steps, truth.steps):
        errors += [abs(got.start - want.start), abs(got.end - want.end)]
    return errors


def summary(pairs: Iterable[tuple[Alignment, Video]]) -> dict:
    """{"videos", "boundaries", "mean_error", "within_1s" (%)} over (alignment, annotation) pairs."""
    errors, videos = [], 0
    for result, truth in pairs:
        errors += boundary_errors(result, truth)
        videos += 1
    e = np.asarray(errors, dtype=float)
    return {
        "videos": videos,
        "boundaries": int(e.size),
        "mean_error": round(float(e.mean()), 2) if e.size else None,
        "within_1s": round(100 * float((e <= 1 + 1e-9).mean()), 1) if e.size else None,
    }
