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


def vtt(cues: Iterable[tuple[float, float, str]]) -> str:
    """WebVTT: a `WEBVTT` header, then `HH:MM:SS.mmm --> HH:MM:SS.mmm` cues."""
    blocks = [f"{_stamp(start, '.')} --> {_stamp(end, '.')}\n{vtt_text(text)}\n" for start, end, text in cues]
    return "WEBVTT\n\n" + "\n".join(blocks)
