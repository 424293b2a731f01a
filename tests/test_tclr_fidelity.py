"""TCLR as the authors ran it (#16): per-view BatchNorm, the released augmentation and clip
rules, R(2+1)D-18, the authors' .pth checkpoints, the evaluation clips. References are the
release's own lines, re-typed here (file:line in each docstring)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_cli import tempclr
from torch import nn
from torchvision.models.video import resnet as tv

from tempclr_cli.core.data.clips import ClipSpec, eval_starts, mirror, tclr_indices, too_short
from tempclr_cli.core.media.synth import SynthConfig, generate
from tempclr_cli.core.models.r3d import TCLRModel, build_backbone, feature_map
from tempclr_cli.core.train.augment import LINEAR, PRETRAINING, augment, decisions, draw
from tempclr_cli.core.train.losses import tclr_losses

RECIPES = Path(__file__).parents[1] / "recipes"


def released_forward(model: TCLRModel, global_clips, local_clips):
    """`train_gen_all_step.py:71-82` with `mlp.py:26-45`: one call per clip tensor, in the
    release's order; the head's BN sees each embedding kind separately."""
    head = model.head  # Linear(fc1), BN(bn1), ReLU, Linear(fc2), BN(bn2)
    fc1, bn1, fc2, bn2 = head[0], head[1], head[3], head[4]
    mlp = lambda x: nn.functional.normalize(bn2(fc2(torch.relu(bn1(fc1(x))))), p=2, dim=1)  # noqa: E731
    out_sparse = []
    for clips in global_clips:
        x = model.backbone.layer4(
            model.backbone.layer3(model.backbone.layer2(model.backbone.layer1(model.backbone.stem(clips))))
        ).mean(dim=(3, 4), keepdim=True)  # AdaptiveAvgPool3d((None, 1, 1))
        gsr = mlp(x.mean(2).flatten(1))
        out_sparse.append((gsr, *[mlp(x[:, :, i].flatten(1)) for i in range(4)]))
    out_dense = [[mlp(feature_map(model.backbone, local_clips[d, :, k]).mean(-1)) for k in range(4)] for d in range(2)]
    views = torch.stack([s[0] for s in out_sparse])
    slices = torch.stack([torch.stack(s[1:], 1) for s in out_sparse])
    local = torch.stack([torch.stack(d, 1) for d in out_dense])
    return views, slices, local


def _inputs(B=4, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, B, 3, 16, size, size, generator=g), torch.rand(2, B, 4, 3, 16, size, size, generator=g)


def test_per_view_batchnorm_equals_the_released_passes_in_train_mode():
    torch.manual_seed(0)
    model = TCLRModel("r3d18-small", 64).train()
    reference = TCLRModel("r3d18-small", 64).train()
    reference.load_state_dict(model.state_dict())
    global_clips, local_clips = _inputs()
    ours, theirs = model(global_clips, local_clips), released_forward(reference, global_clips, local_clips)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    for (name, a), b in zip(model.state_dict().items(), reference.state_dict().values()):  # BN statistics, same updates
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    joint = TCLRModel("r3d18-small", 64, batchnorm="joint").train()
    joint.load_state_dict(reference.state_dict())
    loss = lambda out: float(tclr_losses(*out, 0.1, "official")["total"].detach())  # noqa: E731
    assert abs(loss(joint(global_clips, local_clips)) - loss(ours)) > 1e-3  # joint statistics: another loss


def test_augmentation_frequencies_are_the_released_ones():
    rng, spec = np.random.default_rng(0), ClipSpec(16, 4, 112, hflip=0.5)
    expected = {
        PRETRAINING: {
            "contrast": 0.25,
            "hue": 0.3,
            "saturation": 0.3,
            "brightness": 0.3,
            "grayscale": 0.175,
            "gamma": 0.175 * 0.75,
            "channel_drop": 0.125,
            "hflip": 0.5,
            "erase": 0.5,
        },
        LINEAR: {
            "contrast": 0.125,
            "hue": 0.15,
            "saturation": 0.15,
            "brightness": 0.15,
            "grayscale": 0.1,
            "gamma": 0.075,
            "channel_drop": 0.0,
            "hflip": 0.5,
            "erase": 0.25,
        },
    }
    for strengths, want in expected.items():
        draws = [decisions(draw(spec, 240, 320, rng, strengths), strengths, spec.hflip) for _ in range(20000)]
        for d in draws:
            d["contrast"] = d["contrast_before"] or d["contrast_after"]
            assert not (d["contrast_before"] and d["contrast_after"]) and not (d["grayscale"] and d["channel_drop"])
            assert d["grayscale"] or not d["gamma"]  # gamma only follows grayscale
        for op, p in want.items():
            seen = np.mean([d[op] for d in draws])
            assert abs(seen - p) < 4 * np.sqrt(p * (1 - p) / len(draws)) + 1e-9, (op, seen, p)


def test_crop_reaches_the_right_edge_unless_the_released_range_is_asked_for():
    """`dl_tclr.py:126`: x0 ~ randint(0, W - W f + 1) for a crop H f wide never reaches the right edge."""
    spec = ClipSpec(16, 4, 112)
    right = {
        mode: max(
            p["x0"] + p["side"]
            for p in (draw(spec, 240, 320, np.random.default_rng(s), crop_x=mode) for s in range(3000))
        )
        for mode in ("uniform", "released")
    }
    assert right["uniform"] == 320 and right["released"] <= 272  # x0 + side <= 320 - 80 f: the right 48 px unseen
    sizes = {v for s in range(2000) for v in draw(spec, 240, 320, np.random.default_rng(s))["erase_size"]}
    assert sizes == set(range(9, 19))  # randint(9, 19): rectangles, sides drawn apart


def test_augment_applies_one_draw_to_every_frame_and_erases_rectangles():
    frame = torch.randint(0, 255, (1, 240, 320, 3), dtype=torch.uint8)
    clip = frame.expand(4, -1, -1, -1).contiguous()
    for seed in range(10):
        out = augment(clip, ClipSpec(4, 1, 112), np.random.default_rng(seed))
        assert out.shape == (3, 4, 112, 112) and torch.equal(out, out[:, :1].expand_as(out))


def test_short_videos_are_dropped_and_clips_past_the_end_mirror_padded():
    """`dl_tclr.py:76` drops videos of 56 frames or fewer; `:195-208` mirror-pads."""
    spec = ClipSpec(16, 4)
    assert too_short(56, spec) and not too_short(57, spec)
    g, loc = tclr_indices(57, spec, np.random.default_rng(0))
    sparse = [f for f in range(0, 64, 4) if f < 57]  # the release reads only existing frames: 15 of 16
    assert g.tolist() == sparse + sparse[::-1][1:2]
    dense3 = list(range(48, 57))
    assert loc[3].tolist() == dense3 + dense3[::-1][1:8]
    assert mirror(np.arange(5, 9), 100).tolist() == [5, 6, 7, 8]
    looped, _ = tclr_indices(20, spec, np.random.default_rng(0), pad="loop")
    assert looped.tolist() == [(4 * k) % 20 for k in range(16)]


def test_evaluation_clip_starts_are_the_released_ones():
    """`dl_ret.py:85-93`: int(linspace(0, N - 32 - 10, 9)), negative starts become the clip number."""
    spec = ClipSpec(16, 2)
    assert eval_starts(100, spec, 9).tolist() == [int(x) for x in np.linspace(0, 58, 9)]
    assert eval_starts(30, spec, 3).tolist() == [0, 1, 2]  # linspace(0, -12, 3) -> 0, -6, -12


def released_r2plus1d() -> nn.Module:
    """`nn_retrieval/model.py:109-116`: torchvision's R(2+1)D-18 with layer4's first (2+1)D
    convolution replaced by a full dilated 3x3x3 one."""
    model = tv.r2plus1d_18(weights=None)
    model.layer4[0].conv1[0] = nn.Conv3d(
        256, 512, kernel_size=(3, 3, 3), stride=(1, 2, 2), padding=(2, 1, 1), dilation=(2, 1, 1), bias=False
    )
    model.layer4[0].downsample[0] = nn.Conv3d(256, 512, kernel_size=(1, 1, 1), stride=(1, 2, 2), bias=False)
    model.fc = nn.Identity()
    return model


@pytest.mark.slow
def test_r2plus1d_is_the_released_architecture():
    ours, theirs = build_backbone("r2plus1d18"), released_r2plus1d()
    shapes = lambda m: {k: tuple(v.shape) for k, v in m.state_dict().items()}  # noqa: E731
    assert shapes(ours) == shapes(theirs)
    assert sum(p.numel() for p in ours.parameters()) == 31_300_587
    assert feature_map(ours.eval(), torch.rand(1, 3, 16, 112, 112)).shape == (1, 512, 4)
    model = TCLRModel("r2plus1d18", 128).train()
    views, slices, local = model(*_inputs(B=2, size=32))
    assert views.shape == (2, 2, 128) and slices.shape == (2, 2, 4, 128) and local.shape == (2, 2, 4, 128)


def released_pth(path: Path, name: str, parallel: bool, seed: int = 0) -> TCLRModel:
    """A checkpoint as the release writes one: {'epoch', 'state_dict', 'optimizer'} of
    `nn.Sequential(backbone, mlp)`, keys `0.stem...`, `1.fc1...` (under DataParallel `module.`)."""
    torch.manual_seed(seed)
    model = TCLRModel(name, 128)
    head = {"fc1": model.head[0], "bn1": model.head[1], "fc2": model.head[3], "bn2": model.head[4]}
    state = {f"0.{k}": v for k, v in model.backbone.state_dict().items()}
    state.update({f"1.{n}.{k}": v for n, m in head.items() for k, v in m.state_dict().items()})
    prefix = "module." if parallel else ""
    torch.save({"epoch": 300, "state_dict": {prefix + k: v for k, v in state.items()}, "optimizer": {}}, path)
    return model


@pytest.fixture(scope="module")
def actions(tmp_path_factory):
    root = tmp_path_factory.mktemp("tclr_actions")
    list(generate(root, SynthConfig(videos=0, classes=3, class_videos=4, fps=24, size=48, seed=5)))
    return root / "actions"


@pytest.mark.slow
@pytest.mark.parametrize("name, parallel", [("r3d18", True), ("r2plus1d18", False)])
def test_released_checkpoints_load_into_extract_retrieval_and_fine_tuning(actions, tmp_path, name, parallel):
    pth = tmp_path / "released.pth"
    model = released_pth(pth, name, parallel)
    video = sorted(actions.glob("*/*.mp4"))[0]
    done = tempclr(
        "extract",
        str(video),
        "-o",
        str(tmp_path / "f"),
        "--model",
        name,
        "--checkpoint",
        str(pth),
        "--dtype",
        "float32",
        "--no-normalize",
        "--workers",
        "0",
        "-q",
        "--device",
        "cpu",
    )
    assert done.returncode == 0, done.stderr
    row = json.loads((tmp_path / "f" / "index.jsonl").read_text())
    assert row["model"] == name and row["clips"] == 3
    nn_run = tempclr(
        "retrieve",
        str(actions),
        "--task",
        "nn",
        "--format",
        "ucf101",
        "--annotations",
        str(actions),
        "--checkpoint",
        str(pth),
        "--clips",
        "1",
        "--json",
        "--device",
        "cpu",
    )
    assert nn_run.returncode == 0, nn_run.stderr
    assert json.loads(nn_run.stdout)["queries"] > 0
    if name == "r3d18":  # the features are the released weights' (BGR frames in), as extract computes them
        from tempclr_cli.core.media.sampling import sample_frames

        frames = np.stack([s.image for s in sample_frames(video, 16.0, 112)])[:16]
        x = torch.from_numpy(frames[..., ::-1].copy())  # the checkpoint's colour order: BGR
        top, left = (x.shape[1] - 112) // 2, (x.shape[2] - 112) // 2
        x = x[:, top : top + 112, left : left + 112].permute(3, 0, 1, 2)[None].float() / 255
        expected = feature_map(model.backbone.eval(), x).mean(-1)[0]
        np.testing.assert_allclose(
            np.load(tmp_path / "f" / f"{video.stem}.npy")[0], expected.detach().numpy(), rtol=1e-3, atol=1e-4
        )
    linear = name == "r2plus1d18"  # fine-tune one, linear-probe the other
    tune = tempclr(
        "train",
        str(RECIPES / "tclr_synthetic_finetune.yaml"),
        "--set",
        f"data.root={actions}",
        "--set",
        f"data.annotations={actions}",
        "--set",
        f"model.checkpoint={pth}",
        "--set",
        f"model.name={name}",
        "--set",
        f"model.freeze={str(linear).lower()}",
        "--set",
        "train.epochs=2",
        "--set",
        "train.batch_size=4",
        "--set",
        "eval.clips=1",
        "--set",
        "data.size=32",
        "--set",
        "data.val_fraction=0.2",
        "--run-dir",
        str(tmp_path / "tune"),
        "--device",
        "cpu",
    )
    assert tune.returncode == 0, tune.stderr
    assert "held out for validation" in tune.stderr and "testing best.pt" in tune.stderr
    rows = [json.loads(r) for r in (tmp_path / "tune" / "metrics.jsonl").read_text().splitlines()]
    assert all(0 <= r["val_top1"] <= 100 for r in rows)
    best = torch.load(tmp_path / "tune" / "best.pt", weights_only=True)
    assert best["metrics"]["val_top1"] == max(r["val_top1"] for r in rows)  # chosen on validation, not test
    assert best["meta"]["channels"] == "bgr"  # tuned in the colour order the released weights expect


def test_a_pth_without_a_backbone_is_refused_by_name(tmp_path):
    bad = tmp_path / "other.pth"
    torch.save({"state_dict": {"encoder.weight": torch.zeros(2)}}, bad)
    from videos import cfr

    cfr(tmp_path / "videos" / "v.mp4", 1.0)
    done = tempclr(
        "extract", str(tmp_path / "videos"), "-o", str(tmp_path / "f"), "--model", "r3d18", "--checkpoint", str(bad)
    )
    assert done.returncode == 2 and "other.pth" in done.stderr and "backbone" in done.stderr


@pytest.mark.slow
def test_r2plus1d_pretrains_through_the_train_command(actions, tmp_path):
    done = tempclr(
        "train",
        str(RECIPES / "tclr_synthetic.yaml"),
        "--set",
        f"data.root={actions}",
        "--set",
        f"data.annotations={actions}",
        "--set",
        "model.name=r2plus1d18",
        "--set",
        "train.epochs=1",
        "--set",
        "train.batch_size=4",
        "--set",
        "data.size=32",
        "--run-dir",
        str(tmp_path / "run"),
        "--device",
        "cpu",
    )
    assert done.returncode == 0, done.stderr
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert state["model_args"] == {"name": "r2plus1d18", "proj_dim": 64, "batchnorm": "per-view"}
    assert state["meta"]["channels"] == "bgr" and json.loads(done.stdout)["total"] > 0
