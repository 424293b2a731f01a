"""Peak memory of long inputs (#30): a 10-hour video at 1 fps, and 5,000 steps over it.

    python benchmarks/memory.py          # about 3 minutes on 2 cores

Videos are made cheaply (16 x 16 pixels, 1 fps, H.264) into benchmarks/.cache/; each
command runs as a user runs it, in its own process, and its peak resident memory is read
from the kernel (`ru_maxrss` of the child). Prints one table.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CACHE = Path(__file__).parent / ".cache"


def long_video(hours: float) -> Path:
    from tempclr_cli.core.media.video import write_video

    path = CACHE / f"long_{hours:g}h_16px_1fps.mp4"
    if not path.exists():
        CACHE.mkdir(exist_ok=True)
        rng = np.random.default_rng(0)
        frames = (np.full((16, 16, 3), rng.integers(0, 255, 3), np.uint8) for _ in range(int(hours * 3600)))
        write_video(path, frames, 1)
    return path


RUN = """
import resource, runpy, sys
sys.argv = ["tempclr", *sys.argv[1:]]
try:
    runpy.run_module("tempclr_cli", run_name="__main__")
except SystemExit as e:
    code = e.code
else:
    code = 0
print("PEAK_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def peak(args: list[str]) -> tuple[float, float]:
    """(peak resident MB, seconds) of `tempclr ARGS` in a fresh process of its own."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", RUN, *args],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(done.stderr)
    kb = next(int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("PEAK_KB"))
    return kb / 1024, seconds


def main() -> None:
    tiny = ["--model", "tiny", "--pretrained", "none", "--workers", "0", "-q"]
    rows = []
    for hours in (1 / 6, 10):
        video = long_video(hours)
        out = CACHE / f"mem_feats_{hours:g}h"
        subprocess.run(["rm", "-rf", str(out)], check=True)
        mb, s = peak(["extract", str(video), "-o", str(out), *tiny])
        rows.append((f"extract, {hours * 60:g}-min video at 1 fps ({int(hours * 3600)} clips)", mb, s))
    feats = next((CACHE / "mem_feats_10h").glob("*.npy"))
    for k in (50, 5000):
        steps = CACHE / f"steps_{k}.txt"
        steps.write_text("".join(f"step number {i} of the procedure\n" for i in range(k)))
        mb, s = peak(["align", str(feats), str(steps), "-f", "json", "--model", "tiny", "--pretrained", "none", "-q"])
        rows.append((f"align, {k} steps over the 10-hour features (36,000 clips)", mb, s))
    print("| run | peak memory (MB) | seconds |\n|---|---:|---:|")
    for name, mb, s in rows:
        print(f"| {name} | {mb:.0f} | {s:.1f} |")
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
