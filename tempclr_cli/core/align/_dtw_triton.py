"""Fused DTW-family kernels in triton: the CUDA backend of `dtw.py` (internal).

One program per pair walks its table's anti-diagonals: the cells of a diagonal depend only
on the two before it, so each step is one vector operation across the diagonal's cells (in
chunks of BLOCK), then a barrier. A pair costs n + w - 1 steps inside one launch, where the
row scan costs one launch (several kernels) per row. Per-pair lengths are read in the kernel.

The DP and its flags are those of `_dtw_numba.py` (DTW, or OTAM's zero-padded table of
width w = m + 2; `band`; `subseq`). Tables are float64 whatever the cost's dtype, which is
read and converted cell by cell (no float64 copy of the cost).

Memory, for B pairs of at most N x W cells:
- values alone keep a ring of the last three diagonals: B x 3 x N float64;
- soft-DTW's backward and hard DTW's paths keep the table packed diagonal by diagonal
  (a pair's n x w cells and no padding): B x N x W float64, 4.3 GB for 32 pairs of
  4096 x 4096. The backward walks the diagonals in reverse (Cuturi & Blondel's recursion,
  recomputing each weight from the table and the cost) with a three-diagonal ring for the
  expectations, and writes the gradient in the cost's dtype.

On CPU tensors the kernels run under triton's interpreter, which needs TRITON_INTERPRET=1
set before this module is imported (`interpreted()` says whether it was).
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

NAME = "triton"  # the backend's name in `dtw.backend_for`
INF = tl.constexpr(float("inf"))


def interpreted() -> bool:
    """Whether the kernels were built for triton's interpreter (CPU tensors) rather than compiled."""
    from triton.runtime.interpreter import InterpretedFunction

    return isinstance(_forward, InterpretedFunction)


# --- device helpers ---------------------------------------------------------------------------


def _device(fn):
    """@triton.jit for the compiler; under the interpreter the plain function, since each call of a
    jitted helper there patches triton.language anew (milliseconds a call: most of a test's time)."""
    return fn if os.environ.get("TRITON_INTERPRET") == "1" else triton.jit(fn)


@_device
def _tri(x):
    x = tl.maximum(x, 0)
    return x * (x + 1) // 2


@_device
def _slot(k, i, n, w):
    """Where the packed table keeps cell (i, k - i): diagonal by diagonal, the cells with i + j < k (a
    count of triangles) first. The kernels walking the diagonals carry this offset along instead."""
    return _tri(k) - _tri(k - n) - _tri(k - w) + i - tl.maximum(k - w + 1, 0)


@_device
def _limits(n, m, band):
    """The band's range of j - i (tslearn's Sakoe-Chiba mask); band < 0: all of it."""
    lo = tl.where(band >= 0, tl.minimum(m - n, 0) - band, -(n + m + 2))
    hi = tl.where(band >= 0, tl.maximum(m - n, 0) + band, n + m + 2)
    return lo, hi


@_device
def _inside(i, j, n, m, lo, hi):
    """Whether DTW table cell (i, j) exists and lies in the band."""
    return (i >= 0) & (i < n) & (j >= 0) & (j < m) & (j - i >= lo) & (j - i <= hi)


@_device
def _band(x, lo, hi):
    return (x >= lo) & (x <= hi)


@_device
def _predecessors(i, j, live, w, lo, hi, OTAM: tl.constexpr):
    """(cell, diagonal, left, up) masks: whether cell (i, j) exists and lies in the band, and whether each
    neighbour it may be entered from does. The neighbours' j - i differs from the cell's by 0 or 1."""
    if OTAM:
        d = j - 1 - i  # of the cost column; the zero columns 0 and w - 1 are always inside
        pad = (j == 0) | (j == w - 1)
        ok = live & (pad | _band(d, lo, hi))
        diag = ok & (i >= 1) & (j >= 1) & ((j == 1) | _band(d, lo, hi))
        left = ok & (j >= 1) & ((j == 1) | _band(d - 1, lo, hi))
        up = ok & (i >= 1) & (pad | ((j == 1) & _band(d + 1, lo, hi)))  # down: zero columns, first cost column
    else:
        d = j - i
        ok = live & _band(d, lo, hi)
        diag = ok & (i >= 1) & (j >= 1)
        left = ok & (j >= 1) & (d - 1 >= lo)
        up = ok & (i >= 1) & (d + 1 <= hi)
    return ok, diag, left, up


@_device
def _successors(i, j, ok, n, w, lo, hi, OTAM: tl.constexpr):
    """(diagonal, left, up) masks: whether each cell that may be entered from (i, j) exists and lies in the band."""
    if OTAM:
        d = j - 1 - i
        diag = ok & (i + 1 < n) & (j + 1 < w) & ((j + 2 == w) | _band(d, lo, hi))
        left = ok & (j + 1 < w) & ((j + 2 == w) | _band(d + 1, lo, hi))
        up = ok & (i + 1 < n) & ((j == 0) | (j == w - 1) | ((j == 1) & _band(d - 1, lo, hi)))
    else:
        d = j - i
        diag = ok & (i + 1 < n) & (j + 1 < w)
        left = ok & (j + 1 < w) & (d + 1 <= hi)
        up = ok & (i + 1 < n) & (d - 1 >= lo)
    return diag, left, up


@_device
def _cost(cost_b, i, j, m, s_n, s_m, ok, OTAM: tl.constexpr):
    """The cost of table cell (i, j) as float64 (0 in OTAM's zero columns)."""
    if OTAM:
        real = ok & (j >= 1) & (j <= m)
        return tl.load(cost_b + i * s_n + (j - 1) * s_m, mask=real, other=0.0).to(tl.float64)
    return tl.load(cost_b + i * s_n + j * s_m, mask=ok, other=0.0).to(tl.float64)


@_device
def _softmin(a, b, c, gamma, SOFT: tl.constexpr):
    low = tl.minimum(tl.minimum(a, b), c)
    if SOFT:
        safe = tl.where(low == INF, 0.0, low)
        total = tl.exp((safe - a) / gamma) + tl.exp((safe - b) / gamma) + tl.exp((safe - c) / gamma)
        return tl.where(low == INF, INF, safe - gamma * tl.log(tl.where(low == INF, 1.0, total)))
    return low


# --- kernels -------------------------------------------------------------------------------------


@triton.jit
def _forward(
    cost,
    s_b,
    s_n,
    s_m,
    lengths,
    params,
    band,
    table,
    t_b,
    width,
    values,
    SOFT: tl.constexpr,
    SUBSEQ: tl.constexpr,
    OTAM: tl.constexpr,
    RING: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """values[b] = pair b's value; its table (packed) or last diagonals (ring) in table[b]."""
    b = tl.program_id(0).to(tl.int64)
    n = tl.load(lengths + 2 * b)
    m = tl.load(lengths + 2 * b + 1)
    w = m + 2 if OTAM else m
    gamma = tl.load(params)
    lo, hi = _limits(n, m, band)
    cost_b, tab = cost + b * s_b, table + b * t_b
    lanes = tl.arange(0, BLOCK)
    acc = tl.full([], INF, tl.float64)  # the value: the corner, or the soft-min of the last row
    base1 = n * 0  # where diagonals k-1 and k-2 start: cell (i, k - i) is kept at base + i
    base2 = base1
    packed = base1  # cells on the diagonals before k
    for k in range(0, n + w - 1):
        first = tl.maximum(k - w + 1, 0)
        last = tl.minimum(k, n - 1)
        if RING:
            base0 = (k % 3) * width
        else:
            base0 = packed - first
            packed += last - first + 1
        for c in range(first, last + 1, BLOCK):
            i = c + lanes
            j = k - i
            live = i <= last
            ok, diag_ok, left_ok, up_ok = _predecessors(i, j, live, w, lo, hi, OTAM)
            up = tl.load(tab + base1 + i - 1, mask=up_ok, other=INF)
            left = tl.load(tab + base1 + i, mask=left_ok, other=INF)
            diag = tl.load(tab + base2 + i - 1, mask=diag_ok, other=INF)
            if SUBSEQ:
                diag = tl.where(i == 0, 0.0, diag)  # row 0 may start afresh anywhere
            else:
                diag = tl.where((i == 0) & (j == 0), 0.0, diag)
            r = _cost(cost_b, i, j, m, s_n, s_m, ok, OTAM) + _softmin(diag, left, up, gamma, SOFT)
            r = tl.where(ok, r, INF)
            tl.store(tab + base0 + i, r, mask=live)
            if k >= n - 1:  # the diagonal reaches the last row
                end = ok & (i == n - 1)
                if not SUBSEQ:
                    end = end & (j == w - 1)
                acc = _softmin(acc, tl.min(tl.where(end, r, INF), axis=0), INF, gamma, SOFT)
        base2 = base1
        base1 = base0
        tl.debug_barrier()
    tl.store(values + b, acc)


@_device
def _successor(tab, ring, slot, cost_b, si, sj, m, s_n, s_m, r, gamma, ok, OTAM: tl.constexpr):
    """E[s] x (this cell's weight in s) for the successor s = (si, sj), kept at `slot` of its diagonal's
    table (`tab`) and ring (`ring`) starts, where ok."""
    r_s = tl.load(tab + slot, mask=ok, other=INF)
    ok = ok & (r_s < INF)
    e_s = tl.load(ring + slot, mask=ok, other=0.0)
    d_s = _cost(cost_b, si, sj, m, s_n, s_m, ok, OTAM)
    return tl.where(ok, e_s * tl.exp((tl.where(ok, r_s, 0.0) - d_s - r) / gamma), 0.0)


@triton.jit
def _backward(
    cost,
    s_b,
    s_n,
    s_m,
    lengths,
    params,
    band,
    table,
    t_b,
    width,
    values,
    scale,
    ring,
    grad,
    g_b,
    g_n,
    g_m,
    SUBSEQ: tl.constexpr,
    OTAM: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """grad[b] = scale[b] x pair b's expected alignment E, by Cuturi & Blondel's recursion from the packed
    table: E[i, j] = (its share of the value) + the sum over successors s of
    E[s] x exp((R[s] - d[s] - R[i, j]) / gamma)."""
    b = tl.program_id(0).to(tl.int64)
    n = tl.load(lengths + 2 * b)
    m = tl.load(lengths + 2 * b + 1)
    w = m + 2 if OTAM else m
    gamma = tl.load(params)
    value = tl.load(values + b)
    factor = tl.load(scale + b)
    lo, hi = _limits(n, m, band)
    cost_b, tab, ring_b, grad_b = cost + b * s_b, table + b * t_b, ring + b * 3 * width, grad + b * g_b
    lanes = tl.arange(0, BLOCK)
    packed = n * w  # cells on the diagonals before k + 1
    base1 = packed  # where diagonals k+1 and k+2 start in the table
    base2 = packed
    for back in range(0, n + w - 1):
        k = n + w - 2 - back
        first = tl.maximum(k - w + 1, 0)
        last = tl.minimum(k, n - 1)
        packed -= last - first + 1
        base0 = packed - first
        ring0, ring1, ring2 = (k % 3) * width, ((k + 1) % 3) * width, ((k + 2) % 3) * width
        for c in range(first, last + 1, BLOCK):
            i = c + lanes
            j = k - i
            live = i <= last
            ok = _predecessors(i, j, live, w, lo, hi, OTAM)[0]
            r = tl.load(tab + base0 + i, mask=ok, other=INF)
            ok = ok & (r < INF)
            r = tl.where(ok, r, 0.0)
            diag_ok, left_ok, up_ok = _successors(i, j, ok, n, w, lo, hi, OTAM)
            e = _successor(
                tab + base2, ring_b + ring2, i + 1, cost_b, i + 1, j + 1, m, s_n, s_m, r, gamma, diag_ok, OTAM
            )
            e += _successor(tab + base1, ring_b + ring1, i, cost_b, i, j + 1, m, s_n, s_m, r, gamma, left_ok, OTAM)
            e += _successor(tab + base1, ring_b + ring1, i + 1, cost_b, i + 1, j, m, s_n, s_m, r, gamma, up_ok, OTAM)
            end = ok & (i == n - 1)
            if SUBSEQ:
                e += tl.where(end, tl.exp((value - r) / gamma), 0.0)
            else:
                e += tl.where(end & (j == w - 1), 1.0, 0.0)
            e = tl.where(ok, e, 0.0)
            tl.store(ring_b + ring0 + i, e, mask=live)
            col = j - 1 if OTAM else j
            real = live & (col >= 0) & (col < m)
            tl.store(grad_b + i * g_n + col * g_m, (e * factor).to(grad.dtype.element_ty), mask=real)
        base2 = base1
        base1 = base0
        tl.debug_barrier()


@triton.jit
def _backtrack(table, t_b, lengths, band, steps, st_b, path_len, values, SUBSEQ: tl.constexpr, BLOCK: tl.constexpr):
    """Pair b's optimal path from its end back to its start, from the packed hard table (ties: diagonal,
    left, up, as librosa); with SUBSEQ the end is the last row's first minimum, and the path stops in row
    0 unless coming from the left is strictly cheaper than starting there."""
    b = tl.program_id(0).to(tl.int64)
    n = tl.load(lengths + 2 * b)
    m = tl.load(lengths + 2 * b + 1)
    lo, hi = _limits(n, m, band)
    tab = table + b * t_b
    i = n - 1
    if SUBSEQ:
        lanes = tl.arange(0, BLOCK)
        best = tl.full([], INF, tl.float64)
        j = m - 1
        for c in range(0, m, BLOCK):
            cols = c + lanes
            ok = _inside(n - 1, cols, n, m, lo, hi)
            r = tl.load(tab + _slot(n - 1 + cols, n - 1, n, m), mask=ok, other=INF)
            low = tl.min(r, axis=0)
            first = tl.min(tl.where(ok & (r == low), cols, m), axis=0)
            take = low < best
            j = tl.where(take, first, j)
            best = tl.where(take, low, best)
    else:
        j = m - 1
        best = tl.load(tab + _slot(n + m - 2, n - 1, n, m))
    tl.store(values + b, best)
    alive = n > 0
    count = n * 0
    for s in range(0, n + m - 1):
        tl.store(steps + b * st_b + 2 * s, i, mask=alive)
        tl.store(steps + b * st_b + 2 * s + 1, j, mask=alive)
        count += alive.to(tl.int64)
        k = i + j
        diag = tl.load(tab + _slot(k - 2, i - 1, n, m), mask=alive & _inside(i - 1, j - 1, n, m, lo, hi), other=INF)
        left = tl.load(tab + _slot(k - 1, i, n, m), mask=alive & _inside(i, j - 1, n, m, lo, hi), other=INF)
        up = tl.load(tab + _slot(k - 1, i - 1, n, m), mask=alive & _inside(i - 1, j, n, m, lo, hi), other=INF)
        if SUBSEQ:
            alive = alive & ((i > 0) | ((j > 0) & (left < 0)))
        else:
            alive = alive & ((i > 0) | (j > 0))
        go_diag = (diag <= left) & (diag <= up)
        go_left = (left <= up) & ~go_diag
        i = tl.where(alive & ~go_left, i - 1, i)
        j = tl.where(alive & (go_diag | go_left), j - 1, j)
    tl.store(path_len + b, count)


# --- the backend interface of `dtw.py` -------------------------------------------------------------


def _launch(cost: torch.Tensor):
    """(grid, BLOCK, num_warps) for one program per pair, chunks of BLOCK cells along a diagonal. The
    launches also pass num_stages=1: a diagonal's loads must wait for the barrier after the previous
    one, never be prefetched ahead of it by software pipelining."""
    B, N, M = cost.shape
    block = max(16, min(1024, triton.next_power_of_2(min(N, M + 2))))
    return (B,), block, 4 if block <= 256 else 8


def _forward_pass(cost, lengths, gamma, band, subseq, otam, keep):
    """(values (B,), table): the packed table with `keep`, else the ring of three diagonals."""
    B, N, M = cost.shape
    width = M + 2 if otam else M
    table = torch.empty(B, N * width if keep else 3 * N, dtype=torch.float64, device=cost.device)
    values = torch.empty(B, dtype=torch.float64, device=cost.device)
    params = torch.tensor([gamma], dtype=torch.float64, device=cost.device)
    grid, block, warps = _launch(cost)
    _forward[grid](
        cost,
        *cost.stride(),
        lengths.contiguous(),
        params,
        band,
        table,
        table.stride(0),
        N,
        values,
        SOFT=gamma > 0,
        SUBSEQ=subseq,
        OTAM=otam,
        RING=not keep,
        BLOCK=block,
        num_warps=warps,
        num_stages=1,
    )
    return values, table


def values(cost, lengths, gamma, band, subseq, otam):
    """Each pair's value (B,) float64, keeping three diagonals a pair."""
    return _forward_pass(cost, lengths, gamma, band, subseq, otam, keep=False)[0]


def soft_forward(cost, lengths, gamma, band, subseq, otam):
    """Values and what the backward reads: the cost, the packed table and the values."""
    values_, table = _forward_pass(cost, lengths, gamma, band, subseq, otam, keep=True)
    return values_, (cost, table, values_)


def soft_backward(saved, lengths, gamma, band, subseq, otam, scale, dtype):
    """scale[b] x the expected alignment of each pair (B, N, M), in `dtype`; zero outside each block."""
    cost, table, values_ = saved
    B, N, M = cost.shape
    grad = torch.zeros(B, N, M, dtype=dtype, device=cost.device)
    ring = torch.empty(B, 3 * N, dtype=torch.float64, device=cost.device)
    params = torch.tensor([gamma], dtype=torch.float64, device=cost.device)
    grid, block, warps = _launch(cost)
    _backward[grid](
        cost,
        *cost.stride(),
        lengths.contiguous(),
        params,
        band,
        table,
        table.stride(0),
        N,
        values_,
        scale.contiguous(),
        ring,
        grad,
        *grad.stride(),
        SUBSEQ=subseq,
        OTAM=otam,
        BLOCK=block,
        num_warps=warps,
        num_stages=1,
    )
    return grad


def paths(cost, lengths, band, subseq):
    """(values (B,), steps (B, N+M-1, 2) from each end back to its start, path_len (B,)), on the CPU."""
    B, N, M = cost.shape
    _, table = _forward_pass(cost, lengths, 0.0, band, subseq, False, keep=True)
    steps = torch.zeros(B, N + M - 1, 2, dtype=torch.long, device=cost.device)
    path_len = torch.empty(B, dtype=torch.long, device=cost.device)
    found = torch.empty(B, dtype=torch.float64, device=cost.device)
    _, block, _ = _launch(cost)
    _backtrack[(B,)](
        table,
        table.stride(0),
        lengths.contiguous(),
        band,
        steps,
        steps.stride(0),
        path_len,
        found,
        SUBSEQ=subseq,
        BLOCK=block,
        num_warps=1,
        num_stages=1,
    )  # a scalar walk
    return found, steps.cpu(), path_len.cpu()
