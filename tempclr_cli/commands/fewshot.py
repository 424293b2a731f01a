"""`tempclr fewshot FEATURES --labels PATH`: N-way K-shot episodes, distances side by side."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from tempclr_cli.commands._common import Checkpoint, Device, Json, Quiet, Seed, Verbose, command, err, log
from tempclr_cli.core.errors import TempclrError


@command
def fewshot(
    features: Annotated[Path, typer.Argument(help="Features folder from `tempclr extract` (per clip or --per-frame).")],
    labels: Annotated[
        Path,
        typer.Option(help="UCF101/HMDB51 split folder, a video,class CSV, a class/video_id list, or class sub-folders."),
    ],
    ways: Annotated[int, typer.Option(help="Classes per episode (N).")] = 5,
    shots: Annotated[int, typer.Option(help="Support videos per class (K).")] = 1,
    queries: Annotated[int, typer.Option(help="Query videos per class.")] = 1,
    episodes: Annotated[int, typer.Option(help="Number of random episodes.")] = 10000,
    distance: Annotated[
        Optional[list[str]],
        typer.Option(help="otam (symmetrised), dtw, softdtw, mean (order-blind); repeat for several. Default: all."),
    ] = None,
    gamma: Annotated[float, typer.Option(help="Soft-min smoothing of otam/softdtw (0: hard).")] = 0.1,
    per_class: Annotated[bool, typer.Option("--per-class", help="Also show accuracy per class and its main confusion.")] = False,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Leave out videos without features and classes with too few videos.")
    ] = False,
    checkpoint: Checkpoint = None,
    json_: Json = False,
    device: Device = "auto",
    seed: Seed = 0,
    verbose: Verbose = False,
    quiet: Quiet = False,
) -> None:
    """Few-shot action recognition accuracy with a 95% confidence interval per distance.

    Every distance is evaluated on the same episodes (deterministic for --seed). A
    query's class is the one whose K supports are closest on average. --checkpoint
    passes the clips through trained TempCLR video heads first.

    Example: tempclr fewshot feats/ --labels ucfTrainTestlist/ --ways 5 --shots 1 --episodes 10000
    """
    from tempclr_cli.core.fewshot import DISTANCES, FewshotConfig, evaluate, load_videos, with_heads
    from tempclr_cli.core.labels import read_labels

    names = distance or list(DISTANCES)
    for name in names:
        if name not in DISTANCES:
            raise TempclrError(f"--distance {name}: choose from {', '.join(DISTANCES)}")
    cfg = FewshotConfig(ways, shots, queries, episodes, gamma, seed)
    cfg.check()
    videos, warnings = load_videos(read_labels(labels), features, cfg, skip_invalid)
    for w in warnings:
        log(f"[yellow]skipped[/yellow] {w}", quiet)
    if checkpoint:
        from tempclr_cli.core.heads import load_heads

        videos = with_heads(videos, load_heads(checkpoint)[0])
    log(f"{len(videos.ids)} videos in {len(videos.classes)} classes; {episodes} episodes, "
        f"{ways}-way {shots}-shot, {queries} queries per class", quiet)
    start = time.perf_counter()
    results = evaluate(videos, cfg, names)
    log(f"scored in {time.perf_counter() - start:.2f} s", quiet)
    if json_:
        print(json.dumps({"ways": ways, "shots": shots, "queries": queries, "episodes": episodes, "seed": seed,
                          "results": [r.to_dict() if per_class else {**r.to_dict(), "per_class": None} for r in results]}))
        return
    _print_table(results, per_class)


def _print_table(results, per_class: bool) -> None:
    from rich.console import Console
    from rich.table import Table

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
    err.print()
