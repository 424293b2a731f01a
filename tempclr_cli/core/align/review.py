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
li.step img { height: 54px; border-radius: 4px; }
.time { font-variant-numeric: tabular-nums; color: #555; min-width: 8.5em; }
.score { color: #777; min-width: 3.5em; }
figure svg { width: 100%; border: 1px solid #ccc; }
"""

_SCRIPT = """
const video = document.getElementById('video');
const chapters = document.getElementById('chapters');
if (chapters) chapters.track.mode = 'hidden';  // load the cues without showing them as captions
for (const li of document.querySelectorAll('li.step')) {
  li.addEventListener('click', () => {
    if (video) { video.currentTime = parseFloat(li.dataset.start); }
    for (const other of document.querySelectorAll('li.step')) other.classList.toggle('current', other === li);
  });
}
"""


def _uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _clock(seconds: float) -> str:
    m, s = divmod(seconds, 60)
    return f"{int(m)}:{s:04.1f}"


def _video_src(source: Path, page: Path | None, embed: bool) -> str:
    if embed and source.stat().st_size <= EMBED_LIMIT:
        return _uri("video/mp4" if source.suffix.lower() in (".mp4", ".m4v", ".mov") else "video/webm", source.read_bytes())
    if page is None:
        return source.resolve().as_uri()
    return Path(os.path.relpath(source.resolve(), page.resolve().parent)).as_posix()


def _heatmap(alignment) -> str:
    sim = alignment.similarity
    K = sim.shape[0]
    t0, t1 = alignment.clip_starts[0], alignment.clip_ends[-1]
    picture = _uri("image/png", images.png(images.viridis(sim)))
    bars = "".join(
        f'<rect class="segment" x="{s.start}" y="{s.index - 1 + 0.15}" width="{max(s.end - s.start, 1e-3)}" height="0.7" '
        f'fill="none" stroke="#ff2a2a" stroke-width="0.08"><title>{html.escape(s.text)}</title></rect>'
        for s in alignment.steps
    )
    height = 28 * K + 20
    return (f'<figure id="heatmap"><svg viewBox="{t0} 0 {t1 - t0} {K}" preserveAspectRatio="none" height="{height}">'
            f'<image href="{picture}" x="{t0}" y="0" width="{t1 - t0}" height="{K}" preserveAspectRatio="none" '
            f'style="image-rendering: pixelated"/>{bars}</svg>'
            f"<figcaption>step x time similarity (rows: steps in order; brighter: more similar); red: the chosen "
            f"segments, {t0:.0f}-{t1:.0f} s</figcaption></figure>")


def review_html(alignment, page: str | Path | None = None, embed_video: bool = False) -> str:
    """The page for `alignment`; `page` is where it will be written (video paths are relative to it)."""
    page = Path(page) if page else None
    source = Path(alignment.source) if alignment.source else None
    has_video = source is not None and source.is_file()
    thumbs = images.thumbnails(source, [(s.start + s.end) / 2 for s in alignment.steps]) if has_video else []
    chapters = _uri("text/vtt", alignment.to_vtt().encode("utf-8"))
    video = (f'<video id="video" controls preload="metadata" src="{html.escape(_video_src(source, page, embed_video))}">'
             f'<track id="chapters" kind="chapters" label="Steps" srclang="en" src="{chapters}" default></video>'
             if has_video else f"<p>(no video: {html.escape(alignment.source or alignment.video)} is not a file here)</p>")
    items = "".join(
        f'<li class="step" data-start="{s.start}" data-end="{s.end}">'
        + (f'<img alt="" src="{_uri("image/png", thumbs[k])}">' if thumbs else "")
        + f'<span class="time">{_clock(s.start)} - {_clock(s.end)}</span><span class="score">{s.score:.3f}</span>'
        f'<span class="text">{s.index}. {html.escape(s.text)}</span></li>'
        for k, s in enumerate(alignment.steps)
    )
    title = html.escape(Path(alignment.source or alignment.video).name or "alignment")
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}: steps</title>'
            f"<style>{_STYLE}</style></head><body><h1>{title}</h1>{video}"
            f'<ol id="steps">{items}</ol>{_heatmap(alignment)}'
            f"<p>Made by tempclr align ({alignment.duration:.1f} s, {len(alignment.steps)} steps).</p>"
            f"<script>{_SCRIPT}</script></body></html>\n")
