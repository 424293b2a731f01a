"""Frames sampled at a rate, streaming (memory does not grow with length), and the rules that
decide which frames the decoder may skip to get them.

Sampling rule (documented for users): at rate `fps`, sample k is taken at time
`t_k = (k + 0.5) / fps` seconds, the centre of its sampling interval, and shows the
frame that is on screen at `t_k`: the last frame whose presentation time is
`<= t_k` (or the first frame if none is). Times come from each frame's
presentation timestamp (`frame.time`), never from its index, so variable-frame-rate
files are sampled correctly. Samples continue while `t_k` is before the end of the
last frame; a video shorter than one sampling interval still gives one sample.

Seeking: when a keyframe must come before the next sample's frame (the last keyframe plus
the longest keyframe interval seen so far lies before it, at least 4 frames ahead), the
decoder jumps to the keyframe before the sample instead of decoding every frame in
between: sparse sampling, and the second half of every 1-s GOP at 1 fps. Decoding from a
keyframe gives the same frames, so the rule above is unchanged.

Decoding modes (`decode=`, `extract --decode`), one `Rule` each in `RULES`, tried in order,
the first that fits the stream running (exact where none does):
- "exact" decodes every frame: each sample is the frame on screen at `t_k`, bit-identical
  to a full decode.
- "fast" decodes only what the samples need, and skips the in-loop deblocking filter on all
  but keyframes (each picked frame is a little blurrier or blockier: 36-47 dB PSNR against
  the same frame fully decoded, on H.264 footage). Two rules:
  - "B-frames": where no P-frame references a B-frame (read from the H.264 slice headers,
    `h264`; x264's veryfast presets, and any stream whose B-frames are not references), it
    skips every B-frame, and each sample shows the nearest decoded frame (an I- or P-frame,
    at most a quarter of the sampling interval away: 2 frame intervals with 3 B-frames);
  - "non-reference frames": elsewhere it skips only frames nothing references, except
    within 1.5 frame intervals before a sample time, so each sample is the frame exact mode
    picks.
  Both decode every frame of the last sampling interval the file declares, where its end is
  found, so both modes give the same number of samples. Fast mode applies when the video
  has at least 4 frames per sampling interval (fewer: nothing to skip, and exact runs).
The `DecodeReport` records the mode that ran, what it skipped (`skipping`), and the largest
distance from a sample time to its frame's time (`max_offset`, seconds).

Adding a rule is one `Rule` in `RULES` (before the rules it is preferred to); tests/test_video.py
runs every entry on a stream it fits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.media import h264
from tempclr_cli.core.media.decode import (
    DecodeReport,
    Sample,
    VideoError,
    declared_durations,
    decode_packets,
    filter_frames,
    frame_rate,
    frame_seconds,
    open_video,
    restartable,
    rgb_converter,
    seconds_since,
    set_threads,
)

if TYPE_CHECKING:
    import numpy as np

_B_FRAME = 3  # AVPictureType of a B-frame


def _frames_to_skip(path: Path, stream, fps: float) -> bool:
    """At least 4 frames per sampling interval, and times to tell them by: below that, fast
    decoding gains little and a pick could lie over a quarter of the interval off."""
    return frame_rate(stream) >= 4 * fps and stream.time_base is not None


def _b_frames_unreferenced(path: Path, stream, fps: float) -> bool:
    """No P-frame references a B-frame, and a reference frame lies within a quarter of the
    sampling interval of every time (`h264.anchor_reach`: read from the slice headers)."""
    return _frames_to_skip(path, stream, fps) and h264.anchor_reach(path, 0.25 / fps) is not None


@dataclass(frozen=True)
class Rule:
    """One way to decode for samples at a rate: what the decoder skips away from the sample
    times and which decoded frame each sample shows. `decode` and `skipping` are what the index
    row records; `fits(path, stream, fps)` whether this stream allows the rule."""

    decode: str  # the --decode mode that chooses it
    skipping: str | None  # what it skips, as the row records it (None: nothing)
    skip_frame: str  # FFmpeg's AVDiscard for frames away from the samples (DEFAULT: none skipped)
    skip_loop_filter: str  # FFmpeg's AVDiscard for deblocking ("default": every frame deblocked)
    nearest: bool  # a sample shows the nearer decoded frame; else the one on screen (decoded near each sample)
    fits: Callable[[Path, object, float], bool]


EXACT = Rule("exact", None, "DEFAULT", "default", nearest=False, fits=lambda path, stream, fps: True)
RULES: tuple[Rule, ...] = (  # in order of preference within a mode
    Rule("fast", "B-frames", "BIDIR", "nokey", nearest=True, fits=_b_frames_unreferenced),
    Rule("fast", "non-reference frames", "NONREF", "nokey", nearest=False, fits=_frames_to_skip),
    EXACT,  # last: it fits every stream, and runs wherever a mode's own rules do not fit
)
DECODE_MODES = tuple(dict.fromkeys(rule.decode for rule in RULES))  # ("fast", "exact"): --decode's choices


def rules_for(decode: str) -> tuple[Rule, ...]:
    """The rules `--decode decode` chooses among, in order (exact last); the one place an
    unknown mode is refused."""
    rules = tuple(rule for rule in RULES if rule.decode == decode)
    if not rules:
        raise TempclrError(f"--decode {decode}: use one of {', '.join(DECODE_MODES)}")
    return rules if EXACT in rules else (*rules, EXACT)


def sample_frames(
    path: str | Path,
    fps: float = 1.0,
    short_side: int | None = 224,
    report: DecodeReport | None = None,
    decode: str = "exact",
    threads: int = 1,
    hwaccel: str | None = None,
) -> Iterator[Sample]:
    """Stream samples of `path` at `fps` (see the module docstring for which frame is picked
    and what `decode` changes).

    Only kept frames are converted to RGB (and resized, short side = `short_side`).
    Times count from the first frame (a stream whose first frame is at 8.3 s, as cuts of
    broadcasts often are, starts at 0 here, as in a player). When the stream is exhausted,
    `report` (if given) holds what decoding found (`DecodeReport`: the span, the rule that
    ran, `max_offset`, `frames_decoded`, damage). `threads`: the decoder's threads (see
    `decode.set_threads` for why one). `hwaccel`: decode on this device ("cuda": NVDEC) where
    it opens, `report.decoded_on` saying where it ran. Raises VideoError for files that
    cannot be decoded.
    """
    import av

    if fps <= 0:
        raise TempclrError(f"--fps {fps}: must be > 0")
    rules = rules_for(decode)
    path = Path(path)
    container = open_video(path, hwaccel, report)
    try:
        stream = container.streams.video[0]
        set_threads(stream, threads)
        rate = frame_rate(stream)
        declared_end = min(declared_durations(container, stream), default=math.inf)
        rule = next(r for r in rules if r.fits(path, stream, fps))
        skipper = _Skipper.of(rule, stream, fps, rate, declared_end) if rule is not EXACT else None
        picks, decoded = _Picks(fps, rgb_converter(short_side), rule.nearest), 0
        last, last_time = None, 0.0  # the last frame decoded, of any kind: the video ends with it
        key_gap, last_key = 0.0, None  # the longest keyframe interval seen so far (seconds)
        start, start_pts = None, None  # the first frame: a stream cut from a broadcast starts late
        seeking, sought = True, False  # seeking stops for good if a seek ever lands behind us
        errors: list = []  # packets that failed to decode: skipped, as ffmpeg does, and counted
        frames = decode_packets(container, stream, errors, skipper)
        try:
            for frame in restartable(lambda: frames):  # noqa: B023 - reads the iterator a seek swaps in
                if start is None:  # times count from the first frame, as a player shows them
                    start, start_pts = frame.time or 0.0, frame.pts
                    if skipper is not None:
                        skipper.origin = start_pts
                t = seconds_since(frame, start_pts, last_time + 1 / rate)
                if last is not None and t <= last_time:
                    seeking = seeking and not sought
                    sought = False
                    continue  # re-decoded after a seek that landed behind us
                sought = False
                if frame.key_frame:
                    key_gap = max(key_gap, t - last_key) if last_key is not None else key_gap
                    last_key = t
                last, last_time = frame, t
                decoded += 1
                if rule.nearest and frame.pict_type == _B_FRAME:
                    continue  # decoded only over the last second, to find the end; its references were skipped
                yield from picks.add(frame, t)
                target = picks.target
                next_key = (t if last_key is None else last_key) + key_gap  # at the latest, if GOPs stay this long
                if (
                    seeking
                    and key_gap
                    and next_key + 2 / rate < target - 1.5 / rate
                    and next_key - t > 4 / rate
                    and next_key < declared_end
                ):  # past the end there is no keyframe: the seek would land behind
                    # a keyframe comes before the next sample's frame: jump to the last one before it (sparse
                    # sampling, and the tail of every short GOP); the frames decoded from there are the same
                    container.seek(int((target + start) / stream.time_base), stream=stream, backward=True)
                    frames, last_key, sought = decode_packets(container, stream, errors, skipper), None, True
        except av.FFmpegError as e:
            if decoded == 0:
                raise VideoError(f"{path}: cannot decode ({e.strerror or type(e).__name__})") from None
            # a truncated tail: keep what decoded, the samples below end at the last good frame
        if picks.prev is None:
            raise VideoError(f"{path}: no decodable video frames")
        end = last_time + frame_seconds(last, rate)
        if report is not None:
            report.finish(container, stream, start, end, rate, errors)
        yield from picks.until(end)
        if report is not None:
            report.decode, report.skipping, report.max_offset = rule.decode, rule.skipping, picks.offset
            report.frames_decoded = decoded
    finally:
        container.close()


@dataclass
class _Picks:
    """Which decoded frame each sample time `t_k` shows: the frame on screen (the last one at
    or before `t_k`), or with `nearest` the nearer of that one and the next (ties: the one on
    screen). Frames come in presentation order; each is converted to RGB once, and only if a
    sample shows it."""

    fps: float
    to_rgb: Callable[[object], np.ndarray]
    nearest: bool
    k: int = 0  # the next sample
    prev: object = None  # the last frame added, and its RGB image once converted, and its time
    prev_rgb: np.ndarray | None = None
    prev_time: float = 0.0
    offset: float = 0.0  # the largest |sample time - its frame's time| so far

    @property
    def target(self) -> float:
        return (self.k + 0.5) / self.fps

    def add(self, frame, t: float) -> Iterator[Sample]:
        """The samples whose times come before `frame`'s time `t`: the frame before shows them
        (or, with `nearest`, this one where it is nearer)."""
        rgb = None
        while self.prev is not None and self.target < t:
            if self.nearest and t - self.target < self.target - self.prev_time:
                rgb = self.to_rgb(frame) if rgb is None else rgb
                yield self._sample(t, rgb)
            else:
                yield self._sample(self.prev_time, self._prev_image())
        self.prev, self.prev_rgb, self.prev_time = frame, rgb, t

    def until(self, end: float) -> Iterator[Sample]:
        """The samples left before `end`, when the last frame leaves the screen (at least one
        sample in all): the last frame shows them."""
        while self.target < end or self.k == 0:
            yield self._sample(self.prev_time, self._prev_image())

    def _prev_image(self) -> np.ndarray:
        if self.prev_rgb is None:
            self.prev_rgb = self.to_rgb(self.prev)
        return self.prev_rgb

    def _sample(self, frame_time: float, image: np.ndarray) -> Sample:
        sample = Sample(self.k, self.target, frame_time, image)
        self.offset = max(self.offset, abs(sample.time - frame_time))
        self.k += 1
        return sample


@dataclass
class _Skipper:
    """A rule's choice of what to skip, made per packet before it is decoded.

    Away from the samples the decoder discards what `rule.skip_frame` names; with a rule that
    shows the frame on screen (not `nearest`), everything near a sample time is decoded (1.5
    frame intervals before it, where that frame lies, and a quarter of a frame interval after,
    for timestamps a little off). Every frame of the last sampling interval the file declares
    is decoded (so the end is found as exact decoding finds it), and everything until the
    first frame fixes the origin."""

    rule: Rule
    ctx: object
    fps: float
    rate: float
    time_base: Fraction
    tail: float  # seconds from the first frame after which every packet is decoded
    origin: int | None = None  # the first frame's pts, which sample times count from
    active: bool = False  # skipping now

    @classmethod
    def of(cls, rule: Rule, stream, fps: float, rate: float, declared_end: float) -> _Skipper:
        """The skipper for `stream` under `rule`. `declared_end`: the shortest duration the
        file declares (inf: none, skipped to the end)."""
        stream.codec_context.options = {"skip_loop_filter": rule.skip_loop_filter}
        return cls(rule, stream.codec_context, fps, rate, stream.time_base, declared_end - 1 / fps - 2 / rate)

    def __call__(self, packet) -> None:
        skip = self.origin is not None and packet.pts is not None and not self._near(self._seconds(packet.pts))
        if skip != self.active:
            self.ctx.skip_frame = self.rule.skip_frame if skip else "DEFAULT"
            self.active = skip

    def _seconds(self, pts: int) -> float:
        return float((pts - self.origin) * self.time_base)

    def _near(self, t: float) -> bool:
        if t >= self.tail:
            return True
        if self.rule.nearest:
            return False
        k = math.ceil((t - 0.25 / self.rate) * self.fps - 0.5)  # the first sample time at or after t - slack
        return (k + 0.5) / self.fps - 1.5 / self.rate <= t


# --- frame protocols: how an encoder's frames are decoded (its registration names one) -------------------


@dataclass(frozen=True)
class FrameProtocol:
    """How frames are read for an encoder: `read(path, fps, size, report, decode, hwaccel)` yields Samples;
    `options`: whether extract's --decode and --hwaccel choose anything (a protocol that fixes its decoding
    says so in each index row instead)."""

    name: str
    summary: str
    read: Callable[..., Iterator[Sample]]
    options: bool


def _tempclr_frames(path, fps, size, report, decode, hwaccel):
    return sample_frames(path, fps, size, report, decode=decode, hwaccel=None if hwaccel == "none" else hwaccel)


def _videoclip_frames(path, fps, size, report, decode, hwaccel):
    if hwaccel not in ("none", "auto"):  # said in the row (and warned by the command): --hwaccel cuda was asked for
        report.decoded_on = f"cpu ({hwaccel}: VideoCLIP's ffmpeg filters decode on the CPU)"
    return filter_frames(path, fps, size, report)


FRAME_PROTOCOLS = {
    p.name: p
    for p in (
        FrameProtocol(
            "frames",
            "tempclr's sampler: the frame on screen at each sample time (--decode fast|exact)",
            _tempclr_frames,
            options=True,
        ),
        FrameProtocol(
            "videoclip",
            "VideoCLIP's extractor: ffmpeg's fps / scale / crop filters over every frame, on the CPU",
            _videoclip_frames,
            options=False,
        ),
    )
}
