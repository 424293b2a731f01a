"""DTW speed against the peers a user would pick instead, on identical inputs, one run.

    pip install '.[bench]' && python benchmarks/dtw.py   # --cases d: only the soft-DTW case

Inputs are float32 unit embeddings (cost = 1 - cosine). Peers that work on
embeddings with squared Euclidean cell costs (dtaidistance, tslearn) solve the same
problem: for unit vectors |a - b|^2 = 2 (1 - cos), so they return sqrt(2 x ours);
the script checks that before timing. Prints one table: median milliseconds and the
ratio peer / tempclr (> 1: tempclr is faster). The contenders of a case are timed in
turns, one call each round, so a machine shared with other work slows them alike.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from tempclr_cli.core.align.dtw import dtw, pairwise_dtw, soft_dtw


def race(contenders: dict, repeat: int = 7, warmup: int = 2) -> dict:
    """Median milliseconds of each callable, timed round-robin (each round calls every one once)."""
    for fn in contenders.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in contenders}
    for _ in range(repeat):
        for name, fn in contenders.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) * 1000 for name, t in times.items()}


def rows_of(case: str, times: dict) -> list[tuple[str, str, float, float]]:
    """One table row per peer: (case, peer, tempclr ms, peer ms); the case named on the first."""
    ours = times.pop("tempclr")
    return [(case if k == 0 else "", peer, ours, ms) for k, (peer, ms) in enumerate(times.items())]


def unit(rng, *shape) -> np.ndarray:
    x = rng.standard_normal(shape).astype(np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def cost_of(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (1 - a @ b.T).astype(np.float64)


def case_a(rng, rows):
    """One pair N=10, M=100, value + path."""
    import librosa
    from tslearn.metrics import dtw_path_from_metric

    a, b = unit(rng, 10, 512), unit(rng, 100, 512)
    C = cost_of(a, b)
    t = torch.from_numpy(C)
    acc, wp = librosa.sequence.dtw(C=C)
    assert np.isclose(acc[-1, -1], float(dtw(t).values))
    times = race(
        {
            "tempclr": lambda: dtw(t),
            "librosa.sequence.dtw": lambda: librosa.sequence.dtw(C=C),
            "tslearn dtw_path_from_metric": lambda: dtw_path_from_metric(C, metric="precomputed"),
        }
    )
    rows += rows_of("(a) 1 pair 10x100, value+path", times)


def case_b(rng, rows):
    """1,000 pairs N=10, M=100, value only."""
    import librosa
    from dtaidistance import dtw_ndim

    a, b = unit(rng, 1000, 10, 64), unit(rng, 1000, 100, 64)
    C = torch.from_numpy(1 - np.einsum("bnd,bmd->bnm", a, b)).double()
    Cn = C.numpy()
    a64, b64 = a.astype(np.double), b.astype(np.double)
    ref = dtw_ndim.distance_fast(a64[0], b64[0])
    assert np.isclose(ref, np.sqrt(2 * float(dtw(C[0], paths=False).values)), rtol=1e-4)
    times = race(
        {
            "tempclr": lambda: dtw(C, paths=False),
            "librosa loop": lambda: [librosa.sequence.dtw(C=c, backtrack=False) for c in Cn],
            "dtaidistance dtw_ndim.distance_fast loop (C)": lambda: [
                dtw_ndim.distance_fast(x, y) for x, y in zip(a64, b64)
            ],
        },
        repeat=3,
        warmup=1,
    )
    rows += rows_of("(b) 1,000 pairs 10x100, value", times)


def case_c(rng, rows):
    """All pairs of 200 paragraphs (N=8) x 200 videos (M=60), D=512, end to end from embeddings."""
    from dtaidistance import dtw_ndim
    from tslearn.metrics import cdist_dtw

    P, V = unit(rng, 200, 8, 512), unit(rng, 200, 60, 512)
    tp, tv = torch.from_numpy(P), torch.from_numpy(V)
    series = [s.astype(np.double) for s in P] + [s.astype(np.double) for s in V]
    block = ((0, 200), (200, 400))

    def dtai():
        return dtw_ndim.distance_matrix(series, parallel=True, use_c=True, block=block, compact=False)

    assert np.allclose(dtai()[:200, 200:], np.sqrt(2 * pairwise_dtw(tp, tv).double().numpy()), rtol=1e-3, atol=1e-3)
    rows += rows_of(
        "(c) 200x200 paragraphs x videos, D=512",
        race(
            {
                "tempclr": lambda: pairwise_dtw(tp, tv),
                "floor: cost GEMM alone": lambda: tp.reshape(-1, 512) @ tv.reshape(-1, 512).T,
            },
            repeat=5,
        ),
    )
    rows += rows_of(
        "",
        race(
            {
                "tempclr": lambda: pairwise_dtw(tp, tv),
                "dtaidistance distance_matrix parallel": dtai,
                "tslearn cdist_dtw n_jobs=2": lambda: cdist_dtw(P, V, n_jobs=2),
            },
            repeat=3,
            warmup=1,
        ),
    )


def case_d(rng, rows, B, N, M):
    """Soft-DTW value + gradient, gamma 0.1, from D = 64 embeddings: every contender forms the cost
    1 - x y^T and backpropagates to x."""
    import pysdtw
    from tslearn.metrics import SoftDTWLossPyTorch

    a, b = torch.from_numpy(unit(rng, B, N, 64)), torch.from_numpy(unit(rng, B, M, 64))

    def cosine(x, y):
        return 1 - x @ y.transpose(1, 2)

    tslearn_loss = SoftDTWLossPyTorch(gamma=0.1, normalize=False, dist_func=cosine)
    sdtw = pysdtw.SoftDTW(gamma=0.1, dist_func=cosine, use_cuda=False)

    def value_and_grad(distance):
        def step():
            x = a.clone().requires_grad_(True)
            distance(x, b).sum().backward()
            return x.grad

        return step

    with torch.no_grad():
        assert torch.allclose(soft_dtw(cosine(a, b).double(), 0.1), tslearn_loss(a.double(), b.double()), rtol=1e-4)
    times = race(
        {
            "tempclr": value_and_grad(lambda x, y: soft_dtw(cosine(x, y), 0.1)),
            "tslearn SoftDTWLossPyTorch": value_and_grad(tslearn_loss),
            "pysdtw (CPU)": value_and_grad(sdtw),
        }
    )
    rows += rows_of(f"(d) soft-DTW value+grad, {B} pairs {N}x{M}", times)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="abcd", help="which cases to run, e.g. d (default: abcd)")
    cases = parser.parse_args().cases
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    rows: list[tuple[str, str, float, float]] = []
    for name, case in (("a", case_a), ("b", case_b), ("c", case_c)):
        if name in cases:
            case(rng, rows)
    if "d" in cases:
        case_d(rng, rows, 64, 10, 100)
        case_d(rng, rows, 256, 20, 300)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; median ms")
    print("| case | peer | tempclr ms | peer ms | peer / tempclr |\n|---|---|---:|---:|---:|")
    for case, peer, ours, theirs in rows:
        print(f"| {case} | {peer} | {ours:.2f} | {theirs:.2f} | {theirs / ours:.2f} |")


if __name__ == "__main__":
    main()
