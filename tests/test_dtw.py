"""DTW core against the authors' reference values, a plain-Python DTW, and librosa."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tempclr_cli.core.align.dtw import DTWInputError, dtw, match_with_drops, otam, segment, soft_dtw

# --- independent slow references (plain Python, O(N*M) loops) -------------------------


def softmin(values, gamma):
    if gamma == 0:
        return min(values)
    lo = min(values)
    return lo - gamma * math.log(sum(math.exp(-(v - lo) / gamma) for v in values))


def py_dtw(D, gamma=0.0):
    n, m = len(D), len(D[0])
    R = [[math.inf] * m for _ in range(n)]
    for i in range(n):
        for j in range(m):
            if i == 0 and j == 0:
                R[i][j] = D[0][0]
                continue
            prev = []
            if i > 0 and j > 0:
                prev.append(R[i - 1][j - 1])
            if j > 0:
                prev.append(R[i][j - 1])
            if i > 0:
                prev.append(R[i - 1][j])
            R[i][j] = D[i][j] + softmin(prev, gamma)
    return R[-1][-1]


def py_otam(D, gamma):
    """Direct transcription of the released OTAM_cum_dist (one direction)."""
    n, m = len(D), len(D[0])
    P = [[0.0] + list(row) + [0.0] for row in D]
    W = m + 2
    R = [[0.0] * W for _ in range(n)]
    for j in range(1, W):
        R[0][j] = P[0][j] + R[0][j - 1]
    for i in range(1, n):
        R[i][1] = P[i][1] + softmin([R[i - 1][0], R[i - 1][1], R[i][0]], gamma)
        for j in range(2, W - 1):
            R[i][j] = P[i][j] + softmin([R[i - 1][j - 1], R[i][j - 1]], gamma)
        R[i][W - 1] = P[i][W - 1] + softmin([R[i - 1][W - 2], R[i - 1][W - 1], R[i][W - 2]], gamma)
    return R[-1][-1]


def path_cost(D, path):
    return sum(D[i][j] for i, j in path)


SHAPES = [(1, 1), (1, 6), (6, 1), (3, 3), (4, 9), (9, 4), (12, 5)]


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(params=["compiled", "rowscan"], autouse=True)
def backend(request, monkeypatch):
    """Every test runs on both CPU paths: the numba kernels and the torch row scan (CUDA's path)."""
    import tempclr_cli.core.align.dtw as module

    monkeypatch.setattr(module, "USE_COMPILED", request.param == "compiled")
    return request.param


# --- reference values from the authors' formulas ------------------------------------------


def test_matches_reference_vectors(reference):
    for case in reference["dtw"]:
        D = torch.tensor(case["D"], dtype=torch.float64)
        assert list(D.shape) == case["shape"]
        assert float(dtw(D).values) == pytest.approx(case["hard_dtw"], abs=1e-6)
        for g in (0.1, 1.0):
            value = soft_dtw(D, gamma=g)
            assert float(value) == pytest.approx(case[f"soft_dtw_gamma_{g}"], abs=1e-6)
            grad = torch.autograd.functional.jacobian(lambda x: soft_dtw(x, gamma=g), D)
            np.testing.assert_allclose(grad.numpy(), np.array(case[f"soft_dtw_grad_gamma_{g}"]), atol=1e-5)
        one = otam(D, gamma=0.1, symmetric=False)
        both = otam(D, gamma=0.1, symmetric=True)
        assert float(one) == pytest.approx(case["otam_one_dir_gamma_0.1"], abs=1e-6)
        assert float(both) == pytest.approx(case["otam_symmetric_gamma_0.1"], abs=1e-6)


# --- against the plain-Python implementations ------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("gamma", [0.0, 0.1, 1.0])
def test_values_match_plain_python(rng, shape, gamma):
    D = rng.random(shape) * 2
    t = torch.tensor(D)
    assert float(soft_dtw(t, gamma=gamma)) == pytest.approx(py_dtw(D.tolist(), gamma), abs=1e-9)
    expected = py_otam(D.tolist(), gamma)
    assert float(otam(t, gamma=gamma, symmetric=False)) == pytest.approx(expected, abs=1e-9)
    sym = expected + py_otam(D.T.tolist(), gamma)
    assert float(otam(t, gamma=gamma)) == pytest.approx(sym, abs=1e-9)


def test_batched_mixed_lengths_equal_one_by_one(rng):
    shapes = [(3, 7), (5, 2), (1, 9), (6, 6), (2, 1)]
    N, M = 6, 9
    batch = torch.full((len(shapes), N, M), 123.0, dtype=torch.float64)  # padding is ignored
    singles = []
    for b, (n, m) in enumerate(shapes):
        D = torch.tensor(rng.random((n, m)))
        batch[b, :n, :m] = D
        singles.append(D)
    lengths = torch.tensor(shapes)
    for gamma in (0.0, 0.1):
        got = soft_dtw(batch, gamma=gamma, lengths=lengths)
        want = torch.stack([soft_dtw(D, gamma=gamma) for D in singles])
        torch.testing.assert_close(got, want)
        got = otam(batch, gamma=gamma, lengths=lengths)
        want = torch.stack([otam(D, gamma=gamma) for D in singles])
        torch.testing.assert_close(got, want)
    hard = dtw(batch, lengths=lengths)
    for b, D in enumerate(singles):
        one = dtw(D)
        assert float(hard.values[b]) == pytest.approx(float(one.values))
        assert hard.paths[b].tolist() == one.paths.tolist()


def test_soft_dtw_gradients_pass_gradcheck(rng):
    D = torch.tensor(rng.random((3, 4, 6)), requires_grad=True)
    lengths = torch.tensor([[4, 6], [2, 5], [3, 1]])
    assert torch.autograd.gradcheck(lambda x: soft_dtw(x, gamma=0.1, lengths=lengths), (D,))
    assert torch.autograd.gradcheck(lambda x: otam(x, gamma=0.5, lengths=lengths), (D,))


def test_soft_dtw_gradient_is_zero_on_padding_and_float32_works(rng):
    D = torch.tensor(rng.random((2, 4, 5)), dtype=torch.float32, requires_grad=True)
    lengths = torch.tensor([[2, 3], [4, 5]])
    soft_dtw(D, lengths=lengths).sum().backward()
    assert D.grad.dtype == torch.float32
    assert torch.all(D.grad[0, 2:] == 0) and torch.all(D.grad[0, :, 3:] == 0)
    # the gradient is an expected alignment: row sums >= 1 inside the block (every row is visited)
    assert torch.all(D.grad[1].sum(1) >= 1 - 1e-5)


# --- hard DTW paths ------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_path_is_valid_and_optimal(rng, shape):
    D = rng.random(shape)
    result = dtw(torch.tensor(D))
    path = result.paths.tolist()
    assert path[0] == [0, 0] and path[-1] == [shape[0] - 1, shape[1] - 1]
    for (i0, j0), (i1, j1) in zip(path, path[1:]):
        assert (i1 - i0, j1 - j0) in {(1, 1), (0, 1), (1, 0)}
    assert path_cost(D, path) == pytest.approx(float(result.values))
    assert float(result.values) == pytest.approx(py_dtw(D.tolist()))


@pytest.mark.parametrize("shape", SHAPES + [(10, 100)])
def test_hard_dtw_matches_librosa(rng, shape):
    librosa_sequence = pytest.importorskip("librosa.sequence")
    D = rng.random(shape)
    acc, wp = librosa_sequence.dtw(C=D)
    result = dtw(torch.tensor(D))
    assert float(result.values) == pytest.approx(acc[-1, -1])
    assert result.paths.tolist() == wp[::-1].tolist()


# --- invalid input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cost, lengths, message",
    [
        (torch.zeros(0, 3), None, "empty"),
        (torch.zeros(2, 0), None, "empty"),
        (torch.tensor([[0.0, float("nan")]]), None, "NaN"),
        (torch.tensor([[0.0, float("inf")]]), None, "NaN or inf"),
        (torch.zeros(2, 3, 3), torch.tensor([[3, 3]]), "lengths has 1 rows"),
        (torch.zeros(1, 3, 3), torch.tensor([[4, 3]]), "must lie in"),
        (torch.zeros(1, 3, 3), torch.tensor([[0, 3]]), "must lie in"),
        (torch.zeros(3), None, "must be (N, M)"),
    ],
)
def test_invalid_input_raises_clear_error(cost, lengths, message):
    for fn in (lambda: dtw(cost, lengths), lambda: soft_dtw(cost, 0.1, lengths), lambda: otam(cost, 0.1, True, lengths)):
        with pytest.raises(DTWInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
            fn()


def test_nan_outside_a_pairs_block_is_ignored():
    D = torch.full((1, 3, 3), float("nan"), dtype=torch.float64)
    D[0, :2, :2] = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    assert float(dtw(D, lengths=[[2, 2]]).values[0]) == 0.0


# --- segmentation with background ------------------------------------------------------------------


def brute_force_segment(D, drop):
    """Enumerate every ordered contiguous segmentation (small inputs only)."""
    import itertools

    K, T = D.shape
    best = (math.inf, None)
    for cuts in itertools.combinations_with_replacement(range(T + 1), 2 * K):
        spans = [(cuts[2 * k], cuts[2 * k + 1]) for k in range(K)]
        if any(s >= e for s, e in spans):  # every step gets at least one clip
            continue
        covered = sum(e - s for s, e in spans)
        if drop is None and covered != T:
            continue
        c = sum(D[k, s:e].sum() for k, (s, e) in enumerate(spans)) + (0 if drop is None else drop * (T - covered))
        if c < best[0] - 1e-12:
            best = (c, [(s, e - 1) for s, e in spans])
    return best


@pytest.mark.parametrize("drop", [None, 0.3, 0.6])
def test_segment_matches_brute_force(rng, drop):
    for _ in range(20):
        K, T = rng.integers(1, 4), rng.integers(3, 8)
        if K > T:
            continue
        D = rng.random((K, T))
        got = segment(torch.tensor(D), drop_cost=drop)
        cost, spans = brute_force_segment(D, drop)
        assert got.cost == pytest.approx(cost)
        got_cost = sum(D[k, s : e + 1].sum() for k, (s, e) in enumerate(zip(got.starts, got.ends)))
        covered = sum(e - s + 1 for s, e in zip(got.starts, got.ends))
        assert got_cost + (0 if drop is None else drop * (T - covered)) == pytest.approx(cost)
        assert all(e1 < s2 for e1, s2 in zip(got.ends, got.starts[1:]))


@pytest.mark.parametrize("drop", [None, 0.5])
@pytest.mark.parametrize("cells", [0, 40])
def test_segment_in_blocks_matches_brute_force_and_the_whole_dp(rng, drop, cells, monkeypatch):
    """Past SEGMENT_CELLS the backtracking recomputes sqrt(K)-row blocks from checkpoints:
    the same segmentation as the brute force (small) and as the whole DP (larger)."""
    import tempclr_cli.core.align.dtw as dtw_module

    for _ in range(15):
        K, T = int(rng.integers(2, 5)), int(rng.integers(5, 9))
        D = rng.random((K, T))
        cost, spans = brute_force_segment(D, drop)
        monkeypatch.setattr(dtw_module, "SEGMENT_CELLS", cells)
        got = segment(torch.tensor(D), drop_cost=drop)
        assert got.cost == pytest.approx(cost)
    D = torch.tensor(rng.random((37, 400)))  # 7 blocks of 6 rows, the last one short
    monkeypatch.setattr(dtw_module, "SEGMENT_CELLS", 2**24)
    whole = segment(D, drop_cost=drop)
    monkeypatch.setattr(dtw_module, "SEGMENT_CELLS", 0)
    blocks = segment(D, drop_cost=drop)
    assert (blocks.starts, blocks.ends) == (whole.starts, whole.ends) and blocks.cost == whole.cost


def test_segment_rejects_more_steps_than_clips():
    with pytest.raises(DTWInputError, match="3 steps but only 2 clips"):
        segment(torch.zeros(3, 2))


def test_pairwise_dtw_equals_dtw_on_each_pairs_cost(rng):
    from tempclr_cli.core.align.dtw import pairwise_dtw

    x = torch.nn.functional.normalize(torch.tensor(rng.standard_normal((3, 5, 8))), dim=-1)
    y = torch.nn.functional.normalize(torch.tensor(rng.standard_normal((4, 7, 8))), dim=-1)
    xl, yl = torch.tensor([5, 2, 4]), torch.tensor([7, 1, 3, 6])
    got = pairwise_dtw(x, y, xl, yl)
    for p in range(3):
        for v in range(4):
            cost = 1 - x[p, : xl[p]] @ y[v, : yl[v]].T
            assert float(got[p, v]) == pytest.approx(py_dtw(cost.tolist()), abs=1e-9)
    with pytest.raises(DTWInputError, match="lengths must lie"):
        pairwise_dtw(x, y, torch.tensor([6, 1, 1]), yl)


def slow_match_with_drops(c: list[list[float]], drop_row: float, drop_col: float) -> float:
    """Every monotone path from (0, 0) to (N, M), by plain recursion: a step down takes row i
    (matched to column j again, or dropped), right takes column j (matched to row i again, or
    dropped), diagonal matches both."""
    N, M = len(c), len(c[0])

    def best(i: int, j: int) -> float:
        if i == 0 and j == 0:
            return 0.0
        options = []
        if i > 0 and j > 0:
            cell = c[i - 1][j - 1]
            options += [best(i - 1, j - 1) + cell, best(i - 1, j) + min(cell, drop_row), best(i, j - 1) + min(cell, drop_col)]
        if i > 0 and j == 0:
            options.append(best(i - 1, 0) + drop_row)
        if j > 0 and i == 0:
            options.append(best(0, j - 1) + drop_col)
        return min(options)

    return best(N, M)


@pytest.mark.parametrize("seed", range(6))
def test_matching_with_drops_on_both_sides_equals_every_path_tried(seed):
    rng = np.random.default_rng(seed)
    n, m = rng.integers(1, 5, 2)
    cost = rng.uniform(0, 1, (n, m))
    drops = rng.uniform(0.2, 0.8, 2)
    matched, total = match_with_drops(torch.tensor(cost), *drops)
    assert total == pytest.approx(slow_match_with_drops(cost.tolist(), *drops))
    assert matched.shape == (m,) and bool((matched[matched >= 0].diff() >= 0).all())  # monotone


def test_matching_with_drops_leaves_what_has_no_counterpart():
    """Reference clips a a b b x (x: only in the reference); target n a a b (n: only in the
    target). The target's n is dropped, the reference's x is never matched."""
    a, b, x, n = torch.eye(4)
    ref, target = torch.stack([a, a, b, b, x]), torch.stack([n, a, a, b])
    matched, _ = match_with_drops(1 - ref @ target.T, 0.5, 0.5)
    assert matched.tolist()[0] == -1
    assert [int(ref[i].argmax()) for i in matched.tolist()[1:]] == [0, 0, 1]
    assert 4 not in matched.tolist()
