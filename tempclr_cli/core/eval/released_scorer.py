"""TempCLR's released DTW and OTAM retrieval scorers, reproduced for comparison (`--scorer released`).

The release (`tempclr/evaluators/metric.py:154-173`, `tempclr/utils/metrics.py:102-175`)
scales each pair's cost matrix D (L x M) by T0*T1 / (L*M), pads it to the batch's
T0 x T1 with +inf and sets the block `rows >= L-1, columns >= M` to zero (`DTW_pad`;
when M = T1 the slice `-0:` zeroes whole rows from L-1 on). A path can then leave the
real block at (L-2, M-1) and skip the last caption: the score equals
-min(C[L-1, M-1], C[L-2, M-1]) when M < T1 and -min_j C[L-2, j] when M = T1, with C the
DTW table of the scaled block. The OTAM scorer pads the same way after OTAM's zero
columns (`OTAM_pad`), and its recurrence subtracts instead of adds the predecessor in
column 1 (`utils/metrics.py:151`); it is symmetrised (D and D^T).

These are deliberately slow ports (one vector op per DP cell, over all pairs at once):
the tempclr scorers in `paragraph_retrieval` are the corrected defaults.
"""

from __future__ import annotations

import torch

RELEASED_MEASURES = ("dtw", "otam")  # the measures the release scores its own way; others score as ours


def _pad(cost: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, T0: int, T1: int, otam: bool) -> torch.Tensor:
    """DTW_pad / OTAM_pad of every pair. cost (N, T0, T1) holds each pair's real block in its
    top-left rows[n] x cols[n]; returns (N, T0, T1), or (N, T0, T1 + 2) for OTAM."""
    off = 1 if otam else 0  # OTAM's zero column before the block
    width = T1 + 2 * off
    r = torch.arange(T0)[None, :, None]
    c = torch.arange(width)[None, None, :]
    R, M = rows[:, None, None], cols[:, None, None]
    shifted = torch.full((cost.shape[0], T0, width), float("inf"), dtype=cost.dtype)
    shifted[:, :, off : off + T1] = cost
    real = (r < R) & (c >= off) & (c < M + off)
    out = torch.where(real, shifted, torch.full_like(shifted, float("inf")))
    if otam:
        out = out.masked_fill((r < R) & ((c == 0) | (c == M + 1)), 0.0)
    zero_from = M + 2 * off  # the release's `-length_diff1:`; no padding columns means `-0:`, all of them
    zero = (r >= R - 1) & ((c >= zero_from) | (zero_from == width))
    return out.masked_fill(zero, 0.0)


def _dtw_eval(d: torch.Tensor) -> torch.Tensor:
    """DTW_eval_cum_dist: hard DTW table's last cell. d (N, A, B)."""
    C = torch.zeros_like(d)
    C[:, 0, :] = d[:, 0, :].cumsum(-1)
    C[:, :, 0] = d[:, :, 0].cumsum(-1)
    for i in range(1, d.shape[1]):
        for j in range(1, d.shape[2]):
            C[:, i, j] = d[:, i, j] + torch.minimum(torch.minimum(C[:, i - 1, j - 1], C[:, i, j - 1]), C[:, i - 1, j])
    return C[:, -1, -1]


def _otam_eval(d: torch.Tensor) -> torch.Tensor:
    """OTAM_eval_cum_dist, sign slip included: last cell. d (N, A, B) with OTAM's padding."""
    C = torch.zeros_like(d)
    C[:, 0, 1:] = d[:, 0, 1:].cumsum(-1)
    for i in range(1, d.shape[1]):
        C[:, i, 1] = d[:, i, 1] - torch.minimum(torch.minimum(C[:, i - 1, 0], C[:, i - 1, 1]), C[:, i, 0])
        for j in range(2, d.shape[2] - 1):
            C[:, i, j] = d[:, i, j] + torch.minimum(C[:, i - 1, j - 1], C[:, i, j - 1])
        C[:, i, -1] = d[:, i, -1] + torch.minimum(torch.minimum(C[:, i - 1, -2], C[:, i - 1, -1]), C[:, i, -2])
    return C[:, -1, -1]


def released_distances(
    cost: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, measure: str, T0: int, T1: int
) -> torch.Tensor:
    """Released DTW / OTAM distance of each pair, as the release ranks them (lower = better).

    cost [shape=(N, T0', T1')]: each pair's D = 1 - similarity in its top-left rows[n] x cols[n]
    block (T0' <= T0, T1' <= T1); T0, T1: the batch's target sizes (the release's longest
    paragraph and video). Computed in float64.
    """
    d = torch.zeros(cost.shape[0], T0, T1, dtype=torch.float64)
    d[:, : cost.shape[1], : cost.shape[2]] = cost.double()
    d = d * (T0 * T1) / (rows * cols).double()[:, None, None]
    if measure == "dtw":
        return _dtw_eval(_pad(d, rows, cols, T0, T1, otam=False))
    forward = _otam_eval(_pad(d, rows, cols, T0, T1, otam=True))
    backward = _otam_eval(_pad(d.transpose(1, 2), cols, rows, T1, T0, otam=True))
    return forward + backward
