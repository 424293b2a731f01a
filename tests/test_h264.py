"""Which H.264 frames fast decoding may skip, read from slice headers, checked by decoding and
against FFmpeg's own header parser (the `trace_headers` bitstream filter)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import av
import av.bitstream
import av.logging
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_video import _textured
from videos import CODEC_MATRIX, encode_with, faststart_h264

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


@pytest.mark.parametrize(
    "name, suffix, options",
    [
        ("veryfast", ".mp4", None),  # x264 ref=1 with B-pyramid: the benchmarks' files, and the bundled presets
        ("annex-b", ".ts", None),  # MPEG-TS carries start codes, not lengths
        ("no-pyramid", ".mp4", {"x264-params": "b-pyramid=none"}),
        ("slices", ".mp4", {"x264-params": "slices=4"}),  # four slices a picture (7.4.1.2.4 tells pictures apart)
    ],
)
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


def test_other_codecs_streams_without_b_frames_and_distant_anchors_are_not_skippable(tmp_path):
    webm = write_video(tmp_path / "v.webm", (_textured(k) for k in range(30)), 30)
    mp4 = write_video(tmp_path / "v.mp4", (_textured(k) for k in range(30)), 30)
    no_b = _frames(tmp_path, "no-b", options={"x264-params": "bframes=0"})  # nothing to skip: not read
    assert h264.anchor_reach(webm, 1.0) is None and h264.anchor_reach(no_b, 1.0) is None
    assert h264.anchor_reach(mp4, 0.01) is None  # anchors 2 frames apart: over a 0.01-s reach


def _replay_with(dpb: list[tuple[int, bool]], frame_num: int, refs: int, mods: list[tuple[int, int]]) -> list:
    replay = h264.Replay(dpb=[h264._Ref(n, b) for n, b in dpb])
    sps = h264._Sps(4, 0, 4, False, 4, True, 1)  # frame numbers wrap at 2^4 = 16
    return replay._list0(h264._Slice(h264._P, sps, frame_num, False, 2, 0, refs, mods, None, (frame_num,)))


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
        except h264.NotSkippable:
            pass


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([0, 0, 0, 3, 1, 0x80, 0xFF]), min_size=60, max_size=200))
@example([1] * 62 + [0, 0, 3, 1])  # 00 00 | 03 across the first chunk's end
def test_units_are_unescaped_in_chunks_as_in_one_piece(payload):
    """The reader unescapes 64 bytes at a time as reading reaches them: the same bits as the
    whole unit unescaped at once (an emulation-prevention byte may straddle two chunks)."""
    unit = bytes([0x65] + payload)
    whole = bytes(payload).replace(b"\x00\x00\x03", b"\x00\x00")
    bits = h264._Bits(unit)
    assert bytes(bits.u(8) for _ in whole) == whole
    with pytest.raises(h264.NotSkippable):
        bits.u(1)


def test_damaged_files_answer_without_raising(tmp_path):
    from videos import fuzzed

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


# --- FFmpeg's reading of the same headers, and streams edited through it -------------------

_FIELD = re.compile(r"(\d+)\s+(\S+)\s+([01]+) = (-?\d+)$")
Field = tuple[int, str, int, int]  # bit position in the NAL unit (its header byte included), name, bits, value


def _traced(path: Path) -> list[tuple[str, list[Field]]]:
    """Every syntax structure of `path`'s video stream (its extradata first) as FFmpeg's
    `trace_headers` filter logs it: (title such as "Slice Header", its fields in order)."""
    level, repeated = av.logging.get_level(), av.logging.get_skip_repeated()
    av.logging.set_level(av.logging.INFO)
    av.logging.set_skip_repeated(False)
    try:
        with av.open(str(path)) as container, av.logging.Capture() as logs:
            stream = container.streams.video[0]
            bsf = av.bitstream.BitStreamFilterContext("trace_headers", stream)
            for packet in container.demux(stream):
                if packet.size:
                    bsf.filter(packet)
    finally:
        av.logging.set_level(level)
        av.logging.set_skip_repeated(repeated)
    sections: list[tuple[str, list[Field]]] = []
    for _, _, message in logs:
        if match := _FIELD.match(message.strip()):
            sections[-1][1].append((int(match[1]), match[2], len(match[3]), int(match[4])))
        else:
            sections.append((message.strip(), []))
    return sections


def _slice_fields(path: Path) -> list[list[Field]]:
    return [fields for title, fields in _traced(path) if title == "Slice Header"]


def _value(fields: list[Field], name: str, default: int | None = None) -> int | None:
    return next((v for _, n, _, v in fields if n == name), default)


def _pairs(fields: list[Field], start: str, first: str, arguments: tuple[str, ...], end: int) -> list[tuple[int, int]]:
    """(operation, its argument or 0) for each `first` field after the `start` field, up to the
    operation `end` (list modifications, 7.3.3.1: 3; marking operations, 7.3.3.3: 0)."""
    names = [n for _, n, _, _ in fields]
    ops: list[tuple[int, int]] = []
    for _, name, _, value in fields[names.index(start) + 1 :] if start in names else []:
        if name == first and value == end:
            break
        if name == first:
            ops.append((value, 0))
        elif name in arguments:
            ops[-1] = (ops[-1][0], value)
    return ops


def _ours(path: Path) -> list[tuple[h264._Slice, int]]:
    """Every slice header as h264.py reads it, with the bits read (NAL header byte included)."""
    headers = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        length_size, units = h264.parameter_sets(stream.codec_context.extradata)
        replay = h264.Replay()
        for unit in units:
            replay.nal(unit)
        for packet in container.demux(stream):
            for unit in h264.nal_units(bytes(packet), length_size):
                if unit[0] & 0x1F in (1, 5):
                    bits = h264._Bits(unit)
                    header = h264._slice(bits, unit[0] & 0x1F, unit[0] >> 5 & 3, replay.sps, replay.pps)
                    headers.append((header, 8 + bits.pos))
                else:
                    replay.nal(unit)
    return headers


def _ue(value: int) -> str:
    return bin(value + 1)[2:].rjust(2 * (value + 1).bit_length() - 1, "0")


def _se(value: int) -> str:
    return _ue(2 * value - 1 if value > 0 else -2 * value)


def _escaped(bits: str) -> bytes:
    """A NAL unit from its RBSP bits, emulation-prevention bytes inserted (7.4.1)."""
    out, zeros = bytearray(), 0
    for byte in int(bits, 2).to_bytes(len(bits) // 8, "big"):
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _rbsp_bits(nal: bytes) -> str:
    rbsp = bytes(nal).replace(b"\x00\x00\x03", b"\x00\x00")
    return "".join(f"{byte:08b}" for byte in rbsp)


Edit = Callable[[list[bytes], list[list[Field]]], list[bytes]]


def _remuxed(source: Path, out: Path, edit: Edit, extradata: Callable[[bytes, list], bytes] | None = None) -> Path:
    """`source` (MP4, length-prefixed NAL units) with each packet's NAL units replaced by
    `edit(units, the trace's fields of its slices)`, and its extradata by `extradata(data,
    the trace's sections)`; timestamps kept."""
    sections = _traced(source)
    slices = iter([fields for title, fields in sections if title == "Slice Header"])
    with av.open(str(source)) as src, av.open(str(out), "w") as dst:
        stream = src.streams.video[0]
        copy = dst.add_stream_from_template(stream)
        length_size, _ = h264.parameter_sets(stream.codec_context.extradata)
        if extradata:
            copy.codec_context.extradata = extradata(bytes(stream.codec_context.extradata), sections)
        for packet in src.demux(stream):
            if not packet.size:
                continue
            units = [bytes(u) for u in h264.nal_units(bytes(packet), length_size)]
            traced = [next(slices) for u in units if u[0] & 0x1F in (1, 5)]
            data = b"".join(len(u).to_bytes(length_size, "big") + u for u in edit(units, traced))
            new = av.Packet(data)
            new.pts, new.dts, new.duration, new.time_base = packet.pts, packet.dts, packet.duration, packet.time_base
            new.is_keyframe, new.stream = packet.is_keyframe, copy
            dst.mux(new)
    return out


def _weighted_pps(extradata: bytes, sections: list) -> bytes:
    """The extradata with the PPS's weighted_pred_flag set (7.3.2.2), same length."""
    pps_fields = next(fields for title, fields in sections if title == "Picture Parameter Set")
    pps = h264.parameter_sets(extradata)[1][-1]
    bits = _rbsp_bits(pps)
    at = next(p for p, n, _, _ in pps_fields if n == "weighted_pred_flag")
    new = _escaped(bits[:at] + "1" + bits[at + 1 :])
    assert len(new) == len(pps)
    return extradata.replace(bytes(pps), new)


def _default_weights(units: list[bytes], traced: list[list[Field]], default_refs: int) -> list[bytes]:
    """Each P slice with a weight table that gives every reference explicitly the default
    weight and no offset at denominators 2^6 (7.3.3.2): 50 bits a reference, decoded exactly
    as no table (8.4.2.3; FFmpeg checks that the weights are the defaults)."""
    entry = "1" + _se(64) + _se(0) + "1" + (_se(64) + _se(0)) * 2  # luma, then both chroma planes
    fields, out = iter(traced), []
    for unit in units:
        if unit[0] & 0x1F in (1, 5) and _value(slice_fields := next(fields), "slice_type") % 5 == 0:
            refs = _value(slice_fields, "num_ref_idx_l0_active_minus1", default_refs - 1) + 1
            after = ("adaptive_ref_pic_marking_mode_flag", "cabac_init_idc")  # the table: after list modifications
            at = next(p for p, n, _, _ in slice_fields if n in after)
            data_at = slice_fields[-1][0] + slice_fields[-1][2]  # CABAC slice data starts byte-aligned
            end = next((p for p, n, _, _ in slice_fields if n == "cabac_alignment_one_bit"), data_at)
            bits = _rbsp_bits(unit)
            header = bits[:at] + _ue(6) + _ue(6) + entry * refs + bits[at:end]
            unit = _escaped(header + "1" * (-len(header) % 8) + bits[data_at:])
        out.append(unit)
    return out


def _long_headers(tmp_path: Path) -> tuple[Path, Path]:
    """(an x264 file with 16 references and no weighted prediction, the same file with every
    P slice carrying a weight table of explicit defaults: headers up to 107 bytes)."""
    source = write_video(
        tmp_path / "refs16.mp4",
        (_textured(k) for k in range(150)),
        30,
        options={"x264-params": "mbtree=0:ref=16:b-pyramid=none:weightp=0"},
    )
    default_refs = (
        _value(
            next(f for t, f in _traced(source) if t == "Picture Parameter Set"), "num_ref_idx_l0_default_active_minus1"
        )
        + 1
    )
    return source, _remuxed(
        source, tmp_path / "long.mp4", lambda u, t: _default_weights(u, t, default_refs), _weighted_pps
    )


def _yuv(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="yuv420p") for f in container.decode(container.streams.video[0])]


def test_slice_headers_longer_than_64_bytes_are_read_to_their_end(tmp_path):
    source, long = _long_headers(tmp_path)
    assert max((f[-1][0] + f[-1][2]) // 8 for f in _slice_fields(long)) > 100  # bytes of header
    assert all(np.array_equal(a, b) for a, b in zip(_yuv(source), _yuv(long), strict=True))  # the same video
    assert h264.anchor_reach(long, 0.25) == h264.anchor_reach(source, 0.25) is not None
    assert _differing(long) == 0


def _frames(directory: Path, name: str, suffix: str = ".mp4", options: dict | None = None) -> Path:
    return write_video(directory / f"{name}{suffix}", (_textured(k) for k in range(150)), 30, options=options)


STREAMS: dict[str, Callable[[Path], Path]] = {  # every H.264 stream the tests make, by how they make it
    "veryfast": lambda d: _frames(d, "veryfast"),
    "annex-b": lambda d: _frames(d, "annex-b", ".ts"),
    "no-b-frames": lambda d: _frames(d, "no-b", options={"x264-params": "bframes=0"}),
    "no-pyramid": lambda d: _frames(d, "no-pyramid", options={"x264-params": "b-pyramid=none"}),
    "slices": lambda d: _frames(d, "slices", options={"x264-params": "slices=4"}),
    "ref3": lambda d: _frames(d, "ref3", options=REF3),
    "medium": lambda d: _frames(d, "medium", options={"preset": "medium"}),
    "faststart-veryfast": lambda d: faststart_h264(d / "fv.mp4", preset="veryfast"),
    "faststart-medium": lambda d: faststart_h264(d / "fm.mp4"),
    "long-headers": lambda d: _long_headers(d)[1],
    **{
        name: (lambda d, row=row: encode_with(d / (row[0] + row[4]), *row[1:4], *row[5:]))
        for row in CODEC_MATRIX
        if (name := row[0]).startswith("h264")
    },
}


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_slice_headers_read_as_ffmpeg_reads_them(tmp_path, name):
    """Each slice header's type, frame_num, nal_ref_idc, active references, list 0
    modifications and marking operations, and the bits up to the end of the marking, as
    h264.py reads them and as FFmpeg's `trace_headers` bitstream filter logs them."""
    path = STREAMS[name](tmp_path)
    sections = _traced(path)
    default_refs = {
        _value(f, "pic_parameter_set_id"): _value(f, "num_ref_idx_l0_default_active_minus1") + 1
        for title, f in sections
        if title == "Picture Parameter Set"
    }
    theirs = [fields for title, fields in sections if title == "Slice Header"]
    ours = _ours(path)
    assert len(ours) == len(theirs) >= 20
    for (header, bits), fields in zip(ours, theirs):
        kind = _value(fields, "slice_type") % 5
        refs = _value(fields, "num_ref_idx_l0_active_minus1", default_refs[_value(fields, "pic_parameter_set_id")] - 1)
        marking = _pairs(
            fields,
            "adaptive_ref_pic_marking_mode_flag",
            "memory_management_control_operation",
            ("difference_of_pic_nums_minus1",),
            0,
        )
        assert (header.kind, header.frame_num, header.ref_idc) == (
            kind,
            _value(fields, "frame_num"),
            _value(fields, "nal_ref_idc"),
        )
        assert header.refs_l0 == refs + 1 or kind == h264._I
        assert header.modifications == _pairs(
            fields, "ref_pic_list_modification_flag_l0", "modification_of_pic_nums_idc", ("abs_diff_pic_num_minus1",), 3
        )
        assert header.mmco == (marking if _value(fields, "adaptive_ref_pic_marking_mode_flag") else None)
        assert bits == next(p for p, n, _, _ in fields if n in ("cabac_init_idc", "slice_qp_delta"))


def _first_slice_repeated(units: list[bytes], traced: list[list[Field]]) -> list[bytes]:
    """Each reference P picture with its first slice sent twice."""
    if traced and _value(traced[0], "slice_type") % 5 == 0 and _value(traced[0], "nal_ref_idc"):
        at = next(k for k, u in enumerate(units) if u[0] & 0x1F in (1, 5))
        return units[: at + 1] + units[at:]
    return units


def _first_slice_lost(units: list[bytes], traced: list[list[Field]]) -> list[bytes]:
    """Each non-reference B picture without its first slice (with x264's `b-adapt=0` each follows
    a B picture: the rest of it would join that picture)."""
    if traced and _value(traced[0], "slice_type") % 5 == 1 and not _value(traced[0], "nal_ref_idc"):
        at = next(k for k, u in enumerate(units) if u[0] & 0x1F in (1, 5))
        return units[:at] + units[at + 1 :]
    return units


@pytest.mark.parametrize("damage", [_first_slice_repeated, _first_slice_lost])
def test_slices_out_of_step_with_their_pictures_are_refused(tmp_path, damage):
    """A new picture is told by its header (7.4.1.2.4), not by first_mb_in_slice alone: a
    first slice repeated (the replay would mark the reference twice) or lost (the rest of
    the picture would join the one before) leaves the reading out of step with the decoder."""
    source = _frames(tmp_path, "slices", options={"x264-params": "mbtree=0:slices=4:b-adapt=0"})  # P B B B
    assert h264.anchor_reach(source, 0.25) is not None
    damaged = _remuxed(source, tmp_path / "damaged.mp4", damage)
    assert h264.anchor_reach(damaged, 0.25) is None
