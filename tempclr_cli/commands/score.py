"""`tempclr score PREDICTIONS --annotations A --format F`: step-grounding metrics of any predictions file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tempclr_cli.commands._common import Json, Levels, Quiet, StepLayout, Taxonomy, Verbose, command, log


@command
def score(
    predictions: Annotated[
        Path,
        typer.Argument(
            help="Predictions CSV: video-id,t-start,t-end,label,score (HT-Step's "
            "format, as `localize --predictions-out` writes it)."
        ),
    ],
    annotations: Annotated[
        Path,
        typer.Option(
            help="The ground truth: HT-Step's annotations.json, "
            "goalstep_valid.json, a BaGLM *_video_annots.json, COIN.json, a "
            "CrossTask folder, or YouCookII's JSON."
        ),
    ],
    format_: Annotated[StepLayout, typer.Option("--format", help="Annotation layout (what `label` means follows it).")],
    taxonomy: Taxonomy = None,
    split: Annotated[
        str, typer.Option(help="Subset to score (htstep: val_seen, ...; coin: testing, ...), or all.")
    ] = "all",
    levels: Annotated[
        Levels, typer.Option(help="Goal-Step queries scored: steps and substeps (the official task), or one level.")
    ] = Levels.both,
    json_: Json = False,
    verbose: Verbose = False,
    quiet: Quiet = False,
) -> None:
    """Score step-grounding predictions made by anything.

    Reports every protocol that applies to the layout, each with its convention: HT-Step's
    official article-grounding mAP and the point R@1 papers quote (htstep), Ego4D NLQ
    R@1/R@5 at IoU 0.3/0.5 and mIoU (goalstep), point R@1 (baglm), step recall (coin,
    crosstask, youcook2) and framewise accuracy / IoU (coin). Videos with ground truth and
    no predictions count as missed.

    Example:

    \b
      tempclr score preds.csv --annotations annotations.json \\
          --format htstep --taxonomy taxonomy.csv --split val_seen
    """
    from tempclr_cli.core.data.layouts import ReadOptions
    from tempclr_cli.core.eval.grounding import score_file

    options = ReadOptions(split=split, taxonomy=taxonomy, levels=levels.value)
    result = score_file(predictions, annotations, format_.value, options)
    log(f"{result.videos} videos, {result.queries} queries scored", quiet)
    print(json.dumps(result.to_json()) if json_ else result.to_text())
