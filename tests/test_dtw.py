"""DTW core against the authors' reference values, a plain-Python DTW, and librosa."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tempclr_cli.core.align import measures
from tempclr_cli.core.align.dtw import DTWInputError, dtw, otam, soft_dtw
from tempclr_cli.core.align.segment import match_with_drops, segment

# --- independent slow references (plain Python, O(N*M) loops) -------------------------


def softmin(values, gamma):
    if gamma == 0:
        return min(values)
    lo = min(values)
    if lo == math.inf:  # every way in is blocked (a band)
        return lo
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
    for fn in (
        lambda: dtw(cost, lengths),
        lambda: soft_dtw(cost, 0.1, lengths),
        lambda: otam(cost, 0.1, True, lengths),
    ):
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
    import tempclr_cli.core.align.segment as segment_module

    for _ in range(15):
        K, T = int(rng.integers(2, 5)), int(rng.integers(5, 9))
        D = rng.random((K, T))
        cost, spans = brute_force_segment(D, drop)
        monkeypatch.setattr(segment_module, "SEGMENT_CELLS", cells)
        got = segment(torch.tensor(D), drop_cost=drop)
        assert got.cost == pytest.approx(cost)
    D = torch.tensor(rng.random((37, 400)))  # 7 blocks of 6 rows, the last one short
    monkeypatch.setattr(segment_module, "SEGMENT_CELLS", 2**24)
    whole = segment(D, drop_cost=drop)
    monkeypatch.setattr(segment_module, "SEGMENT_CELLS", 0)
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
            options += [
                best(i - 1, j - 1) + cell,
                best(i - 1, j) + min(cell, drop_row),
                best(i, j - 1) + min(cell, drop_col),
            ]
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


# --- band and subsequence ----------------------------------------------------------------------


def every_path(n, m, subseq=False):
    """Every monotone path (moves (1,1), (0,1), (1,0)) from (0, 0) to (n-1, m-1), or with `subseq`
    from any (0, s) to any (n-1, e): each path once."""

    def extend(path):
        i, j = path[-1]
        if i == n - 1 and (subseq or j == m - 1):
            yield path
        for di, dj in ((1, 1), (0, 1), (1, 0)):
            if i + di < n and j + dj < m:
                yield from extend(path + [(i + di, j + dj)])

    for s in range(m) if subseq else [0]:
        yield from extend([(0, s)])


def brute_force(D, gamma, allowed=None, subseq=False):
    """(value, expected alignment) over every path inside `allowed`: the soft-min of the path costs and
    each cell's probability of being on the path (gamma 0: the unique best path's cells)."""
    n, m = D.shape
    paths = [p for p in every_path(n, m, subseq) if allowed is None or all(allowed[i, j] for i, j in p)]
    costs = np.array([sum(D[i, j] for i, j in p) for p in paths])
    if gamma == 0:
        weights = (np.arange(len(paths)) == costs.argmin()).astype(float)
        value = costs.min()
    else:
        weights = np.exp(-(costs - costs.min()) / gamma)
        value = costs.min() - gamma * math.log(weights.sum())
        weights /= weights.sum()
    E = np.zeros_like(D)
    for p, w in zip(paths, weights):
        for i, j in p:
            E[i, j] += w
    return value, E


def sakoe_chiba(n, m, band):
    tslearn_metrics = pytest.importorskip("tslearn.metrics")
    return np.asarray(tslearn_metrics.sakoe_chiba_mask(n, m, band), dtype=bool)


@pytest.mark.parametrize("shape", [(1, 1), (1, 4), (4, 1), (3, 3), (3, 5), (5, 3), (4, 4)])
@pytest.mark.parametrize("band", [None, 0, 1, 2])
@pytest.mark.parametrize("subseq", [False, True])
def test_band_and_subsequence_equal_every_path_tried(rng, shape, band, subseq):
    """Values, gradients and hard paths against the soft-min over every allowed path, enumerated."""
    D = rng.random(shape) * 2
    allowed = None if band is None else sakoe_chiba(*shape, band)
    for gamma in (0.0, 0.1, 1.0):
        value, E = brute_force(D, gamma, allowed, subseq)
        x = torch.tensor(D, requires_grad=True)
        got = soft_dtw(x, gamma=gamma, band=band, subsequence=subseq)
        assert float(got.detach()) == pytest.approx(value, abs=1e-9)
        if gamma:
            got.backward()
            np.testing.assert_allclose(x.grad.numpy(), E, atol=1e-9)
    hard = dtw(torch.tensor(D), band=band, subsequence=subseq)
    on_path = np.zeros(shape)
    on_path[tuple(hard.paths.T.tolist())] = 1
    np.testing.assert_array_equal(on_path, brute_force(D, 0.0, allowed, subseq)[1])


def test_band_worked_example():
    """3 x 3: the cheap cells lie one above the diagonal. Radius 0 keeps the diagonal alone (0 + 9 + 0);
    radius 1 lets the path through (0, 1) and (1, 2) (cost 0)."""
    D = torch.tensor([[0.0, 0.0, 9.0], [9.0, 9.0, 0.0], [9.0, 9.0, 0.0]])
    narrow = dtw(D, band=0)
    assert float(narrow.values) == 9.0 and narrow.paths.tolist() == [[0, 0], [1, 1], [2, 2]]
    wide = dtw(D, band=1)
    assert float(wide.values) == 0.0 and wide.paths.tolist() == [[0, 0], [0, 1], [1, 2], [2, 2]]
    # unequal lengths: the band widens by |m - n| (tslearn's mask), so the corner stays reachable
    assert float(dtw(torch.zeros(2, 6), band=0).values) == 0.0


def test_subsequence_worked_examples():
    """A 2-step query inside a 4-clip sequence: it matches clips 1 and 2 for free. One query row over
    costs (a, b): the paths are [a], [a, b] and [b], each counted once in the soft value."""
    D = torch.tensor([[5.0, 0.0, 5.0, 5.0], [5.0, 5.0, 0.0, 5.0]])
    found = dtw(D, subsequence=True)
    assert float(found.values) == 0.0 and found.paths.tolist() == [[0, 1], [1, 2]]
    a, b, g = 0.3, 0.5, 0.2
    expected = -g * math.log(math.exp(-a / g) + math.exp(-(a + b) / g) + math.exp(-b / g))
    assert float(soft_dtw(torch.tensor([[a, b]], dtype=torch.float64), gamma=g, subsequence=True)) == pytest.approx(
        expected, abs=1e-12
    )


@pytest.mark.parametrize("shape", [(6, 11), (11, 6), (8, 8), (1, 5)])
@pytest.mark.parametrize("band", [0, 1, 3])
def test_band_matches_tslearn(rng, shape, band):
    tslearn_metrics = pytest.importorskip("tslearn.metrics")
    x, y = rng.standard_normal((shape[0], 3)), rng.standard_normal((shape[1], 3))
    D = ((x[:, None] - y[None]) ** 2).sum(-1)  # tslearn's squared Euclidean cell cost
    path, score = tslearn_metrics.dtw_path_from_metric(
        D, metric="precomputed", global_constraint="sakoe_chiba", sakoe_chiba_radius=band
    )
    hard = dtw(torch.tensor(D), band=band)
    assert float(hard.values) == pytest.approx(score, abs=1e-9)
    assert hard.paths.tolist() == [list(p) for p in path]
    for gamma in (0.1, 1.0):
        E, value = tslearn_metrics.soft_dtw_alignment(
            x, y, gamma=gamma, global_constraint="sakoe_chiba", sakoe_chiba_radius=band
        )
        t = torch.tensor(D, requires_grad=True)
        got = soft_dtw(t, gamma=gamma, band=band)
        assert float(got.detach()) == pytest.approx(float(value), abs=1e-5)
        got.backward()
        np.testing.assert_allclose(t.grad.numpy(), np.asarray(E), atol=1e-5)


@pytest.mark.parametrize("shape", [(3, 20), (5, 40), (1, 7), (4, 4), (6, 9)])
def test_subsequence_matches_librosa(rng, shape):
    librosa_sequence = pytest.importorskip("librosa.sequence")
    D = rng.random(shape)
    acc, wp = librosa_sequence.dtw(C=D, subseq=True)
    found = dtw(torch.tensor(D), subsequence=True)
    assert float(found.values) == pytest.approx(acc[-1].min())
    assert found.paths.tolist() == wp[::-1].tolist()
    assert float(soft_dtw(torch.tensor(D), gamma=0.0, subsequence=True)) == pytest.approx(acc[-1].min())


def py_otam_masked(D, gamma, allowed):
    """The released OTAM recursion with the cells outside `allowed` at infinite cost."""
    return py_otam(np.where(allowed, D, math.inf).tolist(), gamma)


@pytest.mark.parametrize("shape", [(4, 6), (6, 4), (5, 5), (1, 3)])
@pytest.mark.parametrize("band", [0, 1, 2])
def test_otam_band_and_subsequence_match_the_released_recursion(rng, shape, band):
    D = rng.random(shape) * 2
    allowed = sakoe_chiba(*shape, band)
    for gamma in (0.0, 0.1, 1.0):
        one = py_otam_masked(D, gamma, allowed)
        back = py_otam_masked(D.T, gamma, allowed.T)
        t = torch.tensor(D)
        assert float(otam(t, gamma=gamma, symmetric=False, band=band)) == pytest.approx(one, abs=1e-9)
        assert float(otam(t, gamma=gamma, band=band)) == pytest.approx(one + back, abs=1e-9)
        assert float(otam(t, gamma=gamma, symmetric=False, subsequence=True)) == pytest.approx(
            py_otam(D.T.tolist(), gamma)
        )


def test_constrained_gradients_pass_gradcheck(rng):
    D = torch.tensor(rng.random((3, 4, 6)), requires_grad=True)
    lengths = torch.tensor([[4, 6], [2, 5], [3, 1]])
    for band, subseq in ((1, False), (None, True), (0, True)):
        assert torch.autograd.gradcheck(lambda x: soft_dtw(x, 0.1, lengths, band=band, subsequence=subseq), (D,))
    assert torch.autograd.gradcheck(lambda x: otam(x, 0.5, lengths=lengths, band=1), (D,))
    assert torch.autograd.gradcheck(lambda x: otam(x, 0.5, False, lengths, subsequence=True), (D,))


@pytest.mark.parametrize("band, subseq", [(1, False), (None, True), (2, True)])
def test_constrained_batches_with_mixed_lengths_equal_one_by_one(rng, band, subseq):
    """The band follows each pair's own (n, m), and the free end stops at each pair's m."""
    shapes = [(3, 7), (5, 2), (1, 9), (6, 6), (2, 1)]
    batch = torch.full((len(shapes), 6, 9), 123.0, dtype=torch.float64)
    singles = []
    for b, (n, m) in enumerate(shapes):
        batch[b, :n, :m] = D = torch.tensor(rng.random((n, m)))
        singles.append(D)
    lengths = torch.tensor(shapes)
    for gamma in (0.0, 0.1):
        got = soft_dtw(batch, gamma, lengths, band=band, subsequence=subseq)
        want = torch.stack([soft_dtw(D, gamma, band=band, subsequence=subseq) for D in singles])
        torch.testing.assert_close(got, want)
        got = otam(batch, gamma, lengths=lengths, band=band, symmetric=not subseq, subsequence=subseq)
        want = torch.stack([otam(D, gamma, band=band, symmetric=not subseq, subsequence=subseq) for D in singles])
        torch.testing.assert_close(got, want)
    hard = dtw(batch, lengths, band=band, subsequence=subseq)
    for b, D in enumerate(singles):
        one = dtw(D, band=band, subsequence=subseq)
        assert (
            float(hard.values[b]) == pytest.approx(float(one.values)) and hard.paths[b].tolist() == one.paths.tolist()
        )


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda D: dtw(D, band=-1), "band must be"),
        (lambda D: soft_dtw(D, band=1.5), "band must be"),
        (lambda D: otam(D, subsequence=True), "pass symmetric=False"),
        (lambda D: dtw(D, backend="cuda"), "unknown DTW backend"),
    ],
)
def test_bad_constraints_and_backends_raise_clear_errors(call, message):
    with pytest.raises(DTWInputError, match=message):
        call(torch.rand(3, 4))


def test_the_environment_variable_picks_the_backend(monkeypatch):
    monkeypatch.setenv("TEMPCLR_DTW_BACKEND", "torch")
    with pytest.raises(DTWInputError, match="unknown DTW backend 'gpu'"):
        monkeypatch.setenv("TEMPCLR_DTW_BACKEND", "gpu")
        dtw(torch.rand(3, 4))
    monkeypatch.setenv("TEMPCLR_DTW_BACKEND", "torch")
    D = torch.rand(3, 4, dtype=torch.float64)
    assert float(dtw(D).values) == pytest.approx(float(dtw(D, backend="numba").values))


def test_triton_on_cpu_tensors_needs_the_interpreter(monkeypatch):
    triton_kernels = pytest.importorskip("tempclr_cli.core.align._dtw_triton")
    monkeypatch.setattr(triton_kernels, "interpreted", lambda: False)
    with pytest.raises(DTWInputError, match="TRITON_INTERPRET=1"):
        soft_dtw(torch.rand(3, 4), backend="triton")


@pytest.mark.parametrize("name", [n for n, m in measures.MEASURES.items() if m.constrained])
def test_constrained_measures_pass_band_and_subsequence_through(rng, name):
    """Every measure that says it takes band= and subsequence= honours them. Off-diagonal cells made
    dearer change nothing under a radius-0 band on square pairs, and do without it; a 2-step query that
    appears (at cost 0) in the middle of a 5-step sequence costs 0 only with a free start and end."""
    distance = measures.MEASURES[name].distance
    cost = torch.tensor(rng.random((3, 4, 4))) + 1
    off = ~torch.eye(4, dtype=torch.bool)
    cheap, dear = cost.masked_fill(off, 0.0), cost.masked_fill(off, 10.0)
    torch.testing.assert_close(distance(cheap, None, 0.1, band=0), distance(dear, None, 0.1, band=0))
    assert bool((distance(cheap, None, 0.1) < distance(dear, None, 0.1)).all())
    inside = torch.ones(1, 2, 5, dtype=torch.float64)
    inside[0, 0, 2] = inside[0, 1, 3] = 0.0
    assert float(distance(inside, None, 0.0, subsequence=True)) == 0.0 < float(distance(inside, None, 0.0))


def test_the_compiled_kernels_keep_the_process_thread_count():
    """#36: numba's OpenMP pool started with every core and reset the count torch shares, so under
    OMP_NUM_THREADS=1 the demo's training ran on 2 threads after its first DTW (a fresh process: numba
    reads the count when it is first imported)."""
    import subprocess
    import sys

    code = (
        "import torch; from tempclr_cli.core.align.dtw import soft_dtw; "
        "soft_dtw(torch.rand(64, 20, 30, dtype=torch.float64)); print(torch.get_num_threads())"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "NUMBA_NUM_THREADS"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env={**env, "OMP_NUM_THREADS": "1"}
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"


def test_numba_already_imported_keeps_compiling_after_a_dtw():
    """Review of #36: setting NUMBA_NUM_THREADS after numba was imported made its next compile refuse to run."""
    import subprocess
    import sys

    code = (
        "import numba, torch\nfrom tempclr_cli.core.align.dtw import soft_dtw\n"
        "soft_dtw(torch.rand(64, 20, 30, dtype=torch.float64))\n"
        "f = numba.njit(lambda x: x + 1)\nprint(f(1))"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "NUMBA_NUM_THREADS"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env={**env, "OMP_NUM_THREADS": "1"}
    )
    assert done.returncode == 0 and done.stdout.strip() == "2", done.stderr
