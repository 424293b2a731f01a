"""Paragraph-to-video retrieval at scale: 3,000 x 3,000 DTW scoring in bounded memory.

    pip install '.[bench]' && python benchmarks/retrieval.py

Paragraphs of 8 captions against videos of 8 units (background removed), D=512.
The peer is tslearn's cdist_dtw (what a user would call for all-pairs DTW), timed on a
300 x 300 subset and compared per pair. Prints one table.
"""

from __future__ import annotations

import resource
import time

import numpy as np
import torch
import torch.nn.functional as F

from tempclr_cli.core.eval.paragraph_retrieval import Padded, recall_at, score_matrix


def main() -> None:
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    n, L, D = 3000, 8, 512
    steps = F.normalize(torch.from_numpy(rng.standard_normal((n, L, D)).astype(np.float32)), dim=-1)
    units = F.normalize(steps + 0.8 * torch.from_numpy(rng.standard_normal((n, L, D)).astype(np.float32)), dim=-1)
    lengths = torch.from_numpy(rng.integers(4, L + 1, n))
    text, video = Padded(steps, lengths), Padded(units, lengths)
    rows = []
    for measure in ("capavg", "dtw"):
        start = time.perf_counter()
        scores = score_matrix(text, video, measure)
        seconds = time.perf_counter() - start
        rows.append((measure, seconds, recall_at(scores)["R@1"]))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    from tslearn.metrics import cdist_dtw

    sub = 300
    a = [steps[k, : lengths[k]].numpy().astype(np.float64) for k in range(sub)]
    b = [units[k, : lengths[k]].numpy().astype(np.float64) for k in range(sub)]
    start = time.perf_counter()
    cdist_dtw(a, b, n_jobs=2)
    peer_per_pair = (time.perf_counter() - start) / sub**2
    print(
        f"torch {torch.__version__}, 2 threads; {n} paragraphs x {n} videos, <= {L} captions/units, D={D}; "
        f"peak RSS {peak:.0f} MB"
    )
    print("| measure | tempclr s | us / pair | tslearn cdist_dtw us / pair (300x300) | ratio | R@1 (noisy copies) |")
    print("|---|---:|---:|---:|---:|---:|")
    for measure, seconds, r1 in rows:
        per = seconds / n**2 * 1e6
        peer = f"{peer_per_pair * 1e6:.1f}" if measure == "dtw" else ""
        ratio = f"{peer_per_pair * 1e6 / per:.0f}x" if measure == "dtw" else ""
        print(f"| {measure} | {seconds:.1f} | {per:.2f} | {peer} | {ratio} | {r1:.1f} |")


if __name__ == "__main__":
    main()
