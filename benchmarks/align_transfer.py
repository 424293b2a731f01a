"""Evidence: labelling a video from one annotated video of the same procedure
(`align --reference`) against zero-shot text alignment, on synthetic videos.

    OMP_NUM_THREADS=1 python benchmarks/align_transfer.py [--pairs 20]

Each pair is one procedure (the same actions in the same order) recorded twice by
`tempclr synth`'s generator: other backdrops, other step lengths and idle gaps. The
second video is aligned with its step sentences (text) and with the first video's
annotated steps (reference: by step prototypes, and clip to clip); all are scored
against its annotation. Prints one table
per encoder: the shipped `tiny` with random weights and with its synthetic weights.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from tempclr_cli.core.align.aligner import Aligner
from tempclr_cli.core.data.annotations import Step as Annotated
from tempclr_cli.core.data.annotations import Video
from tempclr_cli.core.eval.alignment import summary
from tempclr_cli.core.media.synth import Canvas, SynthConfig, _plan_video, _step_frames
from tempclr_cli.core.media.video import write_video


def retimed(steps, rng, cfg: SynthConfig):
    """The same actions and sentences with new lengths and gaps."""
    out, t = [], int(rng.integers(0, 3))
    for s in steps:
        length = int(rng.integers(cfg.min_step_seconds, cfg.max_step_seconds + 1))
        out.append(replace(s, start=t, end=t + length))
        t += length + int(rng.integers(0, 4))
    return out


def record(path: Path, steps, rng, cfg: SynthConfig) -> Video:
    duration = steps[-1].end + int(rng.integers(0, 3))
    write_video(path, _step_frames(steps, duration, cfg.fps, Canvas(cfg.size, rng)), cfg.fps)
    return Video(path.stem, "validation", float(duration), [Annotated(s.start, s.end, s.sentence) for s in steps])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20)
    args = parser.parse_args()
    cfg, rng = SynthConfig(), np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        pairs = []
        for k in range(args.pairs):
            steps = _plan_video(rng, cfg)
            pairs.append(
                (
                    record(Path(tmp) / f"ref{k}.mp4", steps, rng, cfg),
                    record(Path(tmp) / f"new{k}.mp4", retimed(steps, rng, cfg), rng, cfg),
                )
            )
        print(f"{args.pairs} procedures, each recorded twice (other backdrop and timing)")
        print("| encoder | method | boundaries | mean error (s) | within 1 s |\n|---|---|---:|---:|---:|")
        for weights in ("none", "synthetic"):
            aligner = Aligner("tiny", weights, device="cpu")
            text = summary(
                (aligner.align(Path(tmp) / f"{new.id}.mp4", [s.text for s in new.steps]), new) for _, new in pairs
            )
            rows = [("text (zero-shot)", text)]
            for match in ("steps", "clips"):
                rows.append(
                    (
                        f"reference video, --match {match}",
                        summary(
                            (
                                aligner.transfer(
                                    Path(tmp) / f"{new.id}.mp4",
                                    Path(tmp) / f"{ref.id}.mp4",
                                    [(s.start, s.end, s.text) for s in ref.steps],
                                    match=match,
                                ),
                                new,
                            )
                            for ref, new in pairs
                        ),
                    )
                )
            for name, r in rows:
                print(
                    f"| tiny / {weights} | {name} | {r['boundaries']} | {r['mean_error']:.2f} | {r['within_1s']:.1f}% |"
                )


if __name__ == "__main__":
    main()
