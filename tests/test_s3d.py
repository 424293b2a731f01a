"""S3D MIL-NCE (#27): the model against the authors' forward, their file layout, VideoCLIP's
frames, and the encoder in every command.

The reference forward below is re-typed from the authors' `s3dg.py`
(antoine77340/S3D_HowTo100M, file:line in each docstring) as plain functional calls over
the state dict, so it shares no module code with tempclr. With `S3DG_PY=/path/to/s3dg.py`
the authors' own class runs beside tempclr too.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_cli import tempclr

from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.models.s3d import S3D
from tempclr_cli.core.encode.s3d import load_s3d_model

WORDS = np.array(["add", "the", "onion", "don't", "stir", "pan", "oil", "salt", "cut", "tomato", "heat", "é"])


# --- the reference forward (float64, functional) -------------------------------------------------


def _bn_relu(x, sd, name):
    return F.relu(
        F.batch_norm(
            x,
            sd[f"{name}.running_mean"],
            sd[f"{name}.running_var"],
            sd[f"{name}.weight"],
            sd[f"{name}.bias"],
            False,
            0.0,
            1e-5,
        )
    )


def _stconv(x, sd, name, padding=0, separable=False):
    """`STConv3D.forward` (s3dg.py:146-150) with its kernels (s3dg.py:98-143): separable is a
    [1,k,k] conv padded (0,p,p) then a [k,1,1] conv padded (p,0,0)."""
    if separable:
        x = _bn_relu(F.conv3d(x, sd[f"{name}.conv1.weight"], padding=(0, padding, padding)), sd, f"{name}.bn1")
        return _bn_relu(F.conv3d(x, sd[f"{name}.conv2.weight"], padding=(padding, 0, 0)), sd, f"{name}.bn2")
    return _bn_relu(F.conv3d(x, sd[f"{name}.conv1.weight"], padding=padding), sd, f"{name}.bn1")


def _gate(x, sd, name):
    """`SelfGating.forward` (s3dg.py:84-90)."""
    w = torch.sigmoid(F.linear(x.mean(dim=(2, 3, 4)), sd[f"{name}.fc.weight"], sd[f"{name}.fc.bias"]))
    return w[:, :, None, None, None] * x


def _inception(x, sd, name):
    """`InceptionBlock.forward` (s3dg.py:61-77), gating on."""
    b0 = _gate(_stconv(x, sd, f"{name}.conv_b0"), sd, f"{name}.gating_b0")
    b1 = _gate(_stconv(_stconv(x, sd, f"{name}.conv_b1_a"), sd, f"{name}.conv_b1_b", 1, True), sd, f"{name}.gating_b1")
    b2 = _gate(_stconv(_stconv(x, sd, f"{name}.conv_b2_a"), sd, f"{name}.conv_b2_b", 1, True), sd, f"{name}.gating_b2")
    b3 = _gate(_stconv(F.max_pool3d(x, 3, 1, 1), sd, f"{name}.conv_b3_b"), sd, f"{name}.gating_b3")
    return torch.cat([b0, b1, b2, b3], 1)


def _pool_same(x, kernel, stride):
    """`MaxPool3dTFPadding` (s3dg.py:153-182): pads (H, H, W, W, T, T) amounts of zeros in
    ConstantPad3d's (W, H, T) order, then max pools with ceil_mode."""
    pads = [(max(k - s, 0) // 2, max(k - s, 0) - max(k - s, 0) // 2) for k, s in zip(kernel, stride)]
    shape = [pads[1][0], pads[1][1], pads[2][0], pads[2][1], pads[0][0], pads[0][1]]
    return F.max_pool3d(F.pad(x, shape, value=0.0), kernel, stride, ceil_mode=True)


def reference_video(sd, video):
    """`S3D.forward` (s3dg.py:307-334) with `_space_to_depth` (s3dg.py:298-305)."""
    B, C, T, H, W = video.shape
    x = video.view(B, C, T // 2, 2, H // 2, 2, W // 2, 2).permute(0, 3, 5, 7, 1, 2, 4, 6)
    x = x.contiguous().view(B, 8 * C, T // 2, H // 2, W // 2)
    x = _stconv(x, sd, "conv1", padding=(1, 2, 2))[:, :, 1:, 1:, 1:]
    x = _pool_same(x, (1, 3, 3), (1, 2, 2))
    x = _stconv(_stconv(x, sd, "conv_2b"), sd, "conv_2c", 1, True)
    x = _pool_same(_gate(x, sd, "gating"), (1, 3, 3), (1, 2, 2))
    x = _inception(_inception(x, sd, "mixed_3b"), sd, "mixed_3c")
    x = _pool_same(x, (3, 3, 3), (2, 2, 2))
    for name in ("mixed_4b", "mixed_4c", "mixed_4d", "mixed_4e", "mixed_4f"):
        x = _inception(x, sd, name)
    x = _inception(_inception(_pool_same(x, (2, 2, 2), (2, 2, 2)), sd, "mixed_5b"), sd, "mixed_5c")
    pooled = x.mean(dim=(2, 3, 4))
    return F.linear(pooled, sd["fc.weight"], sd["fc.bias"]), pooled


def reference_text(sd, words, sentences):
    """`Sentence_Embedding` (s3dg.py:185-237): `[\\w']+` on the lower-cased sentence, word i ->
    token i + 1, unknown words dropped, zero-pad / cut to 16 (all zeros when none is known),
    fc1 + ReLU, max over the 16 positions, fc2."""
    vocab = {w: i + 1 for i, w in enumerate(words)}
    rows = []
    for s in sentences:
        ids = [vocab[w] for w in re.findall(r"[\w']+", str(s.lower())) if w in vocab]
        rows.append((ids + [0] * 16)[:16] if ids else [0] * 16)
    x = sd["text_module.word_embd.weight"][torch.tensor(rows)]
    x = F.relu(F.linear(x, sd["text_module.fc1.weight"], sd["text_module.fc1.bias"])).max(dim=1)[0]
    return F.linear(x, sd["text_module.fc2.weight"], sd["text_module.fc2.bias"])


# --- fixtures ---------------------------------------------------------------------------------


def _randomised(seed=0) -> S3D:
    """tempclr's S3D with random weights and non-trivial BN statistics, in float64, eval mode."""
    torch.manual_seed(seed)
    model = S3D(WORDS, vocab=len(WORDS) + 1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
    return model.double().eval()


@pytest.fixture(scope="module")
def s3d_files(tmp_path_factory):
    """The two released files, in their layout, with random weights (float32, as released)."""
    folder = tmp_path_factory.mktemp("s3d")
    model = _randomised().float()
    torch.save(model.state_dict(), folder / "s3d_howto100m.pth")
    np.save(folder / "s3d_dict.npy", WORDS)
    return folder


SENTENCES = [
    "Add the onion!",
    "STIR, stir; stir the pan",
    "don't cut the tomato",
    "nothing known here at all",
    "oil " * 20,
    "é salt, heat-the-pan",
    "",
]


def test_video_tower_matches_the_released_forward_in_float64():
    model = _randomised()
    video = torch.rand(2, 3, 32, 64, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = model(video)
        emb, mixed = reference_video(model.state_dict(), video)
    assert ours["video_embedding"].shape == (2, 512) and ours["mixed_5c"].shape == (2, 1024)
    torch.testing.assert_close(ours["video_embedding"], emb, atol=1e-6, rtol=0)
    torch.testing.assert_close(ours["mixed_5c"], mixed, atol=1e-6, rtol=0)


def test_text_tower_matches_the_released_one_exactly():
    model = _randomised()
    with torch.no_grad():
        ours = model.encode_text(SENTENCES)
        ref = reference_text(model.state_dict(), WORDS, SENTENCES)
    assert torch.equal(ours, ref)
    tokens = model.text_module.tokens(SENTENCES)
    assert tokens[0, :3].tolist() == [1, 2, 3] and tokens[0, 3:].eq(0).all()  # "add the onion", then padding
    assert tokens[2, 0] == 4  # "don't" is one word, as [\w']+ splits it
    assert tokens[3].eq(0).all()  # no known word: 16 zeros
    assert tokens[4].eq(7).all()  # 20 x "oil" cut to 16


def test_odd_frame_counts_are_refused():
    with pytest.raises(ValueError, match="even"):
        _randomised()(torch.zeros(1, 3, 31, 64, 64, dtype=torch.float64))


@pytest.mark.skipif(
    not os.environ.get("S3DG_PY"), reason="set S3DG_PY to the authors' s3dg.py to run it beside tempclr"
)
def test_the_authors_class_gives_the_same_outputs(tmp_path):
    spec = importlib.util.spec_from_file_location("s3dg", os.environ["S3DG_PY"])
    s3dg = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(s3dg)
    np.save(tmp_path / "dict.npy", WORDS)
    theirs = s3dg.S3D(str(tmp_path / "dict.npy"))
    ours = _randomised()
    vocab_rows = ours.state_dict()["text_module.word_embd.weight"]
    state = {k: v for k, v in ours.state_dict().items() if k != "text_module.word_embd.weight"}
    full = torch.zeros(66250, 300, dtype=torch.float64)
    full[: len(vocab_rows)] = vocab_rows
    theirs.load_state_dict({**state, "text_module.word_embd.weight": full}, strict=True)
    theirs = theirs.double().eval()
    video = torch.rand(1, 3, 32, 64, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a, b = ours(video), theirs(video)
        torch.testing.assert_close(a["video_embedding"], b["video_embedding"], atol=1e-6, rtol=0)
        torch.testing.assert_close(a["mixed_5c"], b["mixed_5c"], atol=1e-6, rtol=0)
        assert torch.equal(ours.encode_text(SENTENCES), theirs.text_module(SENTENCES)["text_embedding"])


# --- the released files -----------------------------------------------------------------------


def test_released_layout_loads_strictly_and_bad_files_are_refused(s3d_files, tmp_path):
    model = load_s3d_model(str(s3d_files / "s3d_howto100m.pth"))
    assert len(model.state_dict()) == len(torch.load(s3d_files / "s3d_howto100m.pth", weights_only=True))
    assert load_s3d_model(str(s3d_files)).fc.weight.shape == (512, 1024)  # the folder form
    state = torch.load(s3d_files / "s3d_howto100m.pth", weights_only=True)
    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(s3d_files / "s3d_dict.npy", bad)
    state["mixed_5c.renamed.weight"] = state.pop("mixed_5c.conv_b0.conv1.weight")
    torch.save(state, bad / "s3d_howto100m.pth")
    with pytest.raises(TempclrError, match="missing mixed_5c.conv_b0.conv1.weight; unexpected mixed_5c.renamed.weight"):
        load_s3d_model(str(bad / "s3d_howto100m.pth"))
    (bad / "s3d_dict.npy").unlink()
    with pytest.raises(TempclrError, match="s3d_dict.npy"):
        load_s3d_model(str(bad))
    np.save(bad / "s3d_dict.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(TempclrError, match="cannot read it safely"):
        load_s3d_model(str(bad / "s3d_howto100m.pth"))


# --- VideoCLIP's frames ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="Debian's ffmpeg is the reference (apt-get install ffmpeg)")
@pytest.mark.parametrize("fps, size", [(25, (320, 240)), (30, (240, 352))])
def test_frames_equal_ffmpeg_fps30_scale_crop(tmp_path, fps, size):
    from tempclr_cli.core.media.decode import filter_frames, videoclip_geometry
    from tempclr_cli.core.media.video import write_video

    W, H = size
    rng = np.random.default_rng(fps)
    frames = [(rng.integers(0, 256, (H, W, 3)) // 32 * 32).astype(np.uint8) for _ in range(int(fps * 2.5))]
    path = write_video(tmp_path / f"v{fps}.mp4", frames, fps)
    ours = np.stack([s.image for s in filter_frames(path)])
    w, h, x, y = videoclip_geometry(W, H)
    raw = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-i",
            str(path),
            "-vf",
            f"fps=30,scale={w}:{h},crop=224:224:{x}:{y}",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "pipe:",
        ],
        capture_output=True,
        check=True,
    ).stdout
    ref = np.frombuffer(raw, np.uint8).reshape(-1, 224, 224, 3)
    assert ours.shape == ref.shape and np.array_equal(ours, ref)


# --- the encoder in the commands ---------------------------------------------------------------


@pytest.fixture(scope="module")
def s3d_run(s3d_files, tmp_path_factory):
    """Two synthetic videos extracted with S3D from the released layout, with steps and
    YouCookII annotations that use the test dictionary's words."""
    from tempclr_cli.core.media.video import write_video

    root = tmp_path_factory.mktemp("s3d_run")
    frames = [np.full((120, 160, 3), (40 * k) % 256, np.uint8) for k in range(int(25 * 2.2))]
    write_video(root / "videos" / "clip.mp4", frames, 25)
    write_video(root / "videos" / "other.mp4", frames[::-1], 25)
    (root / "steps.txt").write_text("add the onion\nstir the pan\n")
    db = {
        stem: {
            "subset": "training",
            "duration": 2.2,
            "annotations": [
                {"segment": [0, 0.9], "sentence": "add the onion"},
                {"segment": [1, 2.2], "sentence": f"stir the pan {stem}"},
            ],
        }
        for stem in ("clip", "other")
    }
    (root / "ann.json").write_text(json.dumps({"database": db}))
    result = tempclr(
        "extract",
        str(root / "videos"),
        "-o",
        str(root / "feats"),
        "--model",
        "s3d-howto100m",
        "--pretrained",
        str(s3d_files / "s3d_howto100m.pth"),
        "--workers",
        "0",
        "--json",
    )
    return root, result


@pytest.mark.slow
def test_extract_writes_videoclip_format_features(s3d_run, s3d_files):
    from tempclr_cli.core.media.decode import filter_frames

    root, result = s3d_run
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ok"] == 2
    feats = np.load(root / "feats" / "clip.npy")
    frames = torch.from_numpy(np.stack([s.image for s in filter_frames(root / "videos" / "clip.mp4")]))
    assert feats.dtype == np.float16 and feats.shape == (math.ceil(len(frames) / 30), 512)
    np.testing.assert_allclose(np.linalg.norm(feats.astype(np.float32), axis=1), 1, atol=1e-3)
    row = json.loads((root / "feats" / "index.jsonl").read_text().splitlines()[-1])
    assert row["model"] == "s3d-howto100m" and row["protocol"] == "videoclip" and row["fps"] == 30
    assert (
        row["decode"].startswith("n/a (videoclip protocol") and row["skipping"] is None
    )  # --decode fast did not apply
    assert row["clip_seconds"] == 1 and row["starts"][:2] == [0, 1]
    # the features equal the model on ffmpeg's frames, second by second (last second black-padded)
    pad = torch.zeros(30 * feats.shape[0] - len(frames), *frames.shape[1:], dtype=torch.uint8)
    clips = torch.cat([frames, pad]).view(-1, 30, 224, 224, 3).permute(0, 4, 1, 2, 3).float() / 255
    model = load_s3d_model(str(s3d_files))
    with torch.no_grad():
        expected = F.normalize(model(clips)["video_embedding"], dim=-1).numpy().astype(np.float16)
    np.testing.assert_allclose(feats.astype(np.float32), expected.astype(np.float32), atol=2e-3)


@pytest.mark.slow
def test_align_and_text_tower_come_from_the_index(s3d_run):
    root, result = s3d_run
    assert result.returncode == 0, result.stderr
    out = tempclr("align", str(root / "feats" / "clip.npy"), str(root / "steps.txt"), "-f", "json")
    assert out.returncode == 0, out.stderr
    steps = json.loads(out.stdout)["steps"]
    assert [s["text"] for s in steps] == ["add the onion", "stir the pan"]


def test_per_frame_and_missing_files_fail_before_any_work(s3d_files, tmp_path):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"")
    per_frame = tempclr(
        "extract",
        str(video),
        "-o",
        str(tmp_path / "o"),
        "--model",
        "s3d-howto100m",
        "--pretrained",
        str(s3d_files),
        "--per-frame",
    )
    assert per_frame.returncode == 2 and "--per-frame does not apply to --model s3d-howto100m" in per_frame.stderr
    missing = tempclr(
        "extract",
        str(video),
        "-o",
        str(tmp_path / "o"),
        "--model",
        "s3d-howto100m",
        "--pretrained",
        str(tmp_path / "nowhere" / "s3d_howto100m.pth"),
    )
    assert missing.returncode == 2 and "s3d_dict.npy" in missing.stderr and "S3D_HowTo100M" in missing.stderr
    listed = json.loads(tempclr("models", "--kind", "video-text", "--json").stdout)
    assert [r["name"] for r in listed] == ["s3d-howto100m"] and listed[0]["frames_per_clip"] == 30


@pytest.mark.slow
def test_a_video_file_aligns_and_features_retrieve_with_s3ds_own_towers(s3d_run, s3d_files):
    """align on the .mp4 itself (S3D decodes and embeds it; the .npy path reads the same clips
    stored as float16, so near-ties of random weights may fall either way), and retrieve over
    the extracted features (the text tower named by index.jsonl)."""
    root, result = s3d_run
    assert result.returncode == 0, result.stderr
    args = [str(root / "steps.txt"), "-f", "json"]
    from_video = tempclr(
        "align", str(root / "videos" / "clip.mp4"), *args, "--model", "s3d-howto100m", "--pretrained", str(s3d_files)
    )
    from_npy = tempclr("align", str(root / "feats" / "clip.npy"), *args)
    assert from_video.returncode == 0 and from_npy.returncode == 0, from_video.stderr + from_npy.stderr
    a, b = json.loads(from_video.stdout), json.loads(from_npy.stdout)
    assert [s["text"] for s in a["steps"]] == [s["text"] for s in b["steps"]] == ["add the onion", "stir the pan"]
    assert a["duration"] == pytest.approx(b["duration"], abs=0.05)  # the same 3 one-second clips, float16 apart
    found = tempclr(
        "retrieve", str(root / "feats"), "--annotations", str(root / "ann.json"), "--split", "all", "--json"
    )
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["videos"] == 2


@pytest.mark.slow
def test_tempclr_heads_train_over_s3d_features(s3d_run, tmp_path):
    """`train` with TempCLR heads over S3D features: the captions go through S3D's text tower."""
    root, result = s3d_run
    assert result.returncode == 0, result.stderr
    recipe = Path(__file__).parents[1] / "recipes" / "tempclr_synthetic.yaml"
    trained = tempclr(
        "train",
        str(recipe),
        "--set",
        f"data.root={root / 'feats'}",
        "--set",
        f"data.annotations={root / 'ann.json'}",
        "--set",
        "data.units=2",
        "--set",
        "model.dim=512",
        "--set",
        "train.epochs=1",
        "--set",
        "train.batch_size=2",
        "--run-dir",
        str(tmp_path / "run"),
        "--device",
        "cpu",
        "-q",
    )
    assert trained.returncode == 0, trained.stderr
    from tempclr_cli.core.checkpoint import load_checkpoint

    meta = load_checkpoint(tmp_path / "run" / "last.pt")["meta"]
    assert meta["encoder_model"] == "s3d-howto100m"
