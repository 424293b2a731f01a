"""`tempclr score` on HT-Step val_seen-sized data: 600 videos, about 2.3M one-second candidates.

    python benchmarks/score.py              # the full size (writes a 100 MB CSV once, to benchmarks/.cache)
    python benchmarks/score.py --videos 60  # a tenth

The files are synthetic, in HT-Step's layout: a taxonomy of 150 activities with one to
three variations of 6-14 steps; per video 250-520 s, 3-9 annotated segments of its
variation's steps, and one candidate per second per candidate step (what per-second
scores give), scored with noise plus a bump where the step is annotated. Timed in a fresh
process, as a user runs it (`python -m tempclr_cli score ... --json`), imports and the
numba kernel's first call included; then split into reading and scoring, in-process.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CACHE = Path(__file__).parent / ".cache"


def make_files(videos: int, seed: int = 0) -> Path:
    """annotations.json, taxonomy.csv and predictions.csv for `videos` videos, made once."""
    root = CACHE / f"score_{videos}"
    if (root / "done").exists():
        return root
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    taxonomy, variations, gid = [], [], 0
    for a in range(150):
        for v in range(int(rng.integers(1, 4))):
            steps = list(range(gid, gid + int(rng.integers(6, 15))))
            taxonomy += [(g, f"activity {a}", k, "ABC"[v], k + 1, f"step {g}", "") for k, g in enumerate(steps)]
            variations.append((f"activity {a}", steps))
            gid += len(steps)
    annotations = {}
    with (root / "predictions.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["video-id", "t-start", "t-end", "label", "score"])
        for k in range(videos):
            activity, steps = variations[int(rng.integers(len(variations)))]
            length = int(rng.integers(250, 520))
            segments = []
            for label in rng.choice(steps, size=int(rng.integers(3, 10))):
                start = float(rng.uniform(0, length - 30))
                segments.append({"segment": [start, start + float(rng.uniform(2, 30))], "id": int(label)})
            annotations[f"video{k:04d}"] = {"subset": "val_seen", "activity": activity, "annotations": segments}
            seconds = np.arange(length, dtype=float)
            for label in steps:
                score = rng.normal(0, 1, length)
                for s in segments:
                    if s["id"] == label:
                        score[int(s["segment"][0]) : int(s["segment"][1])] += 2.0
                writer.writerows(
                    zip([f"video{k:04d}"] * length, seconds, seconds + 1, [label] * length, np.round(score, 6))
                )
    (root / "annotations.json").write_text(json.dumps(annotations))
    with (root / "taxonomy.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["global_step_index", "activity", "step_index", "variation", "variation_index", "headline", "paragraph"]
        )
        writer.writerows(taxonomy)
    (root / "done").touch()
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=600)
    args = parser.parse_args()
    root = make_files(args.videos)
    rows = sum(1 for _ in (root / "predictions.csv").open()) - 1
    command = [
        sys.executable,
        "-m",
        "tempclr_cli",
        "score",
        str(root / "predictions.csv"),
        "--annotations",
        str(root / "annotations.json"),
        "--format",
        "htstep",
        "--taxonomy",
        str(root / "taxonomy.csv"),
        "--split",
        "val_seen",
        "--json",
    ]
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - began
    metrics = json.loads(done.stdout)["metrics"]

    from tempclr_cli.core.data.layouts import ReadOptions, read_layout
    from tempclr_cli.core.data.predictions import read_predictions
    from tempclr_cli.core.eval.grounding import score_matched

    began = time.perf_counter()
    predictions = read_predictions(root / "predictions.csv")
    read = time.perf_counter() - began
    videos = read_layout(
        root / "annotations.json", "htstep", ReadOptions(split="val_seen", taxonomy=root / "taxonomy.csv")
    )
    began = time.perf_counter()
    score_matched(videos, predictions, "htstep", "val_seen")
    scoring = time.perf_counter() - began
    print(
        f"{args.videos} videos, {rows:,} candidates: `tempclr score` {wall:.1f} s end to end "
        f"(reading the CSV {read:.1f} s, scoring {scoring:.1f} s); "
        f"mAP {metrics['htstep-map']['values']['mAP']:.2f}, R@1 {metrics['point-recall']['values']['R@1']:.2f}"
    )


if __name__ == "__main__":
    main()
