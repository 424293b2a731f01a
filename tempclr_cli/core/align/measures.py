"""Sequence measures: one table that losses, few-shot, retrieval, recipes and commands read.

A measure turns a batch of cost matrices `1 - cosine` [shape=(B, N, M)] (with optional
per-pair lengths [shape=(B, 2)]) into one distance per pair [shape=(B,)]; lower is
closer. `pooled` measures first reduce each sequence to its unit-normalised mean, so
their cost matrix is (B, 1, 1). A measure that is `differentiable` can train (recipe
`loss.distance`); `tasks` says where it is offered. Adding a measure is one
`register_measure` call: the training losses, `tempclr fewshot --distance`,
`tempclr retrieve --measure` and the recipe check pick it up. Kernels are in `dtw`.
A `constrained` measure (the DTW family) also takes `band=` (a Sakoe-Chiba radius in cells)
and `subsequence=` (the first sequence matched inside the second), as `dtw.soft_dtw` does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tempclr_cli.core.errors import TempclrError

TASKS = ("loss", "fewshot", "retrieve")


@dataclass(frozen=True)
class Measure:
    name: str
    summary: str  # what `--help` says of it
    distance: Callable = field(repr=False)  # (cost (B, N, M), lengths (B, 2) | None, gamma) -> (B,)
    tasks: tuple[str, ...] = TASKS
    differentiable: bool = False  # usable as a training loss
    pooled: bool = False  # sequences are mean-pooled first
    ordered: bool = True  # respects temporal order (retrieval with background kept selects windows for these)
    constrained: bool = False  # distance also takes band= and subsequence= (see dtw.soft_dtw)


MEASURES: dict[str, Measure] = {}


def register_measure(
    name: str,
    summary: str,
    tasks: tuple[str, ...] = TASKS,
    differentiable: bool = False,
    pooled: bool = False,
    ordered: bool = True,
    constrained: bool = False,
) -> Callable:
    """Decorator on `distance(cost, lengths, gamma) -> (B,)` (with `constrained`, also `band=None,
    subsequence=False`): adds the measure `name`."""
    if "loss" in tasks and not differentiable:
        raise ValueError(f"measure {name}: a training loss needs a differentiable distance")

    def wrap(distance: Callable) -> Callable:
        MEASURES[name] = Measure(
            name, summary, distance, tuple(tasks), differentiable, pooled, ordered and not pooled, constrained
        )
        return distance

    return wrap


def names(task: str) -> tuple[str, ...]:
    """The measures offered for `task` (loss, fewshot, retrieve), in registration order."""
    return tuple(m.name for m in MEASURES.values() if task in m.tasks)


def get(name: str, task: str) -> Measure:
    """The measure `name`, which must be offered for `task`; a clear error otherwise."""
    if name not in names(task):
        raise TempclrError(f"unknown {task} measure {name!r}; choose from {', '.join(names(task))}")
    return MEASURES[name]


def _masked(cost, lengths):
    """Cells outside each pair's (n, m) lengths as +inf, and the rows that exist."""
    import torch

    B, N, M = cost.shape
    if lengths is None:
        return cost, torch.ones(B, N, dtype=torch.bool, device=cost.device)
    rows = torch.arange(N, device=cost.device)[None, :] < lengths[:, :1]
    cols = torch.arange(M, device=cost.device)[None, :] < lengths[:, 1:]
    return cost.masked_fill(~(rows[:, :, None] & cols[:, None, :]), float("inf")), rows


@register_measure(
    "capavg", "Cap. Avg.: each sentence's best clip, averaged (order-blind)", tasks=("retrieve",), ordered=False
)
def _capavg(cost, lengths=None, gamma: float = 0.0):
    cost, rows = _masked(cost, lengths)
    best = cost.amin(2).masked_fill(~rows, 0.0)
    return best.sum(1) / rows.sum(1)


@register_measure("dtw", "DTW: the cheapest monotone alignment", tasks=("fewshot", "retrieve"), constrained=True)
def _dtw(cost, lengths=None, gamma: float = 0.0, band: int | None = None, subsequence: bool = False):
    from tempclr_cli.core.align import dtw

    return dtw.dtw(cost, lengths=lengths, paths=False, band=band, subsequence=subsequence).values


@register_measure("otam", "OTAM, symmetrised (soft with gamma > 0)", differentiable=True, constrained=True)
def _otam(cost, lengths=None, gamma: float = 0.1, band: int | None = None, subsequence: bool = False):
    """Symmetrised, or with `subsequence` the one direction that frees the second sequence's ends."""
    from tempclr_cli.core.align import dtw

    return dtw.otam(cost, gamma=gamma, symmetric=not subsequence, lengths=lengths, band=band, subsequence=subsequence)


@register_measure(
    "softdtw",
    "soft-DTW (gamma: the soft-min smoothing)",
    tasks=("loss", "fewshot"),
    differentiable=True,
    constrained=True,
)
def _softdtw(cost, lengths=None, gamma: float = 0.1, band: int | None = None, subsequence: bool = False):
    from tempclr_cli.core.align import dtw

    return dtw.soft_dtw(cost, gamma=gamma, lengths=lengths, band=band, subsequence=subsequence)


@register_measure("mean", "mean-pooled cosine distance (order-blind)", tasks=("fewshot",), pooled=True)
def _mean(cost, lengths=None, gamma: float = 0.0):
    return cost[:, 0, 0]
