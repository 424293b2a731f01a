"""`tempclr score`: each protocol against an independent slow reference written here, hand-worked examples,
the official HT-Step scorer (run from a fetched mirror), and exact errors for malformed predictions."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from grounding_files import write_goalstep, write_htstep, write_rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_cli import tempclr

from tempclr_cli.core.data.layouts import ReadOptions
from tempclr_cli.core.data.predictions import read_predictions
from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.eval.grounding import score_file

MIRRORS = Path("/work/.mirror")
# What evaluation/eval_article_grounding.py printed for evaluation/example_predictions_val_seen.csv, against
# val_seen rebuilt from BaGLM's htstep_video_annots.json (run beside this code; the scorer is not committed here).
EXAMPLE_OFFICIAL = {
    "map": [0.14691684341457442, 0.13368933154534324, 0.12082381953608053, 0.09915827288129091, 0.07450981588099473],
    "mean": 0.11501961665165676,
}


def scored(tmp_path: Path, rows, annotations: Path, layout: str, **options) -> dict:
    """{protocol: values} of `rows` as a predictions file scored against `annotations`."""
    found = score_file(write_rows(tmp_path / "p.csv", rows), annotations, layout, ReadOptions(**options))
    return {name: result["values"] for name, result in found.results.items()} | {"_": found}


# --- independent slow references ---------------------------------------------------------------------------------


def ref_article_map(annotations: dict, taxonomy: list, rows: list, split: str) -> list[float]:
    """HT-Step's article-grounding mAP per tIoU and their mean, from the description of the official scorer:
    loops, no arrays (scores must be distinct: this reference sorts stably)."""
    steps = {str(t[0]): (t[1], t[3]) for t in taxonomy}
    ants = {vid: e for vid, e in annotations.items() if e["subset"] == split}
    truth, variation = [], {}
    for vid, e in ants.items():
        kept = []
        for a in e["annotations"]:
            (s, t), label = a["segment"], str(a["id"])
            variation.setdefault(vid, steps[label])
            if t - s >= 1e-3 and not any(
                abs(s - k[0]) <= 1e-3 and abs(t - k[1]) <= 1e-3 and label == k[2] for k in kept
            ):
                kept.append((s, t, label))
        truth += [(vid, s, t, label) for s, t, label in kept]
    labels = {label for *_, label in truth}
    preds = [
        (vid, float(s), float(t), str(label), float(score))
        for vid, s, t, label, score in rows
        if vid in ants and str(label) in labels and steps[str(label)] == variation.get(vid)
    ]
    activities = sorted(
        {steps[label][0] for *_, label in truth}, key=lambda a: min(int(k) for k, (act, _) in steps.items() if act == a)
    )
    result = []
    for thr in np.linspace(0.3, 0.7, 5):
        aps = []
        for activity in activities:
            gt = [g for g in truth if steps[g[3]][0] == activity]
            mine = sorted((p for p in preds if steps[p[3]][0] == activity), key=lambda p: -p[4])
            used, tp = set(), []
            for vid, s, t, _, _ in mine:
                inter = [(max(0.0, min(t, g[2]) - max(s, g[1])), j, g) for j, g in enumerate(gt) if g[0] == vid]
                ious = sorted((x / ((g[2] - g[1]) + (t - s) - x), j) for x, j, g in inter)
                # the unmatched segment of highest tIoU, if at or above the threshold
                hit = next((j for iou, j in reversed(ious) if j not in used and iou >= thr), None)
                used |= {hit} if hit is not None else set()
                tp.append(hit is not None)
            precision = [sum(tp[: k + 1]) / (k + 1) for k in range(len(tp))]
            aps.append(sum(max(precision[k:]) / len(gt) for k in range(len(tp)) if tp[k]))
        result.append(sum(aps) / len(aps))
    return result + [sum(result) / len(result)]


def ref_best_second(rows: list, vid: str, label: str) -> int | None:
    """The top candidate's second: highest score, then the earlier midpoint."""
    mine = [((s + t) / 2, score) for v, s, t, lab, score in rows if v == vid and str(lab) == label]
    return math.floor(max(mine, key=lambda m: (m[1], -m[0]))[0]) if mine else None


def ref_point_recall(truth: dict, rows: list) -> float:
    """truth: {(video, label): [(start, end)]}."""
    hits = [
        (t := ref_best_second(rows, vid, label)) is not None
        and any(math.floor(a) <= t <= math.ceil(b) for a, b in segs)
        for (vid, label), segs in truth.items()
    ]
    return 100 * sum(hits) / len(hits)


def ref_nlq(truth: dict, rows: list) -> dict:
    hits, ious = {}, []
    for (vid, label), segs in truth.items():
        mine = sorted((r for r in rows if r[0] == vid and str(r[3]) == label), key=lambda r: -r[4])
        for a, b in segs:
            iou = [max(0.0, min(t, b) - max(s, a)) / (max(t, b) - min(s, a)) for _, s, t, _, _ in mine]
            for top in (1, 5):
                for th in (0.3, 0.5):
                    hits.setdefault(f"R@{top} IoU>{th}", []).append(any(x > th for x in iou[:top]))
            ious.append(iou[0] if iou else 0.0)
    return {**{k: 100 * sum(v) / len(v) for k, v in hits.items()}, "mIoU": 100 * sum(ious) / len(ious)}


def ref_step_recall(truth: dict, tasks: dict, rows: list) -> float:
    per_task = {}
    for (vid, label), segs in truth.items():
        t = ref_best_second(rows, vid, label)
        per_task.setdefault(tasks[vid], []).append(
            t is not None and any(math.floor(a) <= t < math.ceil(b) for a, b in segs)
        )
    return sum(100 * sum(h) / len(h) for h in per_task.values()) / len(per_task)


def ref_framewise(videos: dict, rows: list) -> tuple[float, float]:
    """videos: {vid: [(start, end, label)]} in time order."""
    accs, ious = [], []
    for vid, segs in videos.items():
        truth = {}
        for a, b, label in segs:
            truth.update({t: label for t in range(math.floor(a), math.ceil(b))})
        guess, best = {}, {}
        for k, (v, s, t, label, score) in enumerate(rows):
            for sec in range(math.floor(s), math.ceil(t)) if v == vid else ():
                if sec not in best or (score, -k) > best[sec]:
                    best[sec], guess[sec] = (score, -k), str(label)
        if truth:
            accs.append(sum(guess.get(t) == lab for t, lab in truth.items()) / len(truth))
            steps = set(truth.values())
            inter = sum(1 for t, lab in truth.items() if guess.get(t) == lab)
            union = sum(
                len({t for t, x in truth.items() if x == s} | {t for t, x in guess.items() if x == s}) for s in steps
            )
            ious.append(inter / union)
    return 100 * sum(accs) / len(accs), 100 * sum(ious) / len(ious)


# --- random files in the official layouts ---------------------------------------------------------------------


def random_htstep(rng, root: Path):
    """Two activities (one with two variations), eight videos, ground truth with duplicates, near-empty segments,
    whole-second and fractional times; predictions with labels outside the variation and for unknown videos."""
    taxonomy = [
        (g, "Act A" if g < 4 else "Act B", g % 4, "none" if g < 4 else "AB"[g % 2], 1, f"step {g}", "")
        for g in range(10)
    ]
    variations = {"Act A": [0, 1, 2, 3], "Act B": {"A": [4, 6, 8], "B": [5, 7, 9]}}
    videos, rows = {}, []
    for k in range(8):
        activity = "Act A" if k % 2 else "Act B"
        steps = variations[activity] if activity == "Act A" else variations[activity]["AB"[k % 4 // 2]]
        segments = []
        for label in rng.choice(steps, size=rng.integers(1, 4)):
            s = float(rng.integers(0, 60)) + (0.0 if rng.random() < 0.3 else float(rng.random()))
            segments.append((s, s + float(rng.choice([0.0001, 1.0, 2.5, 7.3, 12.0])), int(label)))
        if rng.random() < 0.3:
            segments.append(segments[0][:2] + (segments[0][2],))  # a duplicate
        videos[f"v{k}"] = ("val_seen" if k < 6 else "train", activity, segments)
        for _ in range(rng.integers(0, 12)):
            s = float(rng.uniform(0, 70))
            label = int(rng.choice(steps)) if rng.random() < 0.8 else int(rng.integers(0, 10))
            rows.append((f"v{k}", s, s + float(rng.uniform(0.5, 15)), label, float(rng.random())))
    rows.append(("nobody", 1.0, 2.0, 1, 0.5))
    annotations, taxonomy_csv = write_htstep(root, videos, taxonomy)
    return annotations, taxonomy_csv, taxonomy, rows


@pytest.mark.parametrize("seed", range(6))
def test_htstep_protocols_match_the_slow_references(tmp_path, seed):
    rng = np.random.default_rng(seed)
    annotations, taxonomy_csv, taxonomy, rows = random_htstep(rng, tmp_path)
    got = scored(tmp_path, rows, annotations, "htstep", taxonomy=taxonomy_csv, split="val_seen")
    expected = ref_article_map(json.loads(annotations.read_text()), taxonomy, rows, "val_seen")
    assert list(got["htstep-map"].values()) == pytest.approx([100 * x for x in expected], rel=1e-9, abs=1e-9)
    data = json.loads(annotations.read_text())
    truth = {}
    for vid, e in data.items():
        for a in e["annotations"] if e["subset"] == "val_seen" else []:
            truth.setdefault((vid, str(a["id"])), []).append(tuple(a["segment"]))
    assert got["point-recall"]["R@1"] == pytest.approx(ref_point_recall(truth, rows))
    assert got["_"].queries == len(truth) and got["_"].outside == sum(1 for r in rows if r[0] in ("nobody", "v6", "v7"))


@pytest.mark.parametrize("seed", range(4))
def test_goalstep_nlq_recall_matches_the_slow_reference(tmp_path, seed):
    rng = np.random.default_rng(seed)
    videos, rows = [], []
    for k in range(3):
        steps = []
        for _ in range(rng.integers(1, 4)):
            s = float(rng.uniform(0, 50))
            subs = [(s + i, s + i + float(rng.uniform(0.5, 3)), f"sub {i}") for i in range(rng.integers(0, 3))]
            steps.append((s, s + float(rng.uniform(1, 20)), f"step {len(steps)}", subs))
        videos.append((f"g{k}", "COOKING:X", steps))
        queries = sum(1 + len(st[3]) for st in steps)
        for _ in range(rng.integers(0, 25)):
            s = float(rng.uniform(0, 60))
            rows.append(
                (f"g{k}", s, s + float(rng.uniform(0.2, 20)), int(rng.integers(0, queries)), float(rng.integers(0, 4)))
            )  # ties on purpose: file order decides
    path = write_goalstep(tmp_path / "goalstep_valid.json", videos)
    got = scored(tmp_path, rows, path, "goalstep")["nlq-recall"]
    truth = {}
    for uid, _, steps in videos:
        flat = [q for s in steps for q in [s[:3], *s[3]]]
        truth.update({(uid, str(k)): [(a, b)] for k, (a, b, _) in enumerate(flat)})
    assert got == pytest.approx(ref_nlq(truth, rows))


@pytest.mark.parametrize("seed", range(4))
def test_coin_step_recall_and_framewise_match_the_slow_references(tmp_path, seed):
    rng = np.random.default_rng(seed)
    database, rows, truth, tasks, segs = {}, [], {}, {}, {}
    for k in range(6):
        task = f"task{k % 2}"
        ids = [str(10 * (k % 2) + i) for i in range(3)]
        annotation = []
        for _ in range(rng.integers(1, 4)):
            s = float(rng.integers(0, 30)) + float(rng.choice([0.0, 0.4]))
            i = int(rng.integers(0, 3))
            annotation.append(
                {"id": ids[i], "segment": [s, s + float(rng.choice([1.0, 2.6, 5.0]))], "label": f"{task} step {i}"}
            )
        database[f"c{k}"] = {"subset": "testing", "class": task, "duration": 40.0, "annotation": annotation}
        annotation = sorted(annotation, key=lambda a: a["segment"][0])
        for a in annotation:
            truth.setdefault((f"c{k}", a["id"]), []).append(tuple(a["segment"]))
        tasks[f"c{k}"] = task
        segs[f"c{k}"] = [(*a["segment"], a["id"]) for a in annotation]
        for _ in range(rng.integers(0, 10) if k else 0):  # c0: no predictions
            s = float(rng.uniform(0, 35))
            rows.append(
                (f"c{k}", s, s + float(rng.uniform(0.5, 6)), ids[int(rng.integers(0, 3))], float(rng.integers(0, 5)))
            )
    (tmp_path / "COIN.json").write_text(json.dumps({"database": database}))
    got = scored(tmp_path, rows, tmp_path / "COIN.json", "coin", split="testing")
    assert got["step-recall"]["recall"] == pytest.approx(ref_step_recall(truth, tasks, rows))
    accuracy, iou = ref_framewise(segs, rows)
    assert got["framewise"] == pytest.approx({"accuracy": accuracy, "IoU": iou})


# --- hand-worked examples -----------------------------------------------------------------------------------------


def test_whole_seconds_widen_point_recall_but_not_step_recall(tmp_path):
    """Ground truth [2.4, 4.2]: point R@1 counts seconds floor(2.4)=2 .. ceil(4.2)=5; step recall 2, 3, 4."""
    (tmp_path / "COIN.json").write_text(
        json.dumps(
            {
                "database": {
                    "v": {
                        "subset": "testing",
                        "class": "t",
                        "annotation": [{"id": "1", "segment": [2.4, 4.2], "label": "whisk"}],
                    }
                }
            }
        )
    )
    baglm = [
        {
            "video_uid": "v",
            "video_duration": 10.0,
            "activity": "t",
            "step_headline": ["whisk"],
            "clips": [
                {
                    "annotations": [
                        {
                            "language_queries": [
                                {"clip_start_sec": 2.4, "clip_end_sec": 4.2, "query": "whisk", "step": "1"}
                            ]
                        }
                    ]
                }
            ],
        }
    ]
    (tmp_path / "b.json").write_text(json.dumps(baglm))
    for start, point, step in [(5.0, 100, 0), (4.2, 100, 100), (1.6, 100, 100), (1.0, 0, 0), (6.0, 0, 0)]:
        rows = [("v", start, start + 1.0, "1", 0.9)]  # second = floor(start + 0.5)
        assert scored(tmp_path, rows, tmp_path / "b.json", "baglm")["point-recall"]["R@1"] == point, start
        assert scored(tmp_path, rows, tmp_path / "COIN.json", "coin")["step-recall"]["recall"] == step, start


def test_ties_go_to_the_earlier_midpoint_then_the_earlier_row(tmp_path):
    path = write_goalstep(tmp_path / "goalstep_valid.json", [("g", "X:Y", [(10.0, 12.0, "stir", [])])])
    rows = [("g", 20.0, 22.0, 0, 0.5), ("g", 10.0, 12.0, 0, 0.5)]  # equal scores
    (tmp_path / "b.json").write_text(
        json.dumps(
            [
                {
                    "video_uid": "g",
                    "step_headline": ["stir"],
                    "clips": [
                        {
                            "annotations": [
                                {"language_queries": [{"clip_start_sec": 10.0, "clip_end_sec": 12.0, "query": "stir"}]}
                            ]
                        }
                    ],
                }
            ]
        )
    )
    assert scored(tmp_path, rows, tmp_path / "b.json", "baglm")["point-recall"]["R@1"] == 100  # midpoint 11 < 21
    nlq = scored(tmp_path, rows, path, "goalstep")["nlq-recall"]
    assert nlq["R@1 IoU>0.3"] == 0 and nlq["R@5 IoU>0.3"] == 100 and nlq["mIoU"] == 0  # file order: row 1 first


def test_empty_predictions_score_zero(tmp_path):
    annotations, taxonomy = write_htstep(tmp_path)
    got = scored(tmp_path, [], annotations, "htstep", taxonomy=taxonomy, split="val_seen")
    assert set(got["htstep-map"].values()) == {0.0} and got["point-recall"]["R@1"] == 0.0
    assert got["_"].predictions == 0 and got["_"].videos == 2 and got["_"].queries == 6  # (video, step) pairs


def test_labels_outside_the_variation_are_dropped_and_a_video_without_predictions_misses(tmp_path):
    """tea1 and egg1 of val_seen; egg1's duplicate (4.0, 9.0005) and near-empty (12.0, 12.0002) segments are dropped,
    so 'Make Tea' has 3 segments, 'Fry Eggs' 2. Perfect predictions for tea1 only, plus a perfect segment of egg1
    labelled with a step of variation A (not egg1's B): dropped, not a hit."""
    annotations, taxonomy = write_htstep(tmp_path)
    perfect = [("tea1", 10.2, 20.7, 1, 0.9), ("tea1", 2.0, 8.5, 0, 0.8), ("tea1", 30.0, 41.0, 2, 0.7)]
    outside = [("egg1", 0.5, 3.5, 5, 0.95)]  # step 5 is of variation A
    got = scored(tmp_path, perfect + outside, annotations, "htstep", taxonomy=taxonomy, split="val_seen")
    assert list(got["htstep-map"].values()) == [50.0] * 6  # Make Tea AP 1, Fry Eggs AP 0
    assert got["_"].results["htstep-map"]["kept"] == 3 and got["_"].results["htstep-map"]["units"] == 5
    assert got["point-recall"]["R@1"] == pytest.approx(50.0)  # 3 of 6 (video, step) pairs: egg1's three miss
    half = scored(tmp_path, perfect[:1] + outside, annotations, "htstep", taxonomy=taxonomy, split="val_seen")
    # Make Tea: one of three segments found at precision 1: AP 1/3; the mean over the two activities 1/6
    assert half["htstep-map"]["mAP"] == pytest.approx(100 / 6)


def test_a_candidate_may_match_any_step_of_its_video_as_the_official_scorer_lets_it(tmp_path):
    """The official AP is per activity, not per step: a row labelled 'Boil water' on the 'Add the tea' segment of
    the same video is a true positive."""
    annotations, taxonomy = write_htstep(tmp_path)
    swapped = [("tea1", 10.2, 20.7, 0, 0.9), ("tea1", 2.0, 8.5, 1, 0.8), ("tea1", 30.0, 41.0, 2, 0.7)]
    got = scored(tmp_path, swapped, annotations, "htstep", taxonomy=taxonomy, split="val_seen")
    assert got["htstep-map"]["mAP"] == 50.0 and got["point-recall"]["R@1"] == pytest.approx(100 / 6)


# --- the official HT-Step scorer ----------------------------------------------------------------------------------


def _official(tmp_path: Path) -> Path:
    """The official scorer from a fetched mirror of facebookresearch/htstep, or skip."""
    git = MIRRORS / "facebookresearch+htstep" / "repo"
    if not git.is_dir():
        pytest.skip("no fetched mirror of facebookresearch/htstep (fetch github:facebookresearch/htstep)")
    for path in (
        "evaluation/eval_article_grounding.py",
        "evaluation/example_predictions_val_seen.csv",
        "data/taxonomy.csv",
    ):
        (tmp_path / Path(path).name).write_bytes(
            subprocess.run(["git", "-C", str(git), "show", f"HEAD:{path}"], capture_output=True, check=True).stdout
        )
    return tmp_path / "eval_article_grounding.py"


RUN_OFFICIAL = """
import contextlib, importlib.util, io, json, sys
import numpy as np, pandas as pd
spec = importlib.util.spec_from_file_location("official", sys.argv[1])
official = importlib.util.module_from_spec(spec); spec.loader.exec_module(official)
found, evaluate = {}, official.ANETdetectionGrouped.evaluate
def keep(self, preds, verbose=True):
    found["map"], found["mean"] = evaluate(self, preds, verbose)
    return found["map"], found["mean"]
official.ANETdetectionGrouped.evaluate = keep
with contextlib.redirect_stdout(io.StringIO()):
    official.evaluate_article_grounding(json.load(open(sys.argv[3])), pd.read_csv(sys.argv[2]),
                                        pd.read_csv(sys.argv[4]), "val_seen", np.linspace(0.3, 0.7, 5))
print(json.dumps({"map": [float(x) for x in found["map"]], "mean": float(found["mean"])}))
"""


def run_official(scorer: Path, predictions: Path, annotations: Path, taxonomy: Path) -> dict:
    """The official scorer's per-tIoU mAP and mean (needs pandas and joblib, which it imports)."""
    pytest.importorskip("pandas")
    pytest.importorskip("joblib")
    done = subprocess.run(
        [sys.executable, "-c", RUN_OFFICIAL, str(scorer), str(predictions), str(annotations), str(taxonomy)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def ours(predictions: Path, annotations: Path, taxonomy: Path) -> dict:
    """Our article-grounding mAP as fractions, unrounded, for an exact comparison."""
    from tempclr_cli.core.data.layouts import read_layout
    from tempclr_cli.core.data.predictions import match
    from tempclr_cli.core.eval.htstep_map import article_grounding_map

    videos = read_layout(annotations, "htstep", ReadOptions(taxonomy=taxonomy, split="val_seen"))
    found = article_grounding_map(videos, match(read_predictions(predictions), videos))
    return {"map": [float(x) for x in found["map"]], "mean": found["mean"]}


def rebuilt_val_seen(tmp_path: Path) -> Path:
    """HT-Step's val_seen in the official layout, rebuilt from BaGLM's unified file (same segments, same ids)."""
    git = MIRRORS / "lucazanella+baglm" / "repo"
    if not git.is_dir():
        pytest.skip("no fetched mirror of lucazanella/baglm")
    unified = json.loads(
        subprocess.run(
            ["git", "-C", str(git), "show", "HEAD:datasets/htstep/htstep_video_annots.json"],
            capture_output=True,
            check=True,
        ).stdout
    )
    data = {
        v["video_uid"]: {
            "subset": "val_seen",
            "activity": v["activity"],
            "annotations": [
                {"segment": [q["clip_start_sec"], q["clip_end_sec"]], "id": q["step"]}
                for c in v["clips"]
                for a in c["annotations"]
                for q in a["language_queries"]
            ],
        }
        for v in unified
    }
    (tmp_path / "annotations.json").write_text(json.dumps(data))
    return tmp_path / "annotations.json"


@pytest.mark.slow
def test_the_official_example_scores_as_the_official_scorer_scores_it(tmp_path):
    """Done when: evaluation/example_predictions_val_seen.csv against val_seen gives the official values, to the bit."""
    scorer = _official(tmp_path)
    annotations = rebuilt_val_seen(tmp_path)
    example, taxonomy = tmp_path / "example_predictions_val_seen.csv", tmp_path / "taxonomy.csv"
    assert ours(example, annotations, taxonomy) == EXAMPLE_OFFICIAL
    assert run_official(scorer, example, annotations, taxonomy) == EXAMPLE_OFFICIAL
    table = tempclr(
        "score",
        str(example),
        "--annotations",
        str(annotations),
        "--format",
        "htstep",
        "--taxonomy",
        str(taxonomy),
        "--split",
        "val_seen",
    )
    assert table.returncode == 0 and "mAP" in table.stdout and "11.50" in table.stdout and "14.69" in table.stdout


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
def test_small_synthetic_files_score_as_the_official_scorer_scores_them(tmp_path, seed):
    """Random annotations and predictions with tied scores (the official sort's tie order is kept), duplicates,
    near-empty segments, labels outside the variation."""
    scorer = _official(tmp_path)
    annotations, taxonomy, _, rows = random_htstep(np.random.default_rng(100 + seed), tmp_path / "data")
    rows = [r for r in rows if r[0] not in ("nobody", "v6", "v7")]  # the official scorer fails on other videos
    rows = [(v, s, e, label, round(score, 1)) for v, s, e, label, score in rows]  # ties
    data = json.loads(annotations.read_text())  # and every val_seen video annotated (it asserts a variation)
    annotations.write_text(json.dumps({k: e for k, e in data.items() if e["subset"] == "val_seen"}))
    predictions = write_rows(tmp_path / "p.csv", rows, index_column=True)
    assert ours(predictions, annotations, taxonomy) == run_official(scorer, predictions, annotations, taxonomy)


# --- the predictions file -----------------------------------------------------------------------------------------


def test_predictions_columns_are_found_by_name(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(
        "Unnamed: 0,score,label,t-end,t-start,video-id,extra\n0,0.5,513.0,3,1.5,-25-1nbOki0,x\n1,0.25,513,4,2,v2,y\n\n"
    )
    p = read_predictions(path)
    assert p.videos == ["-25-1nbOki0", "v2"] and p.labels == ["513"] and list(p.label) == [0, 0]
    assert list(p.start) == [1.5, 2.0] and list(p.end) == [3.0, 4.0] and list(p.score) == [0.5, 0.25]


@pytest.mark.parametrize(
    "row, message",
    [
        ("v,x,2,1,0.5", "line 3: t-start: expected a time in seconds, got 'x'"),
        ("v,3,2,1,0.5", "line 3: t-end: ends (2) before it starts (3)"),
        ("v,-1,2,1,0.5", "line 3: t-start: '-1' is not a time in seconds (finite, >= 0)"),
        ("v,1,inf,1,0.5", "line 3: t-end: 'inf' is not a time in seconds (finite, >= 0)"),
        ("v,1,2,1,nan", "line 3: score: expected a finite number, got 'nan'"),
        ("v,1,2, ,0.5", "line 3: label: empty"),
        (",1,2,1,0.5", "line 3: video-id: empty"),
        ("v,1,2,1", "line 3: has 4 fields; the header has 5"),
        ("v,1,2,1,0.5,9", "line 3: has 6 fields; the header has 5"),
        (" ", "line 3: has 1 fields; the header has 5"),
        ("v,1_0,2,1,0.5", "line 3: t-start: expected a time in seconds, got '1_0'"),  # not as Python's float reads it
        ("v,1,\u0663,1,0.5", "line 3: t-end: expected a time in seconds, got '\u0663'"),
        ('"v",1,2,1,x', "line 3: score: expected a finite number, got 'x'"),  # quoted: the csv module's path
    ],
)
def test_a_malformed_row_names_the_line_and_the_field(tmp_path, row, message):
    path = tmp_path / "p.csv"
    path.write_text(f"video-id,t-start,t-end,label,score\nv,0,1,1,0.1\n{row}\n")
    with pytest.raises(TempclrError) as error:
        read_predictions(path)
    assert str(error.value) == f"{path}: {message}"


@pytest.mark.parametrize(
    "dialect", [{}, {"lineterminator": "\r\n"}, {"quoting": 1}, {"quoting": 1, "lineterminator": "\r\n"}]
)
def test_line_ends_and_quotes_read_alike(tmp_path, dialect):
    """NumPy's reader (plain files) and the csv module's (quoted ones) give the same columns, blank lines skipped."""
    rows = [("v,1", 0.1 * k, 0.1 * k + 1, 513 if k % 2 else "x y", 1 / (k + 1)) for k in range(7)] + [("w", 0, 1, 5, 2)]
    if "quoting" not in dialect:  # a comma in a field needs quotes
        rows = [(v.replace(",", ""), *r) for v, *r in rows]
    p = read_predictions(write_rows(tmp_path / "p.csv", rows, **dialect))
    assert [p.videos[v] for v in p.video] == [r[0] for r in rows] and list(p.start) == [float(r[1]) for r in rows]
    assert [p.labels[x] for x in p.label] == [str(r[3]) for r in rows] and list(p.score) == [r[4] for r in rows]


def test_a_row_that_is_not_csv_names_its_line(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("video-id,t-start,t-end,label,score\nv,0,1,1,0.1\nv,1,2,a\rb,0.5\n", newline="")
    with pytest.raises(TempclrError, match=r"p.csv: line 3: not CSV \(new-line character seen in unquoted field"):
        read_predictions(path)


def test_a_header_without_a_column_names_it(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("video,t-start,t-end,label\nv,0,1,1\n")
    with pytest.raises(TempclrError, match=r"p.csv: line 1: no video-id, score column"):
        read_predictions(path)


FIELDS = ("video-id", "t-start", "t-end", "label", "score")
BAD = {
    "video-id": ["", " "],
    "t-start": ["x", "-1", "nan", "inf", "", "1e999", "1_0", "\u0661"],
    "t-end": ["x", "-3", "nan", "", "inf"],
    "label": ["", "  "],
    "score": ["x", "nan", "inf", "-inf", "", "0x1"],
}


@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(
    n=st.integers(1, 30),
    bad_row=st.integers(0, 29),
    field=st.sampled_from(FIELDS),
    data=st.data(),
    index_column=st.booleans(),
    dialect=st.sampled_from([{}, {"lineterminator": "\r\n"}, {"quoting": 1}]),
)
def test_fuzzed_predictions_exit_2_naming_the_file_line_and_field(
    tmp_path, n, bad_row, field, data, index_column, dialect
):
    rows = [[f"v{k % 3}", str(k), str(k + 1.5), str(k % 4), str(0.1 * k)] for k in range(n)]
    bad_row = bad_row % n
    rows[bad_row][FIELDS.index(field)] = data.draw(st.sampled_from(BAD[field]))
    path = write_rows(tmp_path / "fuzzed.csv", rows, index_column, **dialect)
    annotations = write_goalstep(tmp_path / "goalstep_valid.json")
    done = tempclr("score", str(path), "--annotations", str(annotations), "--format", "goalstep")
    assert done.returncode == 2, done.stdout
    assert f"fuzzed.csv: line {bad_row + 2}: {field}" in done.stderr, done.stderr


def _leaves(node, path=()):
    """Every leaf of a JSON document with its path of keys and indices."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else None
    if items is None:
        yield path
        return
    for key, child in items:
        yield from _leaves(child, (*path, key))


def _sample_files(root: Path) -> dict[str, tuple[Path, ReadOptions]]:
    from grounding_files import baglm_video

    annotations, taxonomy = write_htstep(root)
    (root / "b.json").write_text(
        json.dumps(
            [
                baglm_video(
                    "b1", ["fill", "boil"], [{"clip_start_sec": 1.0, "clip_end_sec": 3.0, "query": "boil", "step": 4}]
                )
            ]
        )
    )
    return {
        "htstep": (annotations, ReadOptions(taxonomy=taxonomy)),
        "goalstep": (write_goalstep(root / "goalstep_valid.json"), ReadOptions()),
        "baglm": (root / "b.json", ReadOptions()),
    }


@settings(max_examples=120, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(
    layout=st.sampled_from(["htstep", "goalstep", "baglm"]),
    pick=st.integers(0, 10**6),
    value=st.sampled_from([None, "x", -1, 1e12, [], {}, True, "", 3.5, [1, 2, 3]]),
)
def test_fuzzed_annotation_fields_are_read_or_named(tmp_path_factory, layout, pick, value):
    """One leaf of a valid file in each new layout replaced: read, or an error naming the file and the field (its key,
    or the index of the list item it sits in)."""
    from tempclr_cli.core.data.layouts import read_layout

    path, options = _sample_files(tmp_path_factory.mktemp("fuzz"))[layout]
    data = json.loads(path.read_text())
    leaves = list(_leaves(data))
    where = leaves[pick % len(leaves)]
    node = data
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    path.write_text(json.dumps(data))
    try:
        read_layout(path, layout, options)
    except TempclrError as e:
        named = [f"{k}" if isinstance(k, str) else f"[{k}]" for k in where]
        assert str(path) in str(e) and any(n in str(e) for n in named), (where, str(e))


def test_score_prints_a_table_and_json(tmp_path):
    annotations, taxonomy = write_htstep(tmp_path)
    rows = write_rows(tmp_path / "p.csv", [("tea1", 10.2, 20.7, 1, 0.9)], index_column=True)
    args = [
        "score",
        str(rows),
        "--annotations",
        str(annotations),
        "--format",
        "htstep",
        "--taxonomy",
        str(taxonomy),
        "--split",
        "val_seen",
    ]
    table = tempclr(*args)
    assert table.returncode == 0 and "HT-Step article-grounding mAP" in table.stdout and "R@1" in table.stdout
    out = json.loads(tempclr(*args, "--json").stdout)
    assert out["videos"] == 2 and out["queries"] == 6 and set(out["metrics"]) == {"htstep-map", "point-recall"}
    assert out["metrics"]["point-recall"]["values"]["R@1"] == pytest.approx(100 / 6)
    assert "convention" in out["metrics"]["htstep-map"]
    wrong = tempclr(
        "score", str(rows), "--annotations", str(annotations), "--format", "coin", "--taxonomy", str(taxonomy)
    )
    assert wrong.returncode == 2 and "--taxonomy applies to --format htstep, not coin" in wrong.stderr
