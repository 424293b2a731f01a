"""Few-shot episodes: label readers, determinism, and that alignment sees temporal order."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_cli import tempclr

from tempclr_cli.core.align import measures
from tempclr_cli.core.data.labels import read_labels
from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.eval.fewshot import FewshotConfig, fewshot_accuracy, load_videos, sample_episodes


def write_feature_classes(root: Path, rng, per_class: int = 8, clips: int = 8, dim: int = 32) -> dict[str, str]:
    """Classes made of prototype sequences: reversed pairs (A->B vs B->A) and order-free pairs.

    Order classes share the same two prototypes and differ only in order, so a mean-pooled
    feature cannot tell them apart; order-free classes use different prototypes.
    """
    protos = rng.standard_normal((12, dim))
    specs = {}
    for k in range(3):
        a, b = protos[2 * k], protos[2 * k + 1]
        specs[f"Order{k}Fwd"] = (a, b)
        specs[f"Order{k}Rev"] = (b, a)
    for k in range(6, 12):
        specs[f"Free{k}"] = (protos[k], protos[k])
    labels = {}
    for cls, (a, b) in specs.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for v in range(per_class):
            cut = int(rng.integers(2, clips - 2))
            seq = np.stack([a if t < cut else b for t in range(clips)]) + 0.7 * rng.standard_normal((clips, dim))
            np.save(root / cls / f"{cls}_{v}.npy", seq.astype(np.float16))
            labels[f"{cls}/{cls}_{v}"] = cls
    return labels


@pytest.fixture(scope="module")
def feature_classes(tmp_path_factory):
    root = tmp_path_factory.mktemp("feats")
    labels = write_feature_classes(root, np.random.default_rng(0))
    return root, labels


def test_alignment_distances_see_order_and_mean_does_not(feature_classes):
    root, labels = feature_classes
    cfg = FewshotConfig(ways=2, shots=1, queries=1, episodes=400, seed=1)
    order = {v: c for v, c in labels.items() if c.startswith("Order0")}
    videos, _ = load_videos(order, root, cfg, skip_invalid=False)
    acc = {r.distance: r.accuracy for r in fewshot_accuracy(videos, cfg, ["otam", "dtw", "softdtw", "mean"])}
    assert acc["mean"] < 65  # order-blind: close to chance (50%)
    assert acc["otam"] > 90 and acc["dtw"] > 90 and acc["softdtw"] > 90


def test_order_free_classes_score_alike(feature_classes):
    root, labels = feature_classes
    cfg = FewshotConfig(ways=5, shots=1, queries=1, episodes=300, seed=2)
    free = {v: c for v, c in labels.items() if c.startswith("Free")}
    videos, _ = load_videos(free, root, cfg, skip_invalid=False)
    acc = {r.distance: r.accuracy for r in fewshot_accuracy(videos, cfg, ["otam", "mean"])}
    assert acc["mean"] > 90 and abs(acc["otam"] - acc["mean"]) < 5


def test_episodes_are_deterministic_and_well_formed():
    labels = np.repeat(np.arange(7), 6)
    cfg = FewshotConfig(ways=5, shots=2, queries=3, episodes=50, seed=9)
    s1, q1 = sample_episodes(labels, cfg)
    s2, q2 = sample_episodes(labels, cfg)
    assert (s1 == s2).all() and (q1 == q2).all()
    assert s1.shape == (50, 5, 2) and q1.shape == (50, 5, 3)
    for e in range(50):
        classes = labels[s1[e, :, 0]]
        assert len(set(classes)) == 5
        for n in range(5):
            members = np.concatenate([s1[e, n], q1[e, n]])
            assert len(set(members)) == 5 and (labels[members] == classes[n]).all()


def test_small_classes_and_missing_features_fail_clearly_or_are_skipped(feature_classes):
    root, labels = feature_classes
    cfg = FewshotConfig(ways=2, shots=5, queries=4)
    with pytest.raises(TempclrError, match="fewer than --shots \\+ --queries = 9"):
        load_videos(labels, root, cfg, skip_invalid=False)
    extra = {**labels, "Nowhere/ghost": "Order0Fwd"}
    cfg = FewshotConfig(ways=2, shots=1, queries=1)
    with pytest.raises(TempclrError, match="Nowhere/ghost: no feature file"):
        load_videos(extra, root, cfg, skip_invalid=False)
    videos, warnings = load_videos(extra, root, cfg, skip_invalid=True)
    assert "no features for Nowhere/ghost" in warnings and len(videos.ids) == len(labels)


def test_label_formats_agree(tmp_path, feature_classes):
    root, labels = feature_classes
    items = sorted(labels.items())
    (tmp_path / "labels.csv").write_text("video,class\n" + "".join(f"{Path(v).name},{c}\n" for v, c in items))
    (tmp_path / "split.txt").write_text("".join(f"{v}\n" for v, _ in items))
    ucf = tmp_path / "ucf"
    ucf.mkdir()
    classes = sorted(set(labels.values()))
    (ucf / "classInd.txt").write_text("".join(f"{i} {c}\n" for i, c in enumerate(classes, 1)))
    (ucf / "trainlist01.txt").write_text("".join(f"{v}.avi {classes.index(c) + 1}\n" for v, c in items[::2]))
    (ucf / "testlist01.txt").write_text("".join(f"{v}.avi\n" for v, _ in items[1::2]))
    hmdb = tmp_path / "hmdb"
    hmdb.mkdir()
    for c in classes:
        (hmdb / f"{c}_test_split1.txt").write_text(
            "".join(f"{Path(v).name}.avi {1 + k % 2}\n" for k, (v, cc) in enumerate(items) if cc == c)
        )
    by_name = {Path(v).name: c for v, c in labels.items()}
    assert read_labels(root) == labels
    assert read_labels(ucf) == labels
    assert read_labels(tmp_path / "split.txt") == labels
    assert read_labels(tmp_path / "labels.csv") == by_name
    assert read_labels(hmdb) == by_name


def test_cli_json_is_deterministic(feature_classes):
    root, _ = feature_classes
    args = ["fewshot", str(root), "--labels", str(root), "--ways", "3", "--episodes", "200", "--json", "--seed", "4"]
    first, second = tempclr(*args), tempclr(*args)
    assert first.returncode == 0, first.stderr
    a = json.loads(first.stdout)
    assert a == json.loads(second.stdout)
    assert (
        [r["distance"] for r in a["results"]] == list(measures.names("fewshot")) == ["dtw", "otam", "softdtw", "mean"]
    )
    assert all(0 <= r["accuracy"] <= 100 and r["ci95"] >= 0 for r in a["results"])
    assert a["results"][3]["ci95"] > 0  # mean-pooling errs on the order classes: the interval is real


def test_cli_errors(feature_classes, tmp_path):
    root, _ = feature_classes
    result = tempclr("fewshot", str(root), "--labels", str(tmp_path / "none.csv"))
    assert result.returncode == 2 and "labels file or folder not found" in result.stderr
    result = tempclr("fewshot", str(root), "--labels", str(root), "--distance", "cosine")
    assert result.returncode == 2 and "--distance" in result.stderr and "cosine" in result.stderr


def test_checkpoint_heads_transform_the_clips(feature_classes, tmp_path):
    from tempclr_cli.core.checkpoint import save_checkpoint
    from tempclr_cli.core.models.heads import HeadsConfig, TempCLRHeads

    root, _ = feature_classes
    heads = TempCLRHeads(HeadsConfig(dim=32, layers=1, dropout=0.0))
    torch_state = heads.state_dict()
    ckpt = save_checkpoint(
        tmp_path / "heads.pt",
        {"kind": "tempclr", "model_args": heads.config.__dict__, "model": torch_state, "meta": {}},
    )
    args = ["fewshot", str(root), "--labels", str(root), "--ways", "3", "--episodes", "100", "--json"]
    plain, headed = tempclr(*args), tempclr(*args, "--checkpoint", str(ckpt))
    assert headed.returncode == 0, headed.stderr
    # untrained heads are the identity: the same accuracies
    assert json.loads(plain.stdout)["results"] == json.loads(headed.stdout)["results"]
    bad = tempclr(*args, "--checkpoint", str(tmp_path / "missing.pt"))
    assert bad.returncode == 2 and "checkpoint not found" in bad.stderr


@pytest.mark.slow
def test_fewshot_training_on_meta_train_classes_then_evaluation_on_meta_test(tmp_path):
    """synth -> per-frame features -> `train` (loss.kind fewshot) -> `fewshot --checkpoint --frames 8`."""
    data, feats, run = tmp_path / "data", tmp_path / "features", tmp_path / "run"
    assert (
        tempclr(
            "synth", str(data), "--videos", "0", "--classes", "8", "--class-videos", "4", "--size", "32", "-q"
        ).returncode
        == 0
    )
    done = tempclr(
        "extract",
        str(data / "actions"),
        "-o",
        str(feats),
        "--model",
        "tiny",
        "--pretrained",
        "none",
        "--per-frame",
        "--fps",
        "4",
        "--workers",
        "0",
        "-q",
    )
    assert done.returncode == 0, done.stderr
    meta_train = {line.split("/")[0] for line in (data / "actions" / "fewshot_train.txt").read_text().splitlines()}
    meta_test = {line.split("/")[0] for line in (data / "actions" / "fewshot_test.txt").read_text().splitlines()}
    assert meta_train and meta_test and not meta_train & meta_test
    recipe = Path(__file__).parents[1] / "recipes" / "tempclr_fewshot_synthetic.yaml"
    trained = tempclr(
        "train",
        str(recipe),
        "--set",
        f"data.root={feats}",
        "--set",
        f"data.annotations={data / 'actions' / 'fewshot_train.txt'}",
        "--set",
        "train.epochs=2",
        "--run-dir",
        str(run),
        "--device",
        "cpu",
        "-q",
    )
    assert trained.returncode == 0, trained.stderr
    row = json.loads(trained.stdout)
    assert row["epoch"] == 2 and np.isfinite(row["total"])
    from tempclr_cli.core.checkpoint import load_checkpoint

    state = load_checkpoint(run / "last.pt")
    assert state["kind"] == "fewshot" and set(state["meta"]["classes"]) == meta_train  # never saw meta-test classes
    args = [
        str(feats),
        "--labels",
        str(data / "actions" / "fewshot_test.txt"),
        "--ways",
        "2",
        "--episodes",
        "50",
        "--frames",
        "8",
        "--distance",
        "otam",
        "--json",
    ]
    before, after = tempclr("fewshot", *args), tempclr("fewshot", *args, "--checkpoint", str(run / "last.pt"))
    assert before.returncode == 0 and after.returncode == 0, after.stderr
    accuracy = [json.loads(r.stdout)["results"][0]["accuracy"] for r in (before, after)]
    assert all(0 <= a <= 100 for a in accuracy)
    assert float(state["model"]["video.out.weight"].abs().max()) > 0  # trained: no longer the identity it starts as
    wrong = tempclr("align", str(next(feats.rglob("*.npy"))), "-", "--checkpoint", str(run / "last.pt"), stdin="grow\n")
    assert wrong.returncode == 2 and "not a TempCLR heads or TempCLR-tuned VideoCLIP checkpoint" in wrong.stderr


def test_frames_resamples_every_video_to_n_segment_centres():
    from tempclr_cli.core.data.features import segment_centres

    x = np.arange(10)[:, None].repeat(2, 1)
    assert segment_centres(x, 4)[:, 0].tolist() == [1, 3, 6, 8]  # floor((k + 0.5) * 10 / 4)
    assert segment_centres(x[:3], 8)[:, 0].tolist() == [0, 0, 0, 1, 1, 2, 2, 2]  # short videos repeat
