"""Evidence: alignment distances see temporal order, mean pooling does not.

    python benchmarks/fewshot_order.py

Feature-level classes (D=64, 8 clips): "order" classes are pairs A->B / B->A of the same two
prototypes (identical mean-pooled features), "free" classes use their own prototype
throughout. 5-way 1-shot (order: 2-way, the pair), 2,000 episodes each, clip noise 1.5.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from tempclr_cli.core.eval.fewshot import DISTANCES, FewshotConfig, VideoSet, fewshot_accuracy


def classes(rng, kind: str, n_classes: int, per_class: int = 20, clips: int = 8, dim: int = 64):
    protos = rng.standard_normal((n_classes * 2, dim))
    feats, labels = [], []
    for c in range(n_classes):
        if kind == "order":
            a, b = protos[2 * (c // 2)], protos[2 * (c // 2) + 1]
            a, b = (a, b) if c % 2 == 0 else (b, a)
        else:
            a = b = protos[c]
        for _ in range(per_class):
            cut = rng.integers(2, clips - 2)
            seq = np.stack([a if t < cut else b for t in range(clips)]) + 1.5 * rng.standard_normal((clips, dim))
            feats.append(seq)
            labels.append(c)
    x = F.normalize(torch.tensor(np.stack(feats), dtype=torch.float32), dim=-1)
    return VideoSet(
        [str(k) for k in range(len(x))],
        x,
        torch.full((len(x),), clips),
        np.array(labels),
        [str(c) for c in range(n_classes)],
    )


def main() -> None:
    rng = np.random.default_rng(0)
    print("| classes | episodes | " + " | ".join(DISTANCES) + " |\n|---|---|" + "---:|" * len(DISTANCES))
    for label, kind, ways, n in (
        ("order (A->B vs B->A)", "order", 2, 2),
        ("order, 5 pairs mixed", "order", 5, 10),
        ("order-free", "free", 5, 10),
    ):
        videos = classes(rng, kind, n)
        cfg = FewshotConfig(ways=ways, shots=1, queries=1, episodes=2000, seed=0)
        acc = {r.distance: f"{r.accuracy:.1f} ± {r.ci95:.1f}" for r in fewshot_accuracy(videos, cfg, list(DISTANCES))}
        print(f"| {label} | {ways}-way 1-shot | " + " | ".join(acc[d] for d in DISTANCES) + " |")


if __name__ == "__main__":
    main()
