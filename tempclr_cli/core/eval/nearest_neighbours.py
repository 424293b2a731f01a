"""TCLR's nearest-neighbour retrieval protocol (REFERENCE section 5), no fine-tuning.

Feature of a video (`nn_retrieval/complete_retrieval.py:63-86`, `dl_ret.py:81-140`): the
layer4 map pooled over space only and flattened (C x T', 2048-d for R3D-18), averaged
over `clips` (9) clips of `frames` frames at stride 2 starting at
int(linspace(0, N - 2 frames - 10, clips)), a 0.8 centre crop, L2-normalised, in the
colour order the backbone was trained on. Gallery = the training split, queries = the
test split, cosine similarity; R@k = share of queries whose class appears among the
classes of their k nearest gallery videos.
"""

from __future__ import annotations

from pathlib import Path

import torch

from tempclr_cli.core.data.clips import ClipSpec, eval_clips, video_frames
from tempclr_cli.core.data.splits import split_videos
from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.models.r3d import feature_map
from tempclr_cli.core.progress import Progress, silent


@torch.no_grad()
def video_feature(
    backbone, path: Path, frames: int, size: int, clips: int, device, channels: str = "rgb", crop: float = 0.8
) -> torch.Tensor:
    """Mean over `clips` clips of the flattened space-pooled layer4 map, unit length."""
    video = video_frames(path, size, channels)
    x = eval_clips(video, ClipSpec(frames, 2, size), clips, crop).to(device)  # (clips, 3, T, size, size)
    feats = feature_map(backbone, x).flatten(1)  # (clips, C * T')
    return torch.nn.functional.normalize(feats.mean(0), dim=0).cpu()


def recall_at_k(
    gallery: torch.Tensor, gallery_labels: list[str], queries: torch.Tensor, query_labels: list[str], ks=(1, 5, 10, 20)
) -> dict[str, float]:
    """Share (%) of queries whose class is among the classes of their k nearest gallery items."""
    sims = queries @ gallery.T
    order = sims.argsort(dim=1, descending=True)
    names = sorted(set(gallery_labels) | set(query_labels))
    g = torch.tensor([names.index(c) for c in gallery_labels])[order]  # (Q, G) classes by rank
    q = torch.tensor([names.index(c) for c in query_labels])[:, None]
    return {f"R@{k}": round(float((g[:, :k] == q).any(1).float().mean() * 100), 2) for k in ks if k <= g.shape[1]}


def nearest_neighbour_recall(
    backbone,
    root: Path,
    fmt: str,
    annotations: Path | None,
    split: int,
    frames: int,
    size: int,
    clips: int,
    device,
    progress=None,
    channels: str = "rgb",
) -> dict:
    """NN retrieval R@k of an R3D `backbone` on a dataset's split; `progress(n)` is called per video."""
    backbone.eval()
    sets = {
        "gallery": split_videos(root, fmt, annotations, split, "train"),
        "queries": split_videos(root, fmt, annotations, split, "test"),
    }
    feats = {}
    for name, items in sets.items():
        if not items:
            raise TempclrError(f"no {name} videos in the split")
        rows = []
        for path, _ in items:
            rows.append(video_feature(backbone, path, frames, size, clips, device, channels))
            if progress:
                progress(1)
        feats[name] = torch.stack(rows)
    result = recall_at_k(
        feats["gallery"], [c for _, c in sets["gallery"]], feats["queries"], [c for _, c in sets["queries"]]
    )
    return {"gallery": len(sets["gallery"]), "queries": len(sets["queries"]), **result}


def nearest_neighbour_curve(
    root: Path,
    splits: Path,
    fmt: str,
    split: int,
    clips: list[int],
    checkpoint: str,
    device: str = "auto",
    progress: Progress = silent,
) -> list[dict]:
    """NN retrieval of a TCLR checkpoint's backbone for each clip count.

    The checkpoint says which backbone, clip length and resolution to use; a random-init
    baseline is a checkpoint too (the same recipe trained with lr 0), so that it is the
    model the recipe describes, not a default one."""
    from tempclr_cli.core.models.r3d import load_backbone
    from tempclr_cli.core.runtime import resolve_device

    if checkpoint == "none":
        raise TempclrError(
            "--checkpoint none: a random-init baseline must be the model your recipe describes; make "
            "one with `tempclr train RECIPE --set train.epochs=1 --set optim.lr=0 --run-dir runs/random` "
            "and pass --checkpoint runs/random/last.pt"
        )
    dev = resolve_device(device)
    backbone, meta = load_backbone(checkpoint)
    backbone = backbone.to(dev)
    curve = []
    for k in clips:
        advance = progress(f"features, {k} clips/video", None)
        result = nearest_neighbour_recall(
            backbone, root, fmt, splits, split, meta["clip_frames"], meta["size"], k, dev, advance, meta["channels"]
        )
        curve.append({"clips": k, **result})
    return curve
