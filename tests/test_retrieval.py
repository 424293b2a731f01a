"""Paragraph-video retrieval: measures on worked examples, DTW on real L x U blocks, chunking."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_cli import tempclr

from tempclr_cli.core.align.dtw import dtw
from tempclr_cli.core.data.annotations import Step, Video, read_annotations, read_crosstask
from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.eval.paragraph_retrieval import Padded, own_ranks, recall_at, score_matrix, video_units


def test_dtw_sees_order_that_caption_average_cannot():
    # three step prototypes; video v shows them in its own order, paragraph p describes video p's order
    protos = torch.eye(3)
    orders = [[0, 1, 2], [2, 1, 0], [1, 0, 2]]
    paragraphs = Padded.of([protos[o] for o in orders])
    videos = Padded.of([protos[o] for o in orders])
    capavg = score_matrix(paragraphs, videos, "capavg")
    assert torch.allclose(capavg, torch.zeros(3, 3))  # every paragraph mentions every step: no cost left
    assert recall_at(capavg)["R@1"] == 0.0  # ties count against
    dtw_scores = score_matrix(paragraphs, videos, "dtw")
    assert recall_at(dtw_scores)["R@1"] == 100.0
    assert recall_at(score_matrix(paragraphs, videos, "otam"))["R@1"] == 100.0


def test_dtw_score_uses_each_pairs_own_block_and_chunks_agree():
    rng = np.random.default_rng(0)
    text = [torch.tensor(rng.standard_normal((n, 8)), dtype=torch.float32) for n in (2, 5, 3)]
    units = [torch.tensor(rng.standard_normal((n, 8)), dtype=torch.float32) for n in (4, 1, 6, 3)]
    P, U = Padded.of(text), Padded.of(units)
    scores = score_matrix(P, U, "dtw")
    for p, t in enumerate(text):
        for v, u in enumerate(units):
            t_n, u_n = torch.nn.functional.normalize(t, dim=-1), torch.nn.functional.normalize(u, dim=-1)
            expected = -float(dtw(1 - t_n @ u_n.T, paths=False).values)
            assert float(scores[p, v]) == pytest.approx(expected, abs=1e-5)
    torch.testing.assert_close(score_matrix(P, U, "dtw", chunk_cells=1), scores)
    torch.testing.assert_close(score_matrix(P, U, "capavg", chunk_cells=1), score_matrix(P, U, "capavg"))


@pytest.mark.parametrize("measure", ["capavg", "dtw", "otam"])
@pytest.mark.parametrize(
    "background,scorer", [("removed", "corrected"), ("kept", "corrected"), ("removed", "released")]
)
def test_streamed_ranks_equal_the_whole_score_matrix(measure, background, scorer):
    """A chunk of queries at a time (here 3 of 11, so chunks end mid-matrix) ranks exactly as
    the full P x V matrix does, for both directions; ties (duplicate videos) count against."""
    rng = np.random.default_rng(2)
    text = [torch.tensor(rng.standard_normal((n, 8)), dtype=torch.float32) for n in rng.integers(1, 6, 11)]
    units = [torch.tensor(rng.standard_normal((n, 8)), dtype=torch.float32) for n in rng.integers(1, 9, 11)]
    units[4] = units[3]  # a tie: paragraph 3 cannot rank video 3 first
    P, U = Padded.of(text), Padded.of(units)
    full = score_matrix(P, U, measure, background, scorer=scorer)
    for task, scores in (("paragraph-video", full), ("video-paragraph", full.T)):
        expected = (scores >= scores.diagonal()[:, None]).sum(1)
        chunks = list(own_ranks(P, U, measure, task, background, scorer, budget=3 * 11))
        assert [c.stop - c.start for c, _ in chunks] == [3, 3, 3, 2]
        assert torch.equal(torch.cat([r for _, r in chunks]), expected)
    assert (full >= full.diagonal()[:, None]).sum(1)[3] >= 2


def test_background_kept_selects_the_cheapest_windows_in_temporal_order():
    rng = np.random.default_rng(1)
    text = [torch.tensor(rng.standard_normal((3, 6)), dtype=torch.float32)]
    unit = torch.tensor(rng.standard_normal((7, 6)), dtype=torch.float32)
    got = float(score_matrix(Padded.of(text), Padded.of([unit]), "dtw", background="kept")[0, 0])
    t, u = (torch.nn.functional.normalize(x, dim=-1) for x in (text[0], unit))
    cost = 1 - t @ u.T
    keep = int(1.3 * 3)
    chosen = sorted(cost.min(0).values.argsort()[:keep].tolist())
    assert got == pytest.approx(-float(dtw(cost[:, chosen], paths=False).values), abs=1e-5)


def test_units_pool_segments_or_16s_windows():
    clips = torch.arange(40, dtype=torch.float32)[:, None].repeat(1, 2)
    starts, ends = list(range(40)), list(range(1, 41))
    video = Video("v", "validation", 40.0, [Step(2, 6, "a"), Step(10, 60, "b")])
    removed = video_units(video, clips, starts, ends, "removed")
    assert removed[:, 0].tolist() == [3.5, 24.5]  # clips 2..5, and 10..39 (segment clipped to 32 s)
    kept = video_units(video, clips, starts, ends, "kept")
    assert kept[:, 0].tolist() == [7.5, 23.5, 35.5]  # windows [0,16), [16,32), [32,48)
    with pytest.raises(TempclrError, match="background"):
        video_units(video, clips, starts, ends, "maybe")


def test_cli_retrieve_json(step_dataset):
    data, feats = step_dataset
    ann = data / "youcookii_annotations_trainval.json"
    result = tempclr(
        "retrieve",
        str(feats),
        "--annotations",
        str(ann),
        "--measure",
        "capavg",
        "--measure",
        "dtw",
        "--measure",
        "otam",
        "--json",
        "--split",
        "all",
        "--device",
        "cpu",
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["videos"] == 30 and set(out["results"]) == {"capavg", "dtw", "otam"}
    for r in out["results"].values():
        assert 0 <= r["R@1"] <= r["R@5"] <= r["R@10"] <= 100 and r["median_rank"] >= 1
    bad = tempclr("retrieve", str(feats), "--annotations", str(ann), "--measure", "cosine")
    assert bad.returncode == 2 and "--measure" in bad.stderr and "cosine" in bad.stderr


def test_coin_and_crosstask_layouts(tmp_path):
    coin = {
        "database": {
            "vid1": {
                "subset": "testing",
                "recipe_type": 3,
                "class": "MakeTea",
                "duration": 60.0,
                "annotation": [
                    {"id": "2", "segment": [30.0, 40.0], "label": "pour water"},
                    {"id": "1", "segment": [5.0, 12.5], "label": "boil water"},
                ],
            }
        }
    }
    (tmp_path / "COIN.json").write_text(json.dumps(coin))
    [video] = read_annotations(tmp_path / "COIN.json", "coin")
    assert [s.text for s in video.steps] == ["boil water", "pour water"] and video.task == "MakeTea"
    folder = tmp_path / "crosstask"
    (folder / "annotations").mkdir(parents=True)
    (folder / "tasks_primary.txt").write_text(
        "23521\nMake Jello Shots\nhttp://x\n3\npour water,stir mixture,pour mixture into cup\n\n"
        "59684\nCut Steak\nhttp://y\n2\ncut steak,season steak\n\n"
    )
    (folder / "annotations" / "23521_abc.csv").write_text("1,1.5,4.0\n3,10.0,12.0\n")
    videos, tasks = read_crosstask(folder)
    assert tasks["59684"] == ["cut steak", "season steak"]
    assert [(s.text, s.start) for s in videos[0].steps] == [("pour water", 1.5), ("pour mixture into cup", 10.0)]
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(TempclrError, match="invalid JSON"):
        read_annotations(tmp_path / "bad.json")
