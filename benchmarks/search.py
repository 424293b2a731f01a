"""Free-text moment search over a large store: a query's time and memory, packed store vs a plain loop.

    python benchmarks/search.py                    # 1,000,000 clips (16,667 videos of 60 clips, dim 512)
    python benchmarks/search.py --clips 100000     # a quicker run

The store is a real folder as `tempclr extract` writes it (benchmarks/.cache/search_N): one
(60, 512) float16 `.npy` per video and `index.jsonl`. Queries are seeded random unit vectors
(what a text tower gives costs the same to score; the tower itself is not timed: ViT-B-32's
embeds a sentence in tens of milliseconds on a CPU). Every row is a fresh process with 2
threads; "warm" means the files are in the page cache (each row runs once before it is timed).

Rows:
- pack: `tempclr search`'s first run on a store, packing it beside its index (once);
- packed, 1 query: open the cached pack (memory-mapped) and answer one query, as a new
  `tempclr search` process does after its imports;
- packed, 20 queries: one load, 20 queries, time per query (`--queries`);
- plain loop, 1 query: read every video's .npy, to float32, unit rows, score, the same moment rule.

Peak RSS (VmHWM) counts the mapped pages of the pack that a query touched: they are the
page cache, shared between processes and given back under pressure; the private memory
(RssAnon at the end) is what the process itself holds. Both ways find the same moments.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CACHE = Path(__file__).parent / ".cache"
CLIPS, DIM, TOP_K = 60, 512, 10


def make_store(n_clips: int) -> Path:
    """A features folder of n_clips / 60 videos of random float16 unit clips, made once."""
    root = CACHE / f"search_{n_clips}" / "feats"
    if (root.parent / "done").exists():
        return root
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(n_clips)
    starts = [float(k) for k in range(CLIPS)]
    with open(root / "index.jsonl", "w") as index:
        for v in range(n_clips // CLIPS):
            clips = rng.standard_normal((CLIPS, DIM), dtype=np.float32)
            clips /= np.linalg.norm(clips, axis=1, keepdims=True)
            np.save(root / f"v{v:06d}.npy", clips.astype(np.float16))
            index.write(
                json.dumps(
                    {
                        "features": f"v{v:06d}.npy",
                        "status": "ok",
                        "clips": CLIPS,
                        "dim": DIM,
                        "starts": starts,
                        "ends": [s + 1 for s in starts],
                        "model": "ViT-B-32",
                        "pretrained": "openai",
                        "seed": 0,
                        "dtype": "float16",
                    }
                )
                + "\n"
            )
    (root.parent / "done").touch()
    return root


def queries(n: int):
    import torch

    q = torch.from_numpy(np.random.default_rng(1).standard_normal((n, DIM), dtype=np.float32))
    return torch.nn.functional.normalize(q, dim=-1)


def status(key: str) -> float:
    """A field of /proc/self/status in MB (VmHWM: this process's peak RSS; RssAnon: its private memory now)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {key} in /proc/self/status (Linux only)")


def packed(root: Path, n_queries: int) -> dict:
    from tempclr_cli.core.data.packed import pack
    from tempclr_cli.core.eval.search import clip_scores, moment_runs

    q = queries(n_queries)
    t0 = time.perf_counter()
    store = pack(root)
    opened = time.perf_counter() - t0
    times, found = [], []
    for k in range(n_queries):  # one at a time, as answers stream out
        t = time.perf_counter()
        scores = clip_scores(store.matrix, q[k : k + 1])[0]
        found.append(moment_runs(scores, store.offsets, TOP_K))
        times.append(time.perf_counter() - t)
    return {
        "open_s": opened,
        "query_s": statistics.median(times),
        "total_s": time.perf_counter() - t0,
        "moments": found[0],
    }


def plain_loop(root: Path) -> dict:
    """What one would write without a pack: every .npy read, converted and scored, for one query."""
    from tempclr_cli.core.eval.search import moment_runs

    q = queries(1)[0].numpy()
    t0 = time.perf_counter()
    scores, offsets = [], [0]
    for path in sorted(root.glob("*.npy")):
        clips = np.load(path).astype(np.float32)
        clips /= np.maximum(np.linalg.norm(clips, axis=1, keepdims=True), 1e-12)
        scores.append(clips @ q)
        offsets.append(offsets[-1] + len(clips))
    scores = np.concatenate(scores)
    found = moment_runs(scores, np.array(offsets), TOP_K)
    return {"query_s": time.perf_counter() - t0, "total_s": time.perf_counter() - t0, "moments": found}


def child(n_clips: int, mode: str) -> dict:
    import torch

    torch.set_num_threads(2)
    imports = status("VmHWM")
    root = CACHE / f"search_{n_clips}" / "feats"
    if mode == "pack":
        for old in root.glob("index.search*"):
            old.unlink()
        out = packed(root, 1)
    elif mode == "loop":
        out = plain_loop(root)
    else:
        out = packed(root, int(mode))
    return {**out, "imports_mb": imports, "peak_mb": status("VmHWM"), "private_mb": status("RssAnon")}


def measure(n_clips: int, mode: str, warm: bool = True) -> dict:
    run = [sys.executable, __file__, "--child", str(n_clips), mode]
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    if warm:  # fill the page cache with what this row reads
        subprocess.run(run, capture_output=True, text=True, env=env, check=True)
    out = subprocess.run(run, capture_output=True, text=True, env=env)
    if out.returncode:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=2)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(int(args.child[0]), args.child[1])))
        return
    t0 = time.perf_counter()
    make_store(args.clips)
    print(
        f"store: {args.clips:,} clips in {args.clips // CLIPS:,} videos ({time.perf_counter() - t0:.0f} s to make "
        f"or find), dim {DIM}, float16; 2 threads, files in the page cache"
    )
    rows = {
        "pack (first search of a store)": measure(args.clips, "pack", warm=False),
        "packed, 1 query (a new process)": measure(args.clips, "1"),
        "packed, 20 queries (one load)": measure(args.clips, "20"),
        "plain loop over the .npy files, 1 query": measure(args.clips, "loop"),
    }
    same = (
        rows["packed, 1 query (a new process)"]["moments"] == rows["plain loop over the .npy files, 1 query"]["moments"]
    )
    print("| | open s | s per query | peak RSS MB | private MB at end | imports MB |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        opened = f"{r['open_s']:.2f}" if "open_s" in r else "-"
        print(
            f"| {name} | {opened} | {r['query_s']:.3f} | {r['peak_mb']:.0f} | {r['private_mb']:.0f} | "
            f"{r['imports_mb']:.0f} |"
        )
    print(f"same top-{TOP_K} moments from both: {same}")


if __name__ == "__main__":
    main()
