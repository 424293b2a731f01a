"""The synthetic dataset: real, playable files in the documented formats, deterministic."""

from __future__ import annotations

import hashlib
import json

import av
import numpy as np
import pytest
from test_cli import tempclr

from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.media.synth import SHAPES, SynthConfig, _mask, _pose, action_classes, generate
from tempclr_cli.core.media.decode import read_frames


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    cfg = SynthConfig(videos=6, classes=4, class_videos=4, seed=3)
    written = list(generate(out, cfg))
    return out, cfg, written


def test_videos_are_playable_h264_with_the_annotated_duration(dataset):
    out, cfg, written = dataset
    db = json.loads((out / "youcookii_annotations_trainval.json").read_text())["database"]
    assert len(db) == 6 and {v["subset"] for v in db.values()} == {"training", "validation"}
    for vid, entry in db.items():
        with av.open(str(out / "videos" / f"{vid}.mp4")) as c:
            stream = c.streams.video[0]
            assert stream.codec_context.name == "h264"
            frames = sum(1 for _ in c.decode(stream))
        assert frames == entry["duration"] * cfg.fps
        segments = [a["segment"] for a in entry["annotations"]]
        assert cfg.min_steps <= len(segments) <= cfg.max_steps
        assert all(s < e <= entry["duration"] for s, e in segments)
        assert all(e1 <= s2 for (_, e1), (s2, _) in zip(segments, segments[1:]))
        steps = (out / "steps" / f"{vid}.txt").read_text().splitlines()
        assert steps == [a["sentence"] for a in entry["annotations"]]


def test_action_split_files_follow_ucf101(dataset):
    out, cfg, _ = dataset
    actions = out / "actions"
    classes = [line.split() for line in (actions / "classInd.txt").read_text().splitlines()]
    assert [int(i) for i, _ in classes] == [1, 2, 3, 4]
    names = {int(i): n for i, n in classes}
    train = [line.split() for line in (actions / "trainlist01.txt").read_text().splitlines()]
    test = (actions / "testlist01.txt").read_text().splitlines()
    assert len(train) + len(test) == 4 * cfg.class_videos
    for rel, label in train:
        assert rel.startswith(names[int(label)] + "/v_") and (actions / rel).is_file()
    assert all("_g01_" in rel and (actions / rel).is_file() for rel in test)


def test_classes_come_in_time_reversed_pairs():
    names = [n for n, _, _ in action_classes(6)]
    assert names[:2] == ["CircleLeft", "CircleRight"]
    assert [n for n, _, _ in action_classes(6, "motion")] == ["Left", "Right", "Grow", "Shrink", "Up", "Down"]


def _drawn_shape(frame: np.ndarray, motion: str) -> str:
    """The shape whose mask at the end of `motion` best matches the bright pixels of `frame`."""
    ax = (np.arange(frame.shape[0]) + 0.5) / frame.shape[0]
    grid, seen = np.meshgrid(ax, ax), frame.max(-1) > 120  # shapes are bright, backdrops dark
    iou = {s: (seen & (m := _mask(s, *_pose(motion, 1.0), grid))).sum() / (seen | m).sum() for s in SHAPES}
    return max(iou, key=iou.get)


def test_shape_motion_classes_keep_their_shape(dataset):
    out, _, _ = dataset
    assert {_drawn_shape(read_frames(p, 64)[-1], "left") for p in (out / "actions" / "CircleLeft").glob("*.mp4")} == {
        "circle"
    }


def test_motion_classes_vary_the_shape_and_keep_7_of_25_groups_for_test(tmp_path):
    cfg = SynthConfig(videos=0, classes=2, class_videos=16, class_by="motion", size=32, seed=1)
    list(generate(tmp_path, cfg))
    test = (tmp_path / "actions" / "testlist01.txt").read_text().splitlines()
    assert sorted({rel.split("_")[-2] for rel in test}) == ["g01", "g02"]  # round(8 groups x 7/25) = 2
    assert len(test) == 2 * 4 and len((tmp_path / "actions" / "trainlist01.txt").read_text().splitlines()) == 2 * 12
    shapes = [
        _drawn_shape(read_frames(p, 32)[-1], "left") for p in sorted((tmp_path / "actions" / "Left").glob("*.mp4"))
    ]
    assert len(set(shapes)) >= 3  # one class, several shapes
    with pytest.raises(TempclrError, match="at most 6"):
        SynthConfig(classes=12, class_by="motion").check()


def test_same_seed_same_bytes(tmp_path):
    cfg = SynthConfig(videos=1, classes=0, seed=7)
    a, b = tmp_path / "a", tmp_path / "b"
    list(generate(a, cfg)), list(generate(b, cfg))
    digest = lambda p: hashlib.sha256((p / "videos/synth0000.mp4").read_bytes()).hexdigest()  # noqa: E731
    assert digest(a) == digest(b)
    assert (a / "youcookii_annotations_trainval.json").read_text() == (
        b / "youcookii_annotations_trainval.json"
    ).read_text()


def test_bad_settings_are_refused():
    with pytest.raises(TempclrError, match="even"):
        SynthConfig(size=63).check()
    with pytest.raises(TempclrError, match="min-steps"):
        SynthConfig(min_steps=5, max_steps=3).check()


def test_cli_motion_classes_default_to_all_six(tmp_path):
    done = tempclr(
        "synth",
        str(tmp_path / "s"),
        "--videos",
        "0",
        "--class-by",
        "motion",
        "--class-videos",
        "2",
        "--size",
        "16",
        "--fps",
        "4",
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "s" / "actions" / "classInd.txt").read_text().split()[1::2] == [
        "Left",
        "Right",
        "Grow",
        "Shrink",
        "Up",
        "Down",
    ]
    bad = tempclr("synth", str(tmp_path / "t"), "--class-by", "colour")
    assert bad.returncode == 2 and "'shape-motion', 'motion'" in bad.stderr and not (tmp_path / "t").exists()


def _step_colour(out, vid: str, step: dict, fps: int) -> np.ndarray:
    """The mean RGB of the pixels that differ most from the backdrop, mid-step."""
    frame = read_frames(out / "videos" / f"{vid}.mp4")[int((step["segment"][0] + step["segment"][1]) / 2 * fps)].astype(
        float
    )
    backdrop = np.median(frame.reshape(-1, 3), 0)
    far = np.linalg.norm(frame - backdrop, axis=-1)
    return frame[far > far.max() * 0.8].mean(0)


@pytest.mark.parametrize("shift, want", [(0, "red"), (60, "yellow"), (-60, "magenta")])
def test_a_hue_shift_films_red_as_its_neighbour_on_the_wheel_and_keeps_the_sentence(tmp_path, shift, want):
    """What a viewer sees: the step says red; under a 60-degree cast the shape looks yellow."""
    from tempclr_cli.core.media.synth import COLOURS

    cfg = SynthConfig(videos=12, classes=0, hue_shift=shift, seed=5)
    list(generate(tmp_path, cfg))
    db = json.loads((tmp_path / "youcookii_annotations_trainval.json").read_text())["database"]
    vid, step = next((v, a) for v, e in db.items() for a in e["annotations"] if " red " in f" {a['sentence']} ")
    rgb = _step_colour(tmp_path, vid, step, cfg.fps)
    nearest = min(COLOURS, key=lambda name: np.linalg.norm(rgb - np.array(COLOURS[name])))
    assert nearest == want, rgb
    assert step["sentence"] in (tmp_path / "steps" / f"{vid}.txt").read_text().splitlines()


def test_the_same_seed_writes_the_same_bytes(tmp_path):
    """#29: two runs of synth with one seed give byte-identical files (videos, annotations, lists)."""
    import hashlib

    from test_cli import tempclr

    def digests(root):
        return {
            str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }

    for name in ("a", "b"):
        done = tempclr("synth", str(tmp_path / name), "--videos", "6", "--classes", "2", "--class-videos", "2", "-q")
        assert done.returncode == 0, done.stderr
    a, b = digests(tmp_path / "a"), digests(tmp_path / "b")
    assert len(a) > 10 and a == b
