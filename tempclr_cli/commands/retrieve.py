"""`tempclr retrieve FEATURES --annotations FILE`: paragraph-to-video retrieval, R@k."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from tempclr_cli.commands._common import Checkpoint, Device, Json, Quiet, Seed, Verbose, command, log, progress
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
    split_number: Annotated[int, typer.Option("--split-number", help="--task nn: UCF101/HMDB51 split 1, 2 or 3.")] = 1,
    clips: Annotated[
        Optional[list[int]],
        typer.Option(help="--task nn: clips averaged per video (default 9); repeat for a curve: --clips 1 --clips 4."),
    ] = None,
    plot: Annotated[Optional[Path], typer.Option(help="--task nn with several --clips: the R@k curve as a PNG.")] = None,
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

    --task nn is TCLR's protocol instead: FEATURES is the video folder, --annotations the
    split files, --checkpoint a TCLR run's checkpoint (or 'none' for random init); train
    split = gallery, test split = queries, R@1/5/10/20.

    Examples:

      tempclr retrieve feats/ --annotations youcookii_annotations_trainval.json --measure dtw --json

      tempclr retrieve /data/UCF101 --task nn --format ucf101 --annotations ucfTrainTestlist --checkpoint runs/tclr/best.pt
    """
    from tempclr_cli.core import retrieval
    from tempclr_cli.core.annotations import read_annotations
    from tempclr_cli.core.features import FeatureStore
    from tempclr_cli.core.heads import heads_and_text_tower
    from tempclr_cli.core.runtime import resolve_device
    from tempclr_cli.core.tempclr_training import sentence_encoder

    if task == "nn":
        _nearest_neighbours(features, annotations, format_, split_number, clips or [9], checkpoint, device, json_,
                            quiet, plot)
        return
    measures = measure or ["capavg", "dtw"]
    store = FeatureStore(features)
    videos = [v for v in read_annotations(annotations, format_) if split == "all" or v.subset == split]
    heads, encoder_info = heads_and_text_tower(checkpoint, store)
    text, units, ids = retrieval.prepare(videos, store, sentence_encoder(*encoder_info, resolve_device(device)), heads,
                                         background)
    log(f"{len(ids)} videos ({split}), background {background}", quiet)
    results = retrieval.evaluate(text, units, measures, task, background)
    if json_:
        print(json.dumps({"videos": len(ids), "task": task, "background": background, "results": results}))
        return
    _print_table(results, len(ids))


def _nearest_neighbours(root: Path, splits: Path, fmt: str, split: int, clips: list[int], checkpoint: Optional[str],
                        device: str, as_json: bool, quiet: bool, plot: Optional[Path]) -> None:
    from tempclr_cli.core.checkpoint import load_checkpoint
    from tempclr_cli.core.nn_retrieval import evaluate
    from tempclr_cli.core.r3d import TCLRModel
    from tempclr_cli.core.runtime import resolve_device

    if not checkpoint:
        raise TempclrError("--task nn needs --checkpoint (a TCLR run's last.pt/best.pt, or 'none' for random init)")
    dev = resolve_device(device)
    if checkpoint == "none":
        model, meta = TCLRModel(), {"clip_frames": 16, "size": 112}
    else:
        state = load_checkpoint(checkpoint)
        if state.get("kind") != "tclr":
            raise TempclrError(f"{checkpoint}: not a TCLR checkpoint (kind {state.get('kind')!r})")
        model, meta = TCLRModel(**state["model_args"]), state["meta"]
        model.load_state_dict(state["model"])
    curve = []
    with progress(quiet) as bar:
        for k in clips:
            task = bar.add_task(f"features, {k} clips/video", total=None)
            result = evaluate(model.to(dev), root, fmt, splits, split, meta["clip_frames"], meta["size"], k, dev,
                              lambda n: bar.advance(task, n))
            curve.append({"clips": k, **result})
    if plot:
        from tempclr_cli.core.plot import curve_plot

        series = {key: [row[key] for row in curve] for key in curve[0] if key.startswith("R@")}
        log(f"plot: {curve_plot(clips, series, plot, 'clips per video', 'retrieval (%)')}", quiet)
    if as_json:
        print(json.dumps({"task": "nn", **curve[0]} if len(curve) == 1 else {"task": "nn", "curve": curve}))
        return
    log(f"gallery {curve[0]['gallery']} videos, queries {curve[0]['queries']}", quiet)
    for row in curve:
        print(f"clips {row['clips']:>3}  " + "  ".join(f"{k} {v:.1f}" for k, v in row.items() if k.startswith("R@")))


def _print_table(results: dict, n: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"paragraph-video retrieval ({n} videos)" if n >= 0 else None)
    for col in ("measure", "R@1", "R@5", "R@10", "median rank"):
        table.add_column(col, justify="right" if col != "measure" else "left")
    for name, r in results.items():
        table.add_row(name, f"{r['R@1']:.1f}", f"{r['R@5']:.1f}", f"{r['R@10']:.1f}", f"{r['median_rank']:.0f}")
    Console().print(table)
