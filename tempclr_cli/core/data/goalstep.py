"""Ego4D Goal-Step (Song et al., NeurIPS 2023): the release's `goalstep_{train,valid}.json`.

`{"videos": [{"video_uid", "start_time", "end_time", "goal_category", "goal_description",
"segments": [{"start_time", "end_time", "step_description", ..., "segments": [substeps]}]}]}`.
The step-grounding task (`step_grounding/tools/parse_goalstep_jsons.py`) makes every step
and every substep an NLQ query, in file order: a step, then its substeps. A query's label
is its 0-based place in that order within its video, whichever levels are read, so one
predictions file means the same with `--levels steps`. Times are seconds of the video;
the release asserts each segment ends after it starts, and so does this reader.
"""

from __future__ import annotations

from pathlib import Path

from tempclr_cli.core.data.annotations import Query, Step, Video, load_json, seconds
from tempclr_cli.core.data.layouts import ReadOptions, register_layout
from tempclr_cli.core.errors import TempclrError


def _segments(entry, where: str) -> list:
    segments = entry.get("segments") if isinstance(entry, dict) else None
    if not isinstance(segments, list):
        hint = (
            " (goalstep_test.json holds no times: its queries are scored on EvalAI)"
            if isinstance(entry, dict) and "step_segments" in entry
            else ""
        )
        raise TempclrError(f"{where}.segments: expected a list of step segments{hint}")
    return segments


def _query(item, where: str) -> tuple[str, float, float]:
    """(text, start, end) of one step or substep."""
    if not isinstance(item, dict):
        raise TempclrError(f"{where}: expected an object with start_time, end_time, step_description")
    text = item.get("step_description")
    if not isinstance(text, str) or not text.strip():
        raise TempclrError(f"{where}.step_description: expected text, got {text!r}")
    start, end = (
        seconds(item.get("start_time"), f"{where}.start_time"),
        seconds(item.get("end_time"), f"{where}.end_time"),
    )
    if end <= start:
        raise TempclrError(f"{where}.end_time: ends ({end}) at or before it starts ({start})")
    return text.strip(), start, end


def _video(path: Path, k: int, entry, levels: str) -> Video:
    where = f"{path}: videos[{k}]"
    vid = entry.get("video_uid") if isinstance(entry, dict) else None
    if not isinstance(vid, str) or not vid:
        raise TempclrError(f"{where}.video_uid: expected a video uid, got {vid!r}")
    items = []  # (level, item, where) in the release's NLQ order
    for i, step in enumerate(_segments(entry, where)):
        items.append(("steps", step, f"{where}.segments[{i}]"))
        subs = step.get("segments", []) if isinstance(step, dict) else []
        if not isinstance(subs, list):
            raise TempclrError(f"{where}.segments[{i}].segments: expected a list of substeps")
        items += [("substeps", sub, f"{where}.segments[{i}].segments[{j}]") for j, sub in enumerate(subs)]
    queries, steps = [], []
    for label, (level, item, at) in enumerate(items):
        text, start, end = _query(item, at)
        if levels in ("both", level):
            queries.append(Query(str(label), text))
            steps.append(Step(start, end, text, str(label), rank=label))
    goal = entry.get("goal_category") or entry.get("goal_description") or ""
    return Video(vid, "", None, sorted(steps, key=lambda s: s.start), str(goal), queries)


@register_layout(
    "goalstep",
    "Ego4D Goal-Step: steps and substeps of long egocentric videos (NLQ queries)",
    "file",
    "goalstep_valid.json (or goalstep_train.json)",
    protocols=("nlq-recall",),
    options=("levels",),
    labels="the query's 0-based index in its video: each step, then its substeps, in file order",
)
def read_goalstep(path: Path, options: ReadOptions) -> list[Video]:
    """Every video's queries (steps, substeps or both: `options.levels`)."""
    data = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("videos"), list):
        raise TempclrError(f"{path}: videos: expected {{'videos': [...]}} (Ego4D Goal-Step's goalstep_*.json)")
    return [_video(path, k, entry, options.levels) for k, entry in enumerate(data["videos"])]
