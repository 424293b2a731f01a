"""Losses against values computed with the authors' formulas, and against per-video loops."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from tempclr_cli.core.align.dtw import soft_dtw
from tempclr_cli.core.train.losses import clip_caption_loss, cosine_cost, sequence_contrastive_loss, tclr_losses


def as64(x):
    return torch.tensor(x, dtype=torch.float64)


# --- TempCLR ---------------------------------------------------------------------------------


def test_sequence_loss_matches_reference(reference):
    case = reference["seq_loss"][0]
    text, video = as64(case["text"]), as64(case["video"])
    perms = torch.tensor(case["negative_row_permutations"])
    soft = sequence_contrastive_loss(text, video, perms, distance="softdtw", gamma=case["gamma"])
    assert float(soft) == pytest.approx(case["loss_softdtw"], abs=1e-6)
    sym = sequence_contrastive_loss(text, video, perms, distance="otam", gamma=case["gamma"])
    assert float(sym) == pytest.approx(case["loss_otam_symmetric"], abs=1e-6)
    assert float(clip_caption_loss(text, video)) == pytest.approx(case["clip_caption_nce"], abs=1e-6)


def test_batched_sequence_loss_is_the_mean_of_single_ones():
    g = torch.Generator().manual_seed(0)
    text, video = (
        torch.randn(3, 5, 16, generator=g, dtype=torch.float64),
        torch.randn(3, 7, 16, generator=g, dtype=torch.float64),
    )
    perms = torch.stack([torch.stack([torch.randperm(5, generator=g) for _ in range(6)]) for _ in range(3)])
    cols = torch.stack([torch.stack([torch.randperm(7, generator=g) for _ in range(6)]) for _ in range(3)])
    batched = sequence_contrastive_loss(text, video, perms, video_permutations=cols)
    singles = torch.stack(
        [sequence_contrastive_loss(text[b], video[b], perms[b], video_permutations=cols[b]) for b in range(3)]
    )
    torch.testing.assert_close(batched, singles.mean())
    # the unit-level negative is the cost with its columns permuted
    cost = cosine_cost(text[0], video[0])
    keys = torch.stack([cost] + [cost[perms[0, p]][:, cols[0, p]] for p in range(6)])
    manual = F.cross_entropy(-soft_dtw(keys, 0.1)[None], torch.zeros(1, dtype=torch.long))
    torch.testing.assert_close(singles[0], manual)


def test_sequence_loss_has_gradients_for_both_towers():
    text = torch.randn(2, 4, 8, dtype=torch.float64, requires_grad=True)
    video = torch.randn(2, 6, 8, dtype=torch.float64, requires_grad=True)
    perms = torch.tensor([list(p) for p in itertools.permutations(range(4))][1:8]).expand(2, -1, -1)
    for distance in ("softdtw", "otam"):
        assert torch.autograd.gradcheck(lambda t, v: sequence_contrastive_loss(t, v, perms, distance), (text, video))


# --- TCLR --------------------------------------------------------------------------------------


def test_tclr_official_sum_matches_reference(reference):
    case = reference["tclr"][0]
    got = tclr_losses(
        as64(case["global_views"]),
        as64(case["global_time_slices"]),
        as64(case["local_clips"]),
        temperature=case["temperature"],
        scaling="official",
    )
    for key, value in case["official_sum"].items():
        assert float(got[key]) == pytest.approx(value, abs=1e-6), key


def nt_xent(zi, zj, t):
    """The released NT-Xent (SimCLR), written as it is: a loop-free but per-call reference."""
    n = zi.shape[0]
    reps = torch.cat([zj, zi])
    sim = reps @ reps.T
    pos = torch.cat([torch.diag(sim, n), torch.diag(sim, -n)])[:, None]
    ones = torch.ones(n)
    mask = ~(torch.eye(2 * n) + torch.diag(ones, n) + torch.diag(ones, -n)).bool()
    logits = torch.cat([pos, sim[mask].view(2 * n, -1)], 1) / t
    return F.cross_entropy(logits, torch.zeros(2 * n, dtype=torch.long), reduction="sum") / (2 * n)


def official_loop(g, s, loc, t):
    """The released composition with its Python loops over pairs and videos."""
    ic2 = nt_xent(g[0], g[1], t)
    ic1 = (
        sum(
            nt_xent(loc[a][:, c], loc[b][:, d], t)
            for a in range(2)
            for b in range(2)
            for c in range(4)
            for d in range(4)
            if not (a == b and c == d)
        )
        / 4
    )
    ll = sum(nt_xent(loc[0][v], loc[1][v], t) for v in range(g.shape[1]))
    gl = 0
    for a in range(2):
        for b in range(2):
            sim = torch.bmm(s[a], loc[b].transpose(1, 2))
            sim = torch.cat([sim, sim.transpose(1, 2)]).reshape(-1, 4) / t
            gl = gl + F.cross_entropy(sim, torch.arange(4).repeat(2 * g.shape[1]), reduction="sum") / (2 * g.shape[1])
    return {"ic_global": ic2, "ic_local": ic1, "local_local": ll, "global_local": gl}


def test_vectorised_equals_the_released_loops_and_mean_scaling_divides_them():
    B, D = 5, 12
    gen = torch.Generator().manual_seed(3)
    unit = lambda *shape: F.normalize(torch.randn(*shape, generator=gen, dtype=torch.float64), dim=-1)  # noqa: E731
    g, s, loc = unit(2, B, D), unit(2, B, 4, D), unit(2, B, 4, D)
    loop = official_loop(g, s, loc, 0.1)
    official = tclr_losses(g, s, loc, 0.1, scaling="official")
    mean = tclr_losses(g, s, loc, 0.1, scaling="mean", weights={"ic_local": 0.5})
    for key, scale in {"ic_global": 1, "ic_local": 14, "local_local": B, "global_local": 16}.items():
        assert float(official[key]) == pytest.approx(float(loop[key]), abs=1e-9)
        assert float(mean[key]) * scale == pytest.approx(float(loop[key]), abs=1e-9)
    expected = mean["ic_global"] + 0.5 * mean["ic_local"] + mean["local_local"] + mean["global_local"]
    assert float(mean["total"]) == pytest.approx(float(expected))


def test_the_sequence_loss_takes_a_band_as_recipes_do():
    """#40: `loss.band` narrows the sequence distance to a Sakoe-Chiba band: a band as wide as the
    sequences changes nothing, a tight one changes the loss, and a measure without one refuses it."""
    import pytest

    from tempclr_cli.core.errors import TempclrError
    from tempclr_cli.core.train.losses import sequence_contrastive_loss

    gen = torch.Generator().manual_seed(0)
    text = torch.nn.functional.normalize(torch.randn(2, 4, 8, generator=gen), dim=-1)
    video = torch.nn.functional.normalize(torch.randn(2, 9, 8, generator=gen), dim=-1)
    perms = torch.stack([torch.randperm(4, generator=gen) for _ in range(3)]).expand(2, -1, -1)  # (B, P, K)
    free = sequence_contrastive_loss(text, video, perms)
    assert torch.allclose(sequence_contrastive_loss(text, video, perms, band=9), free)
    assert not torch.allclose(sequence_contrastive_loss(text, video, perms, band=0), free)
    from tempclr_cli.core.align import measures

    measures.register_measure("meanpair", "mean cost (no band)", tasks=("loss",), differentiable=True)(
        lambda cost, lengths=None, gamma=0.0: cost.mean((1, 2))
    )
    try:
        assert sequence_contrastive_loss(text, video, perms, distance="meanpair").isfinite()
        with pytest.raises(TempclrError, match="loss.band"):
            sequence_contrastive_loss(text, video, perms, distance="meanpair", band=1)
    finally:
        measures.MEASURES.pop("meanpair")
