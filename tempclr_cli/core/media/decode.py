"""Opening video files and decoding them packet by packet with PyAV; what decoding found.

Everything that reads frames goes through here: `open_video` (the CPU, or NVDEC where it
opens), `decode_packets` (a damaged packet costs its frames, not the rest of the file),
`rgb_converter` (one scaler for every frame), and the `DecodeReport` a reader fills in as it
finishes, which becomes the video's `index.jsonl` row (`DecodeReport.row`). Two readers live
here: `read_frames` (every frame of a short video) and `filter_frames` (VideoCLIP's extractor:
ffmpeg's fps / scale / crop filters through PyAV's filter graph). Which frames to decode for a
sampling rate, and which frame each sample shows, is `media.sampling`'s.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tempclr_cli.core.errors import TempclrError

HWACCELS = ("auto", "none", "cuda")  # decoding devices: NVDEC where it wins (`auto_hwaccel`), the CPU, NVDEC
# NVDEC where it beats the CPU, as a starting rule (torchcodec's published figures: about 3x the CPU at 1080p under
# concurrency, 5.6x slower at 540p): these codecs, from this height up. scripts/gpu_check.sh measures it per machine.
NVDEC_CODECS = ("h264", "hevc")
NVDEC_MIN_HEIGHT = 1080
MAX_DECODE_ERRORS = 1000  # past this many bad packets a file is given up as undecodable from there on
VIDEOCLIP_DECODE = "n/a (videoclip protocol: ffmpeg's filters decode every frame)"  # `decode` under filter_frames


class VideoError(TempclrError):
    """A file that cannot be decoded as video (corrupt, truncated, audio-only, ...)."""


@dataclass(frozen=True)
class Sample:
    """One sampled frame: `image` is (H, W, 3) uint8 RGB."""

    index: int
    time: float  # the sample time t_k
    frame_time: float  # presentation time of the frame shown
    image: np.ndarray


@dataclass
class DecodeReport:
    """What decoding one video found: a reader fills it in once the stream is exhausted (the
    caller makes one and passes it in; the reader is a generator, so nothing else carries it
    back), the extraction adds its decoding time, and the video's index.jsonl row records it
    (`row`). Times are seconds; times in the samples count from the first frame."""

    duration: float = 0.0  # when the last decoded frame leaves the screen
    start_offset: float = 0.0  # the first frame's own presentation time (broadcast cuts start late)
    truncated: bool = False  # time is missing: decoding ended well before the declared duration, or the head lost
    decode_errors: int = 0  # packets the decoder rejected and skipped (their frames are missing)
    decode: str = "exact"  # the sampling rule's mode that ran (media.sampling.RULES), or VIDEOCLIP_DECODE
    skipping: str | None = None  # what that rule skipped ("B-frames", "non-reference frames"; None: nothing)
    max_offset: float | None = None  # the largest |sample time - its frame's time| (None: the fps filter chose)
    decoded_on: str = "cpu"  # "cpu", "cuda" (NVDEC), or "cpu (cuda: why not)" where the device was asked for
    frames_decoded: int = 0  # frames the decoder produced (fast mode's saving; not in the row)
    decode_seconds: float = 0.0  # decoding and sampling, in the decoding process (added by the caller)

    def finish(self, container, stream, start: float, end: float, rate: float, errors: list) -> None:
        """The span that decoded (`start`, `end`), the rejected packets' times (`errors`), and
        from those whether time is missing."""
        self.duration, self.start_offset, self.decode_errors = end, start, len(errors)
        self.truncated = _ends_early(container, stream, start, end, rate, bool(errors)) or _head_lost(errors, start)

    def row(self) -> dict:
        """The fields of the video's index.jsonl row, rounded as the row stores them."""
        return {
            "duration": round(self.duration, 4),
            "start_offset": round(self.start_offset, 4),  # times in the row count from it
            "truncated": self.truncated,
            "decode_errors": self.decode_errors,
            "decode": self.decode,
            "max_offset": None if self.max_offset is None else round(self.max_offset, 4),
            "decoded_on": self.decoded_on,
            "skipping": self.skipping,
            "decode_seconds": round(self.decode_seconds, 3),
        }


# --- opening -------------------------------------------------------------------------


def auto_hwaccel(path: Path) -> str | None:
    """ "cuda" where NVDEC is expected to beat the CPU (a CUDA device, and a NVDEC_CODECS stream at
    least NVDEC_MIN_HEIGHT high), else None: `--hwaccel auto`, the default."""
    import av
    import torch

    if not torch.cuda.is_available():
        return None
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fits = stream.codec_context.name in NVDEC_CODECS and min(stream.height, stream.width) >= NVDEC_MIN_HEIGHT
    except (av.FFmpegError, IndexError):
        return None  # the CPU path says what is wrong with the file
    return "cuda" if fits else None


def open_video(path: Path, hwaccel: str | None = None, report: DecodeReport | None = None):
    """`path` opened for decoding; with `hwaccel` ("cuda": NVDEC) on that device where it
    opens, else on the CPU, and `report.decoded_on` says which, and why the CPU: "cuda", or
    "cpu (cuda: <reason>)"; "auto" picks by `auto_hwaccel` (a CPU it picks is plain "cpu").
    Raises VideoError for what holds no decodable video stream."""
    import av

    if not path.is_file():
        raise VideoError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: empty file (0 bytes)")
    if hwaccel == "auto":
        hwaccel = auto_hwaccel(path)
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
    if hwaccel and report is not None:
        if reason is None and not context.is_hwaccel:
            reason = f"no {hwaccel} decoder for {context.name}"
        report.decoded_on = hwaccel if reason is None else f"cpu ({hwaccel}: {reason})"
    return container


def _open_on(path: Path, hwaccel: str):
    """(container decoding on `hwaccel`, None) or (None, why not): no device, no driver, no
    permission. FFmpeg's own fallback to software (a profile the device lacks) is not seen here."""
    import av
    from av.codec.hwaccel import HWAccel

    from tempclr_cli.core.runtime import local_rank

    accel = HWAccel(device_type=hwaccel, device=str(local_rank()), allow_software_fallback=True)  # torchrun's GPU
    try:
        return av.open(str(path), hwaccel=accel), None
    except av.FFmpegError as e:
        return None, f"no device opened ({e.strerror or type(e).__name__})"


def set_threads(stream, threads: int) -> None:
    """`threads` decoder threads; 0: FFmpeg's choice of frame threads. One is the default, by
    measurement: on 50 damaged H.264 files frame threads lost the last 1-3 decodable frames
    of 9 (the frames in flight when a packet fails), one thread none; and frame threads gain
    1.4x on one 720p video with every frame decoded, 1.14x in fast mode, and a folder's
    videos spread over decoding workers or processes instead (`extract --workers 2`: 1.44x
    on 2 cores, one of which also encodes; docs/benchmarks.md)."""
    stream.thread_type = "AUTO"
    stream.codec_context.thread_count = threads


def frame_rate(stream) -> float:
    """The stream's frame rate, frames per second (25 where the file declares none)."""
    return float(stream.average_rate or stream.guessed_rate or 25)


def declared_durations(container, stream) -> list[float]:
    """The durations the file declares, in seconds: the stream's span and the container's."""
    declared = [float(stream.duration * stream.time_base)] if stream.duration else []
    return declared + ([container.duration / 1_000_000] if container.duration else [])


# --- decoding ------------------------------------------------------------------------


def decode_packets(container, stream, errors: list, before=None) -> Iterator:
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


def restartable(source):
    """Iterate `source()`, re-reading it when the caller swaps the iterator (after a seek)."""
    while True:
        current = source()
        for item in current:
            yield item
            if source() is not current:
                break
        else:
            return


def seconds_since(frame, start_pts: int | None, fallback: float) -> float:
    """Seconds from the first frame, exact in the stream's time base (1.1 - 0.6 in floats is
    0.5000000000000001, which would pick the frame before a sample at 0.5)."""
    if frame.pts is None or start_pts is None:
        return fallback
    return float((frame.pts - start_pts) * frame.time_base)


def frame_seconds(frame, rate: float) -> float:
    """How long `frame` stays on screen: its own duration, else one frame interval."""
    if frame.duration and frame.time_base:
        return float(frame.duration * frame.time_base)
    return 1.0 / rate


def _ends_early(container, stream, start: float, end: float, rate: float, damaged: bool = False) -> bool:
    """Whether decoding stopped well before the duration the file declares (a cut-off file).

    Containers declare either the span (MP4, MPEG-TS) or the end time (Matroska counts from
    0, so a stream starting at 8.3 s declares 8.7): early means short of both readings."""
    declared = declared_durations(container, stream)
    if not declared:
        return False
    # an intact file may end half a second short of its header's figure; one that lost packets, by 1.5 frames
    expected, slack = max(declared), (1.5 / rate if damaged else max(0.5, 2 / rate))
    return end < expected - slack and start + end < expected - slack


def _head_lost(errors: list, start: float) -> bool:
    """Whether packets before the first decoded frame were lost: the video's beginning is missing
    (times count from the first frame, so nothing else would show it)."""
    return any(t is not None and t < start - 1e-6 for t in errors)


# --- converting ----------------------------------------------------------------------


def _output_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    if not short_side:
        return width, height
    scale = short_side / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def rgb_converter(short_side: int | None):
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


# --- readers -------------------------------------------------------------------------


def read_frames(path: str | Path, short_side: int | None = None) -> np.ndarray:
    """Every frame of a (short) video in decoding order: (F, H, W, 3) uint8 RGB.

    For clip-based training on datasets of short videos (UCF101 averages 7 s); raises
    VideoError when nothing decodes.
    """
    import av

    path = Path(path)
    container = open_video(path)
    frames, to_rgb = [], rgb_converter(short_side)
    try:
        stream = container.streams.video[0]
        set_threads(stream, 1)
        for frame in decode_packets(container, stream, []):
            frames.append(to_rgb(frame))
    except av.FFmpegError as e:
        if not frames:
            raise VideoError(f"{path}: cannot decode ({e.strerror or type(e).__name__})") from None
    finally:
        container.close()
    if not frames:
        raise VideoError(f"{path}: no decodable video frames")
    return np.stack(frames)


def videoclip_geometry(width: int, height: int, size: int = 224) -> tuple[int, int, int, int]:
    """(scaled width, scaled height, crop x, crop y) as VideoCLIP's extractor computes them
    (`videoreader.py` `_get_output_dim` and `centercrop`): short side `size`, the long side
    truncated, a centred crop at integer offsets."""
    if height >= width:
        w, h = size, int(height * size / width)
    else:
        w, h = int(width * size / height), size
    return w, h, int((w - size) / 2.0), int((h - size) / 2.0)


def filter_frames(
    path: str | Path, fps: float = 30.0, size: int = 224, report: DecodeReport | None = None, threads: int = 1
) -> Iterator[Sample]:
    """Frames as VideoCLIP's feature extractor reads them: ffmpeg's `fps`, `scale` and `crop`
    filters (`-vf fps=30,scale=W:H,crop=S:S:X:Y`, rgb24), run in-process by PyAV's filter
    graph, so frame choice and scaling are ffmpeg's own. Sample k is output frame k at time
    k / fps; `report` and `threads` as in `sampling.sample_frames`. Every frame is decoded, on
    the CPU, whatever `--decode` says: `report.decode` is VIDEOCLIP_DECODE and `max_offset`
    None (the fps filter's own choice). Raises VideoError when nothing decodes."""
    import av

    path = Path(path)
    container = open_video(path)
    try:
        stream = container.streams.video[0]
        set_threads(stream, threads)
        graph = _videoclip_graph(stream, fps, size)
        k, first, last, rate = 0, None, None, frame_rate(stream)
        errors: list = []
        try:
            for frame in decode_packets(container, stream, errors):
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
        if report is not None:
            start = first.time or 0.0
            end = (last.time or 0.0) - start + frame_seconds(last, rate)
            report.finish(container, stream, start, end, rate, errors)
            report.duration = max(end, k / fps)  # the fps filter may pad the last second: the samples' own end
            report.decode = VIDEOCLIP_DECODE
    finally:
        container.close()


def _videoclip_graph(stream, fps: float, size: int):
    """The filter graph of VideoCLIP's `-vf fps=F,scale=W:H,crop=S:S:X:Y` for `stream`, to rgb24."""
    import av

    ctx = stream.codec_context
    w, h, x, y = videoclip_geometry(ctx.width, ctx.height, size)
    graph = av.filter.Graph()
    chain = [
        graph.add_buffer(template=stream),
        graph.add("fps", f"fps={fps}"),
        graph.add("scale", f"{w}:{h}"),
        graph.add("crop", f"{size}:{size}:{x}:{y}"),
        graph.add("format", "rgb24"),
        graph.add("buffersink"),
    ]
    for a, b in zip(chain, chain[1:]):
        a.link_to(b)
    graph.configure()
    return graph


def _pull_all(graph) -> Iterator:
    """Every frame the graph has ready (PyAV raises BlockingIOError / EOFError when none is)."""
    import av

    while True:
        try:
            yield graph.pull()
        except (av.BlockingIOError, av.EOFError):
            return
