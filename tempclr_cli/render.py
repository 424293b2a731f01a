"""How results look in a terminal: the rich tables that several commands (and the demo) show.

Renderers take core result objects and print or return text; they compute nothing.
"""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from rich.table import Table


def alignment_table(result, force_terminal: bool, truth=None) -> str:
    """An Alignment as a table (start, end, score, step), as text; with `truth` (an
    annotated Video), its start and end beside each step."""
    table = Table(title=f"{Path(result.video).name} ({result.duration:.2f} s)")
    columns = [("#", "right"), ("start", "right"), ("end", "right"), ("score", "right"), ("step", "left")]
    for name, justify in columns + ([("annotated", "right")] if truth else []):
        table.add_column(
            name, justify=justify, no_wrap=name != "step", overflow="fold"
        )  # long steps wrap in their cell
    for k, s in enumerate(result.steps):
        extra = [f"{truth.steps[k].start:.0f}-{truth.steps[k].end:.0f}"] if truth else []
        table.add_row(str(s.index), f"{s.start:.1f}", f"{s.end:.1f}", f"{s.score:.3f}", s.text, *extra)
    buf = io.StringIO()
    Console(file=buf, force_terminal=force_terminal, width=Console().width).print(table)  # the terminal's (COLUMNS)
    return buf.getvalue()


def boundary_table(boundaries: dict[str, dict]) -> None:
    """Mean boundary error and share within 1 s, one row per stage (eval.alignment.summary)."""
    table = Table()
    for col in ("features", "videos", "boundaries", "mean error (s)", "within 1 s"):
        table.add_column(col, justify="right" if col != "features" else "left")
    names = {"before": "encoder alone (zero-shot)", "after": "after TempCLR training"}
    for stage, r in boundaries.items():
        table.add_row(
            names.get(stage, stage),
            str(r["videos"]),
            str(r["boundaries"]),
            f"{r['mean_error']:.2f}",
            f"{r['within_1s']:.1f}%",
        )
    Console().print(table)


def retrieval_table(results: dict, videos: int | None = None) -> None:
    """R@1/5/10 and median rank per measure."""
    table = Table(title=f"paragraph-video retrieval ({videos} videos)" if videos is not None else None)
    for col in ("measure", "R@1", "R@5", "R@10", "median rank"):
        table.add_column(col, justify="right" if col != "measure" else "left")
    for name, r in results.items():
        table.add_row(name, f"{r['R@1']:.1f}", f"{r['R@5']:.1f}", f"{r['R@10']:.1f}", f"{r['median_rank']:.0f}")
    Console().print(table)


def fewshot_table(results, per_class: bool) -> None:
    """Accuracy with its 95% CI per distance; with `per_class`, accuracy per class too."""
    out = Console()
    table = Table(title="few-shot accuracy (%)")
    table.add_column("distance")
    table.add_column("accuracy", justify="right")
    table.add_column("95% CI", justify="right")
    for r in results:
        table.add_row(r.distance, f"{r.accuracy:.2f}", f"± {r.ci95:.2f}")
    out.print(table)
    if per_class:
        detail = Table(title="per class")
        detail.add_column("class")
        for r in results:
            detail.add_column(r.distance, justify="right")
        detail.add_column(f"{results[0].distance}: confused with")
        for name, row in results[0].per_class.items():
            cells = [f"{r.per_class[name]['accuracy']:.1f}" for r in results]
            detail.add_row(name, *cells, row["most_confused_with"] or "-")
        out.print(detail)


def models_table(rows: list[dict], grouped: bool = True) -> None:
    """`tempclr models`: one row per encoder name, the default marked; `grouped`: a family's members
    (open_clip's architectures) are one row with their count, beside the default."""
    starred = any("*" in str(r["frames_per_clip"]) + str(r["input_size"]) for r in rows)
    family = [r for r in rows if r.get("tags") is not None]  # open_clip's members carry their weight tags
    shown = [r for r in rows if not grouped or r.get("tags") is None or r["default"]]
    table = Table(
        title=f"encoders ({len(rows)})", caption="*: as released; the checkpoint decides" if starred else None
    )
    for col in ("model", "kind", "clip", "size", "dim", "--pretrained"):
        table.add_column(col, justify="right" if col in ("size", "dim") else "left", overflow="fold")
    for r in shown:
        clip = "1 frame" if r["frames_per_clip"] == 1 else f"{r['frames_per_clip']} frames"
        clip += f" at {r['fps']:g} fps" if r["fps"] else ""
        weights = r["weights"] + (f" [default {r['default_weights']}]" if r["default_weights"] else "")
        table.add_row(
            r["name"] + (" (default)" if r["default"] else ""),
            r["kind"],
            clip,
            str(r["input_size"]),
            str(r["dim"]),
            weights,
        )
    hidden = len(rows) - len(shown)
    if grouped and hidden:
        with_weights = sum(bool(r["tags"]) for r in family)
        table.add_row(
            f"... {hidden} more open_clip architectures",
            "image-text",
            "1 frame",
            "",
            "",
            f"{with_weights} of the {len(family)} have downloadable weights; --all lists them",
        )
    Console().print(table)
