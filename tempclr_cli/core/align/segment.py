"""Ordered segmentation of clips into steps, with background, and clip-to-clip matching with drops.

`segment`: each of K steps gets one contiguous run of clips, in the steps' order, and a clip may
belong to no step at a fixed drop cost (Drop-DTW; Dvornik et al., NeurIPS 2021): the dynamic
program behind `tempclr align`. `match_with_drops`: two clip sequences matched in order, clips of
either side droppable: behind `align --reference --match clips`. Inputs are validated as
`dtw` validates them (`dtw._prepare`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from tempclr_cli.core.align.dtw import DTWInputError, _prepare


# --- segmentation with background (for `tempclr align`) -------------------------------------


@dataclass
class Segmentation:
    """Each step's clip span [start, end] (inclusive, clip indices) and the total cost."""

    starts: list[int]
    ends: list[int]
    cost: float


SEGMENT_CELLS = 2**24  # steps x clips up to which the backtracking indices are kept whole (two int32 each: 128 MB)


@dataclass(frozen=True)
class CostRows:
    """A (K, T) cost matrix given a block of rows at a time and never held whole: `rows(k0,
    k1)` returns rows k0..k1-1 [shape=(k1 - k0, T)]. `segment` takes one where K x T cells
    would not fit (thousands of steps over a long video)."""

    shape: tuple[int, int]
    rows: Callable[[int, int], torch.Tensor]


def segment(cost: torch.Tensor | CostRows, drop_cost: float | None = None) -> Segmentation:
    """Split T clips into K ordered, contiguous, non-empty step segments.

    cost [shape=(K, T)]: cost of clip t belonging to step k. With `drop_cost`, clips
    may be left as background (Drop-DTW style) at that cost each, between, before and
    after steps; with None every clip belongs to a step. Steps keep their order.

    Memory: the DP runs one step's row at a time in float64. Backtracking needs each row's
    start (and end) indices; past 2^24 cells they are not all kept: the forward pass keeps
    its input every sqrt(K) rows, and the backtrack recomputes one block of rows at a time
    from them, for O(T sqrt(K)) memory at twice the time (5,000 steps over 36,000 clips:
    40 MB of indices instead of 1.4 GB). With `cost` a `CostRows`, the costs themselves are
    asked for one block at a time too.
    """
    if not isinstance(cost, CostRows):
        d = _prepare(cost, None)[0][0]  # rows go to float64 one at a time: a long video is not held twice
        cost = CostRows(tuple(d.shape), lambda k0, k1: d[k0:k1])
    K, T = cost.shape
    if K > T:
        raise DTWInputError(f"{K} steps but only {T} clips: each step needs at least one clip")
    block = K if K * T <= SEGMENT_CELLS else math.isqrt(K - 1) + 1
    row = _SegmentRow(cost, drop_cost, block)
    checkpoints, before = [], row.first()
    for k in range(K):
        if k % block == 0:
            checkpoints.append(before)
            indices = []  # the last block's stay: with one block nothing is recomputed
        before, done, s_idx, e_idx = row(k, before)
        indices.append((s_idx, e_idx))
    total = float(done[-1])
    if not math.isfinite(total):
        raise DTWInputError("no valid segmentation (too few clips for the steps)")
    starts, ends, j = [0] * K, [0] * K, T - 1
    for b in range(len(checkpoints) - 1, -1, -1):
        lo, hi = b * block, min(K, (b + 1) * block)
        if b < len(checkpoints) - 1:  # an earlier block's indices, recomputed from its checkpoint
            before, indices = checkpoints[b], []
            for k in range(lo, hi):
                before, _, s_idx, e_idx = row(k, before)
                indices.append((s_idx, e_idx))
        for k in range(hi - 1, lo - 1, -1):
            s_idx, e_idx = indices[k - lo]
            ends[k] = j if e_idx is None else int(e_idx[j])
            starts[k] = int(s_idx[ends[k]])
            j = starts[k] - 1
    return Segmentation(starts, ends, total)


class _SegmentRow:
    """One step's row of `segment`'s DP: from `before` (A[k-1, j-1], the best cost of steps
    0..k-1 within clips 0..j-1) to the next row's `before`, the row's A[k, :], and the indices
    that backtracking reads: where step k starts given its last clip, and (with background)
    where it ends given the last clip so far."""

    def __init__(self, cost: CostRows, drop_cost: float | None, block: int):
        self.cost, self.block, self.background = cost, block, drop_cost is not None
        T, dtype = cost.shape[1], torch.float64
        self.inf = torch.tensor(float("inf"), dtype=dtype)
        self.drops = torch.full((T,), float(drop_cost), dtype=dtype).cumsum(0) if self.background else None
        self.index = torch.int32 if T < 2**31 else torch.int64  # the narrowest that fits
        self.cached, self.rows = 0, cost.rows(0, 0)  # the block of cost rows asked for last, from row `cached`

    def cost_row(self, k: int) -> torch.Tensor:
        if not self.cached <= k < self.cached + len(self.rows):
            self.cached, self.rows = k, self.cost.rows(k, min(self.cost.shape[0], k + self.block))
            if not bool(torch.isfinite(self.rows).all()):
                raise DTWInputError("cost contains NaN or inf")
        return self.rows[k - self.cached]

    def first(self) -> torch.Tensor:
        T = self.cost.shape[1]
        if not self.background:
            return torch.cat(
                [torch.zeros(1, dtype=torch.float64), torch.full((T - 1,), float("inf"), dtype=torch.float64)]
            )
        return torch.cat([torch.zeros(1, dtype=torch.float64), self.drops[:-1]])

    def __call__(self, k: int, before: torch.Tensor):
        c = self.cost_row(k).double().cumsum(0)
        c_before = torch.cat([torch.zeros(1, dtype=torch.float64), c[:-1]])
        best_start, s_idx = torch.cummin(before - c_before, dim=0)
        matched = c + best_start  # M[k, j]: clip j is the last clip so far of step k
        if not self.background:
            done, e_idx = matched, None  # the step ends where the next begins: no index to keep
        else:
            best_end, e_idx = torch.cummin(matched - self.drops, dim=0)
            done = self.drops + best_end  # A[k, j]: steps 0..k placed within clips 0..j
            e_idx = e_idx.to(self.index)
        return torch.cat([self.inf.reshape(1), done[:-1]]), done, s_idx.to(self.index), e_idx


# --- clip-to-clip matching with background on both sides (for `align --reference`) ----------

MATCH_DIAG, MATCH_DOWN, DROP_ROW, MATCH_RIGHT, DROP_COL = range(5)


def match_with_drops(cost: torch.Tensor, drop_row: float, drop_col: float) -> tuple[torch.Tensor, float]:
    """Monotone many-to-many matching of two sequences in which either side's elements may
    be left unmatched (Drop-DTW with drops on both sides).

    cost [shape=(N, M)]: cost of matching row i with column j; an unmatched row costs
    `drop_row`, an unmatched column `drop_col`. Returns, for each column, the row it is
    matched to, or -1 when dropped [shape=(M,)], and the total cost. Row scan as above: the
    horizontal moves (column j matched to row i again, or dropped) unroll into a prefix scan.
    """
    c = torch.as_tensor(cost).double().cpu()
    N, M = c.shape
    move = torch.empty(N + 1, M + 1, dtype=torch.uint8)
    prev = torch.arange(M + 1, dtype=torch.float64) * drop_col  # row 0: columns dropped
    move[0, 1:] = DROP_COL
    for i in range(1, N + 1):
        row = c[i - 1]
        diag, down = prev[:-1] + row, prev[1:] + torch.minimum(row, torch.tensor(drop_row))
        enter = torch.cat([(prev[:1] + drop_row), torch.minimum(diag, down)])
        code = torch.cat(
            [
                torch.tensor([DROP_ROW], dtype=torch.uint8),
                torch.where(diag <= down, MATCH_DIAG, torch.where(row <= drop_row, MATCH_DOWN, DROP_ROW)).to(
                    torch.uint8
                ),
            ]
        )
        step = torch.cat([torch.zeros(1, dtype=torch.float64), torch.minimum(row, torch.tensor(drop_col))])
        csum = step.cumsum(0)
        best = torch.cummin(enter - csum, 0).values
        right = best < enter - csum  # reached from the left
        code[right] = torch.where(step[right] < drop_col, MATCH_RIGHT, DROP_COL).to(torch.uint8)
        move[i], prev = code, csum + best
    matched, i, j = torch.full((M,), -1, dtype=torch.long), N, M
    while j > 0:
        m = int(move[i, j]) if i > 0 else DROP_COL
        if m in (MATCH_DIAG, MATCH_DOWN, MATCH_RIGHT) and matched[j - 1] < 0:
            matched[j - 1] = i - 1
        i, j = (i - 1, j - 1) if m == MATCH_DIAG else (i - 1, j) if m in (MATCH_DOWN, DROP_ROW) else (i, j - 1)
    return matched, float(prev[-1])
