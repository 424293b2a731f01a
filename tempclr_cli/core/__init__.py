"""The importable core of tempclr: no CLI code here, heavy imports stay inside modules.

The stages, in the order data flows (docs/architecture.md):

    media/   video files (PyAV: decoding, sampling, H.264 slice headers), synthetic datasets, subtitles
    data/    the tables of layouts (step annotations, action lists), predictions, clip sampling, feature stores
    models/  TempCLR heads, VideoCLIP / TempCLR's network, the TCLR R3D and its head, S3D, classifiers
    encode/  the encoder registry (open_clip, tiny, TCLR backbones, S3D), extraction, features of other tools
    align/   batched DTW / soft-DTW / OTAM kernels, step localisation, the Aligner
    train/   recipes, the training loop, losses, augmentation, one module per task
    eval/    retrieval, nearest neighbours, few-shot, localisation and step-grounding scores, search,
             classification

The public names below are re-exported here and from `tempclr_cli` (imported on first
use, so `import tempclr_cli.core` stays light):

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
    "align": "tempclr_cli.core.align.aligner",  # as tempclr_cli.align (tempclr_cli.core.align is the package)
    "Alignment": "tempclr_cli.core.align.steps",
    "TempclrError": "tempclr_cli.core.errors",
}

__all__ = sorted(set(_PUBLIC) - {"align"})  # core.align is the package; the function is tempclr_cli.align


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
