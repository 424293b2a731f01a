"""HT-Step (Afouras et al., NeurIPS 2023 D&B): the release's `annotations.json` with its `taxonomy.csv`.

`annotations.json` is `{video_id: {"subset", "activity", "annotations": [{"segment": [start,
end], "id": global_step_index}]}}`; `taxonomy.csv` has one row per step of an article
(`global_step_index, activity, step_index, variation, variation_index, headline,
paragraph`). A video's queries are the steps of its (activity, variation), in taxonomy
order, labelled by `global_step_index`; its variation is that of its annotated steps (the
official scorer takes the first one's and asserts the rest agree). A video without
annotations gets its activity's steps when the activity has one variation, else none.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from tempclr_cli.core.data.annotations import Query, Step, Video, load_json, seconds
from tempclr_cli.core.data.layouts import ReadOptions, register_layout
from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.io import read_text

TAXONOMY_COLUMNS = (
    "global_step_index",
    "activity",
    "step_index",
    "variation",
    "variation_index",
    "headline",
    "paragraph",
)
SUBSETS = ("train", "val_seen", "val_unseen", "test_seen", "test_unseen")  # data/video_splits.json


@dataclass(frozen=True)
class TaxonomyStep:
    label: str  # global_step_index, as text
    activity: str
    variation: str
    headline: str
    paragraph: str

    def text(self, choice: str) -> str:
        """The sentence a model grounds: headline, paragraph (the headline where it has none), or both."""
        if choice == "headline" or (choice == "paragraph" and not self.paragraph):
            return self.headline
        return self.paragraph if choice == "paragraph" else f"{self.headline} {self.paragraph}".strip()


def read_taxonomy(path: Path) -> dict[str, TaxonomyStep]:
    """taxonomy.csv's steps by global_step_index, in file order."""
    reader = csv.DictReader(io.StringIO(read_text(path, "taxonomy file", "taxonomy.csv")))
    missing = [c for c in TAXONOMY_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise TempclrError(
            f"{path}: line 1: no {', '.join(missing)} column (HT-Step's taxonomy.csv has {','.join(TAXONOMY_COLUMNS)})"
        )
    steps: dict[str, TaxonomyStep] = {}
    for row in reader:
        where = f"{path}: line {reader.line_num}"
        index = (row["global_step_index"] or "").strip()
        if not index.isdigit():
            raise TempclrError(f"{where}: global_step_index: expected a step number, got {index!r}")
        if str(int(index)) in steps:
            raise TempclrError(f"{where}: global_step_index: {index} appears twice")
        if not (row["activity"] or "").strip() or not (row["headline"] or "").strip():
            raise TempclrError(f"{where}: {'activity' if not (row['activity'] or '').strip() else 'headline'}: empty")
        steps[str(int(index))] = TaxonomyStep(
            str(int(index)),
            row["activity"],
            row["variation"] or "",
            row["headline"].strip(),
            (row["paragraph"] or "").strip(),
        )
    return steps


def _label(value, where: str) -> str:
    """A global_step_index as the release writes it (a number; a numeric string is taken too)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit():
        raise TempclrError(f"{where}.id: expected a global_step_index, got {value!r}")
    return str(int(value))


def _video(
    path: Path,
    vid: str,
    entry,
    taxonomy: dict[str, TaxonomyStep],
    variations: dict[tuple[str, str], list[str]],
    choice: str,
) -> Video:
    where = f"{path}: video {vid}"
    if not isinstance(entry, dict) or not isinstance(entry.get("annotations"), list):
        raise TempclrError(f"{where}: expected an object with an 'annotations' list")
    for key in ("subset", "activity"):
        if not isinstance(entry.get(key), str):
            raise TempclrError(f"{where}: {key}: expected text, got {entry.get(key)!r}")
    activity, steps, variation = entry["activity"], [], None
    for k, a in enumerate(entry["annotations"]):
        at = f"{where}: annotations[{k}]"
        if not isinstance(a, dict) or not isinstance(a.get("segment"), list) or len(a["segment"]) != 2:
            raise TempclrError(f"{at}: expected {{'segment': [start, end], 'id': global_step_index}}")
        label = _label(a.get("id"), at)
        if label not in taxonomy:
            raise TempclrError(f"{at}.id: {label} is not a global_step_index of the taxonomy")
        step = taxonomy[label]
        if step.activity != activity:
            raise TempclrError(
                f"{at}.id: step {label} belongs to {step.activity!r}; the video's activity is {activity!r}"
            )
        if variation not in (None, step.variation):
            raise TempclrError(
                f"{at}.id: step {label} is of variation {step.variation!r}; the video's earlier "
                f"steps are of {variation!r}"
            )
        variation = step.variation
        start, end = (seconds(t, f"{at}.segment") for t in a["segment"])
        if end < start:
            raise TempclrError(f"{at}.segment: ends ({end}) before it starts ({start})")
        steps.append(Step(start, end, step.text(choice), label, rank=k))
    if variation is None:  # no annotations: the activity's only variation, if it has one
        known = [v for a, v in variations if a == activity]
        variation = known[0] if len(known) == 1 else None
    queries = [Query(label, taxonomy[label].text(choice)) for label in variations.get((activity, variation), [])]
    return Video(vid, entry["subset"], None, sorted(steps, key=lambda s: s.start), activity, queries)


@register_layout(
    "htstep",
    "HT-Step: how-to article steps grounded in HowTo100M cooking videos",
    "file",
    "annotations.json (with --taxonomy taxonomy.csv)",
    splits=SUBSETS,
    protocols=("htstep-map", "point-recall"),
    options=("taxonomy", "step_text"),
    labels="the step's global_step_index (taxonomy.csv)",
)
def read_htstep(path: Path, options: ReadOptions) -> list[Video]:
    """Every video of annotations.json; step texts per `options.step_text`."""
    if options.taxonomy is None:
        raise TempclrError("--format htstep needs --taxonomy (the release's data/taxonomy.csv)")
    taxonomy = read_taxonomy(Path(options.taxonomy))
    variations: dict[tuple[str, str], list[str]] = {}
    for step in taxonomy.values():
        variations.setdefault((step.activity, step.variation), []).append(step.label)
    data = load_json(path)
    if not isinstance(data, dict):
        raise TempclrError(f"{path}: expected a JSON object of videos (HT-Step's annotations.json)")
    return [_video(path, vid, entry, taxonomy, variations, options.step_text) for vid, entry in data.items()]
