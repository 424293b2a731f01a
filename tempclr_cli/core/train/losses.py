"""Contrastive losses of TempCLR (sequence level) and TCLR (instance + temporal), vectorised.

TempCLR. A paragraph (K sentences) and a video (M clips) are compared by a sequence
distance over `D = 1 - <t, v> / (|t||v| + eps)` (the released code's cosine, eps=0.01).
The positive key keeps the true order; each negative permutes the order (rows of D:
segment-level shuffling; optionally columns inside segments: unit-level shuffling).
Logits are `-distance`, the target is the positive, and the per-sequence cross-entropy
is averaged. The clip-caption term is the symmetric InfoNCE over raw dot products.

TCLR (Dave et al. 2022). Inputs are unit embeddings of one batch of B videos:

    global_views        (2, B, D)     head(time-mean of the global clip), two augmentations
    global_time_slices  (2, B, T, D)  head(time slice t of the global clip's map), T = 4
    local_clips         (2, B, T, D)  head(local clip t), two augmented draws

IC: NT-Xent between the two global views (negatives: the other videos), and between
every ordered pair of the 2T local clips (same-video clips are positives). LL: within a
video, local clip t under draw 1 vs draw 2, negatives the other local clips of that
video. GL: within a video, time slice t of the global clip vs local clip t, negatives
the other local clips (both directions, every (view, draw) pair). Similarities are dot
products over `temperature`.

`scaling="official"` reproduces the released unweighted sum exactly: relative to a mean
per-anchor cross-entropy, the local IC term counts x 2T(2T-1)/4 = x14 (56 ordered clip
pairs, summed, divided by 4), LL is summed over the batch (xB) and GL counts x 4T = x16.
`scaling="mean"` (the synthetic recipes') reports every term as a mean per-anchor
cross-entropy, so the weights in a recipe mean what they say and the loss does not grow with
the batch size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tempclr_cli.core.align import measures
from tempclr_cli.core.errors import TempclrError

COSINE_EPS = 0.01  # as in the released TempCLR code: <x,y> / (|x||y| + eps)


# --- TempCLR --------------------------------------------------------------------------------


def cosine_cost(text: torch.Tensor, video: torch.Tensor, eps: float = COSINE_EPS) -> torch.Tensor:
    """1 - cosine with the released code's eps. text (..., K, D), video (..., M, D) -> (..., K, M)."""
    dots = text @ video.transpose(-1, -2)
    norms = text.norm(dim=-1)[..., :, None] * video.norm(dim=-1)[..., None, :]
    return 1 - dots / (norms + eps)


def sequence_contrastive_loss(
    text: torch.Tensor,
    video: torch.Tensor,
    permutations: torch.Tensor,
    distance: str = "softdtw",
    gamma: float = 0.1,
    temperature: float = 1.0,
    video_permutations: torch.Tensor | None = None,
    band: int | None = None,
) -> torch.Tensor:
    """Sequence-level contrastive loss, averaged over sequences.

    Parameters
    ----------
    text : Tensor [shape=(K, D) or (B, K, D)]
        Sentence embeddings in temporal order.
    video : Tensor [shape=(M, D) or (B, M, D)]
        Clip (unit) embeddings in temporal order.
    permutations : LongTensor [shape=(P, K) or (B, P, K)]
        Row (sentence) order of each of the P negatives.
    distance : a differentiable measure of `align.measures` (softdtw; otam, symmetrised, as released).
    video_permutations : LongTensor [shape=(P, M) or (B, P, M)], optional
        Column (clip) order of each negative, for unit-level shuffling.
    band : int, optional
        A Sakoe-Chiba radius in cells on the sequence distance (`dtw.soft_dtw`'s `band`; recipes' `loss.band`).

    Returns
    -------
    loss : Tensor [shape=()]
        Mean over sequences of cross-entropy(-distance / temperature, target = true order).
    """
    if text.dim() == 2:
        text, video, permutations = text[None], video[None], permutations[None]
        video_permutations = None if video_permutations is None else video_permutations[None]
    B, K, _ = text.shape
    M = video.shape[1]
    cost = cosine_cost(text, video)  # (B, K, M)
    rows = torch.cat([torch.arange(K, device=cost.device).expand(B, 1, K), permutations.to(cost.device)], 1)
    keys = cost.gather(1, rows[..., None].expand(-1, -1, -1, M).flatten(1, 2)).view(B, -1, K, M)  # (B, 1+P, K, M)
    if video_permutations is not None:
        cols = torch.cat([torch.arange(M, device=cost.device).expand(B, 1, M), video_permutations.to(cost.device)], 1)
        keys = keys.gather(3, cols[:, :, None, :].expand(-1, -1, K, -1))
    return _keys_loss(keys, distance, gamma, temperature, band)


def video_contrastive_loss(
    query: torch.Tensor,
    keys: torch.Tensor,
    distance: str = "softdtw",
    gamma: float = 0.1,
    temperature: float = 1.0,
    band: int | None = None,
) -> torch.Tensor:
    """The same sequence loss between videos (few-shot training): query [shape=(B, N, D)] against
    keys [shape=(B, 1+P, M, D)] whose key 0 is the positive (a video of the query's class)."""
    cost = cosine_cost(query[:, None].expand(-1, keys.shape[1], -1, -1), keys)  # (B, 1+P, N, M)
    return _keys_loss(cost, distance, gamma, temperature, band)


def _keys_loss(
    keys: torch.Tensor, distance: str, gamma: float, temperature: float, band: int | None = None
) -> torch.Tensor:
    """Mean cross-entropy of -distance / temperature over keys (B, 1+P, K, M), target key 0; `band` on a
    measure that takes one (`Measure.constrained`), refused by name on one that does not."""
    B = keys.shape[0]
    flat = keys.flatten(0, 1)  # all keys of all sequences in one DTW call
    measure = measures.get(distance, "loss")
    if band is not None and not measure.constrained:
        raise TempclrError(f"loss.band applies to the DTW family (softdtw, otam), not loss.distance {distance}")
    dist = measure.distance(flat, None, gamma, band=band) if band is not None else measure.distance(flat, None, gamma)
    logits = -dist.view(B, -1) / temperature
    return F.cross_entropy(logits, torch.zeros(B, dtype=torch.long, device=logits.device))


def clip_caption_loss(text: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over all (caption, clip) pairs of a batch, raw dot products. (N, D) each."""
    logits = text @ video.T
    target = torch.arange(len(text), device=text.device)
    return F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward all-reduces the (contiguous) gradient and keeps this rank's
    slice. torch.distributed.nn's all_gather is not used: on gloo its backward returns wrong
    gradients for non-contiguous gradient slices (any gather along a dim other than 0)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, dim: int) -> torch.Tensor:
        import torch.distributed as dist

        parts = [torch.empty_like(x, memory_format=torch.contiguous_format) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        ctx.dim, ctx.start, ctx.size = dim, dist.get_rank() * x.shape[dim], x.shape[dim]
        return torch.cat(parts, dim)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        import torch.distributed as dist

        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad)  # every rank's loss depends on every rank's shard
        return grad.narrow(ctx.dim, ctx.start, ctx.size), None


def gather_with_grad(x: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Concatenate `x` from every rank along `dim`, keeping gradients (identity in one process).
    Shards must have the same shape on every rank.

    Each rank then computes the loss over the global batch; the backward sums the ranks'
    gradients, so DDP's averaging gives the single-process gradient of that loss.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    return _GatherWithGrad.apply(x, dim)


# --- TCLR ---------------------------------------------------------------------------------------


def _pair_ce(z: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent cross-entropies for every ordered pair of groups.

    z [shape=(..., V, n, D)]: V groups of n samples; sample i of group a has positive
    sample i of group b; negatives are the other samples of both groups (n-1 each).
    Returns CE [shape=(..., V, n, V)]: entry (a, i, b) is anchor (a, i) against group b
    (the a == b entries are meaningless and must be ignored).
    """
    s = torch.einsum("...aid,...bjd->...aibj", z, z) / temperature  # (..., V, n, V, n)
    n = z.shape[-2]
    eye = torch.eye(n, dtype=torch.bool, device=z.device)
    own = torch.diagonal(s, dim1=-4, dim2=-2).movedim(-1, -3)  # (..., V, n, n): group a vs itself
    own_lse = own.masked_fill(eye, float("-inf")).logsumexp(-1)  # (..., V, n)
    cross_lse = s.logsumexp(-1)  # (..., V, n, V)
    positive = torch.diagonal(s, dim1=-3, dim2=-1)  # (..., V, V, n): s[a, i, b, i]
    positive = positive.movedim(-1, -2)  # (..., V, n, V)
    return torch.logaddexp(own_lse[..., None], cross_lse) - positive


def _off_diagonal_mean(ce: torch.Tensor) -> torch.Tensor:
    """Mean of CE (..., V, n, V) over anchors and ordered group pairs a != b, per leading index."""
    V, n = ce.shape[-1], ce.shape[-2]
    same = torch.eye(V, dtype=torch.bool, device=ce.device)[:, None, :]  # (V, 1, V)
    return ce.masked_fill(same, 0.0).sum((-3, -2, -1)) / (V * (V - 1) * n)


def _global_local(slices: torch.Tensor, local: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean CE of GL over (view, draw, direction, video, t). slices, local: (2, B, T, D)."""
    s = torch.einsum("vbtd,wbsd->vwbts", slices, local) / temperature  # (2, 2, B, T, T)
    diag = torch.diagonal(s, dim1=-2, dim2=-1)  # (2, 2, B, T)
    ce = torch.stack([s.logsumexp(-1) - diag, s.logsumexp(-2) - diag])  # slice->clips, clip->slices
    return ce.mean()


def tclr_losses(
    global_views: torch.Tensor,
    global_time_slices: torch.Tensor,
    local_clips: torch.Tensor,
    temperature: float = 0.1,
    scaling: str = "mean",
    weights: dict[str, float] | None = None,
) -> dict[str, torch.Tensor]:
    """TCLR losses on unit embeddings (see the module docstring for shapes and scalings).

    Returns a dict with `ic_global`, `ic_local`, `local_local`, `global_local` (each
    scaled per `scaling`) and `total` (their sum, weighted by `weights`, default 1 each).
    """
    if scaling not in ("mean", "official"):
        raise ValueError(f"scaling must be 'mean' or 'official', got {scaling!r}")
    _, B, T, _ = local_clips.shape
    ic_global = _off_diagonal_mean(_pair_ce(global_views, temperature))
    local = local_clips.permute(0, 2, 1, 3).reshape(2 * T, B, -1)  # (2T, B, D): group = (draw, clip)
    ic_local = _off_diagonal_mean(_pair_ce(local, temperature))
    per_video = local_clips.permute(1, 0, 2, 3)  # (B, 2, T, D): groups = draws, samples = clips
    local_local = _off_diagonal_mean(_pair_ce(per_video, temperature)).mean()
    global_local = _global_local(global_time_slices, local_clips, temperature)
    terms = {"ic_global": ic_global, "ic_local": ic_local, "local_local": local_local, "global_local": global_local}
    if scaling == "official":
        pairs = 2 * T * (2 * T - 1)  # ordered pairs of local clips; the release divides their sum by 4
        terms = {
            "ic_global": ic_global,
            "ic_local": ic_local * pairs / 4,
            "local_local": local_local * B,
            "global_local": global_local * 4 * T,  # 4 (view, draw) calls, each summing T CEs per anchor
        }
    weights = weights or {}
    terms["total"] = sum(weights.get(k, 1.0) * v for k, v in terms.items())
    return terms
