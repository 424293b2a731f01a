"""The synthetic dataset: real, playable files in the documented formats, deterministic."""

from __future__ import annotations

import hashlib
import json

import av
import pytest

from tempclr_cli.core.synth import SynthConfig, action_classes, generate
from tempclr_cli.core.errors import TempclrError


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


def test_same_seed_same_bytes(tmp_path):
    cfg = SynthConfig(videos=1, classes=0, seed=7)
    a, b = tmp_path / "a", tmp_path / "b"
    list(generate(a, cfg)), list(generate(b, cfg))
    digest = lambda p: hashlib.sha256((p / "videos/synth0000.mp4").read_bytes()).hexdigest()  # noqa: E731
    assert digest(a) == digest(b)
    assert (a / "youcookii_annotations_trainval.json").read_text() == (b / "youcookii_annotations_trainval.json").read_text()


def test_bad_settings_are_refused():
    with pytest.raises(TempclrError, match="even"):
        SynthConfig(size=63).check()
    with pytest.raises(TempclrError, match="min-steps"):
        SynthConfig(min_steps=5, max_steps=3).check()
