"""`align` speed: batch mode against single calls, a 3-hour video, and one call's latency.

    OMP_NUM_THREADS=1 python benchmarks/align.py [--videos 1000]

1. A store of N synthetic `.npy` videos (3 min each at 1 clip/s, 64-d, `tiny` / random)
   x 10 steps: one `tempclr align DIR STEPS_DIR --output-dir` against single calls
   (5 timed, scaled to N).
2. A 3-hour video (10,800 clips) x 50 steps: the ordered segmentation alone, peak memory.
3. One call `tempclr align x.npy steps.txt --model tiny --pretrained none` against a bare
   `python -c "import torch"`, in 7 interleaved rounds (medians): the ratio is what a shell loop
   over videos pays per video (#36's target: at most 1.3x, with `transformers` installed); and
   against a bare import that ends as tempclr does (`gc.freeze()`), which isolates the imports.
   `--latency` runs this part alone.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from tempclr_cli.core.align.steps import align


def wall(cmd: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def make_store(root: Path, videos: int) -> None:
    rng = np.random.default_rng(0)
    (root / "feats").mkdir(parents=True)
    (root / "steps").mkdir()
    rows = []
    for k in range(videos):
        np.save(root / "feats" / f"v{k:04d}.npy", rng.standard_normal((180, 64)).astype(np.float16))
        (root / "steps" / f"v{k:04d}.txt").write_text("".join(f"step number {j}\n" for j in range(10)))
        rows.append(
            {
                "features": f"v{k:04d}.npy",
                "clips": 180,
                "starts": list(range(180)),
                "ends": list(range(1, 181)),
                "model": "tiny",
                "pretrained": "none",
                "seed": 0,
                "status": "ok",
                "clip_seconds": 1.0,
                "duration": 180.0,
            }
        )
    (root / "feats" / "index.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=1000)
    parser.add_argument("--latency", action="store_true", help="only the one-call latency against a bare import")
    args = parser.parse_args()
    tempclr = [sys.executable, "-m", "tempclr_cli", "align"]
    if args.latency:
        return latency(tempclr)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_store(root, args.videos)
        batch = wall(
            [
                *tempclr,
                str(root / "feats"),
                str(root / "steps"),
                "--output-dir",
                str(root / "out"),
                "--device",
                "cpu",
                "-q",
            ]
        )
        singles = [
            wall(
                [
                    *tempclr,
                    str(root / "feats" / f"v{k:04d}.npy"),
                    str(root / "steps" / f"v{k:04d}.txt"),
                    "--device",
                    "cpu",
                    "-q",
                ]
            )
            for k in range(5)
        ]
        single = float(np.median(singles))
        bare = float(np.median([wall([sys.executable, "-c", "import torch"]) for _ in range(3)]))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    print("| measure | tempclr | peer | ratio |\n|---|---:|---:|---:|")
    print(
        f"| {args.videos} videos x 10 steps: batch mode vs {args.videos} single calls (s) | {batch:.1f} | "
        f"{single * args.videos:.0f} | {single * args.videos / batch:.0f}x faster |"
    )
    rng = np.random.default_rng(1)
    clips, steps = torch.from_numpy(rng.standard_normal((10_800, 64))), torch.from_numpy(rng.standard_normal((50, 64)))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    align(steps, clips, [f"s{k}" for k in range(50)], list(range(10_800)), list(range(1, 10_801)))
    long_s = time.perf_counter() - start
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before, 0) / 1024
    print(
        f"| 3-hour video (10,800 clips) x 50 steps, segmentation (s; target < 2) | {long_s:.2f} | | "
        f"peak +{peak:.0f} MB |"
    )
    print(
        f"| one `align x.npy steps.txt` call vs `python -c 'import torch'` (s; target <= 1.3x) | {single:.2f} | "
        f"{bare:.2f} | {single / bare:.1f}x |"
    )


def latency(tempclr: list[str]) -> None:
    """One align call on a .npy against a bare torch import, 7 interleaved rounds (load hits all alike).

    The calls may write bytecode (a sandbox's PYTHONDONTWRITEBYTECODE would make every call compile
    tempclr's modules anew, which no installed copy does). tempclr ends by freezing its objects out of
    the garbage collector (cli.main), so a second peer does the same after `import torch`: the first
    row is what a shell loop pays against the bare import, the second what tempclr's imports and work
    add to it."""
    import importlib.util
    import os

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    peers = {"bare": "import torch", "frozen": "import gc, torch; gc.freeze()"}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_store(root, 1)
        call = [*tempclr, str(root / "feats" / "v0000.npy"), str(root / "steps" / "v0000.txt"), "--device", "cpu", "-q"]
        wall(call, env)  # bytecode, the page cache and numba's kernel cache warm, as in a shell loop's second video
        rounds = [
            (wall(call, env), *(wall([sys.executable, "-c", code], env) for code in peers.values())) for _ in range(7)
        ]
    single, bare, frozen = (float(np.median(x)) for x in zip(*rounds))
    print(f"torch {torch.__version__}; transformers installed: {importlib.util.find_spec('transformers') is not None}")
    print("| measure | tempclr | peer | ratio |\n|---|---:|---:|---:|")
    print(
        f"| one `align x.npy steps.txt` call vs `python -c 'import torch'` (s, medians of 7 rounds; target <= 1.3x) | "
        f"{single:.2f} | {bare:.2f} | {single / bare:.2f}x |"
    )
    print(
        f"| the same call vs `python -c 'import gc, torch; gc.freeze()'` (the same fast teardown) | "
        f"{single:.2f} | {frozen:.2f} | {single / frozen:.2f}x |"
    )


if __name__ == "__main__":
    main()
