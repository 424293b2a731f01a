"""`tempclr retrieve FEATURES --annotations FILE`: paragraph-to-video retrieval, R@k."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from tempclr_cli.commands._common import Checkpoint, Device, Json, Quiet, Seed, Verbose, command, log
from tempclr_cli.core.errors import TempclrError


@command
def retrieve(
    features: Annotated[Path, typer.Argument(help="Features folder from `tempclr extract` (or <video_id>.npy files).")],
    annotations: Annotated[Path, typer.Option(help="YouCookII-style JSON (or COIN.json with --format coin).")],
    format_: Annotated[str, typer.Option("--format", help="Annotation layout: youcook2 or coin.")] = "youcook2",
    split: Annotated[str, typer.Option(help="Subset to evaluate: validation, training, or all.")] = "validation",
    task: Annotated[str, typer.Option(help="paragraph-video, video-paragraph (nn: TCLR nearest neighbours).")] = "paragraph-video",
    measure: Annotated[Optional[list[str]], typer.Option(help="capavg, dtw, otam; repeat for several (default: capavg and dtw).")] = None,
    background: Annotated[str, typer.Option(help="removed (annotated segments) or kept (16 s windows).")] = "removed",
    checkpoint: Checkpoint = None,
    json_: Json = False,
    device: Device = "auto",
    seed: Seed = 0,
    verbose: Verbose = False,
    quiet: Quiet = False,
) -> None:
    """Retrieve each paragraph's video among all videos of a split; print R@1/5/10 and median rank.

    Captions are embedded with the open_clip text tower recorded in the features'
    index.jsonl; with --checkpoint, trained TempCLR heads transform clips and captions.

    Example: tempclr retrieve feats/ --annotations youcookii_annotations_trainval.json --measure dtw --json
    """
    from tempclr_cli.core import retrieval
    from tempclr_cli.core.annotations import read_annotations
    from tempclr_cli.core.features import FeatureStore
    from tempclr_cli.core.heads import heads_and_text_tower

    if task == "nn":
        raise TempclrError("--task nn (TCLR nearest-neighbour retrieval) is not implemented yet", exit_code=1)
    measures = measure or ["capavg", "dtw"]
    store = FeatureStore(features)
    videos = [v for v in read_annotations(annotations, format_) if split == "all" or v.subset == split]
    heads, encoder_info = heads_and_text_tower(checkpoint, store)
    text, units, ids = retrieval.prepare(videos, store, text_encoder(*encoder_info, device), heads, background)
    log(f"{len(ids)} videos ({split}), background {background}", quiet)
    results = retrieval.evaluate(text, units, measures, task, background)
    if json_:
        print(json.dumps({"videos": len(ids), "task": task, "background": background, "results": results}))
        return
    _print_table(results, len(ids))


def text_encoder(model: str, pretrained: str, seed: int, device: str):
    """sentences -> unit embeddings with the given open_clip text tower (shared with localize)."""

    def encode(sentences: list[str]):
        from tempclr_cli.core.runtime import resolve_device
        from tempclr_cli.core.tempclr_training import encode_sentences

        return encode_sentences(sentences, model, pretrained, seed, None, resolve_device(device)).cpu()

    return encode


def _print_table(results: dict, n: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"paragraph-video retrieval ({n} videos)" if n >= 0 else None)
    for col in ("measure", "R@1", "R@5", "R@10", "median rank"):
        table.add_column(col, justify="right" if col != "measure" else "left")
    for name, r in results.items():
        table.add_row(name, f"{r['R@1']:.1f}", f"{r['R@5']:.1f}", f"{r['R@10']:.1f}", f"{r['median_rank']:.0f}")
    Console().print(table)
