"""Few-shot action recognition by temporal alignment (TempCLR's third evaluation).

N-way K-shot episodes: N classes, K support videos and Q queries each. A query is
assigned the class whose supports are closest on average (mean distance over the K
supports, as in the paper). Distances between a query's and a support's clip
sequences, cost = 1 - cosine:

    otam     symmetrised OTAM (Cao et al. 2020), soft-min with `gamma` (0: hard)
    dtw      hard DTW
    softdtw  soft-DTW with `gamma`
    mean     1 - cosine of the mean-pooled features (order-blind baseline)

All episodes are sampled first; the distinct (query, support) pairs they use are
then scored in large batches by the batched DTW core, so 10,000 episodes cost a few
batched calls, not 10,000 Python loops.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tempclr_cli.core.align import dtw, measures
from tempclr_cli.core.data.features import FeatureStore, load_matrix, segment_centres
from tempclr_cli.core.errors import TempclrError

DISTANCES = measures.names("fewshot")


@dataclass(frozen=True)
class FewshotConfig:
    ways: int = 5
    shots: int = 1
    queries: int = 1
    episodes: int = 10000
    gamma: float = 0.1
    seed: int = 0
    frames: int | None = None  # resample every video to this many uniformly spaced segments

    def check(self) -> None:
        if min(self.ways, self.shots, self.queries, self.episodes) < 1:
            raise TempclrError("--ways, --shots, --queries and --episodes must be >= 1")
        if self.frames is not None and self.frames < 1:
            raise TempclrError(f"--frames {self.frames}: must be >= 1")
        if self.ways < 2:
            raise TempclrError("--ways must be >= 2 (a 1-way episode is always right)")


@dataclass
class VideoSet:
    """Features of the labelled videos: padded (V, T, D) unit rows, lengths (V,), class ids (V,)."""

    ids: list[str]
    feats: torch.Tensor
    lengths: torch.Tensor
    labels: np.ndarray
    classes: list[str]


def load_videos(
    labels: dict[str, str], folder: Path, cfg: FewshotConfig, skip_invalid: bool
) -> tuple[VideoSet, list[str]]:
    """Match labels to feature files and load them; returns the set and warnings for skipped items."""
    store = FeatureStore(folder)
    warnings, found = [], {}
    for vid, cls in sorted(labels.items()):
        path = store.find(vid)
        if path is None:
            if not skip_invalid:
                raise TempclrError(f"{vid}: no feature file under {folder} (use --skip-invalid to leave it out)")
            warnings.append(f"no features for {vid}")
            continue
        found[vid] = (cls, path)
    per_class: dict[str, list[str]] = {}
    for vid, (cls, _) in found.items():
        per_class.setdefault(cls, []).append(vid)
    need = cfg.shots + cfg.queries
    small = sorted(c for c, v in per_class.items() if len(v) < need)
    if small and not skip_invalid:
        raise TempclrError(
            f"class {small[0]} has {len(per_class[small[0]])} videos, fewer than --shots + --queries = {need} "
            f"({len(small)} such classes; use --skip-invalid to leave them out)"
        )
    warnings += [f"class {c} has only {len(per_class[c])} videos: left out" for c in small]
    classes = sorted(c for c in per_class if c not in small)
    if len(classes) < cfg.ways:
        raise TempclrError(f"only {len(classes)} classes have >= {need} videos; --ways {cfg.ways} needs more")
    ids = [v for c in classes for v in sorted(per_class[c])]
    arrays = [load_matrix(found[v][1])[0] for v in ids]
    if cfg.frames:
        arrays = [segment_centres(a, cfg.frames) for a in arrays]
    return _pack(ids, arrays, [classes.index(found[v][0]) for v in ids], classes), warnings


def _pack(ids, arrays, labels, classes) -> VideoSet:
    T, D = max(a.shape[0] for a in arrays), arrays[0].shape[1]
    feats = torch.zeros(len(arrays), T, D)
    for k, a in enumerate(arrays):
        feats[k, : a.shape[0]] = torch.from_numpy(a)
    feats = torch.nn.functional.normalize(feats, dim=-1)
    lengths = torch.tensor([a.shape[0] for a in arrays])
    return VideoSet(ids, feats, lengths, np.array(labels), classes)


@torch.no_grad()
def with_heads(videos: VideoSet, heads) -> VideoSet:
    """The same videos with their clips passed through trained TempCLR video heads."""
    T = videos.feats.shape[1]
    padding = torch.arange(T)[None, :] >= videos.lengths[:, None]
    feats = torch.nn.functional.normalize(heads.video(videos.feats, padding), dim=-1)
    return VideoSet(
        videos.ids, feats.masked_fill(padding[..., None], 0.0), videos.lengths, videos.labels, videos.classes
    )


def sample_episodes(labels: np.ndarray, cfg: FewshotConfig) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic episodes: supports (E, N, K) and queries (E, N, Q) as video indices."""
    rng = np.random.default_rng(cfg.seed)
    members = [np.flatnonzero(labels == c) for c in range(labels.max() + 1)]
    E, N, K, Q = cfg.episodes, cfg.ways, cfg.shots, cfg.queries
    supports = np.empty((E, N, K), dtype=np.int64)
    queries = np.empty((E, N, Q), dtype=np.int64)
    for e in range(E):
        for n, c in enumerate(rng.choice(len(members), size=N, replace=False)):
            picked = rng.choice(members[c], size=K + Q, replace=False)
            supports[e, n], queries[e, n] = picked[:K], picked[K:]
    return supports, queries


FULL_SIMILARITY_LIMIT = 2**27  # floats: compute all clip-clip similarities at once below this


def pair_distances(videos: VideoSet, pairs: np.ndarray, distance: str, gamma: float, chunk: int = 8192) -> torch.Tensor:
    """Distance of each (query, support) pair of video indices. pairs [shape=(P, 2)] -> (P,).

    Small sets compute all similarities with one GEMM (V*T x V*T) and index into them;
    large sets gather the two videos of each pair in chunks.
    """
    measure = measures.get(distance, "fewshot")
    a, b = torch.from_numpy(pairs).T
    V, T, D = videos.feats.shape
    if measure.pooled:
        mask = (torch.arange(T, device=videos.lengths.device)[None, :] < videos.lengths[:, None]).float()
        pooled = (videos.feats * mask[..., None]).sum(1) / videos.lengths[:, None]
        pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return measure.distance((1 - (pooled @ pooled.T)[a, b])[:, None, None], None, gamma).float()
    full = (V * T) ** 2 <= FULL_SIMILARITY_LIMIT
    if distance == "dtw" and full:  # a fast path: all pairs from one GEMM
        return dtw.pairwise_dtw(videos.feats, videos.feats, videos.lengths, videos.lengths)[a, b].float()
    sim = (videos.feats.reshape(V * T, D) @ videos.feats.reshape(V * T, D).T).view(V, T, V, T) if full else None
    out = []
    for start in range(0, len(pairs), chunk):
        ca, cb = a[start : start + chunk], b[start : start + chunk]
        if full:
            cost = 1 - sim[ca, :, cb, :]  # (P, Tq, Ts)
        else:
            cost = 1 - torch.bmm(videos.feats[ca], videos.feats[cb].transpose(1, 2))
        lengths = torch.stack([videos.lengths[ca], videos.lengths[cb]], dim=1)
        out.append(measure.distance(cost, lengths, gamma))
    return torch.cat(out).float()


@dataclass
class FewshotResult:
    distance: str
    accuracy: float  # mean episode accuracy, percent
    ci95: float  # half-width of the 95% confidence interval, percent
    per_class: dict[str, dict]

    def to_dict(self) -> dict:
        return {"distance": self.distance, "accuracy": self.accuracy, "ci95": self.ci95, "per_class": self.per_class}


def fewshot_accuracy(videos: VideoSet, cfg: FewshotConfig, distances: list[str]) -> list[FewshotResult]:
    """Run the same episodes for every distance."""
    cfg.check()
    supports, queries = sample_episodes(videos.labels, cfg)
    E, N, K = supports.shape
    Q = queries.shape[2]
    q = queries.reshape(E, N * Q)  # (E, NQ)
    qs = np.stack(np.broadcast_arrays(q[:, :, None], supports.reshape(E, 1, N * K)), -1)  # (E, NQ, NK, 2)
    V = len(videos.ids)
    codes = qs[..., 0] * V + qs[..., 1]
    unique, inverse = np.unique(codes, return_inverse=True)
    pairs = np.stack([unique // V, unique % V], axis=1)
    truth = np.repeat(np.arange(N), Q)[None, :]  # position of each query's class in its episode
    results = []
    with torch.no_grad():
        for name in distances:
            d = pair_distances(videos, pairs, name, cfg.gamma).cpu().numpy()[inverse.reshape(codes.shape)]
            scores = d.reshape(E, N * Q, N, K).mean(-1)  # mean distance to each class's supports
            pred = scores.argmin(-1)
            correct = pred == truth
            acc = correct.mean(1) * 100
            ci = 1.96 * acc.std(ddof=1) / np.sqrt(E) if E > 1 else 0.0
            per_class = _per_class(videos, supports, q, pred, correct)
            results.append(FewshotResult(name, round(float(acc.mean()), 3), round(float(ci), 3), per_class))
    return results


def _per_class(videos: VideoSet, supports, q, pred, correct) -> dict[str, dict]:
    """Accuracy per true class and the class it is most often mistaken for."""
    true_cls = videos.labels[q]  # (E, NQ)
    episode_cls = videos.labels[supports[:, :, 0]]  # (E, N): class at each position
    pred_cls = np.take_along_axis(episode_cls, pred, axis=1)
    out = {}
    for c, name in enumerate(videos.classes):
        mask = true_cls == c
        if not mask.any():
            continue
        wrong = pred_cls[mask & ~correct]
        confused = videos.classes[int(np.bincount(wrong).argmax())] if wrong.size else None
        out[name] = {
            "queries": int(mask.sum()),
            "accuracy": round(float(correct[mask].mean() * 100), 2),
            "most_confused_with": confused,
        }
    return out


def fewshot_from_files(
    features: Path,
    labels: Path,
    cfg: FewshotConfig,
    distances: list[str],
    skip_invalid: bool = False,
    checkpoint: str | None = None,
    log=lambda _: None,
    device: str = "cpu",
) -> list[FewshotResult]:
    """The `fewshot` command's protocol from files: labels in any layout `read_labels` knows,
    features from `extract`, optionally trained TempCLR video heads applied to every video;
    the distances are computed on `device`."""
    from dataclasses import replace

    from tempclr_cli.core.data.labels import read_labels
    from tempclr_cli.core.runtime import resolve_device

    cfg.check()
    videos, warnings = load_videos(read_labels(labels), features, cfg, skip_invalid)
    for w in warnings:
        log(f"skipped {w}")
    if checkpoint:
        from tempclr_cli.core.models.heads import load_heads

        videos = with_heads(videos, load_heads(checkpoint, videos_only=True)[0])
    target = resolve_device(device)
    videos = replace(videos, feats=videos.feats.to(target), lengths=videos.lengths.to(target))
    log(
        f"{len(videos.ids)} videos in {len(videos.classes)} classes; {cfg.episodes} episodes, "
        f"{cfg.ways}-way {cfg.shots}-shot, {cfg.queries} queries per class"
    )
    return fewshot_accuracy(videos, cfg, distances)
