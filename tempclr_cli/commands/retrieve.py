"""`tempclr retrieve FEATURES --annotations FILE`: paragraph-to-video retrieval, R@k."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from tempclr_cli.commands._common import (
    Device,
    Json,
    Quiet,
    SentenceEmbeddings,
    Tokenizer,
    Verbose,
    bar_factory,
    choices,
    command,
    err,
    figure,
    log,
    progress,
)
from tempclr_cli.core.align import measures
from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.data.splits import ACTION_LAYOUTS
from tempclr_cli.core.eval import BACKGROUNDS, RETRIEVAL_LAYOUTS, RETRIEVAL_TASKS, SCORERS, SIMILARITIES


Task = choices("Task", RETRIEVAL_TASKS)
Measure = choices("Measure", measures.names("retrieve"))
Background = choices("Background", BACKGROUNDS)
Scorer = choices("Scorer", SCORERS)
Similarity = choices("Similarity", SIMILARITIES)


Layout = choices("Layout", (*RETRIEVAL_LAYOUTS, *ACTION_LAYOUTS))  # captions (paragraphs) or action lists (--task nn)


@command
def retrieve(
    features: Annotated[
        Path, typer.Argument(help="Features folder from `tempclr extract` (--task nn: the video folder).")
    ],
    annotations: Annotated[
        Path, typer.Option(help="YouCookII-style JSON, COIN.json (--format coin), or split files (--task nn).")
    ],
    format_: Annotated[Layout, typer.Option("--format", help="Annotation layout.")] = Layout.youcook2,
    split: Annotated[str, typer.Option(help="Subset to evaluate: validation, training, or all.")] = "validation",
    task: Annotated[Task, typer.Option(help="What is ranked (nn: TCLR's nearest neighbours).")] = Task.paragraph_video,
    measure: Annotated[
        Optional[list[Measure]],
        typer.Option(
            help="; ".join(f"{m}: {measures.MEASURES[m].summary}" for m in measures.names("retrieve"))
            + ". Repeat for several (default: capavg and dtw)."
        ),
    ] = None,
    background: Annotated[
        Background, typer.Option(help="removed: annotated segments; kept: 16 s windows.")
    ] = Background.removed,
    scorer: Annotated[
        Scorer,
        typer.Option(
            help="DTW/OTAM scoring. corrected: each pair's own L x M cost. released: the authors' "
            "scorer (cost x T^2/(L*M), padded; the last caption can be skipped; OTAM read at its last cell, as "
            "released)."
        ),
    ] = Scorer.corrected,
    similarity: Annotated[
        Similarity, typer.Option(help="dot: raw dot products of the outputs, as released; cosine: unit vectors.")
    ] = Similarity.dot,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict", help="Exit 2 when annotated videos have no features (default: leave them out, say so)."
        ),
    ] = False,
    split_number: Annotated[
        int, typer.Option("--split-number", help="--task nn: UCF101/HMDB51 split 1, 2 or 3.", min=1, max=3)
    ] = 1,
    clips: Annotated[
        Optional[list[int]],
        typer.Option(help="--task nn: clips averaged per video (default 9); repeat for a curve.", min=1),
    ] = None,
    plot: Annotated[
        Optional[Path],
        typer.Option(help="--task nn with several --clips: the R@k curve (.png, .jpg, .svg or .pdf).", callback=figure),
    ] = None,
    checkpoint: Annotated[
        Optional[str],
        typer.Option(
            help="Trained TempCLR heads over the features; with --task nn, the TCLR run (or released .pth) to "
            "retrieve with.",
            rich_help_panel="Encoder",
        ),
    ] = None,
    tokenizer: Tokenizer = None,
    sentence_embeddings: SentenceEmbeddings = None,
    json_: Json = False,
    device: Device = "auto",
    verbose: Verbose = False,
    quiet: Quiet = False,
) -> None:
    """Paragraph-to-video retrieval (or TCLR nearest neighbours), R@k.

    Retrieve each paragraph's video among all videos of a split; print R@1/5/10 and median rank.

    Captions are embedded with the open_clip text tower recorded in the features'
    index.jsonl; with --checkpoint, trained TempCLR heads transform clips and captions.

    --task nn is TCLR's protocol instead: FEATURES is the video folder, --annotations the
    split files, --checkpoint a TCLR run's checkpoint (for the random-init baseline, a run of
    the same recipe with --set train.epochs=1 --set optim.lr=0); train
    split = gallery, test split = queries, R@1/5/10/20.

    Examples:

    \b
      tempclr retrieve feats/ --annotations youcookii_annotations_trainval.json \\
          --measure dtw --json
      tempclr retrieve /data/UCF101 --task nn --format ucf101 \\
          --annotations ucfTrainTestlist --checkpoint runs/tclr/best.pt
    """
    if task is Task.nn and sentence_embeddings:
        raise TempclrError("--task nn compares videos with videos: --sentence-embeddings does not apply")
    if task is Task.nn:
        _nearest_neighbours(
            features, annotations, format_.value, split_number, clips or [9], checkpoint, device, json_, quiet, plot
        )
        return
    from tempclr_cli.core.eval.paragraph_retrieval import retrieve_paragraphs
    from tempclr_cli.render import retrieval_table

    chosen = [m.value for m in measure or [Measure.capavg, Measure.dtw]]
    with progress(quiet) as bar:
        out = retrieve_paragraphs(
            features,
            annotations,
            format_.value,
            split,
            checkpoint,
            chosen,
            task.value,
            background.value,
            device,
            scorer.value,
            similarity.value,
            strict,
            bar_factory(bar),
            sentence_embeddings,
            tokenizer,
        )
    missing = out["missing_features"]
    if missing:  # said even with --quiet: the numbers are over fewer videos than annotated
        err.print(
            f"[yellow]warning:[/yellow] {len(missing)} annotated videos have no features and are left out: "
            f"{escape(', '.join(missing[:10]))}{' ...' if len(missing) > 10 else ''} (--strict makes this an error)"
        )
    log(f"{out['videos']} videos ({split}), background {background.value}", quiet)
    if json_:
        print(json.dumps(out))
        return
    retrieval_table(out["results"], out["videos"])


def _nearest_neighbours(
    root: Path,
    splits: Path,
    fmt: str,
    split: int,
    clips: list[int],
    checkpoint: Optional[str],
    device: str,
    as_json: bool,
    quiet: bool,
    plot: Optional[Path],
) -> None:
    from tempclr_cli.core.eval.nearest_neighbours import nearest_neighbour_curve

    if not checkpoint:
        raise TempclrError("--task nn needs --checkpoint (a TCLR run's last.pt or best.pt)")
    with progress(quiet) as bar:
        curve = nearest_neighbour_curve(root, splits, fmt, split, clips, checkpoint, device, bar_factory(bar))
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
