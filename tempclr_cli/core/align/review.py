"""A self-contained HTML page to review an alignment: the video with one chapter per step,
the steps with thumbnails (clicking one seeks the video there), and the step x time
similarity heatmap with the chosen segments drawn on it.

Everything but the video is inside the file (data URIs); the video is referenced by a
path relative to the page, or embedded when asked. No server, no network: open the file.
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path

from tempclr_cli.core.media import images

EMBED_LIMIT = 50_000_000  # bytes: a bigger video is referenced, not embedded

_STYLE = """
body { font: 15px/1.4 system-ui, sans-serif; margin: 1.5em auto; max-width: 980px; color: #222; }
video { width: 100%; max-height: 60vh; background: #000; }
ol#steps { list-style: none; padding: 0; }
li.step { display: flex; gap: .8em; align-items: center; padding: .35em; border-radius: 6px; cursor: pointer; }
li.step:hover, li.step.current { background: #eef3ff; }
li.step img { height: 54px; border-radius: 4px; }  /* THUMB_HEIGHT */
.time { font-variant-numeric: tabular-nums; color: #555; min-width: 128px; }  /* px: the header row is smaller type */
.score { color: #777; min-width: 53px; }
li.head { display: flex; gap: .8em; padding: 0 .35em; font-size: 13px; color: #777; }
figure { margin: 1em 0; }
figure svg { width: 100%; border: 1px solid #ccc; display: block; }
.axis { display: flex; justify-content: space-between; font-size: 12px; color: #555;
        font-variant-numeric: tabular-nums; }
.scale { display: flex; align-items: center; gap: .5em; font-size: 12px; color: #555; margin-top: .4em; }
.scale .bar { width: 200px; height: 12px; border: 1px solid #ccc; }
.warning { background: #fff4e5; border-left: 4px solid #f0a020; padding: .5em .8em; }
"""

_SCRIPT = """
const video = document.getElementById('video');
const chapters = document.getElementById('chapters');
if (chapters) chapters.track.mode = 'hidden';  // the cues load; the step list below is the visible chapter list
const steps = [...document.querySelectorAll('li.step')];
const mark = (current) => { for (const li of steps) li.classList.toggle('current', li === current); };
for (const li of steps) {
  li.addEventListener('click', () => {
    if (video) { video.currentTime = parseFloat(li.dataset.start); }
    mark(li);
  });
}
if (video) video.addEventListener('timeupdate', () => {  // the step being played is highlighted
  const t = video.currentTime;
  mark(steps.find(li => t >= parseFloat(li.dataset.start) && t < parseFloat(li.dataset.end)));
});
"""


def _uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _clock(seconds: float) -> str:
    m, s = divmod(seconds, 60)
    return f"{int(m)}:{s:04.1f}"


def _video_src(source: Path, page: Path | None, embed: bool) -> str:
    if embed and source.stat().st_size <= EMBED_LIMIT:
        return _uri(
            "video/mp4" if source.suffix.lower() in (".mp4", ".m4v", ".mov") else "video/webm", source.read_bytes()
        )
    if page is None:
        return source.resolve().as_uri()
    return Path(os.path.relpath(source.resolve(), page.resolve().parent)).as_posix()


def _heatmap(alignment) -> str:
    sim = alignment.similarity
    K = sim.shape[0]
    t0, t1 = alignment.clip_starts[0], alignment.clip_ends[-1]
    picture = _uri("image/png", images.png(images.viridis(sim)))
    bars = "".join(  # the outline keeps 2 px whatever the video's length (the viewBox stretches seconds)
        f'<rect class="segment" x="{s.start}" y="{s.index - 1 + 0.15}" width="{max(s.end - s.start, 1e-3)}" '
        f'height="0.7" '
        f'fill="none" stroke="#ff2a2a" stroke-width="2" vector-effect="non-scaling-stroke">'
        f"<title>{html.escape(s.text)}</title></rect>"
        for s in alignment.steps
    )
    height = 28 * K + 20
    ticks = "".join(f"<span>{_clock(t0 + (t1 - t0) * k / 5)}</span>" for k in range(6))
    lo, hi = float(sim.min()), float(sim.max())
    gradient = ", ".join(f"rgb{tuple(int(c) for c in images.viridis(_ramp())[k])}" for k in range(len(_ramp())))
    return (
        f'<figure id="heatmap"><svg viewBox="{t0} 0 {t1 - t0} {K}" preserveAspectRatio="none" height="{height}">'
        f'<image href="{picture}" x="{t0}" y="0" width="{t1 - t0}" height="{K}" preserveAspectRatio="none" '
        f'style="image-rendering: pixelated"/>{bars}</svg>'
        f'<div class="axis" id="time-axis">{ticks}</div>'
        f'<div class="scale" id="colour-scale">similarity <span>{lo:.2f}</span>'
        f'<span class="bar" style="background: linear-gradient(to right, '
        f'{gradient})"></span><span>{hi:.2f}</span></div>'
        f"<figcaption>step x time similarity (cosine; rows: steps in order; time in m:ss); red: the chosen "
        f"segments</figcaption></figure>"
    )


def _ramp():
    """Nine evenly spaced values, for the colour scale's gradient."""
    import numpy as np

    return np.linspace(0.0, 1.0, 9)


THUMB_HEIGHT = 54  # px, as li.step img shows them


def _thumb_width(png: bytes) -> int:
    """The width a thumbnail is shown at (THUMB_HEIGHT high), from its PNG header."""
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    return round(THUMB_HEIGHT * width / max(height, 1))


def _separation_text(alignment) -> str:
    return "".join(
        f"; {name} {value:.2f}"
        for name, value in (("separation", alignment.separation), ("time separation", alignment.time_separation))
        if value is not None
    )


def _separation_note(alignment) -> str:
    """A visible warning when the text did not tell the steps apart (the times then follow the order alone)."""
    if alignment.warning is None:
        return ""
    return (
        f'<p class="warning" id="separation">{html.escape(alignment.warning[0].upper() + alignment.warning[1:])}.</p>'
    )


def review_html(alignment, page: str | Path | None = None, embed_video: bool = False) -> str:
    """The page for `alignment`; `page` is where it will be written (video paths are relative to it)."""
    page = Path(page) if page else None
    source = Path(alignment.source) if alignment.source else None
    has_video = source is not None and source.is_file()
    thumbs = images.thumbnails(source, [(s.start + s.end) / 2 for s in alignment.steps]) if has_video else []
    chapters = _uri("text/vtt", alignment.to_vtt().encode("utf-8"))
    video = (
        f'<video id="video" controls preload="metadata" src="{html.escape(_video_src(source, page, embed_video))}">'
        f'<track id="chapters" kind="chapters" label="Steps" srclang="en" src="{chapters}" default></video>'
        if has_video
        else f"<p>(no video: {html.escape(alignment.source or alignment.video)} is not a file here)</p>"
    )
    spacer = f'<span style="min-width: {_thumb_width(thumbs[0])}px"></span>' if thumbs else ""  # columns line up
    head = (
        f'<li class="head">{spacer}<span class="time">time</span><span class="score">score</span><span>step</span></li>'
    )
    items = head + "".join(
        f'<li class="step" data-start="{s.start}" data-end="{s.end}">'
        + (f'<img alt="" src="{_uri("image/png", thumbs[k])}">' if thumbs else "")
        + f'<span class="time">{_clock(s.start)} - {_clock(s.end)}</span><span class="score">{s.score:.3f}</span>'
        f'<span class="text">{s.index}. {html.escape(s.text)}</span></li>'
        for k, s in enumerate(alignment.steps)
    )
    title = html.escape(Path(alignment.source or alignment.video).name or "alignment")
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}: steps</title>'
        f"<style>{_STYLE}</style></head><body><h1>{title}</h1>{_separation_note(alignment)}{video}"
        f'<ol id="steps">{items}</ol>{_heatmap(alignment)}'
        f"<p>Made by tempclr align ({alignment.duration:.1f} s, {len(alignment.steps)} steps; score: each step's mean "
        f"similarity{_separation_text(alignment)}).</p>"
        f"<script>{_SCRIPT}</script></body></html>\n"
    )
