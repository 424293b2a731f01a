"""Compiled CPU kernels for `dtw.py` (numba, parallel over pairs).

Internal: `dtw.py` validates inputs and calls these on CPU tensors' NumPy views. Every
kernel takes a cost array (B, N, M) and per-pair lengths (B, 2) and touches only each
pair's own n x m block. Compiled on first use and cached on disk.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

INF = np.inf


@nb.njit(parallel=True, cache=True)
def hard_values(cost, lengths, out):  # pragma: no cover - compiled
    """out[b] = DTW value of pair b, two rolling rows per pair."""
    for b in nb.prange(cost.shape[0]):
        n, m = lengths[b, 0], lengths[b, 1]
        prev = np.empty(m, dtype=np.float64)
        cur = np.empty(m, dtype=np.float64)
        acc = 0.0
        for j in range(m):
            acc += cost[b, 0, j]
            prev[j] = acc
        for i in range(1, n):
            cur[0] = prev[0] + cost[b, i, 0]
            for j in range(1, m):
                best = prev[j - 1]
                if prev[j] < best:
                    best = prev[j]
                if cur[j - 1] < best:
                    best = cur[j - 1]
                cur[j] = best + cost[b, i, j]
            prev, cur = cur, prev
        out[b] = prev[m - 1]


@nb.njit(parallel=True, cache=True)
def hard_paths(cost, lengths, paths, path_len):  # pragma: no cover - compiled
    """Accumulated table per pair, then the optimal path from the end (ties: diag, left, up).

    paths (B, N+M-1, 2) receives each path from (n-1, m-1) back to (0, 0); path_len its length.
    """
    for b in nb.prange(cost.shape[0]):
        n, m = lengths[b, 0], lengths[b, 1]
        R = np.empty((n, m), dtype=np.float64)
        acc = 0.0
        for j in range(m):
            acc += cost[b, 0, j]
            R[0, j] = acc
        for i in range(1, n):
            R[i, 0] = R[i - 1, 0] + cost[b, i, 0]
            for j in range(1, m):
                best = R[i - 1, j - 1]
                if R[i - 1, j] < best:
                    best = R[i - 1, j]
                if R[i, j - 1] < best:
                    best = R[i, j - 1]
                R[i, j] = best + cost[b, i, j]
        i, j, k = n - 1, m - 1, 0
        paths[b, 0, 0], paths[b, 0, 1] = i, j
        while i > 0 or j > 0:
            if i == 0:
                j -= 1
            elif j == 0:
                i -= 1
            else:
                d, left, up = R[i - 1, j - 1], R[i, j - 1], R[i - 1, j]
                if d <= left and d <= up:
                    i -= 1
                    j -= 1
                elif left <= up:
                    j -= 1
                else:
                    i -= 1
            k += 1
            paths[b, k, 0], paths[b, k, 1] = i, j
        path_len[b] = k + 1


@nb.njit(parallel=True, cache=True)
def soft_forward(cost, lengths, gamma, R, out):  # pragma: no cover - compiled
    """Soft-DTW table R (B, N+2, M+2) with +inf borders, R[b, 0, 0] = 0; out[b] = R[b, n, m]."""
    for b in nb.prange(cost.shape[0]):
        n, m = lengths[b, 0], lengths[b, 1]
        for i in range(n + 2):
            for j in range(m + 2):
                R[b, i, j] = INF
        R[b, 0, 0] = 0.0
        for i in range(1, n + 1):
            for j in range(1, m + 1):
                r0 = -R[b, i - 1, j - 1] / gamma
                r1 = -R[b, i - 1, j] / gamma
                r2 = -R[b, i, j - 1] / gamma
                rmax = max(r0, max(r1, r2))
                s = math.exp(r0 - rmax) + math.exp(r1 - rmax) + math.exp(r2 - rmax)
                R[b, i, j] = cost[b, i - 1, j - 1] - gamma * (math.log(s) + rmax)
        out[b] = R[b, n, m]


@nb.njit(parallel=True, cache=True)
def soft_backward(cost, lengths, gamma, R, E):  # pragma: no cover - compiled
    """Expected alignment E (B, N, M) by the Cuturi-Blondel backward recursion (their Alg. 2)."""
    for b in nb.prange(cost.shape[0]):
        n, m = lengths[b, 0], lengths[b, 1]
        r = np.empty((n + 2, m + 2), dtype=np.float64)
        d = np.zeros((n + 2, m + 2), dtype=np.float64)
        e = np.zeros((n + 2, m + 2), dtype=np.float64)
        for i in range(n + 2):
            for j in range(m + 2):
                r[i, j] = R[b, i, j]
        for i in range(n):
            for j in range(m):
                d[i + 1, j + 1] = cost[b, i, j]
        for i in range(n + 2):
            r[i, m + 1] = -INF
        for j in range(m + 2):
            r[n + 1, j] = -INF
        r[n + 1, m + 1] = r[n, m]
        e[n + 1, m + 1] = 1.0
        for j in range(m, 0, -1):
            for i in range(n, 0, -1):
                a = math.exp((r[i + 1, j] - r[i, j] - d[i + 1, j]) / gamma)
                c = math.exp((r[i, j + 1] - r[i, j] - d[i, j + 1]) / gamma)
                g = math.exp((r[i + 1, j + 1] - r[i, j] - d[i + 1, j + 1]) / gamma)
                e[i, j] = e[i + 1, j] * a + e[i, j + 1] * c + e[i + 1, j + 1] * g
        for i in range(n):
            for j in range(m):
                E[b, i, j] = e[i + 1, j + 1]


@nb.njit(parallel=True, cache=True)
def pairwise_hard_values(sim, n_rows, x_len, m_cols, y_len, out):  # pragma: no cover - compiled
    """out[p, v] = DTW of cost 1 - sim over paragraph p's rows and video v's columns.

    sim is the (P*N, V*M) similarity matrix of all rows against all columns, as one GEMM
    writes it; the cost is formed on the fly, so no (P, V, N, M) tensor is materialised.
    """
    P, V = out.shape
    for pv in nb.prange(P * V):
        p, v = pv // V, pv % V
        n, m = x_len[p], y_len[v]
        r0, c0 = p * n_rows, v * m_cols
        prev = np.empty(m, dtype=np.float64)
        cur = np.empty(m, dtype=np.float64)
        acc = 0.0
        for j in range(m):
            acc += 1.0 - sim[r0, c0 + j]
            prev[j] = acc
        for i in range(1, n):
            cur[0] = prev[0] + 1.0 - sim[r0 + i, c0]
            for j in range(1, m):
                best = prev[j - 1]
                if prev[j] < best:
                    best = prev[j]
                if cur[j - 1] < best:
                    best = cur[j - 1]
                cur[j] = best + 1.0 - sim[r0 + i, c0 + j]
            prev, cur = cur, prev
        out[p, v] = prev[m - 1]
