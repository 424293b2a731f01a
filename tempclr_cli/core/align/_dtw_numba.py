"""Compiled CPU kernels for `dtw.py` (numba, parallel over pairs).

Internal: `dtw.py` validates inputs and calls these on CPU tensors' NumPy views. Every
kernel takes a cost array (B, N, M) and per-pair lengths (B, 2) and touches only each
pair's own n x m block. Compiled on first use and cached on disk.

One DP serves DTW, soft-DTW and OTAM. A pair's table is n x w: w = m for DTW, and w = m + 2
for OTAM, whose table is the cost with a zero column each side (Cao et al. 2020, as
released). A cell takes the soft-min (`gamma` > 0) or min (`gamma` = 0) of its diagonal,
left and upper neighbours plus its cost. The flags:

- `band` >= 0: cells with j - i outside [min(0, m - n) - band, max(0, m - n) + band] are
  unreachable (tslearn's `sakoe_chiba_mask`; OTAM's zero columns are always inside);
- `subseq`: free start and end along the second sequence (librosa's `dtw(subseq=True)`):
  row 0 starts afresh at any column, and the value is the soft-min of the last row;
- `otam`: vertical moves only in the zero columns and the first cost column.

Soft-DTW's forward keeps, for each cell, the soft-min weight of each neighbour (each one's
share of the cell's value). The Cuturi-Blondel backward is then those weights times the
successors' expectations, with no exp: the forward's 2 exp and 1 log a cell are the whole
transcendental cost of value plus gradient (the backward from the table costs 3 exp more).
"""

from __future__ import annotations

import math
import os
import sys
from contextlib import contextmanager

import torch

# numba's OpenMP layer starts its pool with NUMBA_NUM_THREADS (default: every core) and so resets the thread
# count the whole process shares: under OMP_NUM_THREADS=1, torch ran on 2 threads after the first DTW. Unless
# the user chose one for numba, its pool takes torch's count (which honours OMP_NUM_THREADS). Only before numba
# is imported: numba reads the variable once, and a later change makes its next compile refuse to run.
if "numba" not in sys.modules:
    os.environ.setdefault("NUMBA_NUM_THREADS", str(torch.get_num_threads()))

import numba as nb  # noqa: E402 - after NUMBA_NUM_THREADS is settled
import numpy as np  # noqa: E402

NAME = "numba"  # the backend's name in `dtw.backend_for`
INF = np.inf
DIAG, LEFT = 0, 1  # the weights' last axis; the up weight is 1 minus both


@nb.njit(cache=True)
def band_limits(n, m, band):  # pragma: no cover - compiled
    """The allowed range of j - i: tslearn's Sakoe-Chiba mask for an n x m pair; band < 0: all."""
    if band < 0:
        return -(n + m + 2), n + m + 2
    return min(0, m - n) - band, max(0, m - n) + band


@nb.njit(cache=True, inline="always")
def dp_cell(cost, i, j, m, gamma, lo, hi, subseq, otam, table, above, here, weights):  # pragma: no cover - compiled
    """Soft cell (i, j): table[here, j + 1] = R[i, j] from table[above] (row i - 1) and table[here, j] (its
    left neighbour; index 0 is the border); with `weights` rows, also its diagonal and left weights."""
    w = m + 2 if otam else m
    jr = j - 1 if otam else j  # the cost column
    pad = otam and (j == 0 or j == w - 1)
    keep = weights.shape[0] > 0
    if keep:
        weights[i, j, DIAG] = weights[i, j, LEFT] = 0.0
    if not pad and (jr - i < lo or jr - i > hi):
        table[here, j + 1] = INF
        return
    left = table[here, j]
    if i == 0:
        diag, up = (0.0 if subseq or j == 0 else INF), INF
    else:
        diag, up = table[above, j], table[above, j + 1]
        if otam and 1 < j < w - 1:
            up = INF
    lowest = min(diag, min(left, up))
    d = 0.0 if pad else cost[i, jr]
    if lowest == INF:
        table[here, j + 1] = INF
        return
    # the lowest term is exp(0) = 1; the other two are found by min and max, not by branches
    # (unpredictable: mispredicting them costs more than an exp)
    middle = max(min(diag, left), min(max(diag, left), up))
    highest = max(diag, max(left, up))
    scale = 1.0 / gamma  # a multiply, not a divide, on the chain from cell to cell
    e_middle = math.exp((lowest - middle) * scale)
    e_highest = math.exp((lowest - highest) * scale)
    total = 1.0 + e_middle + e_highest
    table[here, j + 1] = d + lowest - gamma * math.log(total)
    if keep:
        # each term's exp picked arithmetically (a select, never a branch)
        ed = e_highest + (e_middle - e_highest) * (diag <= middle) + (1.0 - e_middle) * (diag == lowest)
        el = e_highest + (e_middle - e_highest) * (left <= middle) + (1.0 - e_middle) * (left == lowest)
        inv = 1.0 / total
        weights[i, j, DIAG], weights[i, j, LEFT] = ed * inv, el * inv


@nb.njit(cache=True)
def hard_row(cost, i, m, lo, hi, subseq, otam, prev, row):  # pragma: no cover - compiled
    """Row i of a hard (min) table into `row` from `prev` (row i - 1; index 0 of each is the border), the
    cells as `dp_cell`'s rule has them, in a tight loop: a min and an add a cell are cheap enough that the
    general cell's checks would cost more than the cell (2.4x). The band is the row's range of cost
    columns; OTAM's zero columns and first cost column (its only down moves) are done apart."""
    off = 1 if otam else 0
    j0, j1 = max(0, i + lo), min(m - 1, i + hi)  # the cost columns inside the band
    row[0] = INF
    for t in range(off, off + j0):
        row[t + 1] = INF
    if otam:
        row[1] = 0.0  # zero column 0: a free start in every row
    if i == 0:  # from the left, or a start: anywhere with subseq, else only in column 0
        for j in range(j0, j1 + 1):
            t = j + off
            row[t + 1] = cost[i, j] + min(0.0 if subseq or t == 0 else INF, row[t])
    elif otam:
        first, left = j0, row[j0 + 1]
        if j0 == 0:  # the first cost column may also be entered from above
            left = row[2] = cost[i, 0] + min(prev[1], min(prev[2], left))
            first = 1
        for j in range(first, j1 + 1):
            best = prev[j + 1]
            if left < best:
                best = left
            left = row[j + 2] = best + cost[i, j]
    else:
        left = row[j0]
        for j in range(j0, j1 + 1):  # comparisons and the left value kept in hand: 1.4x faster than min()
            best = prev[j]
            if prev[j + 1] < best:
                best = prev[j + 1]
            if left < best:
                best = left
            left = row[j + 1] = best + cost[i, j]
    for t in range(off + j1 + 1, off + m):
        row[t + 1] = INF
    if otam:  # zero column m + 1: from the left, the diagonal or above, at no cost
        row[m + 2] = row[m + 1] if i == 0 else min(prev[m + 1], min(prev[m + 2], row[m + 1]))


@nb.njit(cache=True)
def dp_sweep(cost, n, m, gamma, lo, hi, subseq, otam, table, weights):  # pragma: no cover - compiled
    """Fill a pair's table: row i in table[(i + 1) % len(table)], each row with its border at index 0 (a
    ring of 3 rows for values, n + 1 rows to keep them all). Hard rows go one at a time (`hard_row`). Soft
    rows go two at a time, the second one column behind the first: two independent chains of exp and log
    for the CPU to overlap (a cell waits for its left neighbour, so one row at a time is bound by their
    latency: about 2.5x slower)."""
    w = m + 2 if otam else m
    ring = table.shape[0]
    table[0, :] = INF
    if gamma == 0:
        for i in range(n):
            hard_row(cost, i, m, lo, hi, subseq, otam, table[i % ring], table[(i + 1) % ring])
        return
    for i in range(0, n, 2):
        above, first, second = i % ring, (i + 1) % ring, (i + 2) % ring
        pair = i + 1 < n
        table[first, 0] = table[second, 0] = INF
        for t in range(w + 1):
            if t < w:
                dp_cell(cost, i, t, m, gamma, lo, hi, subseq, otam, table, above, first, weights)
            if pair and t > 0:
                dp_cell(cost, i + 1, t - 1, m, gamma, lo, hi, subseq, otam, table, first, second, weights)


@nb.njit(cache=True)
def end_value(last_row, w, subseq, gamma):  # pragma: no cover - compiled
    """The pair's value from its last row (R[n-1, j] at last_row[j + 1])."""
    if not subseq:
        return last_row[w]
    lowest = INF
    for j in range(w):
        lowest = min(lowest, last_row[j + 1])
    if gamma == 0 or lowest == INF:
        return lowest
    total = 0.0
    for j in range(w):
        total += math.exp((lowest - last_row[j + 1]) / gamma)
    return lowest - gamma * math.log(total)


@nb.njit(parallel=True, cache=True)
def values_kernel(cost, lengths, gamma, band, subseq, otam, out):  # pragma: no cover - compiled
    """out[b] = the value of pair b (soft with gamma > 0, hard with 0), a ring of three rows per pair."""
    none = np.empty((0, 0, 2), dtype=np.float64)
    for b in nb.prange(cost.shape[0]):
        n, m = lengths[b, 0], lengths[b, 1]
        w = m + 2 if otam else m
        lo, hi = band_limits(n, m, band)
        table = np.empty((3, w + 1), dtype=np.float64)
        dp_sweep(cost[b], n, m, gamma, lo, hi, subseq, otam, table, none)
        out[b] = end_value(table[n % 3], w, subseq, gamma)


@nb.njit(parallel=True, cache=True)
def soft_forward_kernel(cost, lengths, gamma, band, subseq, otam, weights, last, out):  # pragma: no cover - compiled
    """Values as `values_kernel`, keeping what the backward needs.

    weights (B, N + 1, W + 1, 2), W = M (+2 for OTAM): each cell's diagonal and left weights (its up
    weight is 1 minus both: two float64 a cell keep 256 pairs of 20 x 300 under the 32 MB above which
    malloc maps, and the kernel then faults in, fresh pages on every call), zero on row n and column w of
    each pair (the backward reads them as absent successors, whose expectation is 0); last (B, W):
    the weight of each last-row cell in the value (1 at the corner, or the last row's soft-min shares).
    """
    for b in nb.prange(cost.shape[0]):
        n, m = lengths[b, 0], lengths[b, 1]
        w = m + 2 if otam else m
        lo, hi = band_limits(n, m, band)
        table = np.empty((3, w + 1), dtype=np.float64)
        dp_sweep(cost[b], n, m, gamma, lo, hi, subseq, otam, table, weights[b])
        weights[b, :n, w] = 0.0
        weights[b, n, : w + 1] = 0.0
        row = table[n % 3]
        value = end_value(row, w, subseq, gamma)
        out[b] = value
        for j in range(w):
            if subseq:
                last[b, j] = math.exp((value - row[j + 1]) / gamma)
            else:
                last[b, j] = 1.0 if j == w - 1 else 0.0


@nb.njit(parallel=True, cache=True)
def soft_backward_kernel(lengths, otam, weights, last, scale, grad):  # pragma: no cover - compiled
    """grad[b] = scale[b] x the expected alignment of pair b (Cuturi & Blondel's E), zero outside its block.

    E[i, j] = last-row weight + the sum over successors s of E[s] x (i, j)'s weight in s.
    """
    for b in nb.prange(grad.shape[0]):
        n, m = lengths[b, 0], lengths[b, 1]
        w = m + 2 if otam else m
        first = 1 if otam else 0
        below = np.zeros(w + 1, dtype=np.float64)  # E[i + 1, j]; index w: beyond the table
        here = np.zeros(w + 1, dtype=np.float64)
        grad[b] = 0.0
        for i in range(n - 1, -1, -1):
            wi, wb = weights[b, i], weights[b, i + 1]
            for j in range(w - 1, -1, -1):
                up = 1.0 - wb[j, DIAG] - wb[j, LEFT]
                e = here[j + 1] * wi[j + 1, LEFT] + below[j + 1] * wb[j + 1, DIAG] + below[j] * up
                if i == n - 1:
                    e += last[b, j]
                here[j] = e
            for j in range(m):
                grad[b, i, j] = scale[b] * here[j + first]
            below, here = here, below


@nb.njit(parallel=True, cache=True)
def paths_kernel(cost, lengths, band, subseq, paths, path_len, out):  # pragma: no cover - compiled
    """DTW table per pair, then the optimal path from the end (ties: diagonal, left, up, as librosa).

    paths (B, N+M-1, 2) receives each path from its end back to its start; path_len its length.
    With `subseq` the end is the last row's first minimum, and the path stops in row 0 unless
    coming from the left is strictly cheaper than starting there.
    """
    none = np.empty((0, 0, 2), dtype=np.float64)
    for b in nb.prange(cost.shape[0]):
        n, m = lengths[b, 0], lengths[b, 1]
        lo, hi = band_limits(n, m, band)
        R = np.empty((n + 1, m + 1), dtype=np.float64)  # R[i + 1, j + 1] = cell (i, j); row and column 0: borders
        dp_sweep(cost[b], n, m, 0.0, lo, hi, subseq, False, R, none)
        j = m - 1
        if subseq:
            for k in range(m):
                if R[n, k + 1] < R[n, j + 1]:
                    j = k
        out[b] = R[n, j + 1]
        i, k = n - 1, 0
        paths[b, 0, 0], paths[b, 0, 1] = i, j
        while i > 0 or j > 0:
            if i == 0:
                if subseq and not R[1, j] < 0:  # starting at (0, j) is no dearer than coming from the left
                    break
                j -= 1
            else:
                d, left, up = R[i, j], R[i + 1, j], R[i, j + 1]
                if d <= left and d <= up:
                    i -= 1
                    j -= 1
                elif left <= up:
                    j -= 1
                else:
                    i -= 1
            k += 1
            paths[b, k, 0], paths[b, k, 1] = i, j
        path_len[b] = k + 1


@nb.njit(parallel=True, cache=True)
def pairwise_hard_values(sim, n_rows, x_len, m_cols, y_len, out):  # pragma: no cover - compiled
    """out[p, v] = DTW of cost 1 - sim over paragraph p's rows and video v's columns.

    sim is the (P*N, V*M) similarity matrix of all rows against all columns, as one GEMM
    writes it; the cost is formed on the fly, so no (P, V, N, M) tensor is materialised.
    """
    P, V = out.shape
    for pv in nb.prange(P * V):
        p, v = pv // V, pv % V
        n, m = x_len[p], y_len[v]
        r0, c0 = p * n_rows, v * m_cols
        prev = np.empty(m, dtype=np.float64)
        cur = np.empty(m, dtype=np.float64)
        acc = 0.0
        for j in range(m):
            acc += 1.0 - sim[r0, c0 + j]
            prev[j] = acc
        for i in range(1, n):
            cur[0] = prev[0] + 1.0 - sim[r0 + i, c0]
            for j in range(1, m):
                best = prev[j - 1]
                if prev[j] < best:
                    best = prev[j]
                if cur[j - 1] < best:
                    best = cur[j - 1]
                cur[j] = best + 1.0 - sim[r0 + i, c0 + j]
            prev, cur = cur, prev
        out[p, v] = prev[m - 1]


# --- the backend interface of `dtw.py` (torch tensors in and out) ---------------------------------


PARALLEL_CELLS = {"soft": 2**15, "hard": 2**18}  # about half a millisecond of work on one thread


@contextmanager
def _threads(cells: int, kind: str):
    """One thread for a call with fewer cells than PARALLEL_CELLS[kind]: waking the pool costs more than
    it saves there, and on a busy machine it can wait milliseconds for a descheduled thread (measured on
    2 shared cores: 5 us of work took 16 ms one call in ten)."""
    if cells >= PARALLEL_CELLS[kind]:
        yield
        return
    before = nb.get_num_threads()
    nb.set_num_threads(1)
    try:
        yield
    finally:
        nb.set_num_threads(before)


def _array(x: torch.Tensor) -> np.ndarray:
    """A contiguous NumPy view (float32 and float64 costs are read as they are, others as float64)."""
    if x.is_floating_point() and x.dtype not in (torch.float32, torch.float64):
        x = x.double()
    return x.detach().contiguous().numpy()


def values(cost, lengths, gamma, band, subseq, otam):
    """Each pair's value (B,) float64."""
    out = torch.empty(cost.shape[0], dtype=torch.float64)
    with _threads(cost.numel(), "soft" if gamma else "hard"):
        values_kernel(_array(cost), _array(lengths), gamma, band, subseq, otam, out.numpy())
    return out


def soft_forward(cost, lengths, gamma, band, subseq, otam):
    """Values and what the backward reads: the neighbour weights and the last row's shares."""
    B, N, M = cost.shape
    W = M + 2 if otam else M
    weights = torch.empty(B, N + 1, W + 1, 2, dtype=torch.float64)
    last = torch.empty(B, W, dtype=torch.float64)
    out = torch.empty(B, dtype=torch.float64)
    with _threads(cost.numel(), "soft"):
        soft_forward_kernel(
            _array(cost), _array(lengths), gamma, band, subseq, otam, weights.numpy(), last.numpy(), out.numpy()
        )
    return out, (weights, last)


def soft_backward(saved, lengths, gamma, band, subseq, otam, scale, dtype):
    """scale[b] x the expected alignment of each pair (B, N, M), in `dtype`; zero outside each block."""
    weights, last = saved
    B, N, W = weights.shape[0], weights.shape[1] - 1, last.shape[1]
    grad = torch.empty(
        B, N, W - 2 if otam else W, dtype=dtype if dtype in (torch.float32, torch.float64) else torch.float64
    )
    with _threads(grad.numel() // 8, "soft"):  # a few multiply-adds a cell: about an eighth of a soft cell
        soft_backward_kernel(_array(lengths), otam, weights.numpy(), last.numpy(), _array(scale), grad.numpy())
    return grad.to(dtype)


def paths(cost, lengths, band, subseq):
    """(values (B,), steps (B, N+M-1, 2) from each end back to its start, path_len (B,))."""
    B, N, M = cost.shape
    steps = torch.empty(B, N + M - 1, 2, dtype=torch.long)
    path_len = torch.empty(B, dtype=torch.long)
    out = torch.empty(B, dtype=torch.float64)
    with _threads(cost.numel(), "hard"):
        paths_kernel(_array(cost), _array(lengths), band, subseq, steps.numpy(), path_len.numpy(), out.numpy())
    return out, steps, path_len
