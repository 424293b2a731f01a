"""Evidence: `align` boundary accuracy before and after TempCLR training, on the demo's data.

    tempclr demo && python benchmarks/align_before_after.py tempclr-demo

For every validation video of the demo's synthetic dataset, aligns its step list with
raw features (before) and through the trained heads (after), and compares each step's
start and end with the annotation. Prints one table.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from tempclr_cli.core.align.steps import align
from tempclr_cli.core.data.annotations import read_youcook2
from tempclr_cli.core.data.features import FeatureStore
from tempclr_cli.core.media.synth import ANNOTATIONS_FILE
from tempclr_cli.core.models.heads import apply_heads, load_heads
from tempclr_cli.core.encode.encoders import sentence_encoder
from tempclr_cli.core.encode.encoders import EncoderSpec


def main(workdir: Path) -> None:
    store = FeatureStore(workdir / "features")
    heads, meta = load_heads(workdir / "run" / "last.pt")
    encode = sentence_encoder(EncoderSpec.from_meta(meta), torch.device("cpu"))  # the tower loads once
    videos = [v for v in read_youcook2(workdir / "data" / ANNOTATIONS_FILE) if v.subset == "validation"]
    print(f"{len(videos)} validation videos, {sum(len(v.steps) for v in videos)} steps")
    print("| features | mean boundary error (s) | boundaries within 1 s | step midpoint inside its segment |")
    print("|---|---:|---:|---:|")
    for label, model in (("raw encoder (before)", None), ("TempCLR heads (after)", heads)):
        errors, inside = [], []
        for v in videos:
            clips, starts, ends = store.load(v.id)
            texts = [s.text for s in v.steps]
            sent = encode(texts)
            c, t = apply_heads(model, torch.from_numpy(clips), sent)
            result = align(t, c, texts, starts, ends)
            for got, truth in zip(result.steps, v.steps):
                errors += [abs(got.start - truth.start), abs(got.end - truth.end)]
                inside.append(truth.start <= (got.start + got.end) / 2 < truth.end)
        errors = np.array(errors)
        print(f"| {label} | {errors.mean():.2f} | {100 * (errors <= 1).mean():.1f}% | {100 * np.mean(inside):.1f}% |")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "tempclr-demo"))
