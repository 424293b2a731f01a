"""Retrieval over a large feature store: peak memory and time, streamed vs whole score matrix.

    python benchmarks/retrieval_store.py                       # 1,000, 10,000 and 100,000 videos
    python benchmarks/retrieval_store.py --videos 1000,10000   # a quicker run

Each store is a real folder as `tempclr extract` writes it (benchmarks/.cache/store_N):
one (60 clips, 512) float16 `.npy` per video, `index.jsonl`, and a YouCookII-style
annotation file with 6 captioned 10-s steps per video. Captions are embedded by a stand-in
(seeded random unit vectors, D=512), so no text tower is loaded; each clip is its step's
caption vector plus noise 30 times its norm, so R@1 says the two ways rank alike. Every measurement runs in
a fresh process: peak RSS is that process's whole peak (VmHWM), imports included.

Rows: tempclr (scores streamed a chunk of queries at a time, `own_ranks`) against the
whole-matrix approach of the authors' evaluation (every P x V score held, then ranked),
DTW with background removed. At 100,000 videos the whole matrix alone needs 40 GB, over
this machine's memory, and is not run; tempclr there scores the first chunk of queries
against all 100,000 videos (every later chunk reuses the same buffers: at 10,000 the
first chunk's peak equals the full run's) and the full time is extrapolated from it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np

CACHE = Path(__file__).parent / ".cache"
CLIPS, DIM, STEPS, STEP_SECONDS = 60, 512, 6, 10.0
NOISE = 30.0  # clip = its step's caption vector + noise of this norm: retrieval is hard, not hopeless


def make_store(n: int) -> Path:
    """A features folder and its annotations for `n` videos, made once."""
    root = CACHE / f"store_{n}"
    if (root / "done").exists():
        return root
    (root / "feats").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(n)
    database, rows = {}, []
    starts = [float(k) for k in range(CLIPS)]
    per_step = int(STEP_SECONDS)
    for v in range(n):
        vid = f"v{v:06d}"
        captions = stand_in_text([f"video {v} step {k}" for k in range(STEPS)]).numpy()
        clips = np.repeat(captions, per_step, axis=0) + NOISE / np.sqrt(DIM) * rng.standard_normal((CLIPS, DIM))
        np.save(root / "feats" / f"{vid}.npy", clips.astype(np.float16))
        rows.append(
            json.dumps(
                {
                    "features": f"{vid}.npy",
                    "status": "ok",
                    "clips": CLIPS,
                    "dim": DIM,
                    "starts": starts,
                    "ends": [s + 1 for s in starts],
                    "model": "ViT-B-32",
                    "pretrained": "synthetic",
                    "dtype": "float16",
                }
            )
        )
        database[vid] = {
            "duration": float(CLIPS),
            "subset": "validation",
            "annotations": [
                {"segment": [k * STEP_SECONDS, (k + 1) * STEP_SECONDS], "sentence": f"video {v} step {k}"}
                for k in range(STEPS)
            ],
        }
    (root / "feats" / "index.jsonl").write_text("\n".join(rows) + "\n")
    (root / "annotations.json").write_text(json.dumps({"database": database}))
    (root / "done").touch()
    return root


def stand_in_text(sentences: list[str]):
    """Seeded random unit vectors, one per caption (what a text tower's output costs in memory)."""
    import torch

    out = torch.empty(len(sentences), DIM)
    for k, s in enumerate(sentences):
        out[k] = torch.from_numpy(np.random.default_rng(zlib.crc32(s.encode())).standard_normal(DIM))
    return torch.nn.functional.normalize(out, dim=-1)


def peak_mb() -> float:
    """This process's peak RSS (VmHWM: unlike ru_maxrss it does not inherit the parent's at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def child(n: int, mode: str, first_chunk: bool) -> dict:
    """One measurement in this process: load the store, score, report."""
    import torch

    from tempclr_cli.core.data.annotations import read_annotations
    from tempclr_cli.core.data.features import FeatureStore
    from tempclr_cli.core.eval import paragraph_retrieval as pr

    torch.set_num_threads(2)
    imports = peak_mb()
    root = CACHE / f"store_{n}"
    t0 = time.perf_counter()
    store = FeatureStore(root / "feats")
    videos = read_annotations(root / "annotations.json", "youcook2")
    text, units, _ = pr.prepare(videos, store, stand_in_text)
    load = time.perf_counter() - t0
    t0 = time.perf_counter()
    if mode == "whole":
        r1 = pr.recall_at(pr.score_matrix(text, units, "dtw"))["R@1"]
        scored = n
    else:
        ranks = []
        for _, chunk in pr.own_ranks(text, units, "dtw"):
            ranks.append(chunk)
            if first_chunk:
                break
        scored = sum(len(r) for r in ranks)
        r1 = pr.recall_from_ranks(torch.cat(ranks))["R@1"]
    score = time.perf_counter() - t0
    return {
        "videos": n,
        "mode": mode,
        "imports_mb": imports,
        "peak_mb": peak_mb(),
        "load_s": load,
        "score_s": score,
        "scored_queries": scored,
        "R@1": r1,
    }


def measure(n: int, mode: str, first_chunk: bool = False) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(n), mode, str(int(first_chunk))],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "2"},
    )
    if out.returncode:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", default="1000,10000,100000")
    parser.add_argument("--child", nargs=3)
    args = parser.parse_args()
    if args.child:
        n, mode, first = args.child
        print(json.dumps(child(int(n), mode, first == "1")))
        return
    sizes = [int(x) for x in args.videos.split(",")]
    print(f"{CLIPS} clips x {DIM} dims (float16) per video, {STEPS} steps; DTW, background removed; 2 threads")
    print(
        "| videos | tempclr peak RSS MB | whole matrix peak RSS MB | whole / tempclr | load s | tempclr score s | "
        "whole score s | R@1 tempclr / whole |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    notes = []
    for n in sizes:
        make_store(n)
        ours = measure(n, "stream", first_chunk=n > 10_000)
        part = ours["scored_queries"] < n
        score = f"{ours['score_s'] * n / ours['scored_queries']:.0f}"
        if part:
            score += f" (first {ours['scored_queries']} queries x {n / ours['scored_queries']:.0f})"
            cells = [
                f"not run: the scores alone need {n * n * 4 / 1e9:.0f} GB",
                "",
                score,
                "",
                f"{ours['R@1']:.2f} / -",
            ]
        else:
            whole = measure(n, "whole")
            cells = [
                f"{whole['peak_mb']:.0f}",
                f"{whole['peak_mb'] / ours['peak_mb']:.2f}",
                score,
                f"{whole['score_s']:.0f}",
                f"{ours['R@1']:.2f} / {whole['R@1']:.2f}",
            ]
        print(
            f"| {n:,} | {ours['peak_mb']:.0f} | {cells[0]} | {cells[1]} | {ours['load_s']:.0f} | "
            + " | ".join(cells[2:])
            + " |"
        )
        notes.append(f"{n:,} videos: imports alone {ours['imports_mb']:.0f} MB")
    print("\n".join(notes))


if __name__ == "__main__":
    main()
