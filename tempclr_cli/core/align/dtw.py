"""Batched dynamic time warping: hard DTW with paths, soft-DTW, OTAM, and step segmentation.

Every function takes a cost tensor of shape (N, M) or (B, N, M), on any device, with
optional per-pair `lengths` (B, 2) = (n, m) so one batch can mix sequence lengths
(cells outside a pair's n x m block are ignored). The batch is the vector lane: no
Python loop over pairs.

The kernel is a *row scan*. Within row i the recursion

    R[i, j] = min(a[j], R[i, j-1] + D[i, j]),   a[j] = best way to enter (i, j) from row i-1

unrolls into a prefix scan, `R[i] = C + cummin(a - C)` with `C = cumsum(D[i])`; the soft
version replaces (cummin, min) by (logcumsumexp, soft-min). The DP takes N sequential
steps of a few vector ops each instead of N x M scalar steps.

Soft-DTW's backward is the expected alignment (Cuturi & Blondel 2017), computed as the
forward-backward product `E = exp((value - R - R_rev + D) / gamma)`, where R_rev is the
same row scan run on the pair's cost reversed in both axes: O(B N M) memory, two scans.
Soft tables are kept in float64 (a float32 table loses about 1e-4 in the gradient).

On the CPU, hard DTW and soft-DTW (forward and the Cuturi-Blondel backward) run in
compiled kernels parallel over pairs (`_dtw_numba.py`, numba) when numba is installed:
per-op overhead dominates the row scan for small problems. The row scan serves CUDA
and MPS tensors (one vector op per row, not per cell), and CPU without numba.

References: Sakoe & Chiba 1978 (DTW); Cuturi & Blondel, ICML 2017 (soft-DTW);
Cao et al., CVPR 2020 (OTAM); Dvornik et al., NeurIPS 2021 (Drop-DTW).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from tempclr_cli.core.errors import TempclrError

USE_COMPILED = True  # set False to force the torch row scan on the CPU (tests compare both)


def _compiled(x: torch.Tensor):
    """The numba kernels module for CPU tensors, or None (other devices, numba missing)."""
    if not USE_COMPILED or x.device.type != "cpu":
        return None
    try:
        from tempclr_cli.core.align import _dtw_numba
    except ImportError:
        return None
    return _dtw_numba


class DTWInputError(TempclrError, ValueError):
    """Invalid input to a DTW function (empty sequence, NaN/inf cost, bad lengths)."""


@dataclass
class DTWPaths:
    """Hard DTW result: `values` (B,) or () and `paths`, each an (L, 2) LongTensor of (i, j)."""

    values: torch.Tensor
    paths: list[torch.Tensor] | torch.Tensor | None


# --- input handling ---------------------------------------------------------------


def _prepare(cost: torch.Tensor, lengths) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Validate; return (cost (B, N, M) with padding zeroed, lengths (B, 2) long, was_batched)."""
    if not isinstance(cost, torch.Tensor):
        cost = torch.as_tensor(cost)
    if not cost.is_floating_point():
        cost = cost.double()
    batched = cost.dim() == 3
    if cost.dim() == 2:
        cost = cost.unsqueeze(0)
    if cost.dim() != 3:
        raise DTWInputError(f"cost must be (N, M) or (B, N, M), got shape {tuple(cost.shape)}")
    B, N, M = cost.shape
    if N == 0 or M == 0 or B == 0:
        raise DTWInputError(f"empty sequence: cost has shape {tuple(cost.shape)}")
    if lengths is None:
        lengths = torch.tensor([[N, M]], device=cost.device).expand(B, 2).contiguous()
        valid = None
    else:
        lengths = torch.as_tensor(lengths, device=cost.device).long().reshape(-1, 2)
        if lengths.shape[0] != B:
            raise DTWInputError(f"lengths has {lengths.shape[0]} rows for a batch of {B} pairs")
        bad = (lengths[:, 0] < 1) | (lengths[:, 0] > N) | (lengths[:, 1] < 1) | (lengths[:, 1] > M)
        if bool(bad.any()):
            b = int(bad.nonzero()[0, 0])
            raise DTWInputError(
                f"lengths[{b}] = {lengths[b].tolist()} must lie in [1, {N}] x [1, {M}] for cost (B, {N}, {M})"
            )
        valid = _valid_mask(lengths, N, M)
        cost = cost.masked_fill(~valid, 0.0)
    # one reduction instead of a full isfinite pass; confirm with the exact test if it trips
    if not bool(torch.isfinite(cost.sum())) and not bool(torch.isfinite(cost).all()):
        raise DTWInputError("cost contains NaN or inf inside a pair's valid block")
    return cost, lengths, batched


def _valid_mask(lengths: torch.Tensor, N: int, M: int) -> torch.Tensor:
    rows = torch.arange(N, device=lengths.device)[None, :, None] < lengths[:, 0, None, None]
    cols = torch.arange(M, device=lengths.device)[None, None, :] < lengths[:, 1, None, None]
    return rows & cols  # (B, N, M)


def _end_values(table: torch.Tensor, lengths: torch.Tensor, col_offset: int = 0) -> torch.Tensor:
    b = torch.arange(table.shape[0], device=table.device)
    return table[b, lengths[:, 0] - 1, lengths[:, 1] - 1 + col_offset]


# --- the row-scan kernel -------------------------------------------------------------


def _softmin2(x: torch.Tensor, y: torch.Tensor, gamma: float) -> torch.Tensor:
    if gamma == 0:
        return torch.minimum(x, y)
    return -gamma * torch.logaddexp(-x / gamma, -y / gamma)


def _scan(d: torch.Tensor, a: torch.Tensor, gamma: float) -> torch.Tensor:
    """R[j] = softmin_{k <= j} (a[k] + d[k+1] + ... + d[j]) along the last axis."""
    c = d.cumsum(-1)
    if gamma == 0:
        return c + torch.cummin(a - c, dim=-1).values
    return c - gamma * torch.logcumsumexp((c - a) / gamma, dim=-1)


def _dtw_table(cost: torch.Tensor, gamma: float) -> torch.Tensor:
    """Accumulated cost R (B, N, M): R[0,0] = D[0,0]; moves (1,1), (0,1), (1,0)."""
    rows = [cost[:, 0].cumsum(-1)]
    for i in range(1, cost.shape[1]):
        prev, d = rows[-1], cost[:, i]
        enter = torch.cat([prev[:, :1], _softmin2(prev[:, :-1], prev[:, 1:], gamma)], dim=-1)
        rows.append(_scan(d, d + enter, gamma))
    return torch.stack(rows, dim=1)


def _reverse_pairs(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """x[b, n_b-1-i, m_b-1-j] inside each pair's block (zeros outside)."""
    B, N, M = x.shape
    i = (lengths[:, 0, None] - 1 - torch.arange(N, device=x.device)).clamp(min=0)  # (B, N)
    j = (lengths[:, 1, None] - 1 - torch.arange(M, device=x.device)).clamp(min=0)  # (B, M)
    out = x.gather(1, i[:, :, None].expand(B, N, M)).gather(2, j[:, None, :].expand(B, N, M))
    return out.masked_fill(~_valid_mask(lengths, N, M), 0.0)


class _SoftDTW(torch.autograd.Function):
    @staticmethod
    def forward(ctx, cost: torch.Tensor, lengths: torch.Tensor, gamma: float) -> torch.Tensor:
        d = cost.detach().double()
        kernels = _compiled(d)
        if kernels:
            B, N, M = d.shape
            table = torch.empty(B, N + 2, M + 2, dtype=torch.float64)
            values = torch.empty(B, dtype=torch.float64)
            kernels.soft_forward(d.numpy(), lengths.numpy(), gamma, table.numpy(), values.numpy())
        else:
            table = _dtw_table(d, gamma)
            values = _end_values(table, lengths)
        ctx.save_for_backward(d, table, values, lengths)
        ctx.gamma, ctx.compiled = gamma, kernels is not None
        return values.to(cost.dtype)

    @staticmethod
    def backward(ctx, grad_values: torch.Tensor):
        d, table, values, lengths = ctx.saved_tensors
        if ctx.compiled:
            expected = torch.zeros_like(d)
            _compiled(d).soft_backward(d.numpy(), lengths.numpy(), ctx.gamma, table.numpy(), expected.numpy())
        else:
            backward_table = _reverse_pairs(_dtw_table(_reverse_pairs(d, lengths), ctx.gamma), lengths)
            log_e = (values[:, None, None] - table - backward_table + d) / ctx.gamma
            expected = torch.exp(log_e.clamp(max=0.0))  # a probability: <= 1 up to rounding
            expected = expected.masked_fill(~_valid_mask(lengths, *d.shape[1:]), 0.0)
        grad = grad_values.double()[:, None, None] * expected
        return grad.to(grad_values.dtype), None, None


# --- public API ------------------------------------------------------------------------


def soft_dtw(cost: torch.Tensor, gamma: float = 0.1, lengths=None) -> torch.Tensor:
    """Soft-DTW value of each pair, differentiable (custom Cuturi-Blondel backward).

    Parameters
    ----------
    cost : Tensor [shape=(N, M) or (B, N, M)]
        Pairwise costs, e.g. `1 - cosine(text_i, clip_j)`.
    gamma : float
        Smoothing; `gamma=0` gives hard DTW (no gradient through the path choice).
    lengths : LongTensor [shape=(B, 2)], optional
        Each pair's (n, m); the value is read at cell (n-1, m-1).

    Returns
    -------
    values : Tensor [shape=() or (B,)], the cost's dtype.
    """
    if gamma < 0:
        raise DTWInputError(f"gamma must be >= 0, got {gamma}")
    cost3, lengths, batched = _prepare(cost, lengths)
    if gamma == 0:
        values = dtw(cost3, lengths, paths=False).values
    else:
        values = _SoftDTW.apply(cost3, lengths, float(gamma))
    return values if batched else values[0]


def dtw(cost: torch.Tensor, lengths=None, paths: bool = True) -> DTWPaths:
    """Hard DTW: the minimal accumulated cost and, by default, the optimal path of each pair.

    Moves are (1, 1), (0, 1) and (1, 0); ties prefer the diagonal, then (0, 1), as librosa
    does. Paths run from (0, 0) to (n-1, m-1); for an unbatched input `paths` is one
    (L, 2) tensor, else a list of B such tensors (on the CPU).
    """
    cost3, lengths, batched = _prepare(cost, lengths)
    with torch.no_grad():
        kernels = _compiled(cost3)
        if kernels:
            values, found = _compiled_dtw(kernels, cost3, lengths, paths)
        else:
            table = _dtw_table(cost3, 0.0)
            values = _end_values(table, lengths)
            found = _backtrack(table, lengths) if paths else None
    if not batched:
        return DTWPaths(values[0], found[0] if found else None)
    return DTWPaths(values, found)


def _compiled_dtw(kernels, cost: torch.Tensor, lengths: torch.Tensor, paths: bool):
    B, N, M = cost.shape
    c, n = cost.detach().contiguous().numpy(), lengths.contiguous().numpy()
    values = torch.empty(B, dtype=torch.float64)
    if not paths:
        kernels.hard_values(c, n, values.numpy())
        return values.to(cost.dtype), None
    steps = torch.empty(B, N + M - 1, 2, dtype=torch.long)
    path_len = torch.empty(B, dtype=torch.long)
    kernels.hard_paths(c, n, steps.numpy(), path_len.numpy())
    kernels.hard_values(c, n, values.numpy())
    return values.to(cost.dtype), [steps[k, : path_len[k]].flip(0) for k in range(B)]


def _backtrack(table: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
    """Walk all pairs back from (n-1, m-1) to (0, 0) at once."""
    table = table.cpu()
    lengths = lengths.cpu()
    B, N, M = table.shape
    b = torch.arange(B)
    i, j = lengths[:, 0] - 1, lengths[:, 1] - 1
    inf = torch.tensor(float("inf"), dtype=table.dtype)
    steps, alive = [], []
    for _ in range(N + M - 1):
        steps.append(torch.stack([i, j], dim=1))
        alive.append((i > 0) | (j > 0))
        im, jm = (i - 1).clamp(min=0), (j - 1).clamp(min=0)
        diag = torch.where((i > 0) & (j > 0), table[b, im, jm], inf)
        left = torch.where(j > 0, table[b, i, jm], inf)
        up = torch.where(i > 0, table[b, im, j], inf)
        move = torch.stack([diag, left, up], dim=1).argmin(dim=1)  # first minimum wins
        go = alive[-1]
        i = torch.where(go & (move != 1), im, i)
        j = torch.where(go & (move != 2), jm, j)
    path_len = 1 + torch.stack(alive).sum(0)  # cells visited per pair
    stacked = torch.stack(steps, dim=1)  # (B, S, 2), from the end backwards
    return [stacked[k, : path_len[k]].flip(0) for k in range(B)]


def pairwise_dtw(x: torch.Tensor, y: torch.Tensor, x_lengths=None, y_lengths=None) -> torch.Tensor:
    """Hard DTW of every (x_p, y_v) pair with cost 1 - <x_i, y_j>, from embeddings.

    x [shape=(P, N, D)], y [shape=(V, M, D)]: unit vectors for cosine costs; lengths
    (P,) and (V,) for padded inputs. Returns values [shape=(P, V)]. On the CPU one GEMM
    feeds a compiled kernel that forms each pair's cost on the fly (no (P, V, N, M)
    tensor); elsewhere it builds the cost tensor and calls `dtw`.
    """
    P, N, D = x.shape
    V, M, _ = y.shape
    xl = torch.full((P,), N) if x_lengths is None else torch.as_tensor(x_lengths).long()
    yl = torch.full((V,), M) if y_lengths is None else torch.as_tensor(y_lengths).long()
    if bool((xl < 1).any() | (xl > N).any() | (yl < 1).any() | (yl > M).any()):
        raise DTWInputError(f"lengths must lie in [1, {N}] for x and [1, {M}] for y")
    kernels = _compiled(x)
    if kernels is None or y.device.type != "cpu":
        cost = 1 - torch.einsum("pnd,vmd->pvnm", x, y)
        lengths = torch.stack([xl[:, None].expand(P, V), yl[None, :].expand(P, V)], -1).reshape(-1, 2)
        return dtw(cost.reshape(P * V, N, M), lengths.to(cost.device), paths=False).values.view(P, V)
    sim = x.reshape(P * N, D) @ y.reshape(V * M, D).T
    if not bool(torch.isfinite(sim.sum())):
        raise DTWInputError("embeddings contain NaN or inf")
    out = torch.empty(P, V, dtype=torch.float64)
    kernels.pairwise_hard_values(sim.contiguous().numpy(), N, xl.numpy(), M, yl.numpy(), out.numpy())
    return out.to(sim.dtype)


def _otam_table(cost: torch.Tensor, lengths: torch.Tensor, gamma: float) -> torch.Tensor:
    """OTAM accumulated cost over D padded with a zero column each side (B, N, M+2).

    Row 0 is a running sum; columns 1 and m+1 may also be entered from above; middle
    columns only from the diagonal or the left (Cao et al. 2020, as released).
    """
    B, N, M = cost.shape
    padded = torch.zeros(B, N, M + 2, dtype=cost.dtype, device=cost.device)
    padded[:, :, 1 : M + 1] = cost
    col = torch.arange(M + 2, device=cost.device)
    vertical = (col == 1) | (col[None, :] == lengths[:, 1, None] + 1)  # (B, M+2)
    rows = [padded[:, 0].cumsum(-1)]
    for i in range(1, N):
        prev, d = rows[-1], padded[:, i]
        diag = torch.cat([torch.zeros_like(prev[:, :1]), prev[:, :-1]], dim=-1)
        enter = torch.where(vertical, _softmin2(diag, prev, gamma), diag)
        # column 0 is free (R = 0): any row may start there
        rows.append(_scan(d, torch.where(col == 0, 0.0, d + enter), gamma))
    return torch.stack(rows, dim=1)


def otam(cost: torch.Tensor, gamma: float = 0.1, symmetric: bool = True, lengths=None) -> torch.Tensor:
    """OTAM distance (Cao et al. 2020); `symmetric` adds OTAM of the transposed cost.

    `gamma=0` is the hard (min) version. Differentiable by autograd through the scan.
    Shapes as in `soft_dtw`: returns () or (B,).
    """
    if gamma < 0:
        raise DTWInputError(f"gamma must be >= 0, got {gamma}")
    cost3, lengths, batched = _prepare(cost, lengths)
    d = cost3.double()
    values = _end_values(_otam_table(d, lengths, float(gamma)), lengths, col_offset=2)
    if symmetric:
        flipped = lengths.flip(1)
        values = values + _end_values(_otam_table(d.transpose(1, 2), flipped, float(gamma)), flipped, 2)
    values = values.to(cost3.dtype)
    return values if batched else values[0]


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
            return torch.cat([torch.zeros(1, dtype=torch.float64), torch.full((T - 1,), float("inf"), dtype=torch.float64)])
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
        code = torch.cat([torch.tensor([DROP_ROW], dtype=torch.uint8),
                          torch.where(diag <= down, MATCH_DIAG, torch.where(row <= drop_row, MATCH_DOWN, DROP_ROW))
                          .to(torch.uint8)])
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
