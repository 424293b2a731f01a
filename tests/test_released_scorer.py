"""`retrieve --scorer released` against the authors' own functions (copied below from
tempclr/utils/metrics.py at 9763ca6, pair by pair, as their evaluator calls them)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tempclr_cli.core.align.dtw import dtw
from tempclr_cli.core.eval.paragraph_retrieval import Padded, kept_windows, score_matrix
from tempclr_cli.core.eval.released_scorer import released_distances


# --- the release, verbatim but for the batch dims (1, 1, ...) -------------------------------
def DTW_pad(dists, target_length0, target_length1):
    length_diff0 = target_length0 - dists.shape[-2]
    length_diff1 = target_length1 - dists.shape[-1]
    dists = F.pad(dists, (0, length_diff1, 0, length_diff0), "constant", float("inf"))
    dists[:, :, -length_diff0 - 1 :, -length_diff1:] = 0
    return dists


def OTAM_pad(dists, target_length0, target_length1):
    length_diff0 = target_length0 - dists.shape[-2]
    length_diff1 = target_length1 - dists.shape[-1]
    dists = F.pad(dists, (1, 1), "constant", 0)
    dists = F.pad(dists, (0, length_diff1, 0, length_diff0), "constant", float("inf"))
    dists[:, :, -length_diff0 - 1 :, -length_diff1:] = 0
    return dists


def DTW_eval_cum_dist(dists):
    cum = torch.zeros(dists.shape, dtype=dists.dtype)
    cum[:, :, 0, 0] = dists[:, :, 0, 0]
    for m in range(1, dists.shape[3]):
        cum[:, :, 0, m] = dists[:, :, 0, m] + cum[:, :, 0, m - 1]
    for l in range(1, dists.shape[2]):
        cum[:, :, l, 0] = dists[:, :, l, 0] + cum[:, :, l - 1, 0]
    for l in range(1, dists.shape[2]):
        for m in range(1, dists.shape[3]):
            cum[:, :, l, m] = dists[:, :, l, m] + torch.minimum(
                torch.minimum(cum[:, :, l - 1, m - 1], cum[:, :, l, m - 1]), cum[:, :, l - 1, m]
            )
    return cum


def OTAM_eval_cum_dist(dists):
    cum = torch.zeros(dists.shape, dtype=dists.dtype)
    for m in range(1, dists.shape[3]):
        cum[:, :, 0, m] = dists[:, :, 0, m] + cum[:, :, 0, m - 1]
    for l in range(1, dists.shape[2]):
        cum[:, :, l, 1] = dists[:, :, l, 1] - torch.minimum(
            torch.minimum(cum[:, :, l - 1, 0], cum[:, :, l - 1, 1]), cum[:, :, l, 0]
        )
        for m in range(2, dists.shape[3] - 1):
            cum[:, :, l, m] = dists[:, :, l, m] + torch.minimum(cum[:, :, l - 1, m - 1], cum[:, :, l, m - 1])
        cum[:, :, l, -1] = dists[:, :, l, -1] + torch.minimum(
            torch.minimum(cum[:, :, l - 1, -2], cum[:, :, l - 1, -1]), cum[:, :, l, -2]
        )
    return cum


def release_pair(D: torch.Tensor, T0: int, T1: int, measure: str) -> float:
    d = D.double().clone().view(1, 1, *D.shape)
    d *= (T0 * T1) / (D.shape[0] * D.shape[1])
    if measure == "dtw":
        return float(DTW_eval_cum_dist(DTW_pad(d, T0, T1))[0, 0, -1, -1])
    forward = OTAM_eval_cum_dist(OTAM_pad(d, T0, T1))[0, 0, -1, -1]
    backward = OTAM_eval_cum_dist(OTAM_pad(d.transpose(-2, -1), T1, T0))[0, 0, -1, -1]
    return float(forward + backward)


# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("measure", ["dtw", "otam"])
def test_released_distances_equal_the_release_pair_by_pair(measure):
    rng = np.random.default_rng(0)
    T0, T1 = 6, 7
    shapes = [(6, 7), (3, 4), (6, 2), (2, 7), (1, 5), (4, 1), (5, 7)]
    blocks = [torch.tensor(rng.uniform(-0.5, 1.5, size=s)) for s in shapes]  # negative costs show the slip
    cost = torch.zeros(len(blocks), T0, T1, dtype=torch.float64)
    for k, b in enumerate(blocks):
        cost[k, : b.shape[0], : b.shape[1]] = b
    rows, cols = torch.tensor([s[0] for s in shapes]), torch.tensor([s[1] for s in shapes])
    ours = released_distances(cost, rows, cols, measure, T0, T1)
    theirs = [release_pair(b, T0, T1, measure) for b in blocks]
    np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-12, atol=1e-12)


def test_the_released_dtw_scorer_can_skip_the_last_caption():
    """REFERENCE 8: the score is -min(C[L-1, M-1], C[L-2, M-1]) when M < T (C: DTW of the scaled block)."""
    D = torch.tensor([[0.1, 0.9, 0.9], [0.9, 0.1, 0.9], [0.9, 0.9, 0.1], [5.0, 5.0, 5.0]], dtype=torch.float64)
    T0, T1 = 4, 5  # L = T0 = 4 captions, M = 3 < T1 = 5 units
    scaled = D * (T0 * T1) / (4 * 3)
    C = torch.stack([dtw(scaled[: i + 1, :], paths=False).values for i in range(4)])  # C[i, M-1]
    got = released_distances(D[None], torch.tensor([4]), torch.tensor([3]), "dtw", T0, T1)
    assert float(got[0]) == pytest.approx(min(float(C[3]), float(C[2])))
    assert float(got[0]) == pytest.approx(float(C[2]))  # the expensive last caption is skipped
    corrected = dtw(D[None], paths=False).values  # tempclr's default pays for it
    assert float(corrected[0]) > 5


def test_kept_windows_use_integer_arithmetic():
    L = torch.tensor([1, 2, 10, 90, 170, 180])
    assert kept_windows(L).tolist() == [int(1.3 * n) for n in L.tolist()] == [1, 2, 13, 117, 221, 234]
    assert (1.3 * L.float()).long().tolist()[3:] == [116, 220, 233]  # what float32 gave


def test_score_matrix_released_ranks_like_the_release():
    rng = np.random.default_rng(1)
    paragraphs = [torch.tensor(rng.normal(size=(n, 8)), dtype=torch.float32) for n in (3, 5, 4)]
    videos = [torch.tensor(rng.normal(size=(n, 8)), dtype=torch.float32) for n in (3, 5, 4)]
    text, units = Padded.of(paragraphs, normalize=False), Padded.of(videos, normalize=False)
    got = score_matrix(text, units, "dtw", scorer="released")
    for p, t in enumerate(paragraphs):
        for v, u in enumerate(videos):
            assert float(got[p, v]) == pytest.approx(-release_pair(1 - t @ u.T, 5, 5, "dtw"), rel=1e-5)


def test_background_kept_released_keeps_the_windows_then_rescales_and_pads():
    """metric.py:405-422: keep the int(1.3 L) windows with the lowest best-caption cost (in time
    order), then scale by T_text * T_video / (L * kept) and pad to T_text x T_video."""
    rng = np.random.default_rng(2)
    paragraphs = [torch.tensor(rng.normal(size=(n, 6)), dtype=torch.float32) for n in (2, 3)]
    videos = [torch.tensor(rng.normal(size=(n, 6)), dtype=torch.float32) for n in (7, 5)]
    text, units = Padded.of(paragraphs, normalize=False), Padded.of(videos, normalize=False)
    got = score_matrix(text, units, "dtw", background="kept", scorer="released")
    for p, t in enumerate(paragraphs):
        for v, u in enumerate(videos):
            D = 1 - t @ u.T
            keep = torch.sort(torch.argsort(D.min(0).values)[: int(1.3 * len(t))]).values
            expected = -release_pair(D[:, keep], 3, 7, "dtw")
            assert float(got[p, v]) == pytest.approx(expected, rel=1e-5)
