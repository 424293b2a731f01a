"""TCLR: clip sampling, temporally consistent augmentation, training run, nearest-neighbour retrieval."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from ranks import run_ranks
from test_cli import tempclr

from tempclr_cli.core.data.clips import ClipSpec, tclr_indices
from tempclr_cli.core.train.augment import augment
from tempclr_cli.core.train.tclr_pretraining import TCLRVideos

RECIPE = Path(__file__).parents[1] / "recipes" / "tclr_synthetic.yaml"


def test_global_and_local_clips_tile_the_same_span():
    g, loc = tclr_indices(200, ClipSpec(16, 4), np.random.default_rng(0))
    start = g[0]
    assert g.tolist() == [start + 4 * k for k in range(16)]
    assert loc.shape == (4, 16)
    for t in range(4):
        assert loc[t].tolist() == list(range(start + 16 * t, start + 16 * t + 16))
    short, short_local = tclr_indices(20, ClipSpec(16, 4), np.random.default_rng(0))
    assert short.max() < 20 and short_local.max() < 20  # short videos loop


def test_augmentation_is_the_same_for_every_frame_of_a_clip():
    frame = torch.randint(0, 255, (1, 60, 80, 3), dtype=torch.uint8)
    clip = frame.expand(8, -1, -1, -1).contiguous()
    for seed in range(20):  # many draws: flips, jitter, grayscale, channel drop, erase
        out = augment(clip, ClipSpec(8, 1, 32), np.random.default_rng(seed))
        assert out.shape == (3, 8, 32, 32) and 0 <= float(out.min()) and float(out.max()) <= 1
        assert torch.allclose(out, out[:, :1].expand_as(out))


@pytest.mark.parametrize("hflip", [0.0, 1.0])
def test_data_hflip_controls_mirroring(hflip):
    """Direction-sensitive classes (moves left / moves right) need data.hflip: 0."""
    ramp = torch.linspace(0, 255, 80).to(torch.uint8)  # brighter to the right
    clip = ramp[None, None, :, None].expand(4, 60, 80, 3).contiguous()
    for seed in range(30):
        out = augment(clip, ClipSpec(4, 1, 32, hflip), np.random.default_rng(seed))
        brighter_right = float((out[..., -1] - out[..., 0]).median()) > 0
        assert brighter_right == (hflip == 0.0)


@pytest.fixture
def actions(tclr_actions: Path) -> Path:
    """Four synthetic action classes of 24-fps clips (conftest's, shared)."""
    return tclr_actions


def test_broken_videos_are_skipped_not_fatal(actions, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    data = TCLRVideos([bad, next(actions.glob("*/*.mp4"))], ClipSpec(16, 4, 32))
    assert data[0] is None
    item = data[1]
    assert item["global"].shape == (2, 3, 16, 32, 32) and item["local"].shape == (2, 4, 3, 16, 32, 32)


@pytest.mark.slow
def test_train_then_nearest_neighbour_retrieval(actions, tmp_path):
    run = tmp_path / "run"
    result = tempclr(
        "train",
        str(RECIPE),
        "--set",
        f"data.root={actions}",
        "--set",
        f"data.annotations={actions}",
        "--set",
        "train.epochs=2",
        "--set",
        "train.batch_size=4",
        "--run-dir",
        str(run),
        "--device",
        "cpu",
    )
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout)
    assert {"ic_global", "ic_local", "local_local", "global_local", "total"} <= set(row) and row["skipped_videos"] == 0
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["kind"] == "tclr" and state["model_args"]["name"] == "r3d18-small"
    nn = tempclr(
        "retrieve",
        str(actions),
        "--task",
        "nn",
        "--format",
        "ucf101",
        "--annotations",
        str(actions),
        "--checkpoint",
        str(run / "last.pt"),
        "--clips",
        "2",
        "--json",
        "--device",
        "cpu",
    )
    assert nn.returncode == 0, nn.stderr
    out = json.loads(nn.stdout)
    assert out["gallery"] == 8 and out["queries"] == 8  # group 1 of each class is the test split
    assert 0 <= out["R@1"] <= out["R@5"] <= 100 and "R@10" not in out  # k beyond the gallery is not reported
    curve = tempclr(
        "retrieve",
        str(actions),
        "--task",
        "nn",
        "--format",
        "ucf101",
        "--annotations",
        str(actions),
        "--checkpoint",
        str(run / "last.pt"),
        "--clips",
        "1",
        "--clips",
        "2",
        "--json",
        "--plot",
        str(tmp_path / "curve.png"),
        "--device",
        "cpu",
    )
    assert curve.returncode == 0, curve.stderr
    rows = json.loads(curve.stdout)["curve"]
    assert [r["clips"] for r in rows] == [1, 2] and rows[1]["R@1"] == out["R@1"]  # same 2-clip protocol
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"


def test_label_fraction_is_class_balanced_and_seeded():
    from tempclr_cli.core.train.classification import label_subset

    labels = ["a"] * 10 + ["b"] * 20 + ["c"] * 3
    keep = label_subset(labels, 0.1, seed=0)
    assert sorted(labels[k] for k in keep) == ["a", "b", "b", "c"]  # at least one per class
    assert keep == label_subset(labels, 0.1, seed=0) and keep != label_subset(labels, 0.5, seed=0)


@pytest.mark.slow
def test_linear_probe_keeps_the_pretrained_backbone_and_reports_test_accuracy(actions, tmp_path):
    pre = tmp_path / "pre"
    common = [
        "--set",
        f"data.root={actions}",
        "--set",
        f"data.annotations={actions}",
        "--set",
        "train.batch_size=4",
        "--device",
        "cpu",
    ]
    assert tempclr("train", str(RECIPE), *common, "--set", "train.epochs=1", "--run-dir", str(pre)).returncode == 0
    probe = tmp_path / "probe"
    finetune = RECIPE.with_name("tclr_synthetic_finetune.yaml")
    result = tempclr(
        "train",
        str(finetune),
        *common,
        "--set",
        f"model.checkpoint={pre / 'last.pt'}",
        "--set",
        "model.freeze=true",
        "--set",
        "train.epochs=1",
        "--set",
        "eval.clips=2",
        "--run-dir",
        str(probe),
        "--plot",
        str(tmp_path / "confusion.png"),
    )
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout)
    assert row["test_videos"] == 8 and 0 <= row["top1"] <= row["top5"] <= 100 and row["items_per_s"] > 0
    assert sum(map(sum, row["confusion"])) == 8 and len(row["classes"]) == 4
    assert (tmp_path / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    curve = tempclr(
        "evaluate",
        str(probe / "last.pt"),
        "--clips",
        "2",
        "--clips",
        "1",
        "--json",
        "--device",
        "cpu",
        "--plot",
        str(tmp_path / "clips.png"),
        "--confusion",
        str(tmp_path / "cm.png"),
    )
    assert curve.returncode == 0, curve.stderr
    rows = json.loads(curve.stdout)["curve"]
    assert [r["clips"] for r in rows] == [1, 2]
    assert rows[1]["top1"] == row["top1"] and rows[1]["confusion"] == row["confusion"]  # train's own test, eval.clips=2
    assert all((tmp_path / png).read_bytes()[:4] == b"\x89PNG" for png in ("clips.png", "cm.png"))
    elsewhere = tempclr(
        "evaluate", str(probe / "last.pt"), "--set", f"data.root={tmp_path / 'nowhere'}", "--device", "cpu"
    )
    assert elsewhere.returncode == 2 and "nowhere" in elsewhere.stderr
    wrong_kind = tempclr("evaluate", str(pre / "last.pt"), "--device", "cpu")
    assert wrong_kind.returncode == 2 and "not a classification checkpoint" in wrong_kind.stderr
    before = torch.load(pre / "last.pt", weights_only=True)["model"]
    after = torch.load(probe / "last.pt", weights_only=True)["model"]
    stats = ("running_mean", "running_var", "num_batches_tracked")
    weights = [k for k in after if k.startswith("backbone.") and not k.endswith(stats)]
    assert weights and all(torch.equal(after[k], before[k]) for k in weights)  # the probe trains the classifier only
    moved = [k for k in after if k.endswith("running_mean") and not torch.equal(after[k], before[k])]
    assert moved  # as released, the frozen backbone's BatchNorm stays in train mode: its statistics follow the data


@pytest.mark.slow
def test_extract_with_a_tclr_checkpoint(actions, tmp_path):
    run = tmp_path / "pre"
    common = ["--set", f"data.root={actions}", "--set", f"data.annotations={actions}", "--set", "train.batch_size=4"]
    assert (
        tempclr(
            "train", str(RECIPE), *common, "--set", "train.epochs=1", "--run-dir", str(run), "--device", "cpu"
        ).returncode
        == 0
    )
    video = next(actions.glob("*/*.mp4"))  # 3 s
    out = tmp_path / "feats"
    result = tempclr(
        "extract",
        str(video),
        "-o",
        str(out),
        "--model",
        "r3d18",
        "--checkpoint",
        str(run / "last.pt"),
        "--dtype",
        "float32",
        "--device",
        "cpu",
    )
    assert result.returncode == 0, result.stderr
    feats = np.load(out / f"{video.stem}.npy")
    assert feats.shape == (3, 128)  # one 1-s clip per second, r3d18-small's 128 channels
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)
    missing = tempclr("extract", str(video), "-o", str(out), "--model", "r3d18")
    assert missing.returncode == 2 and "needs --checkpoint" in missing.stderr


def test_diving48_lists(tmp_path):
    from tempclr_cli.core.data.splits import split_videos
    from tempclr_cli.core.errors import TempclrError

    rows = [{"vid_name": "_8Vy3dlHg2w_00000", "label": 12, "start_frame": 0, "end_frame": 52}]
    (tmp_path / "Diving48_V2_train.json").write_text(json.dumps(rows))
    (tmp_path / "Diving48_V2_test.json").write_text(json.dumps(rows * 2))
    assert split_videos(tmp_path / "rgb", "diving48", tmp_path, 1, "train") == [
        (tmp_path / "rgb" / "_8Vy3dlHg2w_00000.mp4", "12")
    ]
    assert len(split_videos(tmp_path / "rgb", "diving48", tmp_path, 1, "test")) == 2
    (tmp_path / "Diving48_V2_train.json").write_text('{"not": "a list"}')
    with pytest.raises(TempclrError, match="JSON list"):
        split_videos(tmp_path / "rgb", "diving48", tmp_path, 1, "train")


@pytest.mark.slow
def test_sweep_over_label_fractions(actions, tmp_path):
    args = [
        "sweep",
        str(RECIPE.with_name("tclr_synthetic_finetune.yaml")),
        "--fraction",
        "0.25",
        "--fraction",
        "1",
        "--set",
        f"data.root={actions}",
        "--set",
        f"data.annotations={actions}",
        "--set",
        "model.checkpoint=",
        "--set",
        "train.epochs=1",
        "--set",
        "train.batch_size=4",
        "--set",
        "eval.clips=1",
        "--run-dir",
        str(tmp_path / "sweep"),
        "--json",
        "--device",
        "cpu",
    ]
    result = tempclr(*args)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["results"]
    assert [r["fraction"] for r in rows] == [0.25, 1.0] and all(r["test_videos"] == 8 for r in rows)
    meta = [
        torch.load(tmp_path / "sweep" / f"fraction_{f}" / "last.pt", weights_only=True)["meta"] for f in (0.25, 1.0)
    ]
    assert [m["train_videos"] for m in meta] == [4, 8]  # one of 2 per class, then all
    again = tempclr(*args)  # finished runs are re-used
    assert again.returncode == 0 and json.loads(again.stdout)["results"] == rows


DDP_SCRIPT = """
import sys, torch
torch.set_num_threads(1)
from pathlib import Path
from tempclr_cli.core.train.recipe import load_recipe
from tempclr_cli.core.train.tclr_pretraining import TCLRTask
from tempclr_cli.core.train.trainer import train

models = []
build = TCLRTask.build_model
TCLRTask.build_model = lambda self: models.append(build(self)) or models[-1]
recipe = load_recipe(sys.argv[1], sys.argv[3:])
row = train(recipe, TCLRTask(recipe, torch.device("cpu")), Path(sys.argv[2]), torch.device("cpu"))
params = torch.cat([p.detach().flatten() for p in models[0].parameters()])
report({"total": row["total"], "checksum": float(params.double().sum()), "first": params[:50].tolist()})
"""


@pytest.mark.slow
def test_two_gloo_ranks_stay_identical(actions, tmp_path):
    overrides = [f"data.root={actions}", f"data.annotations={actions}", "train.batch_size=4", "train.epochs=1"]
    rows = run_ranks(DDP_SCRIPT, tmp_path, str(RECIPE), str(tmp_path / "run"), *overrides)
    assert rows[0]["first"] == rows[1]["first"] and rows[0]["checksum"] == rows[1]["checksum"]
    assert rows[0]["total"] == rows[1]["total"]  # the epoch loss is reduced across ranks
    assert (tmp_path / "run" / "last.pt").exists()


GATHER_SCRIPT = """
import torch
import torch.distributed as dist
import torch.nn.functional as F
torch.set_num_threads(1)
from tempclr_cli.core.train.losses import gather_with_grad, tclr_losses

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
gen = torch.Generator().manual_seed(0)
unit = lambda *shape: F.normalize(torch.randn(*shape, generator=gen, dtype=torch.float64), dim=-1)
full = [unit(2, 6, 16), unit(2, 6, 4, 16), unit(2, 6, 4, 16)]  # the same global batch on every rank
mine = [x[:, rank * 3:(rank + 1) * 3].clone().requires_grad_() for x in full]
loss = tclr_losses(*[gather_with_grad(x, dim=1) for x in mine], scaling="official")["total"]
loss.backward()
report({"loss": loss.item(), "grads": [x.grad.tolist() for x in mine]})
dist.destroy_process_group()
"""


@pytest.mark.slow
def test_distributed_loss_equals_the_single_process_loss_on_the_global_batch(tmp_path):
    """Each rank holds half of the batch; IC negatives come from both halves (gathered with gradients)."""
    import torch.nn.functional as F

    from tempclr_cli.core.train.losses import tclr_losses

    rows = run_ranks(GATHER_SCRIPT, tmp_path)
    gen = torch.Generator().manual_seed(0)
    full = [
        F.normalize(torch.randn(*shape, generator=gen, dtype=torch.float64), dim=-1).requires_grad_()
        for shape in ((2, 6, 16), (2, 6, 4, 16), (2, 6, 4, 16))
    ]
    loss = tclr_losses(*full, scaling="official")["total"]
    loss.backward()
    for rank, row in enumerate(rows):
        assert row["loss"] == pytest.approx(loss.item(), rel=1e-12)
        for grad, x in zip(row["grads"], full):
            # the gather's backward sums the ranks' copies: world x the shard's gradient,
            # which DDP's averaging over ranks turns back into the single-process gradient
            shard = x.grad[:, rank * 3 : (rank + 1) * 3]
            torch.testing.assert_close(torch.tensor(grad, dtype=torch.float64), 2 * shard)


@pytest.mark.slow
def test_resume_reaches_the_same_weights(actions, tmp_path):
    from tempclr_cli.core.checkpoint import load_checkpoint
    from tempclr_cli.core.train.recipe import load_recipe
    from tempclr_cli.core.train.tclr_pretraining import TCLRTask
    from tempclr_cli.core.train.trainer import train

    def recipe(epochs):
        return load_recipe(
            RECIPE,
            [f"data.root={actions}", f"data.annotations={actions}", "train.batch_size=4", f"train.epochs={epochs}"],
        )

    cpu = torch.device("cpu")
    train(recipe(2), TCLRTask(recipe(2), cpu), tmp_path / "full", cpu)
    train(recipe(1), TCLRTask(recipe(1), cpu), tmp_path / "split", cpu)
    torch.manual_seed(999)
    train(recipe(2), TCLRTask(recipe(2), cpu), tmp_path / "split", cpu, resume="auto")
    a, b = (load_checkpoint(tmp_path / d / "last.pt")["model"] for d in ("full", "split"))
    assert all(torch.equal(a[k], b[k]) for k in a)
