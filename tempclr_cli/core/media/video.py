"""Reading and writing video files with PyAV, streaming: memory does not grow with length.

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

Two decoding modes (`decode=`):
- "exact" decodes every frame: each sample is the frame on screen at `t_k`, bit-identical
  to a full decode.
- "fast" decodes only what the samples need, and skips the in-loop deblocking filter on all
  but keyframes (each picked frame is a little blurrier or blockier: 36-47 dB PSNR against
  the same frame fully decoded, on H.264 footage). Which frames it skips depends on the
  stream:
  - where no P-frame references a B-frame (read from the H.264 slice headers, `h264`;
    x264's veryfast presets, and any stream whose B-frames are not references), it skips
    every B-frame, and each sample shows the nearest decoded frame (an I- or P-frame, at
    most a quarter of the sampling interval away: 2 frame intervals with 3 B-frames);
  - elsewhere it skips only frames nothing references, except within 1.5 frame intervals
    before a sample time, so each sample is the frame exact mode picks.
  Both decode every frame of the last sampling interval the file declares, where its end is
  found, so both modes give the same number of samples. Fast mode applies when the video
  has at least 4 frames per sampling interval (fewer: nothing to skip, and exact runs).
  `info` records the mode that ran, what it skipped (`skipping`), and the largest distance
  from a sample time to its frame's time (`max_offset`, seconds).

`filter_frames` reads frames the other way, as VideoCLIP's extractor did: ffmpeg's own
fps / scale / crop filters, through PyAV's filter graph.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from tempclr_cli.core import io
from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.media import h264

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mkv", ".webm", ".avi", ".mov", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ts", ".gif"}
)
_CONTAINER = {".mp4": "mp4", ".m4v": "mp4", ".mkv": "matroska", ".webm": "webm", ".avi": "avi", ".mov": "mov",
              ".ts": "mpegts"}
_CODEC = {".webm": "libvpx", ".avi": "mpeg4"}
DECODE_MODES = ("fast", "exact")  # see the module docstring
HWACCELS = ("none", "cuda")  # decoding devices: the CPU, NVDEC (FFmpeg's hwaccel, through PyAV)
_B_FRAME = 3  # AVPictureType of a B-frame


class VideoError(TempclrError):
    """A file that cannot be decoded as video (corrupt, truncated, audio-only, ...)."""


@dataclass(frozen=True)
class Sample:
    """One sampled frame: `image` is (H, W, 3) uint8 RGB."""

    index: int
    time: float  # the sample time t_k
    frame_time: float  # presentation time of the frame shown
    image: np.ndarray


# --- writing ---------------------------------------------------------------------


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: float,
    times: Sequence[float] | None = None,
    codec: str | None = None,
    gop: int | None = None,
    options: dict[str, str] | None = None,
) -> Path:
    """Encode RGB frames (H, W, 3) uint8 to `path` atomically; container from the suffix.

    `times` (seconds, increasing) gives each frame's presentation time for
    variable-frame-rate files; by default frame k is shown at k / fps. `gop` sets the
    keyframe interval in frames; `options`, encoder options over the defaults (for x264,
    `{"x264-params": "ref=3"}` replaces its `mbtree=0`).
    """
    import av

    path = Path(path)
    suffix = path.suffix.lower()
    codec = codec or _CODEC.get(suffix, "libx264")
    time_base = Fraction(1, 1000) if times is not None else Fraction(1, int(round(fps)))
    with io.atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format=_CONTAINER.get(suffix, "mp4")) as container:
            stream = container.add_stream(codec, rate=Fraction(int(round(fps)), 1))
            stream.pix_fmt = "yuv420p"
            stream.codec_context.time_base = time_base
            if codec == "libx264":
                # one thread, and no macroblock-tree rate control: with it, the bundled x264 gave 2-4
                # different streams for the same frames in 8 tries (one seed, one video: same bytes)
                stream.options = {"preset": "veryfast", "crf": "20", "x264-params": "mbtree=0"}
                stream.codec_context.thread_count = 1
            stream.options = {**stream.options, **(options or {})}
            if gop:
                stream.codec_context.gop_size = gop
            for k, image in enumerate(frames):
                if k == 0:
                    stream.height, stream.width = image.shape[:2]
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
                frame.pts = round(times[k] / time_base) if times is not None else k
                frame.time_base = time_base
                container.mux(stream.encode(frame))
            container.mux(stream.encode())
    return path


# --- reading ---------------------------------------------------------------------


def _open(path: Path, hwaccel: str | None = None, info: dict | None = None):
    """`path` opened for decoding; with `hwaccel` ("cuda": NVDEC) on that device where it
    opens, else on the CPU. `info["decoded_on"]` says which, and why the CPU when the device
    was asked for: "cuda", "cpu", or "cpu (cuda: <reason>)"."""
    import av

    if not path.is_file():
        raise VideoError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: empty file (0 bytes)")
    container, reason = _open_on(path, hwaccel) if hwaccel else (None, None)
    try:
        container = container or av.open(str(path))
    except av.FFmpegError as e:
        raise VideoError(f"{path}: not a readable video ({e.strerror or type(e).__name__})") from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path}: no video stream (audio-only or data file)")
    context = container.streams.video[0].codec_context
    if context is None:  # a codec id no decoder knows (a damaged header)
        container.close()
        raise VideoError(f"{path}: no decoder for its video stream (unknown codec or damaged header)")
    if info is not None:
        if hwaccel and reason is None and not context.is_hwaccel:
            reason = f"no {hwaccel} decoder for {context.name}"
        info["decoded_on"] = hwaccel if hwaccel and reason is None else "cpu" + (f" ({hwaccel}: {reason})" if reason else "")
    return container


def _open_on(path: Path, hwaccel: str):
    """(container decoding on `hwaccel`, None) or (None, why not): no device, no driver, no
    permission. FFmpeg's own fallback to software (a profile the device lacks) is not seen here."""
    import av
    from av.codec.hwaccel import HWAccel

    try:
        return av.open(str(path), hwaccel=HWAccel(device_type=hwaccel, allow_software_fallback=True)), None
    except av.FFmpegError as e:
        return None, f"no device opened ({e.strerror or type(e).__name__})"


def _output_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    if not short_side:
        return width, height
    scale = short_side / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _rgb(short_side: int | None):
    """A converter of frames to (H, W, 3) uint8 RGB, resized inside the conversion (short side
    `short_side`), with the frame's rotation metadata applied. One reformatter serves every
    frame: `frame.to_ndarray(width=...)` builds a new scaler per frame, 3.5 ms against 1 ms at
    720p, for the same pixels."""
    from av.video.reformatter import VideoReformatter

    reformatter = VideoReformatter()
    return lambda frame: _to_rgb(frame, short_side, reformatter)


def _to_rgb(frame, short_side: int | None, reformatter) -> np.ndarray:
    rotation = int(getattr(frame, "rotation", 0) or 0) % 360
    w, h = _output_size(frame.width, frame.height, short_side)
    image = reformatter.reformat(frame, width=w, height=h, format="rgb24").to_ndarray()
    if rotation:
        # display-matrix rotation is counter-clockwise; np.rot90 turns counter-clockwise too
        image = np.ascontiguousarray(np.rot90(image, k=rotation // 90))
    return image


def sample_frames(path: str | Path, fps: float = 1.0, short_side: int | None = 224, info: dict | None = None,
                  decode: str = "exact", threads: int = 1, hwaccel: str | None = None) -> Iterator[Sample]:
    """Stream samples of `path` at `fps` (see the module docstring for which frame is picked
    and what `decode` changes).

    Only kept frames are converted to RGB (and resized, short side = `short_side`).
    Times count from the first frame (a stream whose first frame is at 8.3 s, as cuts of
    broadcasts often are, starts at 0 here, as in a player). When the stream is exhausted,
    `info` (if given) holds "end", when the last frame leaves the screen, "start",
    the first frame's own presentation time, "truncated", whether decoding stopped well
    before the duration the file declares, "decode", the mode that ran, "skipping", what fast
    mode skipped ("B-frames", "non-reference frames"; None in exact mode), "max_offset", the
    largest distance from a sample time to its frame's time, and "frames_decoded".
    `threads`: the decoder's threads (see `_threads` for why one). `hwaccel`: decode on
    this device ("cuda": NVDEC) where it opens, with "decoded_on" in `info` (see `_open`).
    Raises VideoError for files that cannot be decoded.
    """
    import av

    if fps <= 0:
        raise TempclrError(f"--fps {fps}: must be > 0")
    if decode not in DECODE_MODES:
        raise TempclrError(f"--decode {decode}: use one of {', '.join(DECODE_MODES)}")
    path = Path(path)
    container = _open(path, hwaccel, info)
    try:
        stream = container.streams.video[0]
        _threads(stream, threads)
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        declared_end = min(_declared(container, stream), default=math.inf)
        skipper = _NearSamples.of(stream, fps, rate, declared_end, path) if decode == "fast" else None
        nearest = skipper is not None and skipper.anchors  # picks: the nearest reference frame, not the one on screen
        picks, decoded = _Picks(fps, _rgb(short_side), nearest), 0
        last, last_time = None, 0.0  # the last frame decoded, of any kind: the video ends with it
        key_gap, last_key = 0.0, None  # the longest keyframe interval seen so far (seconds)
        start, start_pts = None, None  # the first frame: a stream cut from a broadcast starts late
        seeking, sought = True, False  # seeking stops for good if a seek ever lands behind us
        errors: list = []  # packets that failed to decode: skipped, as ffmpeg does, and counted
        frames = _decoded(container, stream, errors, skipper)
        try:
            for frame in _restartable(lambda: frames):  # noqa: B023 - reads the iterator a seek swaps in
                if start is None:  # times count from the first frame, as a player shows them
                    start, start_pts = frame.time or 0.0, frame.pts
                    if skipper is not None:
                        skipper.origin = start_pts
                t = _since(frame, start_pts, last_time + 1 / rate)
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
                if nearest and frame.pict_type == _B_FRAME:
                    continue  # decoded only over the last second, to find the end; its references were skipped
                yield from picks.add(frame, t)
                target = picks.target
                next_key = (t if last_key is None else last_key) + key_gap  # at the latest, if GOPs stay this long
                if (seeking and key_gap and next_key + 2 / rate < target - 1.5 / rate and next_key - t > 4 / rate
                        and next_key < declared_end):  # past the end there is no keyframe: the seek would land behind
                    # a keyframe comes before the next sample's frame: jump to the last one before it (sparse
                    # sampling, and the tail of every short GOP); the frames decoded from there are the same
                    container.seek(int((target + start) / stream.time_base), stream=stream, backward=True)
                    frames, last_key, sought = _decoded(container, stream, errors, skipper), None, True  # gaps: keyframes
        except av.FFmpegError as e:
            if decoded == 0:
                raise VideoError(f"{path}: cannot decode ({e.strerror or type(e).__name__})") from None
            # a truncated tail: keep what decoded, the samples below end at the last good frame
        if picks.prev is None:
            raise VideoError(f"{path}: no decodable video frames")
        end = last_time + _frame_seconds(last, rate)
        _report(info, container, stream, start, end, rate, errors)
        yield from picks.until(end)
        if info is not None:
            info.update(decode="fast" if skipper else "exact", max_offset=picks.offset, frames_decoded=decoded,
                        skipping=skipper.skips if skipper else None)
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


def _threads(stream, threads: int) -> None:
    """`threads` decoder threads; 0: FFmpeg's choice of frame threads. One is the default, by
    measurement: on 50 damaged H.264 files frame threads lost the last 1-3 decodable frames
    of 9 (the frames in flight when a packet fails), one thread none; and frame threads gain
    1.4x on one 720p video with every frame decoded, 1.14x in fast mode, and a folder's
    videos spread over decoding workers or processes instead (`extract --workers 2`: 1.44x
    on 2 cores, one of which also encodes; docs/benchmarks.md)."""
    stream.thread_type = "AUTO"
    stream.codec_context.thread_count = threads


@dataclass
class _NearSamples:
    """Fast decoding's choice, made per packet before it is decoded.

    Where no P-frame references a B-frame (`h264.anchor_reach`: x264's fast presets, and
    any stream without reference B-frames) and a reference frame lies within a quarter of
    the sampling interval of every time, every B-frame is skipped (`anchors`), and each
    sample takes the nearest decoded frame. Otherwise only frames no other frame references
    are skipped, except near a sample time (1.5 frame intervals before it, where the frame
    on screen at that time lies, and a quarter of a frame interval after, for timestamps a
    little off), where the exact frame is decoded. Both decode every frame of the last
    sampling interval the file declares (so the end is found as exact decoding finds it),
    skip deblocking except on keyframes, and decode everything until the first frame fixes
    the origin."""

    ctx: object
    fps: float
    rate: float
    time_base: Fraction
    tail: float  # seconds from the first frame after which every packet is decoded
    anchors: bool  # skip every B-frame, pick the nearest reference frame
    origin: int | None = None  # the first frame's pts, which sample times count from
    active: bool = False  # skipping now

    @classmethod
    def of(cls, stream, fps: float, rate: float, declared_end: float, path: Path) -> _NearSamples | None:
        """The skipper for `stream`, or None where fast decoding gains little and a pick could
        lie over a quarter of the sampling interval off: fewer than 4 frames per sample.
        `declared_end`: the shortest duration the file declares (inf: none, skipped to the end)."""
        if rate < 4 * fps or stream.time_base is None:
            return None
        anchors = h264.anchor_reach(path, 0.25 / fps) is not None
        stream.codec_context.options = {"skip_loop_filter": "nokey"}
        return cls(stream.codec_context, fps, rate, stream.time_base, declared_end - 1 / fps - 2 / rate, anchors)

    @property
    def skips(self) -> str:
        """What this skipper skips, as `index.jsonl` records it."""
        return "B-frames" if self.anchors else "non-reference frames"

    def __call__(self, packet) -> None:
        skip = self.origin is not None and packet.pts is not None and not self._near(self._seconds(packet.pts))
        if skip != self.active:
            self.ctx.skip_frame = ("BIDIR" if self.anchors else "NONREF") if skip else "DEFAULT"
            self.active = skip

    def _seconds(self, pts: int) -> float:
        return float((pts - self.origin) * self.time_base)

    def _near(self, t: float) -> bool:
        if t >= self.tail:
            return True
        if self.anchors:
            return False
        k = math.ceil((t - 0.25 / self.rate) * self.fps - 0.5)  # the first sample time at or after t - slack
        return (k + 0.5) / self.fps - 1.5 / self.rate <= t


def videoclip_geometry(width: int, height: int, size: int = 224) -> tuple[int, int, int, int]:
    """(scaled width, scaled height, crop x, crop y) as VideoCLIP's extractor computes them
    (`videoreader.py` `_get_output_dim` and `centercrop`): short side `size`, the long side
    truncated, a centred crop at integer offsets."""
    if height >= width:
        w, h = size, int(height * size / width)
    else:
        w, h = int(width * size / height), size
    return w, h, int((w - size) / 2.0), int((h - size) / 2.0)


def filter_frames(path: str | Path, fps: float = 30.0, size: int = 224, info: dict | None = None,
                  threads: int = 1) -> Iterator[Sample]:
    """Frames as VideoCLIP's feature extractor reads them: ffmpeg's `fps`, `scale` and `crop`
    filters (`-vf fps=30,scale=W:H,crop=S:S:X:Y`, rgb24), run in-process by PyAV's filter
    graph, so frame choice and scaling are ffmpeg's own. Sample k is output frame k at time
    k / fps; `info` and `threads` as in `sample_frames` (every frame is decoded: "exact", and
    `max_offset` is None, the fps filter's own choice). Raises VideoError when nothing decodes."""
    import av

    path = Path(path)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        _threads(stream, threads)
        ctx = stream.codec_context
        w, h, x, y = videoclip_geometry(ctx.width, ctx.height, size)
        graph = av.filter.Graph()
        chain = [graph.add_buffer(template=stream), graph.add("fps", f"fps={fps}"), graph.add("scale", f"{w}:{h}"),
                 graph.add("crop", f"{size}:{size}:{x}:{y}"), graph.add("format", "rgb24"), graph.add("buffersink")]
        for a, b in zip(chain, chain[1:]):
            a.link_to(b)
        graph.configure()
        k, first, last, rate = 0, None, None, float(stream.average_rate or stream.guessed_rate or 25)
        errors: list = []
        try:
            for frame in _decoded(container, stream, errors):
                first = frame if first is None else first
                last = frame
                graph.push(frame)
                for out in _pull_all(graph):
                    yield Sample(k, k / fps, k / fps, out.to_ndarray())
                    k += 1
        except av.FFmpegError as e:
            if first is None:
                raise VideoError(f"{path}: cannot decode ({e.strerror or type(e).__name__})") from None
        if first is None:
            raise VideoError(f"{path}: no decodable video frames")
        graph.push(None)  # end of stream: the fps filter emits its last frames
        for out in _pull_all(graph):
            yield Sample(k, k / fps, k / fps, out.to_ndarray())
            k += 1
        start = first.time or 0.0
        end = (last.time or 0.0) - start + _frame_seconds(last, rate)
        _report(info, container, stream, start, end, rate, errors)
        if info is not None:  # the fps filter may pad the last second: the samples' own end
            info.update(end=max(end, k / fps), decode="exact", max_offset=None, skipping=None)
    finally:
        container.close()


def _pull_all(graph) -> Iterator:
    """Every frame the graph has ready (PyAV raises BlockingIOError / EOFError when none is)."""
    import av

    while True:
        try:
            yield graph.pull()
        except (av.BlockingIOError, av.EOFError):
            return


MAX_DECODE_ERRORS = 1000  # past this many bad packets a file is given up as undecodable from there on


def _decoded(container, stream, errors: list, before=None) -> Iterator:
    """The frames of `stream`, packet by packet: a packet the decoder rejects is skipped and
    its time appended to `errors` (one corrupt packet costs a frame or a GOP, not the rest
    of the video); a demuxing error (a cut file) ends the stream after the frames still in the
    decoder's pipeline (frame threads hold several). `before(packet)`, if given, runs before
    each packet is decoded (fast mode's choice)."""
    import av

    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.FFmpegError:
            yield from _drained(stream)
            raise
        if before is not None:
            before(packet)
        try:
            yield from packet.decode()
        except av.FFmpegError:
            errors.append(float(packet.pts * packet.time_base) if packet.pts is not None else None)
            if len(errors) > MAX_DECODE_ERRORS:
                raise


def _drained(stream) -> Iterator:
    """The frames the decoder still holds, once no packet will follow."""
    import av

    try:
        for frame in stream.codec_context.decode(None):
            frame.time_base = stream.time_base  # frames from the codec context carry none
            yield frame
    except av.FFmpegError:
        return


def _since(frame, start_pts: int | None, fallback: float) -> float:
    """Seconds from the first frame, exact in the stream's time base (1.1 - 0.6 in floats is
    0.5000000000000001, which would pick the frame before a sample at 0.5)."""
    if frame.pts is None or start_pts is None:
        return fallback
    return float((frame.pts - start_pts) * frame.time_base)


def read_frames(path: str | Path, short_side: int | None = None) -> np.ndarray:
    """Every frame of a (short) video in decoding order: (F, H, W, 3) uint8 RGB.

    For clip-based training on datasets of short videos (UCF101 averages 7 s); raises
    VideoError when nothing decodes.
    """
    import av

    path = Path(path)
    container = _open(path)
    frames, to_rgb = [], _rgb(short_side)
    try:
        stream = container.streams.video[0]
        _threads(stream, 1)
        for frame in _decoded(container, stream, []):
            frames.append(to_rgb(frame))
    except av.FFmpegError as e:
        if not frames:
            raise VideoError(f"{path}: cannot decode ({e.strerror or type(e).__name__})") from None
    finally:
        container.close()
    if not frames:
        raise VideoError(f"{path}: no decodable video frames")
    return np.stack(frames)


def _ends_early(container, stream, start: float, end: float, rate: float, damaged: bool = False) -> bool:
    """Whether decoding stopped well before the duration the file declares (a cut-off file).

    Containers declare either the span (MP4, MPEG-TS) or the end time (Matroska counts from
    0, so a stream starting at 8.3 s declares 8.7): early means short of both readings."""
    declared = _declared(container, stream)
    if not declared:
        return False
    # an intact file may end half a second short of its header's figure; one that lost packets, by 1.5 frames
    expected, slack = max(declared), (1.5 / rate if damaged else max(0.5, 2 / rate))
    return end < expected - slack and start + end < expected - slack


def _declared(container, stream) -> list[float]:
    """The durations the file declares, in seconds: the stream's span and the container's."""
    declared = [float(stream.duration * stream.time_base)] if stream.duration else []
    return declared + ([container.duration / 1_000_000] if container.duration else [])


def _report(info: dict | None, container, stream, start: float, end: float, rate: float, errors: list) -> None:
    """What a sampler tells its caller once the stream is exhausted: `end` (when the last
    decoded frame leaves the screen), `start` (the first frame's own time), `decode_errors`
    and `truncated` (time is missing: the end well before the declared duration, or the head lost)."""
    if info is not None:
        info.update(end=end, start=start, decode_errors=len(errors),
                    truncated=_ends_early(container, stream, start, end, rate, bool(errors)) or _head_lost(errors, start))


def _head_lost(errors: list, start: float) -> bool:
    """Whether packets before the first decoded frame were lost: the video's beginning is missing
    (times count from the first frame, so nothing else would show it)."""
    return any(t is not None and t < start - 1e-6 for t in errors)


def _restartable(source):
    """Iterate `source()`, re-reading it when the caller swaps the iterator (after a seek)."""
    while True:
        current = source()
        for item in current:
            yield item
            if source() is not current:
                break
        else:
            return


def _frame_seconds(frame, rate: float) -> float:
    if frame.duration and frame.time_base:
        return float(frame.duration * frame.time_base)
    return 1.0 / rate


def find_videos(inputs: Iterable[str | Path]) -> list[Path]:
    """Expand folders (recursively, by video extension) and keep files as given, sorted."""
    found: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found.extend(q for q in p.rglob("*") if q.suffix.lower() in VIDEO_EXTENSIONS and q.is_file())
        elif p.exists():
            found.append(p)
        else:
            raise TempclrError(f"{p}: no such file or folder")
    if not found:  # an empty run would exit 0 with a table of zeros
        raise TempclrError(f"no videos found in {', '.join(map(str, inputs))} (looked for "
                           f"{' '.join(sorted(VIDEO_EXTENSIONS))})")
    return sorted(set(found))
