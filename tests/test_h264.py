"""Which H.264 frames fast decoding may skip, read from slice headers, checked by decoding."""

from __future__ import annotations

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_video import _textured

from tempclr_cli.core.media import h264
from tempclr_cli.core.media.video import write_video

REF3 = {"x264-params": "mbtree=0:ref=3:b-pyramid=normal:bframes=3"}  # P-frames may use the B-frame of the last minigop


def _decoded_anchors(path, skip: str) -> dict[int, np.ndarray]:
    """pts -> YUV planes of every I- and P-frame, decoded with `skip_frame=skip` (no deblocking skipped)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = skip
        return {f.pts: f.to_ndarray(format="yuv420p") for f in container.decode(stream) if f.pict_type != 3}


def _differing(path) -> int:
    """How many I/P frames come out different when every B-frame is skipped."""
    full, bidir = _decoded_anchors(path, "DEFAULT"), _decoded_anchors(path, "BIDIR")
    assert bidir and set(bidir) <= set(full)
    return sum(not np.array_equal(frame, full[pts]) for pts, frame in bidir.items())


@pytest.mark.parametrize("name, suffix, options", [
    ("veryfast", ".mp4", None),  # x264 ref=1 with B-pyramid: the benchmarks' files, and the bundled presets
    ("annex-b", ".ts", None),  # MPEG-TS carries start codes, not lengths
    ("no-b-frames", ".mp4", {"x264-params": "bframes=0"}),
    ("no-pyramid", ".mp4", {"x264-params": "b-pyramid=none"}),
])
def test_streams_read_as_safe_decode_the_same_anchors_without_b_frames(tmp_path, name, suffix, options):
    path = write_video(tmp_path / f"{name}{suffix}", (_textured(k) for k in range(150)), 30, options=options)
    reach = h264.anchor_reach(path, 0.25)
    assert reach is not None and reach <= 2 / 30 + 1e-9  # a reference frame at least every 4 frames
    assert _differing(path) == 0


@pytest.mark.parametrize("options", [REF3, {"preset": "medium"}])
def test_streams_whose_p_frames_list_b_frames_are_read_as_unsafe_and_are(tmp_path, options):
    path = write_video(tmp_path / "ref3.mp4", (_textured(k) for k in range(150)), 30, options=options)
    assert h264.anchor_reach(path, 0.25) is None
    assert _differing(path) > 0  # skipping their B-frames would corrupt P-frames: the reading must say no


def test_other_codecs_and_distant_anchors_are_not_skippable(tmp_path):
    webm = write_video(tmp_path / "v.webm", (_textured(k) for k in range(30)), 30)
    mp4 = write_video(tmp_path / "v.mp4", (_textured(k) for k in range(30)), 30)
    assert h264.anchor_reach(webm, 1.0) is None
    assert h264.anchor_reach(mp4, 0.01) is None  # anchors 2 frames apart: over a 0.01-s reach


def _replay_with(dpb: list[tuple[int, bool]], frame_num: int, refs: int, mods: list[tuple[int, int]]) -> list:
    replay = h264.Replay(dpb=[h264._Ref(n, b) for n, b in dpb])
    sps = h264._Sps(4, 0, 4, False, 4, True, 1)  # frame numbers wrap at 2^4 = 16
    return replay._list0(h264._Slice(h264._P, sps, frame_num, False, 0, refs, mods, None))


def test_reference_list_0_by_the_standard():
    """Worked by hand (H.264 8.2.4): I0 P1 B2(ref) decoded, now P with frame_num 3. By
    default its list starts with the highest frame number, the B-frame; one modification
    (idc 0, abs_diff_pic_num_minus1 1: 3 - 2 = 1) moves P1 to the front."""
    dpb = [(0, False), (1, False), (2, True)]
    assert [(r.frame_num, r.is_b) for r in _replay_with(dpb, 3, 3, [])] == [(2, True), (1, False), (0, False)]
    assert [r.frame_num for r in _replay_with(dpb, 3, 1, [(0, 1)])] == [1]
    assert [r.frame_num for r in _replay_with(dpb, 3, 2, [(0, 1), (0, 0)])] == [1, 0]  # 1 - 1 = 0 next
    # frame numbers wrap at 16: frame_num 1 after 14, 15 (ref), 0; 15 is 15 - 16 = -1 below 1
    wrapped = [(14, False), (15, True), (0, False)]
    assert [r.frame_num for r in _replay_with(wrapped, 1, 3, [])] == [0, 15, 14]
    assert [r.frame_num for r in _replay_with(wrapped, 1, 1, [(0, 2)])] == [14]  # 1 - 3 = -2 -> 14


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=64))
def test_any_bytes_are_read_or_refused_by_name(data):
    replay = h264.Replay()
    for unit in (bytes([0x67]) + data, bytes([0x68]) + data, bytes([0x65]) + data, bytes([0x41]) + data, data):
        try:
            replay.nal(unit)
        except h264.Unsupported:
            pass


def test_damaged_files_answer_without_raising(tmp_path):
    from videos import faststart_h264, fuzzed

    source = faststart_h264(tmp_path / "s.mp4", preset="veryfast")
    assert h264.anchor_reach(source, 0.25) is not None
    answers = [h264.anchor_reach(p, 0.25) for p in fuzzed(source, tmp_path / "in", 50)]
    assert all(a is None or 0 <= a <= 0.25 for a in answers) and any(a is not None for a in answers)


def test_gaps_are_measured_in_display_order_from_decoding_order():
    gaps = h264._Gaps()
    for pts in [0, 4, 2, 8, 6, 12, 10, 13]:  # anchors reordered as a decoder outputs them
        gaps.add(pts)
    assert gaps.finish() and (gaps.first, gaps.last, gaps.widest) == (0, 13, 2)
    assert not h264._Gaps().finish()
