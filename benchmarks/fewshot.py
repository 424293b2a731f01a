"""Few-shot episodes: batched scoring against the usual per-episode loop, one run.

    python benchmarks/fewshot.py

10,000 5-way 5-shot episodes, 1 query per class, 8 clips per video, D=512, over 100
classes x 10 videos. The peer is what few-shot code usually does (the OTAM release's
style): per episode, compute each query-support cost and run the soft-min recursion
with one torch op per cell. The peer is timed on 50 episodes and compared per episode.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from tempclr_cli.core.eval.fewshot import DISTANCES, FewshotConfig, VideoSet, fewshot_accuracy


def otam_cum_dist(dists: torch.Tensor, lbda: float = 0.1) -> torch.Tensor:
    """The released OTAM recursion (Cao et al. 2020 as in the TRX/TempCLR code): one op per cell."""
    dists = F.pad(dists, (1, 1), "constant", 0)
    cum = torch.zeros(dists.shape)
    for m in range(1, dists.shape[3]):
        cum[:, :, 0, m] = dists[:, :, 0, m] + cum[:, :, 0, m - 1]
    for l in range(1, dists.shape[2]):
        cum[:, :, l, 1] = dists[:, :, l, 1] - lbda * torch.log(
            torch.exp(-cum[:, :, l - 1, 0] / lbda)
            + torch.exp(-cum[:, :, l - 1, 1] / lbda)
            + torch.exp(-cum[:, :, l, 0] / lbda)
        )
        for m in range(2, dists.shape[3] - 1):
            cum[:, :, l, m] = dists[:, :, l, m] - lbda * torch.log(
                torch.exp(-cum[:, :, l - 1, m - 1] / lbda) + torch.exp(-cum[:, :, l, m - 1] / lbda)
            )
        cum[:, :, l, -1] = dists[:, :, l, -1] - lbda * torch.log(
            torch.exp(-cum[:, :, l - 1, -2] / lbda)
            + torch.exp(-cum[:, :, l - 1, -1] / lbda)
            + torch.exp(-cum[:, :, l, -2] / lbda)
        )
    return cum[:, :, -1, -1]


def peer_episodes(videos: VideoSet, cfg: FewshotConfig, episodes: int) -> float:
    from tempclr_cli.core.eval.fewshot import sample_episodes

    supports, queries = sample_episodes(videos.labels, FewshotConfig(**{**cfg.__dict__, "episodes": episodes}))
    correct = 0
    for e in range(episodes):
        s = videos.feats[supports[e].reshape(-1)]  # (N*K, T, D)
        q = videos.feats[queries[e].reshape(-1)]  # (N*Q, T, D)
        sim = torch.einsum("aid,bjd->abij", q, s)
        dist = otam_cum_dist(1 - sim) + otam_cum_dist((1 - sim).transpose(2, 3))
        pred = dist.view(len(q), cfg.ways, cfg.shots).mean(-1).argmin(-1)
        correct += int((pred == torch.arange(cfg.ways).repeat_interleave(cfg.queries)).sum())
    return correct


def main() -> None:
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    classes, per_class, T, D = 100, 10, 8, 512
    feats = F.normalize(torch.from_numpy(rng.standard_normal((classes * per_class, T, D)).astype(np.float32)), dim=-1)
    videos = VideoSet(
        [str(k) for k in range(classes * per_class)],
        feats,
        torch.full((len(feats),), T),
        np.repeat(np.arange(classes), per_class),
        [str(c) for c in range(classes)],
    )
    cfg = FewshotConfig(ways=5, shots=5, queries=1, episodes=10000)
    rows = []
    for name in DISTANCES:
        start = time.perf_counter()
        fewshot_accuracy(videos, cfg, [name])
        rows.append((name, time.perf_counter() - start))
    peer_eps = 50
    start = time.perf_counter()
    peer_episodes(videos, cfg, peer_eps)
    peer = (time.perf_counter() - start) / peer_eps
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; 10,000 episodes 5-way 5-shot, 1 query/class, "
        f"T={T}, D={D}"
    )
    print("| distance | tempclr s (10,000 episodes) | ms / episode | released-style OTAM loop ms / episode | ratio |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds in rows:
        per = seconds / cfg.episodes * 1000
        print(f"| {name} | {seconds:.2f} | {per:.3f} | {peer * 1000:.1f} | {peer * 1000 / per:.0f}x |")


if __name__ == "__main__":
    main()
