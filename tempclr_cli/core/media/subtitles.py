"""Timed text as SRT and WebVTT, so aligned steps play as subtitles in any player."""

from __future__ import annotations

from collections.abc import Iterable


def _stamp(seconds: float, sep: str) -> str:
    ms = int(round(max(seconds, 0.0) * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _one_line(text: str) -> str:
    """Cue text on one line: a blank line would end the cue."""
    return " ".join(text.split())


def srt_text(text: str) -> str:
    """Step text safe in a SubRip cue: players read `<i>`-style tags and `-->` starts a timing
    line, so angle brackets become look-alikes (SRT has no escapes) and `-->` an arrow."""
    return _one_line(text).replace("-->", "→").replace("<", "‹").replace(">", "›")


def vtt_text(text: str) -> str:
    """Step text safe in a WebVTT cue: `&`, `<` and `>` escaped as the format defines."""
    return _one_line(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def srt(cues: Iterable[tuple[float, float, str]]) -> str:
    """SubRip: numbered cues, `HH:MM:SS,mmm --> HH:MM:SS,mmm`."""
    blocks = [
        f"{k}\n{_stamp(start, ',')} --> {_stamp(end, ',')}\n{srt_text(text)}\n"
        for k, (start, end, text) in enumerate(cues, start=1)
    ]
    return "\n".join(blocks)


def vtt(cues: Iterable[tuple[float, float, str]], note: str | None = None) -> str:
    """WebVTT: a `WEBVTT` header, a `NOTE` block with `note` (a comment players do not show,
    read by whoever opens the file), then `HH:MM:SS.mmm --> HH:MM:SS.mmm` cues."""
    blocks = [f"{_stamp(start, '.')} --> {_stamp(end, '.')}\n{vtt_text(text)}\n" for start, end, text in cues]
    # a NOTE may not hold "-->"; its text ends at the first blank line
    head = f"NOTE {_one_line(note).replace('-->', '→')}\n\n" if note else ""
    return "WEBVTT\n\n" + head + "\n".join(blocks)


def parse(text: str) -> list[tuple[float, float, str]]:
    """Cues of an SRT or WebVTT file: (start, end, text), text lines joined by a space."""
    import html
    import re

    stamp = r"(?:(\d+):)?(\d{1,2}):(\d{2})[,.](\d{3})"
    timing = re.compile(rf"{stamp}\s*-->\s*{stamp}")
    cues = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip()):
        lines = block.splitlines()
        for k, line in enumerate(lines):
            m = timing.search(line)
            if m:
                g = [int(x) if x else 0 for x in m.groups()]
                start = g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000
                end = g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000
                cues.append((start, end, html.unescape(" ".join(lines[k + 1 :]).strip())))
                break
    return cues
