"""The fused triton kernels compiled for a GPU (`pytest -m cuda`; skipped, saying why, without one): chosen
for CUDA tensors, equal to the CPU's numba kernels with a band and a free end, and 32 pairs of 4096 x 4096
soft-DTW with its gradient inside a bounded memory."""

from __future__ import annotations

import pytest
import torch

from tempclr_cli.core.align.dtw import backend_for, dtw, otam, soft_dtw

pytestmark = pytest.mark.cuda
CUDA = torch.device("cuda")


def test_cuda_tensors_get_the_fused_kernels():
    assert backend_for(torch.zeros(1, 2, 2, device=CUDA)) == "triton"


def value_and_grad(fn, cost):
    x = cost.clone().requires_grad_(True)
    values = fn(x)
    values.sum().backward()
    return values.detach().cpu(), x.grad.cpu()


@pytest.mark.parametrize(
    "constraints", [{}, {"band": 3}, {"subsequence": True}, {"band": 2, "subsequence": True}], ids=str
)
@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-4), (torch.float64, 1e-9)])
def test_triton_on_cuda_equals_numba(constraints, dtype, tol):
    gen = torch.Generator().manual_seed(0)
    cost = torch.rand(300, 30, 50, generator=gen, dtype=dtype) * 2
    lengths = torch.stack([torch.randint(1, 31, (300,), generator=gen), torch.randint(1, 51, (300,), generator=gen)], 1)
    on_gpu, gpu_lengths = cost.to(CUDA), lengths.to(CUDA)
    for gamma in (0.1, 1.0):
        got = value_and_grad(lambda x: soft_dtw(x, gamma, gpu_lengths, **constraints), on_gpu)
        want = value_and_grad(lambda x: soft_dtw(x, gamma, lengths, **constraints), cost)
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, rtol=10 * tol, atol=10 * tol)
    hard, want = dtw(on_gpu, gpu_lengths, **constraints), dtw(cost, lengths, **constraints)
    torch.testing.assert_close(hard.values.cpu(), want.values, rtol=tol, atol=tol)
    assert all(torch.equal(a.cpu(), b) for a, b in zip(hard.paths[::17], want.paths[::17]))
    direction = {"symmetric": not constraints.get("subsequence", False), **constraints}
    got = value_and_grad(lambda x: otam(x, 0.1, lengths=gpu_lengths, **direction), on_gpu)
    want = value_and_grad(lambda x: otam(x, 0.1, lengths=lengths, **direction), cost)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=10 * tol, atol=10 * tol)


def test_32_pairs_of_4096_fit_in_a_bounded_memory():
    """Cost 2 GB, the packed float64 table 4 GB, the gradient 2 GB: well under 16 GB at the peak."""
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(CUDA)
    x = torch.rand(32, 4096, 4096, device=CUDA, generator=torch.Generator(CUDA).manual_seed(0)).requires_grad_(True)
    values = soft_dtw(x, 0.1)
    values.sum().backward()
    assert torch.isfinite(values).all() and torch.isfinite(x.grad).all()
    assert torch.cuda.max_memory_allocated(CUDA) < 16 * 2**30
    # the gradient is an expected alignment: every row is visited, so each row sums to at least 1
    assert float(x.grad[0].sum(1).min()) >= 1 - 1e-3
    one = soft_dtw(x[0, :512, :512].detach().double().cpu(), 0.1)
    assert float(soft_dtw(x[0, :512, :512].detach(), 0.1)) == pytest.approx(float(one), rel=1e-5)
