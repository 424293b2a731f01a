"""Varied and damaged inputs (#21): every codec and pixel format PyAV encodes here, fifty
fuzzed copies of an H.264 file, fuzzed recipes and annotations, weights with no network.
Each gives a correct result, a flagged one, or an error that names the file or field."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
import yaml
from test_cli import tempclr
from test_faults import TINY
from videos import CODEC_MATRIX, encode_with, faststart_h264, fuzzed

from tempclr_cli.core.data.annotations import read_annotations
from tempclr_cli.core.errors import TempclrError

RECIPE = {
    "data": {"root": "feats", "format": "youcook2", "annotations": "ann.json"},
    "model": {"name": "tempclr-heads"},
    "loss": {"kind": "tempclr"},
    "optim": {"lr": 0.001},
    "train": {"epochs": 1},
}


def index(out: Path) -> dict[str, dict]:
    return {json.loads(r)["features"]: json.loads(r) for r in (out / "index.jsonl").read_text().splitlines()}


def test_every_codec_and_pixel_format_gives_its_clips_and_duration(tmp_path):
    for name, codec, pix_fmt, fmt, suffix, width, height, options in CODEC_MATRIX:
        encode_with(tmp_path / "in" / f"{name}{suffix}", codec, pix_fmt, fmt, width, height, options)
    done = tempclr("extract", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--workers", "0", "-q", *TINY)
    assert done.returncode == 0, done.stderr
    rows = index(tmp_path / "out")
    assert sorted(rows) == sorted(f"{name}.npy" for name, *_ in CODEC_MATRIX)
    for name, row in rows.items():  # 2 s at 10 fps: two 1-s clips, sampled at 0.5 and 1.5 s of the stream
        assert (row["status"], row["clips"], row["duration"], row["truncated"]) == ("ok", 2, 2.0, False), name
        assert row["frame_times"] == [0.5, 1.5], name


def test_fifty_damaged_videos_each_fail_by_name_or_say_what_they_hold(tmp_path):
    source = faststart_h264(tmp_path / "source.mp4", seconds=4.0)
    damaged = fuzzed(source, tmp_path / "in", count=50)
    done = tempclr(
        "extract", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--workers", "0", "--json", "-q", *TINY
    )
    assert done.returncode in (0, 3) and "Traceback" not in done.stderr, done.stderr
    rows = index(tmp_path / "out")
    assert sorted(rows) == sorted(f"{p.stem}.npy" for p in damaged)  # each one accounted for, once
    failed = {Path(f["source"]).name for f in json.loads(done.stdout)["failed"]}
    for name, row in rows.items():
        if row["status"] == "failed":
            assert row["reason"].startswith(str(tmp_path / "in" / f"{Path(name).stem}.mp4"))  # names the file
            assert f"{Path(name).stem}.mp4" in failed
        elif not row["truncated"]:  # reported complete: then it holds the whole 4 s (lost packets: but one frame)
            assert abs(row["duration"] - 4.0) <= 0.1 + 1e-9, (name, row["duration"], row["decode_errors"])
        else:
            assert row["duration"] < 3.9
    outcomes = {
        k: sum(1 for r in rows.values() if f(r))
        for k, f in {
            "failed": lambda r: r["status"] == "failed",
            "truncated": lambda r: r.get("truncated") is True,
        }.items()
    }
    assert outcomes["failed"] and outcomes["truncated"]  # the damage was real


def _recipe(tmp_path: Path, edit) -> Path:
    recipe = copy.deepcopy(RECIPE)
    edit(recipe)
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def _set(section: str, key: str, value):
    return lambda r: r.setdefault(section, {}).__setitem__(key, value)


@pytest.mark.parametrize(
    "edit, field",
    [
        (_set("train", "epochs", "ten"), "train.epochs"),
        (_set("optim", "lr", [1, 2]), "optim.lr"),
        (_set("data", "units", 2.5), "data.units"),
        (_set("train", "batch_size", True), "train.batch_size"),
        (_set("optim", "betas", [[1]]), "optim.betas"),
        (_set("loss", "temperature", "hot"), "loss.temperature"),
        (_set("data", "root", None), "data.root"),
        (_set("train", "epoch", 3), "train.epoch"),
        (lambda r: r.__setitem__("loss", "abc"), "loss"),
        (lambda r: r.__setitem__("trian", {"epochs": 1}), "trian"),
        (lambda r: r.pop("data"), "data.root"),
        (_set("train", "epochs", 10**400), "train.epochs"),
        (_set("optim", "lr", float("1e400")), "optim.lr"),
    ],
)
def test_a_fuzzed_recipe_exits_2_naming_the_field(tmp_path, edit, field):
    done = tempclr("train", str(_recipe(tmp_path, edit)), "--print-recipe")
    assert done.returncode == 2 and field in done.stderr and "Traceback" not in done.stderr, done.stderr


@pytest.mark.parametrize("tail", ["# caf\xe9\n".encode("latin-1"), b"seed: 1" + b"0" * 5000 + b"\n"])
def test_a_recipe_that_yaml_cannot_read_exits_2_naming_the_file(tmp_path, tail):
    """Not UTF-8, or an integer past Python's 4,300-digit limit."""
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(yaml.safe_dump(RECIPE).encode() + tail)
    done = tempclr("train", str(bad), "--print-recipe")
    assert done.returncode == 2 and "bad.yaml" in done.stderr and "Traceback" not in done.stderr, done.stderr


def _youcook(annotation) -> dict:
    return {"database": {"v1": {"subset": "validation", "duration": 10.0, "annotations": [annotation]}}}


@pytest.mark.parametrize(
    "data, field",
    [
        (_youcook({"segment": ["a", 2], "sentence": "s"}), "annotations[0].segment"),
        (_youcook({"segment": [0, float("inf")], "sentence": "s"}), "annotations[0].segment"),
        (_youcook({"segment": [0, 1e300], "sentence": "s"}), "annotations[0].segment"),
        (_youcook({"segment": [5, 2], "sentence": "s"}), "annotations[0].segment"),
        (_youcook({"segment": [0, 2, 4], "sentence": "s"}), "annotations[0]"),
        (_youcook({"segment": [0, 2], "sentence": 7}), "annotations[0].sentence"),
        (_youcook({"sentence": "s"}), "annotations[0]"),
        (_youcook("not a step"), "annotations[0]"),
        ({"database": {"v1": {"subset": "x", "duration": "long", "annotations": []}}}, "duration"),
        ({"database": {"v1": ["no", "mapping"]}}, "video v1"),
        ({"database": {"v1": {"subset": "x", "annotations": {"a": 1}}}}, "video v1"),
        ({"database": []}, "'database'"),
        ([1, 2, 3], "'database'"),
    ],
)
def test_fuzzed_annotations_name_the_video_and_field(tmp_path, data, field):
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    with pytest.raises(TempclrError, match="ann.json") as error:
        read_annotations(path, "youcook2")
    assert field in str(error.value)


@pytest.mark.parametrize(
    "rows, where",
    [
        ("1,abc,3\n", "a_v1.csv:1"),
        ("9,0,3\n", "a_v1.csv:1"),
        ("1,0\n", "a_v1.csv:1"),
        ("1,0,2\n2,-1,3\n", "a_v1.csv:2"),
    ],
)
def test_fuzzed_crosstask_rows_name_the_file_and_line(tmp_path, rows, where):
    (tmp_path / "tasks_primary.txt").write_text("a\nTask A\nhttp://x\n2\none,two\n\n")
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "a_v1.csv").write_text(rows)
    with pytest.raises(TempclrError, match=where):
        read_annotations(tmp_path, "crosstask")


def test_bad_annotations_exit_2_through_the_command(tmp_path):
    (tmp_path / "feats").mkdir()
    (tmp_path / "ann.json").write_bytes(
        json.dumps(_youcook({"segment": [0, 2], "sentence": "s"})).encode()[:-3] + b"\xff\xfe}}}"
    )
    done = tempclr("retrieve", str(tmp_path / "feats"), "--annotations", str(tmp_path / "ann.json"), "--device", "cpu")
    assert done.returncode == 2 and "ann.json" in done.stderr and "UTF-8" in done.stderr


@pytest.mark.parametrize(
    "env, reason",
    [
        ({"HF_HUB_OFFLINE": "1"}, "HF_HUB_OFFLINE is set"),
        ({"HF_HUB_OFFLINE": "", "HF_ENDPOINT": "http://127.0.0.1:9"}, "unreachable"),
    ],
)
def test_weights_that_cannot_be_fetched_fail_in_seconds(tmp_path, monkeypatch, env, reason):
    """An air-gapped machine: the error comes at once (the hub's retries took 53 s), and it
    does not tell the user to set HF_HUB_OFFLINE when it is set."""
    import numpy as np

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    np.save(tmp_path / "x.npy", np.ones((4, 512), np.float32))
    (tmp_path / "s.txt").write_text("one\n")
    import open_clip.pretrained

    tries = []
    monkeypatch.setattr(open_clip.pretrained, "hf_hub_download", lambda *a, **k: tries.append(a) or 1 / 0)
    done = tempclr(
        "align", str(tmp_path / "x.npy"), str(tmp_path / "s.txt"), "--pretrained", "openai", "--device", "cpu"
    )
    assert tries == []  # no download attempt (the hub's retries took 53 s)
    assert done.returncode == 2 and reason in done.stderr and "ViT-B-32/openai" in done.stderr
    assert ("set HF_HUB_OFFLINE=1" in done.stderr) == (not os.environ.get("HF_HUB_OFFLINE"))


def test_fuzz_findings_name_the_file_at_fault(tmp_path):
    """What tests/test_fuzz.py shrank to: more steps than clips, and a feature file holding NaN,
    were errors that named neither file (the second came from deep inside DTW)."""
    import numpy as np
    import pytest

    from tempclr_cli.core.align.aligner import Aligner
    from tempclr_cli.core.errors import TempclrError

    aligner = Aligner(model="tiny", pretrained="none", device="cpu")
    clips = np.random.default_rng(0).standard_normal((40, 64)).astype(np.float16)
    np.save(tmp_path / "clips.npy", clips)
    (tmp_path / "steps.txt").write_text("step\n" * 10_000)
    with pytest.raises(TempclrError, match=r"10000 steps in .*steps\.txt but .*clips\.npy has only 40 clips"):
        aligner.align(tmp_path / "clips.npy", tmp_path / "steps.txt")
    clips[7, 3] = np.nan
    np.save(tmp_path / "nan.npy", clips)
    with pytest.raises(TempclrError, match=r"nan\.npy: clip 7 holds NaN or inf"):
        aligner.align(tmp_path / "nan.npy", ["a step"])
