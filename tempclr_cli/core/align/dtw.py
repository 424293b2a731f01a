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
- "torch": the *row scan* (`_dtw_torch.py`), for other devices and where neither compiles.

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
import os
from dataclasses import dataclass

import torch

from tempclr_cli.core.align import _dtw_torch
from tempclr_cli.core.errors import TempclrError

USE_COMPILED = True  # set False to make the automatic choice the torch row scan (tests compare both)
BACKENDS = ("numba", "triton", "torch")
BACKEND_ENV = "TEMPCLR_DTW_BACKEND"


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
        valid = _dtw_torch.valid_mask(lengths, N, M)
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
    """The backend for tensor x: the `_dtw_numba`, `_dtw_triton` or `_dtw_torch` module."""
    choice = backend or os.environ.get(BACKEND_ENV) or "auto"
    if choice not in ("auto", *BACKENDS):
        raise DTWInputError(
            f"unknown DTW backend {choice!r} (from backend= or ${BACKEND_ENV}); choose from auto, {', '.join(BACKENDS)}"
        )
    if choice == "auto":
        if not USE_COMPILED:
            return _dtw_torch
        if x.device.type == "cpu":
            return _import("_dtw_numba") or _dtw_torch
        return (x.device.type == "cuda" and _import("_dtw_triton")) or _dtw_torch
    if choice == "torch":
        return _dtw_torch
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
    if kernels is _dtw_torch or (gamma == 0 and torch.is_grad_enabled() and cost.requires_grad):
        return _dtw_torch.otam_values(cost.double(), lengths, gamma, band)
    if gamma == 0:
        return kernels.values(cost, lengths, 0.0, band, False, True)
    return _soft(cost, lengths, gamma, band, False, True, kernels).double()
