"""The importable core of tempclr: no CLI code here, heavy imports stay inside modules.

The stages, in the order data flows (docs/architecture.md):

    media/   video files (PyAV), synthetic datasets, subtitles
    data/    annotations, class labels and split lists, clip sampling, feature stores
    encode/  encoders (open_clip, TCLR backbones) and feature extraction
    models/  TempCLR heads, the TCLR R3D and its projection head, classifiers
    align/   batched DTW / soft-DTW / OTAM kernels, step localisation, the Aligner
    train/   recipes, the training loop, losses, augmentation, one module per task
    eval/    retrieval, nearest neighbours, few-shot, localisation, classification

The public functions below are re-exported here (imported on first use, so
`import tempclr_cli.core` stays light):

    from tempclr_cli.core import dtw, soft_dtw, otam, sequence_contrastive_loss, tclr_losses
"""

from __future__ import annotations

import importlib

_PUBLIC = {
    "dtw": "tempclr_cli.core.align.dtw",
    "soft_dtw": "tempclr_cli.core.align.dtw",
    "otam": "tempclr_cli.core.align.dtw",
    "pairwise_dtw": "tempclr_cli.core.align.dtw",
    "sequence_contrastive_loss": "tempclr_cli.core.train.losses",
    "tclr_losses": "tempclr_cli.core.train.losses",
    "Aligner": "tempclr_cli.core.align.aligner",
    "TempclrError": "tempclr_cli.core.errors",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
