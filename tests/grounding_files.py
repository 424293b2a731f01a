"""Small step-grounding files in each official layout, written the way the releases write them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

# (global_step_index, activity, step_index, variation, variation_index, headline, paragraph), in release order
TAXONOMY = [
    (0, "Make Tea", 0, "none", 1, "Boil water.", "Fill the kettle and boil it."),
    (1, "Make Tea", 1, "none", 2, "Add the tea.", ""),
    (2, "Make Tea", 2, "none", 3, "Pour.", "Pour the water over the tea; wait."),
    (5, "Fry Eggs", 0, "A", 1, "Heat oil.", "Heat a spoon of oil."),
    (6, "Fry Eggs", 1, "A", 2, "Crack eggs.", ""),
    (7, "Fry Eggs", 0, "B", 1, "Melt butter.", ""),
    (8, "Fry Eggs", 1, "B", 2, "Crack eggs.", "Crack two eggs into the butter."),
    (9, "Fry Eggs", 2, "B", 3, "Serve.", ""),
]

# {video: (subset, activity, [(start, end, global_step_index)])}
HTSTEP = {
    "tea1": ("val_seen", "Make Tea", [(10.2, 20.7, 1), (2.0, 8.5, 0), (30.0, 41.0, 2)]),
    "egg1": ("val_seen", "Fry Eggs", [(0.5, 3.5, 7), (4.0, 9.0, 8), (4.0, 9.0005, 8), (12.0, 12.0002, 9)]),
    "egg2": ("train", "Fry Eggs", [(1.0, 5.0, 5), (6.0, 8.0, 6)]),
    "tea2": ("val_seen", "Make Tea", []),
}


def write_htstep(root: Path, videos: dict | None = None, taxonomy: list | None = None) -> tuple[Path, Path]:
    """annotations.json and taxonomy.csv as HT-Step releases them."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / "taxonomy.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["global_step_index", "activity", "step_index", "variation", "variation_index", "headline", "paragraph"]
        )
        writer.writerows(taxonomy or TAXONOMY)
    data = {
        vid: {
            "subset": subset,
            "activity": activity,
            "annotations": [{"segment": [s, e], "id": gid} for s, e, gid in segments],
        }
        for vid, (subset, activity, segments) in (videos or HTSTEP).items()
    }
    (root / "annotations.json").write_text(json.dumps(data))
    return root / "annotations.json", root / "taxonomy.csv"


def goalstep_segment(start: float, end: float, text: str, substeps: list | None = None) -> dict:
    """A Goal-Step step segment with the release's keys; a substep (no `substeps`) has no `segments`."""
    item = {
        "start_time": start,
        "end_time": end,
        "step_category": f"Cat: {text}",
        "step_description": text,
        "is_continued": False,
        "is_procedural": True,
        "is_relevant": "essential",
        "summary": [],
    }
    if substeps is not None:
        item["segments"] = [goalstep_segment(*sub) for sub in substeps]
    return item


# [(video_uid, goal, [(start, end, step text, [(start, end, substep text)])])]
GOALSTEP = [
    (
        "v-aaa",
        "COOKING:MAKE_TEA",
        [(0.5, 30.0, "boil water", [(0.5, 10.0, "fill kettle"), (10.0, 30.0, "wait")]), (31.0, 40.0, "pour water", [])],
    ),
    ("v-bbb", "COOKING:FRY_EGG", [(5.0, 15.0, "crack eggs", [(5.0, 7.5, "crack first egg")])]),
]


def write_goalstep(path: Path, videos: list | None = None) -> Path:
    """goalstep_valid.json as Ego4D Goal-Step releases it."""
    data = {
        "version": "v1",
        "date": "231006",
        "description": "Goal step annotations",
        "split": "valid",
        "videos": [
            {
                "video_uid": uid,
                "start_time": 0.02,
                "end_time": 100.0,
                "goal_category": goal,
                "goal_description": goal.split(":")[1].lower(),
                "goal_wikihow_url": "",
                "summary": [],
                "is_procedural": True,
                "segments": [goalstep_segment(s, e, text, subs) for s, e, text, subs in steps],
            }
            for uid, goal, steps in (videos or GOALSTEP)
        ],
    }
    path.write_text(json.dumps(data))
    return path


def baglm_video(
    uid: str,
    steps: list[str],
    queries: list[dict],
    group: tuple[str, str] = ("activity", "Make Tea"),
    step_key: str = "step_headline",
    duration=100.0,
    fps=30.0,
) -> dict:
    """One video of BaGLM's unified JSON (`queries`: language_queries as published)."""
    return {
        "video_uid": uid,
        "video_ext": ".mp4",
        "video_num_frames": 3000,
        "video_fps": fps,
        "video_duration": duration,
        "video_backend": "torchcodec",
        group[0]: group[1],
        step_key: steps,
        "clips": [{"annotations": [{"language_queries": queries}]}],
    }


def write_rows(path: Path, rows, index_column: bool = False, **dialect) -> Path:
    """A predictions CSV (`index_column`: with pandas' unnamed index column, as HT-Step's example; `dialect`: the
    csv module's quoting, lineterminator, ...)."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f, **{"lineterminator": "\n", **dialect})
        writer.writerow((["Unnamed: 0"] if index_column else []) + ["video-id", "t-start", "t-end", "label", "score"])
        writer.writerows(([k] if index_column else []) + list(r) for k, r in enumerate(rows))
    return path
