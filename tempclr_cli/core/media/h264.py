"""Which H.264 frames fast decoding may skip: a reading of slice headers, no pixels decoded.

FFmpeg's `skip_frame="BIDIR"` skips every B-frame, including B-frames other frames
reference (x264's default B-pyramid marks one B-frame in three as a reference). That is
safe only where no P-frame references one: the references a P-frame may use are in its
slice header, as the decoder builds them (H.264 8.2.4: the short-term references by
descending frame number, then the header's list modifications, cut to its active count).
`Replay` replays the decoder's reference marking over the stream's headers and says whether
any P slice lists a B-frame; `anchor_reach` runs it over a file in one demuxing pass. x264
with `ref=1` (the veryfast presets) never lists one; with `ref=3` and B-pyramid (its medium
preset) P-frames do, and skipping B-frames there leaves later frames of the GOP wrong
(tests/test_h264.py decodes both and compares).

Anything this reader does not model (interlaced fields, long-term references, slice groups,
SP/SI slices, frame-number gaps, a header it cannot parse) answers "not skippable": the
caller then skips only non-reference frames, which is always safe.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field

_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})
_P, _B, _I = 0, 1, 2  # slice_type % 5 (3, 4: SP and SI, not modelled)
_HEAD_BYTES = 64  # bytes of a slice read first: its header ends within them, but for long weight tables
_MAX_HEAD_BYTES = 1024  # bytes read when it does not (64 weighted references take about 600)


class Unsupported(Exception):
    """A stream feature this reader does not model: the answer is "not skippable"."""


class _Short(Unsupported):
    """The bytes read ran out before the header did."""


class _Bits:
    """MSB-first reader of an RBSP (emulation-prevention bytes already removed)."""

    def __init__(self, data: bytes):
        self.bits = bin(int.from_bytes(b"\x01" + data, "big"))[3:]  # the 01 byte keeps leading zeros
        self.pos = 0

    def u(self, n: int) -> int:
        if self.pos + n > len(self.bits):
            raise _Short("header runs past the bytes read")
        value = int(self.bits[self.pos:self.pos + n] or "0", 2)
        self.pos += n
        return value

    def ue(self) -> int:
        zeros = self.bits.find("1", self.pos) - self.pos
        if zeros < 0 or zeros > 31:
            raise Unsupported("bad Exp-Golomb code")
        self.pos += zeros + 1
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k % 2 else -(k // 2)


def _rbsp(nal: bytes, size: int = _MAX_HEAD_BYTES) -> bytes:
    """The first `size` bytes of a NAL payload, without its header byte and emulation-
    prevention bytes (00 00 03)."""
    return bytes(nal[1:size]).replace(b"\x00\x00\x03", b"\x00\x00")


@dataclass
class _Sps:
    log2_max_frame_num: int
    poc_type: int
    log2_max_poc_lsb: int
    poc_always_zero: bool
    max_refs: int
    frame_mbs_only: bool
    chroma_array_type: int


@dataclass
class _Pps:
    sps_id: int
    bottom_field_poc: bool
    refs_l0: int
    refs_l1: int
    weighted_pred: bool
    weighted_bipred: int
    redundant_pic_cnt: bool


def _scaling_lists(r: _Bits, count: int) -> None:
    for i in range(count):
        if r.u(1):
            last = nxt = 8
            for _ in range(16 if i < 6 else 64):
                if nxt:
                    nxt = (last + r.se() + 256) % 256
                last = nxt or last


def _sps(r: _Bits) -> tuple[int, _Sps]:
    profile = r.u(8)
    r.u(16)  # constraint flags, level
    sps_id, chroma = r.ue(), 1
    if profile in _HIGH_PROFILES:
        chroma = r.ue()
        if chroma == 3 and r.u(1):
            raise Unsupported("separate colour planes")
        r.ue(), r.ue(), r.u(1)  # bit depths, qpprime_y_zero_transform_bypass
        if r.u(1):
            _scaling_lists(r, 8 if chroma != 3 else 12)
    log2_max_frame_num, poc_type, log2_max_poc_lsb, always_zero = r.ue() + 4, r.ue(), 0, False
    if poc_type == 0:
        log2_max_poc_lsb = r.ue() + 4
    elif poc_type == 1:
        always_zero = bool(r.u(1))
        r.se(), r.se()
        for _ in range(r.ue()):
            r.se()
    max_refs = r.ue()
    if r.u(1):
        raise Unsupported("frame-number gaps allowed")
    r.ue(), r.ue()  # size in macroblocks
    frame_mbs_only = bool(r.u(1))
    return sps_id, _Sps(log2_max_frame_num, poc_type, log2_max_poc_lsb, always_zero, max_refs,
                        frame_mbs_only, chroma)


def _pps(r: _Bits) -> tuple[int, _Pps]:
    pps_id, sps_id = r.ue(), r.ue()
    r.u(1)  # entropy coding
    bottom_field_poc = bool(r.u(1))
    if r.ue():
        raise Unsupported("slice groups")
    refs_l0, refs_l1 = r.ue() + 1, r.ue() + 1
    weighted_pred, weighted_bipred = bool(r.u(1)), r.u(2)
    r.se(), r.se(), r.se(), r.u(1), r.u(1)  # qp, qs, chroma qp offset, deblocking control, constrained intra
    return pps_id, _Pps(sps_id, bottom_field_poc, refs_l0, refs_l1, weighted_pred, weighted_bipred, bool(r.u(1)))


@dataclass
class _Slice:
    kind: int  # _P, _B or _I
    sps: _Sps
    frame_num: int
    idr: bool
    first_mb: int
    refs_l0: int
    modifications: list[tuple[int, int]]  # (idc, abs_diff_pic_num_minus1) for list 0
    mmco: list[tuple[int, int]] | None  # (op, argument) when the marking is adaptive


def _modifications(r: _Bits) -> list[tuple[int, int]]:
    ops: list[tuple[int, int]] = []
    if r.u(1):
        while (idc := r.ue()) != 3:
            if idc >= 2:
                raise Unsupported("long-term references")
            ops.append((idc, r.ue()))
    return ops


def _weights(r: _Bits, sps: _Sps, counts: Iterable[int]) -> None:
    r.ue()
    if sps.chroma_array_type:
        r.ue()
    for count in counts:
        for _ in range(count):
            if r.u(1):
                r.se(), r.se()
            if sps.chroma_array_type and r.u(1):
                r.se(), r.se(), r.se(), r.se()


def _marking(r: _Bits, idr: bool) -> list[tuple[int, int]] | None:
    if idr:
        r.u(1)
        if r.u(1):
            raise Unsupported("long-term references")
        return None
    if not r.u(1):
        return None
    ops = []
    while op := r.ue():
        if op not in (1, 5):
            raise Unsupported(f"memory management operation {op}")
        ops.append((op, r.ue() if op == 1 else 0))
    return ops


def _slice(r: _Bits, nal_type: int, ref_idc: int, sps_of: dict, pps_of: dict) -> _Slice:
    first_mb, kind, pps_id = r.ue(), r.ue() % 5, r.ue()
    if kind > _I:
        raise Unsupported("SP/SI slices")
    pps = pps_of.get(pps_id)
    sps = sps_of.get(pps.sps_id) if pps else None
    if sps is None:
        raise Unsupported("slice before its parameter sets")
    frame_num, idr = r.u(sps.log2_max_frame_num), nal_type == 5
    if not sps.frame_mbs_only and r.u(1):
        raise Unsupported("field pictures")
    if idr:
        r.ue()
    if sps.poc_type == 0:
        r.u(sps.log2_max_poc_lsb)
        if pps.bottom_field_poc:
            r.se()
    elif sps.poc_type == 1 and not sps.poc_always_zero:
        r.se()
        if pps.bottom_field_poc:
            r.se()
    if pps.redundant_pic_cnt and r.ue():
        raise Unsupported("redundant pictures")
    if kind == _B:
        r.u(1)
    refs_l0, refs_l1 = pps.refs_l0, pps.refs_l1
    if kind != _I and r.u(1):
        refs_l0 = r.ue() + 1
        if kind == _B:
            refs_l1 = r.ue() + 1
    mods = _modifications(r) if kind != _I else []
    if kind == _B:
        _modifications(r)
    if (pps.weighted_pred and kind == _P) or (pps.weighted_bipred == 1 and kind == _B):
        _weights(r, sps, [refs_l0] + ([refs_l1] if kind == _B else []))
    mmco = _marking(r, idr) if ref_idc else None
    return _Slice(kind, sps, frame_num, idr, first_mb, refs_l0, mods, mmco)


@dataclass
class _Ref:
    frame_num: int
    is_b: bool


def _max_frame_num(s: _Slice) -> int:
    return 1 << s.sps.log2_max_frame_num


def _pic_num(ref: _Ref, s: _Slice) -> int:
    """A short-term reference's PicNum while slice `s` is decoded (its frame number, wrapped
    below the current one: 8.2.4.1)."""
    return ref.frame_num - _max_frame_num(s) if ref.frame_num > s.frame_num else ref.frame_num


@dataclass
class Replay:
    """The decoder's short-term references, replayed picture by picture from slice headers.
    Feed NAL units in decoding order with `nal`; `skippable` turns False for good at the
    first P slice whose reference list holds a B-frame."""

    sps: dict = field(default_factory=dict)
    pps: dict = field(default_factory=dict)
    dpb: list[_Ref] = field(default_factory=list)
    prev_ref_frame_num: int | None = None
    pending: tuple[_Slice, bool] | None = None  # the current picture: its first slice, whether it is a B-frame
    pending_ref: bool = False
    skippable: bool = True

    def nal(self, data: bytes) -> None:
        if not data:
            return
        nal_type, ref_idc = data[0] & 0x1F, (data[0] >> 5) & 3
        if nal_type == 7:
            sps_id, sps = _sps(_Bits(_rbsp(data)))
            self.sps[sps_id] = sps
        elif nal_type == 8:
            pps_id, pps = _pps(_Bits(_rbsp(data)))
            self.pps[pps_id] = pps
        elif nal_type in (1, 5):
            try:
                header = _slice(_Bits(_rbsp(data, _HEAD_BYTES)), nal_type, ref_idc, self.sps, self.pps)
            except _Short:
                header = _slice(_Bits(_rbsp(data)), nal_type, ref_idc, self.sps, self.pps)
            self._slice(header, ref_idc)
        elif nal_type in (2, 3, 4, 20):
            raise Unsupported("data partitioning or MVC")

    def finish(self) -> None:
        self._close_picture()

    def _slice(self, s: _Slice, ref_idc: int) -> None:
        if s.first_mb == 0:
            self._close_picture()
            self._open_picture(s)
            self.pending, self.pending_ref = (s, s.kind == _B), bool(ref_idc)
        elif self.pending is None:
            raise Unsupported("a slice without its picture's first slice")
        elif (s.kind == _B) != self.pending[1]:
            raise Unsupported("B and other slices in one picture")  # FFmpeg would decode half of it
        if s.kind == _P and any(ref is not None and ref.is_b for ref in self._list0(s)):
            self.skippable = False

    def _open_picture(self, s: _Slice) -> None:
        if not s.idr and self.prev_ref_frame_num is not None and s.frame_num not in (
                self.prev_ref_frame_num, (self.prev_ref_frame_num + 1) % _max_frame_num(s)):
            raise Unsupported("frame-number gap")

    def _close_picture(self) -> None:
        """Reference marking (8.2.5) once a picture's slices are all read."""
        if self.pending is None:
            return
        (s, is_b), self.pending = self.pending, None
        if not self.pending_ref:
            return
        current = _Ref(s.frame_num, is_b)
        if s.idr:
            self.dpb = []
        elif s.mmco is not None:
            for op, arg in s.mmco:
                if op == 5:
                    self.dpb, current.frame_num = [], 0
                else:
                    gone = s.frame_num - (arg + 1)
                    self.dpb = [r for r in self.dpb if _pic_num(r, s) != gone]
        elif len(self.dpb) >= max(s.sps.max_refs, 1):
            self.dpb.remove(min(self.dpb, key=lambda r: _pic_num(r, s)))
        self.dpb.append(current)
        self.prev_ref_frame_num = current.frame_num

    def _list0(self, s: _Slice) -> list[_Ref | None]:
        """A P slice's reference list 0 (8.2.4.2.1 and 8.2.4.3.1), `s.refs_l0` entries."""
        by_num, max_frame_num = {_pic_num(r, s): r for r in self.dpb}, _max_frame_num(s)
        refs: list[_Ref | None] = [by_num[n] for n in sorted(by_num, reverse=True)][:s.refs_l0]
        refs += [None] * (s.refs_l0 + 1 - len(refs))
        pred = s.frame_num
        for index, (idc, diff) in enumerate(s.modifications):
            pred = (pred + (diff + 1 if idc else -(diff + 1))) % max_frame_num
            num = pred - max_frame_num if pred > s.frame_num else pred
            if num not in by_num:
                raise Unsupported("a modification names a missing reference")
            picked = by_num[num]
            rest = [r for r in refs[index:] if r is not picked]
            refs = refs[:index] + [picked] + rest
        return refs[:s.refs_l0]


def nal_units(packet: bytes | memoryview, length_size: int | None) -> Iterable[bytes | memoryview]:
    """The NAL units of one packet: length-prefixed (MP4's avcC, `length_size` bytes; a
    memoryview is cut without copying) or Annex B start codes (`length_size` None:
    MPEG-TS, raw .h264)."""
    if length_size is None:
        for part in packet.split(b"\x00\x00\x01"):
            part = part.rstrip(b"\x00")
            if part:
                yield part
        return
    pos = 0
    while pos + length_size <= len(packet):
        size = int.from_bytes(packet[pos:pos + length_size], "big")
        yield packet[pos + length_size:pos + length_size + size]
        pos += length_size + size


def parameter_sets(extradata: bytes | None) -> tuple[int | None, list[bytes]]:
    """(NAL length size or None for Annex B, the SPS and PPS units) of a stream's extradata."""
    if not extradata:
        return None, []
    if extradata[0] != 1:  # Annex B in the extradata too
        return None, list(nal_units(extradata, None))
    length_size, units, pos = (extradata[4] & 3) + 1, [], 5
    for count_mask in (0x1F, 0xFF):  # SPS count (5 bits), then PPS count (8 bits)
        count, pos = extradata[pos] & count_mask, pos + 1
        for _ in range(count):
            size = int.from_bytes(extradata[pos:pos + 2], "big")
            units.append(extradata[pos + 2:pos + 2 + size])
            pos += 2 + size
    return length_size, units


def anchor_reach(path: str, limit: float) -> float | None:
    """How far (seconds) any time of `path`'s first video stream lies from its nearest frame
    that `skip_frame="BIDIR"` decodes (a reference I- or P-frame), when skipping every
    B-frame is safe and that distance is at most `limit`; None otherwise (not H.264, a P-frame
    references a B-frame, a feature not modelled, a damaged stream, anchors too far apart).
    One demuxing pass over the file, no decoding: 0.05 s for a minute of 720p, 3% of fast
    decoding's time."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if stream.codec_context is None or stream.codec_context.name != "h264" or stream.time_base is None:
                return None
            time_base = float(stream.time_base)  # read while the container is open
            length_size, units = parameter_sets(stream.codec_context.extradata)
            replay, anchors, first, end = Replay(), _Gaps(), None, None
            for unit in units:
                replay.nal(unit)
            for packet in container.demux(stream):
                if packet.pts is None:
                    if packet.size:
                        return None
                    continue
                for unit in nal_units(memoryview(packet) if length_size else bytes(packet), length_size):
                    replay.nal(unit)
                if not replay.skippable:
                    return None
                if replay.pending_ref and replay.pending is not None and not replay.pending[1]:
                    anchors.add(packet.pts)
                first = packet.pts if first is None else min(first, packet.pts)
                end = max(end or packet.pts, packet.pts + (packet.duration or 0))
            replay.finish()
    except (Unsupported, av.FFmpegError, IndexError, ValueError):
        return None
    if not anchors.finish():  # (a P slice listing a B-frame has returned already)
        return None
    reach = max(anchors.first - first, end - anchors.last, anchors.widest / 2) * time_base
    return reach if reach <= limit else None


@dataclass
class _Gaps:
    """The widest gap between consecutive times, fed in decoding order: a heap restores the
    display order (frames are reordered within the 16 references a decoder holds), so
    memory stays flat in video length."""

    heap: list[int] = field(default_factory=list)
    first: int | None = None
    last: int | None = None
    widest: int = 0

    def add(self, pts: int) -> None:
        heapq.heappush(self.heap, pts)
        if len(self.heap) > 32:
            self._take(heapq.heappop(self.heap))

    def finish(self) -> bool:
        """Take what the heap holds; False when nothing was added."""
        while self.heap:
            self._take(heapq.heappop(self.heap))
        return self.last is not None

    def _take(self, pts: int) -> None:
        if self.last is not None:
            self.widest = max(self.widest, pts - self.last)
        self.first = pts if self.first is None else self.first
        self.last = pts
