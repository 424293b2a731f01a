"""TempCLR training as released: negatives presets, pooled units, floor(linspace) picks, temperature 1."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from tempclr_cli.core.data.annotations import Step, Video
from tempclr_cli.core.data.features import FeatureStore
from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.train.recipe import load_recipe
from tempclr_cli.core.train.tempclr_heads import build_sequences, negative_orders

RECIPES = Path(__file__).parents[1] / "recipes"


def is_permutation(x: torch.Tensor, of: range) -> bool:
    return sorted(x.tolist()) == list(of)


@pytest.mark.parametrize("K, expected", [(5, 31), (3, 5)])
def test_steps_negatives_are_distinct_non_identity_orders(K, expected):
    rows, cols = negative_orders(K, 1, 31, "steps", 8, torch.Generator().manual_seed(0))
    assert rows.shape == (8, expected, K) and cols.shape == (8, expected, K)
    for seq in rows:
        orders = {tuple(r.tolist()) for r in seq}
        assert len(orders) == expected  # no two negatives repeat
        assert tuple(range(K)) not in orders and all(is_permutation(r, range(K)) for r in seq)
    assert (cols == torch.arange(K)).all()  # the clip order stays fixed
    assert expected == min(31, math.factorial(K) - 1)


def test_steps_plus_units_negatives_permute_steps_and_shuffle_inside_every_step():
    K, S = 4, 3
    rows, cols = negative_orders(K, S, 31, "steps+units", 6, torch.Generator().manual_seed(1))
    assert rows.shape == (6, 31, K) and cols.shape == (6, 31, K * S)
    assert not (rows == torch.arange(K)).all(-1).any()  # every negative has a non-identity step order
    for order in cols.flatten(0, 1):
        for k in range(K):  # each step's clips stay inside that step
            assert is_permutation(order[k * S : (k + 1) * S], range(k * S, (k + 1) * S))
    assert (cols != torch.arange(K * S)).any(-1).float().mean() > 0.9  # and are shuffled in the same negative


def test_steps_or_units_keeps_the_split_preset():
    rows, cols = negative_orders(4, 3, 31, "steps-or-units", 2, torch.Generator().manual_seed(2))
    step_only = (cols == torch.arange(12)).all(-1)
    unit_only = (rows == torch.arange(4)).all(-1)
    assert (step_only ^ unit_only).all() and int(step_only[0].sum()) == 16 and int(unit_only[0].sum()) == 15


def test_unit_shuffles_need_clip_units():
    with pytest.raises(TempclrError, match="steps\\+units: needs data.unit: clips"):
        negative_orders(5, 1, 31, "steps+units", 1, torch.Generator())


def test_recipes_default_to_the_release():
    yc2 = load_recipe(RECIPES / "tempclr_youcook2.yaml")
    assert (yc2.loss.temperature, yc2.loss.shuffle, yc2.data.unit, yc2.loss.clip_similarity) == (
        1.0,
        "steps",
        "pooled",
        "dot",
    )
    assert load_recipe(RECIPES / "tclr_ucf.yaml").loss.temperature == 0.1  # TCLR's own default stays


def test_steps_are_picked_non_overlapping_with_floor_linspace(tmp_path):
    np.save(tmp_path / "v.npy", np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32))
    steps = [Step(2.0 * k, 2.0 * k + 1.5, f"s{k}") for k in range(7)]
    steps.insert(2, Step(2.5, 3.2, "overlaps s1"))  # starts before s1 ends: dropped, as released
    ids = {s.text: k for k, s in enumerate(steps)}
    seqs, _, kept = build_sequences([Video("v", "training", None, steps)], FeatureStore(tmp_path), 5, 2, ids)
    assert kept == ["v"]
    picked = [
        steps[i].text for i in [next(j for j, s in enumerate(steps) if ids[s.text] == sid) for sid in seqs[0].sentences]
    ]
    assert picked == ["s0", "s1", "s3", "s4", "s6"]  # floor(linspace(0, 6, 5)) = 0 1 3 4 6 (rounding gave 0 2 3 4 6)
