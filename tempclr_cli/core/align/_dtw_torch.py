"""The torch row scan: `dtw.py`'s kernel backend for devices neither compiler serves.

Internal, with the interface `_dtw_numba` and `_dtw_triton` share (values, soft_forward,
soft_backward, paths). Within row i the DTW recursion is a prefix scan, so the DP takes N
steps of a few vector ops over the whole batch (the derivation is in `dtw.py`'s docstring);
the soft backward is the forward-backward product of a table and its pair-reversed twin.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

NAME = "torch"
FAR = 1e30  # the cost of a cell outside the band: finite, so autograd through it stays NaN-free


def valid_mask(lengths: torch.Tensor, N: int, M: int) -> torch.Tensor:
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


def _band_of(lengths: torch.Tensor, band: int, width: int, shift: int = 0) -> Callable[[int], torch.Tensor]:
    """inside(i) -> (B, width) bool: the band's cells of row i, table column j holding cost column j - shift."""
    delta = lengths[:, 1] - lengths[:, 0]
    lo, hi = delta.clamp(max=0)[:, None] - band, delta.clamp(min=0)[:, None] + band
    cols = torch.arange(width, device=lengths.device)[None, :] - shift
    return lambda i: (cols - i >= lo) & (cols - i <= hi)


def _dtw_table(
    cost: torch.Tensor, gamma: float, lengths: torch.Tensor | None = None, band: int = -1, subseq: bool = False
) -> torch.Tensor:
    """Accumulated cost R (B, N, M): R[0,0] = D[0,0] (any R[0,j] may start afresh with `subseq`);
    moves (1,1), (0,1), (1,0); cells outside the band cost FAR."""
    inside = _band_of(lengths, band, cost.shape[2]) if band >= 0 else None

    def banded(row: torch.Tensor, i: int) -> torch.Tensor:
        return row if inside is None else row.masked_fill(~inside(i), FAR)

    d = cost[:, 0]
    rows = [banded(_scan(d, banded(d, 0), gamma) if subseq else d.cumsum(-1), 0)]
    for i in range(1, cost.shape[1]):
        prev, d = rows[-1], cost[:, i]
        enter = torch.cat([prev[:, :1], _softmin2(prev[:, :-1], prev[:, 1:], gamma)], dim=-1)
        rows.append(banded(_scan(d, banded(d + enter, i), gamma), i))
    return torch.stack(rows, dim=1)


def _dtw_end(table: torch.Tensor, lengths: torch.Tensor, gamma: float, subseq: bool) -> torch.Tensor:
    """Each pair's value: its corner, or with `subseq` the soft-min (min) of its last row."""
    if not subseq:
        return _end_values(table, lengths)
    b = torch.arange(table.shape[0], device=table.device)
    last = table[b, lengths[:, 0] - 1]  # (B, M)
    cols = torch.arange(table.shape[2], device=table.device)
    last = last.masked_fill(cols[None, :] >= lengths[:, 1, None], math.inf)
    if gamma == 0:
        return last.amin(-1)
    return -gamma * torch.logsumexp(-last / gamma, dim=-1)


def _reverse_pairs(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """x[b, n_b-1-i, m_b-1-j] inside each pair's block (zeros outside)."""
    B, N, M = x.shape
    i = (lengths[:, 0, None] - 1 - torch.arange(N, device=x.device)).clamp(min=0)  # (B, N)
    j = (lengths[:, 1, None] - 1 - torch.arange(M, device=x.device)).clamp(min=0)  # (B, M)
    out = x.gather(1, i[:, :, None].expand(B, N, M)).gather(2, j[:, None, :].expand(B, N, M))
    return out.masked_fill(~valid_mask(lengths, N, M), 0.0)


def _otam_table(cost: torch.Tensor, lengths: torch.Tensor, gamma: float, band: int = -1) -> torch.Tensor:
    """OTAM accumulated cost over D padded with a zero column each side (B, N, M+2).

    Row 0 is a running sum; columns 1 and m+1 may also be entered from above; middle
    columns only from the diagonal or the left (Cao et al. 2020, as released). With a band,
    a row's cells run in up to three stretches (column 0, the band, column m+1): the scan
    is barred from crossing the gaps, and column m+1 is recomputed from its neighbours.
    """
    B, N, M = cost.shape
    padded = torch.zeros(B, N, M + 2, dtype=cost.dtype, device=cost.device)
    padded[:, :, 1 : M + 1] = cost
    col = torch.arange(M + 2, device=cost.device)
    end = lengths[:, 1:] + 1  # (B, 1): the zero column after each pair's block
    vertical = (col == 1) | (col[None, :] == end)  # (B, M+2)
    in_band = _band_of(lengths, band, M + 2, shift=1) if band >= 0 else None
    rows = []
    for i in range(N):
        d = padded[:, i]
        if i == 0:
            a = torch.full((B, M + 2), FAR, dtype=d.dtype, device=d.device)
            a[:, 0] = 0.0  # a running sum from column 0
        else:
            prev = rows[-1]
            diag = torch.cat([torch.zeros_like(prev[:, :1]), prev[:, :-1]], dim=-1)
            enter = torch.where(vertical, _softmin2(diag, prev, gamma), diag)
            a = torch.where(col == 0, 0.0, d + enter)  # column 0 is free (R = 0): any row may start there
        if in_band is None:
            rows.append(_scan(d, a, gamma) if i else d.cumsum(-1))
            continue
        inside = in_band(i) | (col == 0) | (col[None, :] == end)
        a = a.masked_fill(~inside, FAR)
        a[:, 0] = torch.where(inside[:, 1], 0.0, FAR)  # column 0 reaches column 1 only inside the band
        r = _scan(d, a, gamma).masked_fill(~inside, FAR)
        r[:, 0] = 0.0
        r_end = _softmin2(a.gather(1, end), r.gather(1, end - 1), gamma)  # d = 0 in the zero column
        rows.append(r.scatter(1, end, r_end))
    return torch.stack(rows, dim=1)


def otam_values(cost: torch.Tensor, lengths: torch.Tensor, gamma: float, band: int) -> torch.Tensor:
    """One direction of OTAM by the row scan, differentiable by autograd."""
    return _end_values(_otam_table(cost, lengths, gamma, band), lengths, col_offset=2)


def _backtrack(table: torch.Tensor, lengths: torch.Tensor, subseq: bool):
    """Walk all pairs back from their end to their start at once: (values, steps (B, S, 2), path_len (B,)).

    The end is (n-1, m-1), or with `subseq` the last row's first minimum; with `subseq` a path
    stops in row 0 unless coming from the left is strictly cheaper than starting there."""
    table = table.cpu()
    lengths = lengths.cpu()
    B, N, M = table.shape
    b = torch.arange(B)
    i = lengths[:, 0] - 1
    if subseq:
        last = table[b, i].masked_fill(torch.arange(M)[None, :] >= lengths[:, 1, None], math.inf)
        j = last.argmin(-1)  # the first minimum
    else:
        j = lengths[:, 1] - 1
    values = table[b, i, j]
    inf = torch.tensor(float("inf"), dtype=table.dtype)
    steps, alive = [], []
    for _ in range(N + M - 1):
        steps.append(torch.stack([i, j], dim=1))
        im, jm = (i - 1).clamp(min=0), (j - 1).clamp(min=0)
        left = torch.where(j > 0, table[b, i, jm], inf)
        alive.append((i > 0) | ((j > 0) & ~(subseq & (i == 0) & (left >= 0))))
        diag = torch.where((i > 0) & (j > 0), table[b, im, jm], inf)
        up = torch.where(i > 0, table[b, im, j], inf)
        move = torch.stack([diag, left, up], dim=1).argmin(dim=1)  # first minimum wins
        go = alive[-1]
        i = torch.where(go & (move != 1), im, i)
        j = torch.where(go & (move != 2), jm, j)
    path_len = 1 + torch.stack(alive).sum(0)  # cells visited per pair
    return values, torch.stack(steps, dim=1), path_len  # steps: (B, S, 2), from the end backwards


def values(cost, lengths, gamma, band, subseq, otam):
    if otam:
        return otam_values(cost.double(), lengths, gamma, band)
    table = _dtw_table(cost if gamma == 0 else cost.double(), gamma, lengths, band, subseq)
    return _dtw_end(table, lengths, gamma, subseq)


def soft_forward(cost, lengths, gamma, band, subseq, otam):
    d = cost.double()
    table = _dtw_table(d, gamma, lengths, band, subseq)
    values = _dtw_end(table, lengths, gamma, subseq)
    return values, (d, table, values)


def soft_backward(saved, lengths, gamma, band, subseq, otam, scale, dtype):
    d, table, values = saved
    backward_table = _reverse_pairs(_dtw_table(_reverse_pairs(d, lengths), gamma, lengths, band, subseq), lengths)
    log_e = (values[:, None, None] - table - backward_table + d) / gamma
    expected = torch.exp(log_e.clamp(max=0.0))  # a probability: <= 1 up to rounding
    expected = expected.masked_fill(~valid_mask(lengths, *d.shape[1:]), 0.0)
    return (scale[:, None, None] * expected).to(dtype)


def paths(cost, lengths, band, subseq):
    return _backtrack(_dtw_table(cost, 0.0, lengths, band, subseq), lengths, subseq)
