"""DTW speed against the peers a user would pick instead, on identical inputs, one run.

    pip install '.[bench]' && python benchmarks/dtw.py

Inputs are float32 unit embeddings (cost = 1 - cosine). Peers that work on
embeddings with squared Euclidean cell costs (dtaidistance, tslearn) solve the same
problem: for unit vectors |a - b|^2 = 2 (1 - cos), so they return sqrt(2 x ours);
the script checks that before timing. Prints one table: median milliseconds and the
ratio peer / tempclr (> 1: tempclr is faster).
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from tempclr_cli.core.align.dtw import dtw, pairwise_dtw, soft_dtw


def timeit(fn, repeat: int = 7, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


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
    ours = timeit(lambda: dtw(t))
    acc, wp = librosa.sequence.dtw(C=C)
    assert np.isclose(acc[-1, -1], float(dtw(t).values))
    rows.append(("(a) 1 pair 10x100, value+path", "librosa.sequence.dtw", ours, timeit(lambda: librosa.sequence.dtw(C=C))))
    rows.append(("", "tslearn dtw_path_from_metric", ours, timeit(lambda: dtw_path_from_metric(C, metric="precomputed"))))


def case_b(rng, rows):
    """1,000 pairs N=10, M=100, value only."""
    import librosa
    from dtaidistance import dtw_ndim

    a, b = unit(rng, 1000, 10, 64), unit(rng, 1000, 100, 64)
    C = torch.from_numpy(1 - np.einsum("bnd,bmd->bnm", a, b)).double()
    ours = timeit(lambda: dtw(C, paths=False), repeat=5)
    Cn = C.numpy()
    rows.append(("(b) 1,000 pairs 10x100, value", "librosa loop", ours,
                 timeit(lambda: [librosa.sequence.dtw(C=c, backtrack=False) for c in Cn], repeat=3, warmup=1)))
    a64, b64 = a.astype(np.double), b.astype(np.double)
    ref = dtw_ndim.distance_fast(a64[0], b64[0])
    assert np.isclose(ref, np.sqrt(2 * float(dtw(C[0], paths=False).values)), rtol=1e-4)
    rows.append(("", "dtaidistance dtw_ndim.distance_fast loop (C)", ours,
                 timeit(lambda: [dtw_ndim.distance_fast(x, y) for x, y in zip(a64, b64)], repeat=3, warmup=1)))


def case_c(rng, rows):
    """All pairs of 200 paragraphs (N=8) x 200 videos (M=60), D=512, end to end from embeddings."""
    from dtaidistance import dtw_ndim
    from tslearn.metrics import cdist_dtw

    P, V = unit(rng, 200, 8, 512), unit(rng, 200, 60, 512)
    tp, tv = torch.from_numpy(P), torch.from_numpy(V)

    def floor():
        return tp.reshape(-1, 512) @ tv.reshape(-1, 512).T

    def ours():
        return pairwise_dtw(tp, tv)

    t_ours = timeit(ours, repeat=5)
    t_floor = timeit(floor, repeat=5)
    rows.append(("(c) 200x200 paragraphs x videos, D=512", "floor: cost GEMM alone", t_ours, t_floor))
    series = [s.astype(np.double) for s in P] + [s.astype(np.double) for s in V]
    block = ((0, 200), (200, 400))

    def dtai():
        return dtw_ndim.distance_matrix(series, parallel=True, use_c=True, block=block, compact=False)

    got = dtai()[:200, 200:]
    assert np.allclose(got, np.sqrt(2 * ours().double().numpy()), rtol=1e-3, atol=1e-3)
    rows.append(("", "dtaidistance distance_matrix parallel", t_ours, timeit(dtai, repeat=3, warmup=1)))
    rows.append(("", "tslearn cdist_dtw n_jobs=2", t_ours, timeit(lambda: cdist_dtw(P, V, n_jobs=2), repeat=3, warmup=1)))


def case_d(rng, rows, B, N, M):
    """Soft-DTW value + gradient, gamma 0.1."""
    import pysdtw
    from tslearn.metrics import SoftDTWLossPyTorch

    a, b = torch.from_numpy(unit(rng, B, N, 64)), torch.from_numpy(unit(rng, B, M, 64))
    C = (1 - torch.einsum("bnd,bmd->bnm", a, b)).contiguous()

    def ours():
        c = C.clone().requires_grad_(True)
        soft_dtw(c, gamma=0.1).sum().backward()
        return c.grad

    tslearn_loss = SoftDTWLossPyTorch(gamma=0.1, normalize=False, dist_func=lambda x, y: 1 - x @ y.transpose(1, 2))

    def tslearn():
        x = a.clone().requires_grad_(True)
        tslearn_loss(x, b).sum().backward()
        return x.grad

    sdtw = pysdtw.SoftDTW(gamma=0.1, dist_func=lambda x, y: 1 - x @ y.transpose(1, 2), use_cuda=False)

    def pysdtw_run():
        x = a.clone().requires_grad_(True)
        sdtw(x, b).sum().backward()
        return x.grad

    with torch.no_grad():
        mine = soft_dtw(C.double(), 0.1)
        assert torch.allclose(mine, tslearn_loss(a.double(), b.double()), rtol=1e-4)
    label = f"(d) soft-DTW value+grad, {B} pairs {N}x{M}"
    t = timeit(ours)
    rows.append((label, "tslearn SoftDTWLossPyTorch", t, timeit(tslearn)))
    rows.append(("", "pysdtw (CPU)", t, timeit(pysdtw_run)))


def main() -> None:
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    rows: list[tuple[str, str, float, float]] = []
    case_a(rng, rows)
    case_b(rng, rows)
    case_c(rng, rows)
    case_d(rng, rows, 64, 10, 100)
    case_d(rng, rows, 256, 20, 300)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; median ms")
    print("| case | peer | tempclr ms | peer ms | peer / tempclr |\n|---|---|---:|---:|---:|")
    for case, peer, ours, theirs in rows:
        print(f"| {case} | {peer} | {ours:.2f} | {theirs:.2f} | {theirs / ours:.2f} |")


if __name__ == "__main__":
    main()
