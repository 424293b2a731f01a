"""The fused triton kernels (`_dtw_triton.py`, CUDA's backend) on the CPU under triton's interpreter:
against the numba kernels and the authors' reference values, values and gradients to 1e-5.

TRITON_INTERPRET=1 must be set before triton is first imported. This file sets it as it is collected,
when nothing has imported triton yet and torch sees no GPU (a GPU session keeps compiled triton for
tests/test_cuda.py); otherwise its tests skip, saying why. `pytest tests/test_dtw_triton.py` alone
always runs them on a CPU machine.
"""

from __future__ import annotations

import os
import sys

import torch

if "triton" not in sys.modules and not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tempclr_cli.core.align import _dtw_numba as numba_kernels  # noqa: E402
from tempclr_cli.core.align.dtw import dtw, otam, soft_dtw  # noqa: E402

triton_kernels = pytest.importorskip("tempclr_cli.core.align._dtw_triton")
pytestmark = pytest.mark.skipif(
    not triton_kernels.interpreted(),
    reason="triton was imported before TRITON_INTERPRET=1 could be set, or a GPU is "
    "present: run this file on its own on a CPU machine",
)


def reference_batch(reference):
    """The reference cases as one batch with per-pair lengths (the padding is garbage, not zeros)."""
    cases = reference["dtw"]
    N, M = max(c["shape"][0] for c in cases), max(c["shape"][1] for c in cases)
    cost = torch.full((len(cases), N, M), 7.0, dtype=torch.float64)
    for b, case in enumerate(cases):
        n, m = case["shape"]
        cost[b, :n, :m] = torch.tensor(case["D"], dtype=torch.float64)
    return cases, cost, torch.tensor([c["shape"] for c in cases])


def value_and_grad(fn, cost):
    x = cost.clone().requires_grad_(True)
    values = fn(x)
    values.sum().backward()
    return values.detach(), x.grad


@pytest.mark.slow
def test_soft_dtw_and_otam_match_the_reference_values(reference):
    cases, cost, lengths = reference_batch(reference)
    for gamma in (0.1, 1.0):
        values, grad = value_and_grad(lambda x: soft_dtw(x, gamma, lengths, backend="triton"), cost)
        for b, case in enumerate(cases):
            n, m = case["shape"]
            assert float(values[b]) == pytest.approx(case[f"soft_dtw_gamma_{gamma}"], abs=1e-6)
            np.testing.assert_allclose(
                grad[b, :n, :m].numpy(), np.array(case[f"soft_dtw_grad_gamma_{gamma}"]), atol=1e-5
            )
    hard = dtw(cost, lengths, paths=False, backend="triton").values
    one = otam(cost, 0.1, symmetric=False, lengths=lengths, backend="triton")
    both = otam(cost, 0.1, lengths=lengths, backend="triton")
    for b, case in enumerate(cases):
        assert float(hard[b]) == pytest.approx(case["hard_dtw"], abs=1e-6)
        assert float(one[b]) == pytest.approx(case["otam_one_dir_gamma_0.1"], abs=1e-6)
        assert float(both[b]) == pytest.approx(case["otam_symmetric_gamma_0.1"], abs=1e-6)


def mixed_batch(dtype=torch.float64, seed=0):
    """Four pairs up to 5 x 7 with per-pair lengths, the padding garbage."""
    gen = torch.Generator().manual_seed(seed)
    cost = (torch.rand(4, 5, 7, generator=gen, dtype=torch.float64) * 2).to(dtype)
    return cost, torch.tensor([[5, 7], [3, 6], [5, 2], [1, 4]])


CONSTRAINTS = [{}, {"band": 1}, {"subsequence": True}, {"band": 0, "subsequence": True}]


def assert_same_soft_and_hard_dtw(cost, lengths, tol, **constraints):
    """Soft-DTW (value, gradient) and hard DTW (values, paths) on triton equal numba's."""
    got = value_and_grad(lambda x: soft_dtw(x, 0.1, lengths, backend="triton", **constraints), cost)
    want = value_and_grad(lambda x: soft_dtw(x, 0.1, lengths, backend="numba", **constraints), cost)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=tol, atol=tol)
    hard = dtw(cost, lengths, backend="triton", **constraints)
    want = dtw(cost, lengths, backend="numba", **constraints)
    torch.testing.assert_close(hard.values, want.values, rtol=tol, atol=tol)
    assert [p.tolist() for p in hard.paths] == [p.tolist() for p in want.paths]


def assert_same_otam(cost, lengths, tol, **constraints):
    """OTAM (soft value and gradient, hard value) on triton equals numba's."""
    direction = {"symmetric": not constraints.get("subsequence", False), **constraints}
    for gamma in (0.0, 0.1):
        got = value_and_grad(lambda x: otam(x, gamma, lengths=lengths, backend="triton", **direction), cost)
        want = value_and_grad(lambda x: otam(x, gamma, lengths=lengths, backend="numba", **direction), cost)
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, rtol=tol, atol=tol)


def test_triton_equals_numba_with_a_band_and_a_free_end():
    cost, lengths = mixed_batch()
    assert_same_soft_and_hard_dtw(
        cost[:3, :4, :6], lengths[:3].clamp(max=torch.tensor([4, 6])), 1e-9, band=1, subsequence=True
    )


@pytest.mark.slow
@pytest.mark.parametrize("constraints", CONSTRAINTS, ids=str)
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-9), (torch.float32, 1e-5)])
def test_triton_equals_numba(constraints, dtype, tol):
    cost, lengths = mixed_batch(dtype, seed=1)
    assert_same_soft_and_hard_dtw(cost, lengths, tol, **constraints)
    assert_same_otam(cost, lengths, tol, **constraints)


def test_the_environment_variable_forces_triton_onto_cpu_tensors(monkeypatch):
    calls = []
    real = triton_kernels.values
    monkeypatch.setattr(triton_kernels, "values", lambda *args: calls.append(args) or real(*args))
    cost, lengths = mixed_batch()
    monkeypatch.setenv("TEMPCLR_DTW_BACKEND", "triton")
    got = soft_dtw(cost, 0.1, lengths)
    assert len(calls) == 1
    monkeypatch.delenv("TEMPCLR_DTW_BACKEND")
    torch.testing.assert_close(got, soft_dtw(cost, 0.1, lengths))  # numba, chosen for CPU tensors
    assert len(calls) == 1


def test_memory_is_each_pairs_cells_or_three_diagonals():
    """The backward's table is packed: B x N x M float64 cells and no more (32 pairs of 4096 x 4096:
    4.3 GB); values alone keep three diagonals a pair."""
    cost, lengths = mixed_batch()
    values, (_, table, _) = triton_kernels.soft_forward(cost, lengths, 0.1, -1, False, False)
    assert table.numel() == cost.numel() and table.dtype == torch.float64
    _, ring = triton_kernels._forward_pass(cost, lengths, 0.1, -1, False, False, keep=False)
    assert ring.shape == (4, 3 * 5)
    out = torch.empty(4, dtype=torch.float64)
    numba_kernels.values_kernel(cost.numpy(), lengths.numpy(), 0.1, -1, False, False, out.numpy())
    torch.testing.assert_close(values, out)
