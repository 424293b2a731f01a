"""Batched dynamic time warping: hard DTW with paths, soft-DTW and OTAM (step segmentation: `segment.py`).

Every function takes a cost tensor of shape (N, M) or (B, N, M), on any device, with
optional per-pair `lengths` (B, 2) = (n, m) so one batch can mix sequence lengths
(cells outside a pair's n x m block are ignored). The batch is the vector lane: no
Python loop over pairs.

Constraints, on every backend:
- `band=r`: a Sakoe-Chiba band of radius r cells, as tslearn's `sakoe_chiba_mask` draws it
  for unequal lengths: cell (i, j) of an n x m pair is allowed when
  min(0, m - n) - r <= j - i <= max(0, m - n) + r (the band follows the diagonal of the
  pair's own block, widened by |m - n|, so the corner is always reachable);
- `subsequence=True`: the first sequence is matched whole, inside the second: a free start
  and a free end along the second (librosa's `dtw(subseq=True)`). Soft-DTW's value is then
  the soft-min over every start and end, each path counted once.

Three kernel backends compute the same DP, chosen per tensor by `backend=` or the
environment variable `TEMPCLR_DTW_BACKEND` (the argument wins), else automatically:
- "numba" (CPU tensors): compiled kernels parallel over pairs (`_dtw_numba.py`); soft-DTW's
  forward keeps each cell's soft-min weights so its backward needs no exp;
- "triton" (CUDA tensors, when triton imports): fused kernels, one program per pair walking
  the anti-diagonals (`_dtw_triton.py`), the table kept packed (n x m cells a pair) or, for
  values alone, three diagonals. On CPU tensors it runs under triton's interpreter, which
  needs `TRITON_INTERPRET=1` set before triton is first imported (tests, debugging);
- "torch": the *row scan* below, for other devices and where neither compiles.

The row scan: within row i the recursion

    R[i, j] = min(a[j], R[i, j-1] + D[i, j]),   a[j] = best way to enter (i, j) from row i-1

unrolls into a prefix scan, `R[i] = C + cummin(a - C)` with `C = cumsum(D[i])`; the soft
version replaces (cummin, min) by (logcumsumexp, soft-min). The DP takes N sequential
steps of a few vector ops each instead of N x M scalar steps; on a GPU each step is a
kernel launch, which is why CUDA prefers the fused kernels.

Soft-DTW's backward is the expected alignment (Cuturi & Blondel 2017). The row scan computes
it as the forward-backward product `E = exp((value - R - R_rev + D) / gamma)`, where R_rev
is the same row scan run on the pair's cost reversed in both axes (band and subsequence are
symmetric under that reversal); the kernels run the Cuturi-Blondel recursion. Soft tables
are kept in float64 (a float32 table loses about 1e-4 in the gradient).

References: Sakoe & Chiba 1978 (DTW); Cuturi & Blondel, ICML 2017 (soft-DTW);
Cao et al., CVPR 2020 (OTAM).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch

from tempclr_cli.core.errors import TempclrError

USE_COMPILED = True  # set False to make the automatic choice the torch row scan (tests compare both)
BACKENDS = ("numba", "triton", "torch")
BACKEND_ENV = "TEMPCLR_DTW_BACKEND"
_FAR = 1e30  # the row scan's cost of a cell outside the band: finite, so autograd through it stays NaN-free


class DTWInputError(TempclrError, ValueError):
    """Invalid input to a DTW function (empty sequence, NaN/inf cost, bad lengths, unknown backend)."""


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


def _radius(band) -> int:
    """The band as the kernels take it: a radius in cells, or -1 for none."""
    if band is None:
        return -1
    if isinstance(band, bool) or not float(band).is_integer() or band < 0:
        raise DTWInputError(f"band must be a whole number of cells >= 0 (a Sakoe-Chiba radius) or None, got {band!r}")
    return int(band)


def _kernels(x: torch.Tensor, backend: str | None):
    """The backend for tensor x: the `_dtw_numba` or `_dtw_triton` module, or `_RowScan`."""
    choice = backend or os.environ.get(BACKEND_ENV) or "auto"
    if choice not in ("auto", *BACKENDS):
        raise DTWInputError(
            f"unknown DTW backend {choice!r} (from backend= or ${BACKEND_ENV}); choose from auto, {', '.join(BACKENDS)}"
        )
    if choice == "auto":
        if not USE_COMPILED:
            return _RowScan
        if x.device.type == "cpu":
            return _import("_dtw_numba") or _RowScan
        return (x.device.type == "cuda" and _import("_dtw_triton")) or _RowScan
    if choice == "torch":
        return _RowScan
    if x.device.type not in {"numba": ("cpu",), "triton": ("cpu", "cuda")}[choice]:
        raise DTWInputError(f"backend {choice!r} does not run on {x.device.type} tensors")
    module = _import(f"_dtw_{choice}")
    if module is None:
        raise DTWInputError(f"backend {choice!r} needs {choice}, which does not import here")
    if choice == "triton" and x.device.type == "cpu" and not module.interpreted():
        raise DTWInputError(
            "backend 'triton' on CPU tensors runs under triton's interpreter: "
            "set TRITON_INTERPRET=1 before triton is first imported"
        )
    return module


def backend_for(x: torch.Tensor, backend: str | None = None) -> str:
    """The backend ("numba", "triton" or "torch") that the DTW functions use for tensors like x."""
    return _kernels(x, backend).NAME


@functools.cache
def _import(name: str):
    """One of the compiled kernel modules, or None where its compiler is missing (asked once)."""
    import importlib

    try:
        return importlib.import_module(f"tempclr_cli.core.align.{name}")
    except ImportError:
        return None


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
    moves (1,1), (0,1), (1,0); cells outside the band cost _FAR."""
    inside = _band_of(lengths, band, cost.shape[2]) if band >= 0 else None

    def banded(row: torch.Tensor, i: int) -> torch.Tensor:
        return row if inside is None else row.masked_fill(~inside(i), _FAR)

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
    return out.masked_fill(~_valid_mask(lengths, N, M), 0.0)


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
            a = torch.full((B, M + 2), _FAR, dtype=d.dtype, device=d.device)
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
        a = a.masked_fill(~inside, _FAR)
        a[:, 0] = torch.where(inside[:, 1], 0.0, _FAR)  # column 0 reaches column 1 only inside the band
        r = _scan(d, a, gamma).masked_fill(~inside, _FAR)
        r[:, 0] = 0.0
        r_end = _softmin2(a.gather(1, end), r.gather(1, end - 1), gamma)  # d = 0 in the zero column
        rows.append(r.scatter(1, end, r_end))
    return torch.stack(rows, dim=1)


def _otam_values(cost: torch.Tensor, lengths: torch.Tensor, gamma: float, band: int) -> torch.Tensor:
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


class _RowScan:
    """The torch row scan as a kernel backend: the interface `_dtw_numba` and `_dtw_triton` share."""

    NAME = "torch"

    @staticmethod
    def values(cost, lengths, gamma, band, subseq, otam):
        if otam:
            return _otam_values(cost.double(), lengths, gamma, band)
        table = _dtw_table(cost if gamma == 0 else cost.double(), gamma, lengths, band, subseq)
        return _dtw_end(table, lengths, gamma, subseq)

    @staticmethod
    def soft_forward(cost, lengths, gamma, band, subseq, otam):
        d = cost.double()
        table = _dtw_table(d, gamma, lengths, band, subseq)
        values = _dtw_end(table, lengths, gamma, subseq)
        return values, (d, table, values)

    @staticmethod
    def soft_backward(saved, lengths, gamma, band, subseq, otam, scale, dtype):
        d, table, values = saved
        backward_table = _reverse_pairs(_dtw_table(_reverse_pairs(d, lengths), gamma, lengths, band, subseq), lengths)
        log_e = (values[:, None, None] - table - backward_table + d) / gamma
        expected = torch.exp(log_e.clamp(max=0.0))  # a probability: <= 1 up to rounding
        expected = expected.masked_fill(~_valid_mask(lengths, *d.shape[1:]), 0.0)
        return (scale[:, None, None] * expected).to(dtype)

    @staticmethod
    def paths(cost, lengths, band, subseq):
        return _backtrack(_dtw_table(cost, 0.0, lengths, band, subseq), lengths, subseq)


class _SoftDP(torch.autograd.Function):
    """Soft-DTW or soft OTAM on a kernel backend, with the Cuturi-Blondel backward."""

    @staticmethod
    def forward(ctx, cost, lengths, gamma, band, subseq, otam, kernels):
        values, saved = kernels.soft_forward(cost.detach(), lengths, gamma, band, subseq, otam)
        ctx.save_for_backward(lengths, *saved)
        ctx.args, ctx.kernels, ctx.dtype = (gamma, band, subseq, otam), kernels, cost.dtype
        return values.to(cost.dtype)

    @staticmethod
    def backward(ctx, grad_values):
        lengths, *saved = ctx.saved_tensors
        grad = ctx.kernels.soft_backward(saved, lengths, *ctx.args, grad_values.double(), ctx.dtype)
        return grad, None, None, None, None, None, None


def _soft(cost, lengths, gamma: float, band: int, subseq: bool, otam: bool, kernels) -> torch.Tensor:
    """Values (B,) in cost's dtype: differentiable when cost needs a gradient, else values alone."""
    if torch.is_grad_enabled() and cost.requires_grad:
        return _SoftDP.apply(cost, lengths, gamma, band, subseq, otam, kernels)
    return kernels.values(cost, lengths, gamma, band, subseq, otam).to(cost.dtype)


# --- public API ------------------------------------------------------------------------


def soft_dtw(
    cost: torch.Tensor,
    gamma: float = 0.1,
    lengths=None,
    band: int | None = None,
    subsequence: bool = False,
    backend: str | None = None,
) -> torch.Tensor:
    """Soft-DTW value of each pair, differentiable (custom Cuturi-Blondel backward).

    Parameters
    ----------
    cost : Tensor [shape=(N, M) or (B, N, M)]
        Pairwise costs, e.g. `1 - cosine(text_i, clip_j)`.
    gamma : float
        Smoothing; `gamma=0` gives hard DTW (no gradient through the path choice).
    lengths : LongTensor [shape=(B, 2)], optional
        Each pair's (n, m); the value is read at cell (n-1, m-1).
    band : int, optional
        Sakoe-Chiba radius in cells (tslearn's mask for unequal lengths); None: no band.
    subsequence : bool
        Free start and end along the second sequence (the value is the soft-min over the last row).
    backend : {"numba", "triton", "torch"}, optional
        Forces a kernel backend; default: `$TEMPCLR_DTW_BACKEND`, else by device (module docstring).

    Returns
    -------
    values : Tensor [shape=() or (B,)], the cost's dtype.
    """
    if gamma < 0:
        raise DTWInputError(f"gamma must be >= 0, got {gamma}")
    cost3, lengths, batched = _prepare(cost, lengths)
    radius, kernels = _radius(band), _kernels(cost3, backend)
    if gamma == 0:
        with torch.no_grad():
            values = kernels.values(cost3, lengths, 0.0, radius, bool(subsequence), False).to(cost3.dtype)
    else:
        values = _soft(cost3, lengths, float(gamma), radius, bool(subsequence), False, kernels)
    return values if batched else values[0]


def dtw(
    cost: torch.Tensor,
    lengths=None,
    paths: bool = True,
    band: int | None = None,
    subsequence: bool = False,
    backend: str | None = None,
) -> DTWPaths:
    """Hard DTW: the minimal accumulated cost and, by default, the optimal path of each pair.

    Moves are (1, 1), (0, 1) and (1, 0); ties prefer the diagonal, then (0, 1), as librosa
    does. Paths run from (0, 0) to (n-1, m-1) (with `subsequence`, from (0, s) to (n-1, e):
    e is the last row's first minimum, as librosa's `dtw(subseq=True)`); for an unbatched
    input `paths` is one (L, 2) tensor, else a list of B such tensors (on the CPU). `band`
    and `backend` as in `soft_dtw`.
    """
    cost3, lengths, batched = _prepare(cost, lengths)
    radius, kernels, subseq = _radius(band), _kernels(cost3, backend), bool(subsequence)
    with torch.no_grad():
        if paths:
            values, steps, path_len = kernels.paths(cost3, lengths, radius, subseq)
            found = [steps[k, : path_len[k]].flip(0) for k in range(cost3.shape[0])]
        else:
            values, found = kernels.values(cost3, lengths, 0.0, radius, subseq, False), None
    values = values.to(cost3.dtype)
    if not batched:
        return DTWPaths(values[0], found[0] if found else None)
    return DTWPaths(values, found)


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
    kernels = _kernels(x, None)
    if getattr(kernels, "pairwise_hard_values", None) is None or y.device.type != "cpu":
        cost = 1 - torch.einsum("pnd,vmd->pvnm", x, y)
        lengths = torch.stack([xl[:, None].expand(P, V), yl[None, :].expand(P, V)], -1).reshape(-1, 2)
        return dtw(cost.reshape(P * V, N, M), lengths.to(cost.device), paths=False).values.view(P, V)
    sim = x.reshape(P * N, D) @ y.reshape(V * M, D).T
    if not bool(torch.isfinite(sim.sum())):
        raise DTWInputError("embeddings contain NaN or inf")
    out = torch.empty(P, V, dtype=torch.float64)
    kernels.pairwise_hard_values(sim.contiguous().numpy(), N, xl.numpy(), M, yl.numpy(), out.numpy())
    return out.to(sim.dtype)


def otam(
    cost: torch.Tensor,
    gamma: float = 0.1,
    symmetric: bool = True,
    lengths=None,
    band: int | None = None,
    subsequence: bool = False,
    backend: str | None = None,
) -> torch.Tensor:
    """OTAM distance (Cao et al. 2020); `symmetric` adds OTAM of the transposed cost.

    `gamma=0` is the hard (min) version. Differentiable (the kernels' Cuturi-Blondel backward;
    by autograd through the row scan, and with `gamma=0`, a path's subgradient). One direction
    pads the cost with a zero column each side, which frees the start and end along the *first*
    sequence; `subsequence=True` frees them along the second instead (OTAM of the transposed
    cost: the first sequence matched whole inside the second), and takes `symmetric=False`.
    `band` and `backend` as in `soft_dtw`. Shapes as in `soft_dtw`: returns () or (B,).
    """
    if gamma < 0:
        raise DTWInputError(f"gamma must be >= 0, got {gamma}")
    if subsequence and symmetric:
        raise DTWInputError(
            "otam: subsequence=True matches the first sequence inside the second, one direction: pass symmetric=False"
        )
    cost3, lengths, batched = _prepare(cost, lengths)
    radius, kernels = _radius(band), _kernels(cost3, backend)
    flipped = (cost3.transpose(1, 2), lengths.flip(1))
    values = _otam_direction(*(flipped if subsequence else (cost3, lengths)), float(gamma), radius, kernels)
    if symmetric:
        values = values + _otam_direction(*flipped, float(gamma), radius, kernels)
    values = values.to(cost3.dtype)
    return values if batched else values[0]


def _otam_direction(cost, lengths, gamma: float, band: int, kernels) -> torch.Tensor:
    """One direction's values in float64; hard OTAM's gradient goes through the row scan's autograd."""
    if kernels is _RowScan or (gamma == 0 and torch.is_grad_enabled() and cost.requires_grad):
        return _otam_values(cost.double(), lengths, gamma, band)
    if gamma == 0:
        return kernels.values(cost, lengths, 0.0, band, False, True)
    return _soft(cost, lengths, gamma, band, False, True, kernels).double()
