"""BaGLM's unified step-grounding JSON (Zanella et al., NeurIPS 2025): one reader, four benchmarks.

lucazanella/baglm publishes `datasets/*/*_video_annots.json` for HT-Step (val_seen),
CrossTask, COIN and Ego4D Goal-Step: a list of videos `{"video_uid", "video_duration",
("activity" | "task_name" | "goal_category"), ("step_headline" | "task_steps"),
"clips": [{"annotations": [{"language_queries": [{"clip_start_sec", "clip_end_sec",
"query", "step"?}]}]}]}`. The files are read as published, and they are not uniform:
numbers may be written as strings, COIN's `step` is a string id, CrossTask's an index into
`task_steps`, HT-Step's the global_step_index, and Goal-Step's queries have none.

A video's queries are its step list, in order. Labels: in a file whose queries carry
`step`, a step is labelled by the `step` of the queries with its text (a text listed
twice takes that text's distinct ids in order of appearance; a listed step no query
names has no label, so it can be scored but not named in predictions); in a file
without, or whose ids are each query's index into the list (CrossTask), by its index in
the step list (BaGLM's recall scripts map a query to the step
with its text in the same way).
"""

from __future__ import annotations

from pathlib import Path

from tempclr_cli.core.data.annotations import Query, Step, Video, load_json, seconds
from tempclr_cli.core.data.layouts import ReadOptions, register_layout
from tempclr_cli.core.errors import TempclrError

STEP_LISTS = ("step_headline", "task_steps")
GROUPS = ("activity", "task_name", "goal_category", "goal_description")


def _queries(entry: dict, where: str) -> list[tuple[dict, str]]:
    """Every language query of the video with where it stands."""
    if not isinstance(entry.get("clips"), list):
        raise TempclrError(f"{where}.clips: expected a list")
    found = []
    for c, clip in enumerate(entry["clips"]):
        at = f"{where}.clips[{c}]"
        annotations = clip.get("annotations") if isinstance(clip, dict) else None
        if not isinstance(annotations, list):
            raise TempclrError(f"{at}.annotations: expected a list")
        for a, annotation in enumerate(annotations):
            queries = annotation.get("language_queries") if isinstance(annotation, dict) else None
            if not isinstance(queries, list):
                raise TempclrError(f"{at}.annotations[{a}].language_queries: expected a list")
            found += [(q, f"{at}.annotations[{a}].language_queries[{k}]") for k, q in enumerate(queries)]
    return found


def _step_list(entry: dict, where: str) -> list[str]:
    key = next((k for k in STEP_LISTS if k in entry), STEP_LISTS[0])
    steps = entry.get(key)
    if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
        raise TempclrError(f"{where}.{key}: expected the video's list of step texts")
    return steps


def _ground_truth(q, at: str, steps: list[str], with_ids: bool) -> Step:
    if not isinstance(q, dict) or not isinstance(q.get("query"), str):
        raise TempclrError(f"{at}.query: expected text")
    if q["query"] not in steps:
        raise TempclrError(f"{at}.query: {q['query']!r} is not in the video's step list")
    start, end = (
        seconds(q.get("clip_start_sec"), f"{at}.clip_start_sec"),
        seconds(q.get("clip_end_sec"), f"{at}.clip_end_sec"),
    )
    if end < start:
        raise TempclrError(f"{at}.clip_end_sec: ends ({end}) before it starts ({start})")
    if not with_ids:
        return Step(start, end, q["query"], str(steps.index(q["query"])))
    step = q.get("step")
    if isinstance(step, bool) or not isinstance(step, (int, str)) or not str(step).strip():
        raise TempclrError(f"{at}.step: expected a step id (this file's other queries have one), got {step!r}")
    return Step(start, end, q["query"], str(step).strip())


def _indices(steps: list[str], truth: list[Step]) -> bool:
    """Whether every id names its step by its place in the list (CrossTask's `step`)."""
    return all(s.id.isdigit() and int(s.id) < len(steps) and steps[int(s.id)] == s.text for s in truth)


def _labels(steps: list[str], truth: list[Step], by_index: bool) -> list[str]:
    """Each listed step's label ('' where the file names none)."""
    if by_index:
        return [str(k) for k in range(len(steps))]
    ids: dict[str, list[str]] = {}
    for s in truth:
        if s.id not in ids.setdefault(s.text, []):
            ids[s.text].append(s.id)
    seen: dict[str, int] = {}
    labels = []
    for text in steps:
        n = seen[text] = seen.get(text, -1) + 1
        labels.append(ids.get(text, [])[n] if n < len(ids.get(text, [])) else "")
    return labels


def _where(path: Path, k: int, entry) -> str:
    """How errors name the k-th video (its uid checked)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("video_uid"), str) or not entry["video_uid"]:
        raise TempclrError(f"{path}: [{k}].video_uid: expected a video id")
    return f"{path}: [{k}] (video {entry['video_uid']})"


def _video(entry: dict, where: str, steps: list[str], truth: list[Step], by_index: bool) -> Video:
    duration = entry.get("video_duration")
    duration = None if duration is None else seconds(duration, f"{where}.video_duration")
    group = next((str(entry[g]) for g in GROUPS if entry.get(g) is not None), "")
    queries = [Query(label, text) for label, text in zip(_labels(steps, truth, by_index), steps)]
    return Video(entry["video_uid"], "", duration, sorted(truth, key=lambda s: s.start), group, queries)


@register_layout(
    "baglm",
    "BaGLM's unified JSON: HT-Step, CrossTask, COIN or Ego4D Goal-Step in one layout",
    "file",
    "a *_video_annots.json of lucazanella/baglm's datasets/",
    protocols=("point-recall",),
    labels="the queries' `step` id where the file has them (HT-Step: global_step_index, COIN: step id, "
    "CrossTask: index into task_steps), else the step's index in the video's step list (Goal-Step)",
)
def read_baglm(path: Path, options: ReadOptions) -> list[Video]:
    """Every video of a BaGLM `*_video_annots.json`."""
    data = load_json(path)
    if not isinstance(data, list):
        raise TempclrError(f"{path}: expected a JSON list of videos (BaGLM's *_video_annots.json)")
    entries = [
        (entry, where, _queries(entry, where)) for k, entry in enumerate(data) for where in [_where(path, k, entry)]
    ]
    with_ids = any(isinstance(q, dict) and "step" in q for _, _, found in entries for q, _ in found)
    parsed = [
        (entry, where, steps, [_ground_truth(q, at, steps, with_ids) for q, at in found])
        for entry, where, found in entries
        for steps in [_step_list(entry, where)]
    ]
    by_index = not with_ids or all(_indices(steps, truth) for _, _, steps, truth in parsed)  # decided per file
    return [_video(entry, where, steps, truth, by_index) for entry, where, steps, truth in parsed]
