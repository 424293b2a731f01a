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
    assert sum(float(scores[k, t]) for k, t in enumerate(got)) == pytest.approx(
        sum(float(scores[k, t]) for k, t in enumerate(best))
    )


def test_cli_on_coin_layout(step_dataset, tmp_path):
    data, feats = step_dataset
    db = json.loads((data / "youcookii_annotations_trainval.json").read_text())["database"]
    coin = {
        "database": {
            vid: {
                "subset": "testing",
                "class": f"task-{vid}",
                "recipe_type": 0,
                "duration": e["duration"],
                "annotation": [
                    {"id": str(k), "segment": a["segment"], "label": a["sentence"]}
                    for k, a in enumerate(e["annotations"])
                ],
            }
            for vid, e in db.items()
        }
    }
    (tmp_path / "COIN.json").write_text(json.dumps(coin))
    result = tempclr(
        "localize",
        str(feats),
        "--annotations",
        str(tmp_path / "COIN.json"),
        "--format",
        "coin",
        "--split",
        "testing",
        "--json",
        "--device",
        "cpu",
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["tasks"] == 30 and 0 <= out["recall"] <= 100 and set(out["per_task"]) == {f"task-{v}" for v in db}


def test_recall_counts_the_seconds_the_release_counts(tmp_path):
    """A segment [2.4, 4.2] covers seconds 2, 3, 4 (floor(s) <= t < ceil(e)); second 5 is outside."""
    from tempclr_cli.core.data.annotations import Query, Step, Video
    from tempclr_cli.core.data.features import FeatureStore
    from tempclr_cli.core.eval.grounding import score_matched
    from tempclr_cli.core.eval.localization import as_predictions, localize_videos

    steps = ["crack eggs", "whisk"]
    emb = torch.eye(8)[:2]  # step k is embedded as axis k

    def features(second_of_step: list[int]) -> np.ndarray:
        clips = np.full((8, 8), 0.0, dtype=np.float32)
        clips[:, 7] = 1.0  # background everywhere
        for k, t in enumerate(second_of_step):
            clips[t] = 0.0
            clips[t, k] = 1.0
        return clips

    gt = [Step(0.3, 1.0, "crack eggs", "1"), Step(2.4, 4.2, "whisk", "2")]
    np.save(tmp_path / "inside.npy", features([0, 4]))  # 4 < ceil(4.2): counted (a centre rule would miss it)
    np.save(tmp_path / "outside.npy", features([0, 5]))
    store = FeatureStore(tmp_path)
    encode = lambda texts: emb[[steps.index(t) for t in texts]]  # noqa: E731
    queries = [Query("1", "crack eggs"), Query("2", "whisk")]
    videos = [Video(v, "", None, gt, task="t", queries=queries) for v in ("inside", "outside")]
    found = localize_videos(videos, store, encode)
    got = score_matched(found.videos, as_predictions(found.rows), "crosstask").results["step-recall"]
    assert got["values"]["recall"] == pytest.approx(75.0) and got["units"] == 4  # 3 of the 4 ground-truth steps


def test_released_scores_are_a_log_softmax_over_the_task_steps():
    from tempclr_cli.core.eval.localization import step_scores

    text, clips = torch.randn(3, 5), torch.randn(7, 5)
    s = step_scores(text, clips)
    assert torch.allclose(s.exp().sum(0), torch.ones(7, dtype=s.dtype))  # a distribution over steps per second
    assert torch.allclose(s, torch.log_softmax(text @ clips.T, 0))
    cos = step_scores(text, clips, "cosine")
    assert float(cos.abs().max()) <= 1 + 1e-6


def test_crosstask_test_set_as_released(tmp_path):
    """videos.csv minus videos_val.csv minus 30 videos per primary task drawn with NumPy seed 0."""
    from tempclr_cli.core.data.annotations import crosstask_subsets

    (tmp_path / "annotations").mkdir()
    (tmp_path / "tasks_primary.txt").write_text(
        "100\nMake tea\nhttp://x\n2\nboil water,add tea\n\n200\nFix bike\nhttp://y\n1\nremove wheel\n\n"
    )
    rows = [("100", f"a{k:02d}") for k in range(36)] + [("200", f"b{k}") for k in range(5)] + [("999", "z0")]
    (tmp_path / "videos.csv").write_text("".join(f"{t},{v},https://youtu.be/{v}\n" for t, v in rows))
    (tmp_path / "videos_val.csv").write_text("100,a03,https://youtu.be/a03\n")
    for task, vid in rows:
        if vid != "a07":  # no annotation: not used, as released
            (tmp_path / "annotations" / f"{task}_{vid}.csv").write_text("1,0.0,2.0\n")
    no_features = {"a11"}
    got = crosstask_subsets(tmp_path, lambda vid: vid not in no_features)
    usable = [f"a{k:02d}" for k in range(36) if k not in (3, 7, 11)]  # 33 videos of task 100
    expected_train = set(np.random.RandomState(0).choice(usable, 30, replace=False).tolist())
    assert {v for (t, v), s in got.items() if t == "100" and s == "test"} == set(usable) - expected_train
    assert len([1 for (t, _), s in got.items() if t == "100" and s == "test"]) == 3
    assert got[("100", "a03")] == "validation"
    assert all(got[("200", f"b{k}")] == "train" for k in range(5))  # 5 <= 30: nothing held out
    assert got[("999", "z0")] == "train" and ("100", "a07") not in got and ("100", "a11") not in got


def test_howto100m_captions_read_as_training_videos(tmp_path):
    """MMPT's HowTo100M caption layout (per video: start, end and text lists), for `loss.kind: videoclip`."""
    import json

    import pytest

    from tempclr_cli.core.data.annotations import read_annotations
    from tempclr_cli.core.errors import TempclrError

    path = tmp_path / "raw_caption_dedup.json"
    path.write_text(json.dumps({"vid1": {"start": [5.0, 0.5], "end": [9.0, 4.0], "text": ["then stir", "add oil"]}}))
    (video,) = read_annotations(path, "howto100m")
    assert video.subset == "training" and [s.text for s in video.steps] == ["add oil", "then stir"]  # in time order
    path.write_text(json.dumps({"vid1": {"start": [1.0], "end": [2.0, 3.0], "text": ["x"]}}))
    with pytest.raises(TempclrError, match="vid1.*differ in length"):
        read_annotations(path, "howto100m")


def test_candidates_follow_the_written_rule():
    """Scores [0, 0, 5, 5, 0, 0, 3, 0] smoothed over 3 clips: [0, 5/3, 10/3, 10/3, 5/3, 1, 1, 1.5], median 19/12.
    The peak at clip 2 extends over clip 3 (within half its height above the median), not over clip 1; then clip 1
    alone (its neighbour 2 is taken), then clip 4, then 7 (below the median: the peak alone)."""
    from tempclr_cli.core.eval.localization import candidates

    got = candidates(np.array([0, 0, 5, 5, 0, 0, 3, 0], dtype=float), top_k=4)
    assert [(a, b) for a, b, _ in got] == [(2, 3), (1, 1), (4, 4), (7, 7)]
    assert [s for *_, s in got] == pytest.approx([10 / 3, 5 / 3, 5 / 3, 1.5])
    assert len(candidates(np.zeros(3), top_k=10)) == 1  # a flat score: one extent, the whole video


def _layouts_for(data, tmp_path) -> dict[str, list[str]]:
    """The synthetic step videos' YouCookII annotations rewritten in HT-Step's, Goal-Step's and BaGLM's layouts:
    the arguments `localize` and `score` take for each."""
    from grounding_files import baglm_video, write_goalstep, write_htstep

    db = json.loads((data / "youcookii_annotations_trainval.json").read_text())["database"]
    taxonomy, videos, goal, baglm, gid = [], {}, [], [], 0
    for vid, e in db.items():
        texts = list(dict.fromkeys(a["sentence"] for a in e["annotations"]))
        ids = {t: gid + k for k, t in enumerate(texts)}
        taxonomy += [(ids[t], f"act {vid}", k, "none", 1, t, "") for k, t in enumerate(texts)]
        gid += len(texts)
        videos[vid] = ("val_seen", f"act {vid}", [(*a["segment"], ids[a["sentence"]]) for a in e["annotations"]])
        goal.append((vid, "COOKING:X", [(*a["segment"], a["sentence"], []) for a in e["annotations"]]))
        baglm.append(
            baglm_video(
                vid,
                texts,
                [
                    {"clip_start_sec": a["segment"][0], "clip_end_sec": a["segment"][1], "query": a["sentence"]}
                    for a in e["annotations"]
                ],
            )
        )
    annotations, taxonomy_csv = write_htstep(tmp_path / "htstep", videos, taxonomy)
    (tmp_path / "baglm.json").write_text(json.dumps(baglm))
    return {
        "htstep": [
            "--annotations",
            str(annotations),
            "--format",
            "htstep",
            "--taxonomy",
            str(taxonomy_csv),
            "--split",
            "val_seen",
        ],
        "goalstep": [
            "--annotations",
            str(write_goalstep(tmp_path / "goalstep_valid.json", goal)),
            "--format",
            "goalstep",
        ],
        "baglm": ["--annotations", str(tmp_path / "baglm.json"), "--format", "baglm"],
    }


@pytest.mark.parametrize(
    "layout, extra",
    [
        ("htstep", ["--top-k", "3"]),
        ("goalstep", ["--top-k", "5"]),
        ("baglm", []),
        ("coin", ["--mode", "ordered"]),
        ("htstep", ["--mode", "ordered"]),
    ],
)
def test_localize_reports_what_score_reports_on_its_predictions(step_dataset, tmp_path, layout, extra):
    """The new layouts work in localize, and its metrics are `tempclr score`'s on the file it writes."""
    data, feats = step_dataset
    if layout == "coin":
        db = json.loads((data / "youcookii_annotations_trainval.json").read_text())["database"]
        coin = {
            "database": {
                vid: {
                    "subset": "testing",
                    "class": f"task-{vid}",
                    "annotation": [
                        {"id": str(k), "segment": a["segment"], "label": a["sentence"]}
                        for k, a in enumerate(e["annotations"])
                    ],
                }
                for vid, e in db.items()
            }
        }
        (tmp_path / "COIN.json").write_text(json.dumps(coin))
        args = ["--annotations", str(tmp_path / "COIN.json"), "--format", "coin"]
    else:
        args = _layouts_for(data, tmp_path)[layout]
    out = tmp_path / "preds.csv"
    located = tempclr("localize", str(feats), *args, *extra, "--predictions-out", str(out), "--json", "--device", "cpu")
    assert located.returncode == 0, located.stderr
    scored = tempclr("score", str(out), *args, "--json")
    assert scored.returncode == 0, scored.stderr
    mine, theirs = json.loads(located.stdout), json.loads(scored.stdout)
    assert mine["metrics"] == theirs["metrics"] and mine["videos"] == theirs["videos"] == 30
    rows = out.read_text().splitlines()
    assert rows[0] == "video-id,t-start,t-end,label,score" and len(rows) > 30
    assert any(v > 0 for m in mine["metrics"].values() for v in m["values"].values())


def test_ordered_mode_takes_one_candidate_per_step(step_dataset, tmp_path):
    data, feats = step_dataset
    args = _layouts_for(data, tmp_path)["goalstep"]
    done = tempclr("localize", str(feats), *args, "--mode", "ordered", "--top-k", "2", "--device", "cpu")
    assert done.returncode == 2 and "--top-k 2 needs --mode unordered" in done.stderr
