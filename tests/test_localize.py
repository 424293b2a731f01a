"""Step localisation: the one-second-per-step program against brute force, and the CLI on COIN files."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
from test_cli import tempclr

from tempclr_cli.core.eval.localization import assign_steps


@pytest.mark.parametrize("K, T", [(1, 1), (1, 5), (2, 5), (3, 6), (4, 7)])
def test_assignment_is_the_best_increasing_one(K, T):
    rng = np.random.default_rng(K * 10 + T)
    scores = torch.tensor(rng.standard_normal((K, T)))
    got = assign_steps(scores)
    assert got == sorted(got) and len(set(got)) == K
    best = max(itertools.combinations(range(T), K), key=lambda ts: sum(float(scores[k, t]) for k, t in enumerate(ts)))
    assert sum(float(scores[k, t]) for k, t in enumerate(got)) == pytest.approx(sum(float(scores[k, t]) for k, t in enumerate(best)))


def test_cli_on_coin_layout(step_dataset, tmp_path):
    data, feats = step_dataset
    db = json.loads((data / "youcookii_annotations_trainval.json").read_text())["database"]
    coin = {"database": {vid: {"subset": "testing", "class": f"task-{vid}", "recipe_type": 0, "duration": e["duration"],
                               "annotation": [{"id": str(k), "segment": a["segment"], "label": a["sentence"]}
                                              for k, a in enumerate(e["annotations"])]}
                         for vid, e in db.items()}}
    (tmp_path / "COIN.json").write_text(json.dumps(coin))
    result = tempclr("localize", str(feats), "--annotations", str(tmp_path / "COIN.json"), "--format", "coin",
                     "--split", "testing", "--json", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["tasks"] == 30 and 0 <= out["recall"] <= 100 and set(out["per_task"]) == {f"task-{v}" for v in db}
