"""`tempclr localize FEATURES --annotations PATH`: zero-shot step grounding, scored candidates, metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from tempclr_cli.commands._common import (
    Checkpoint,
    Device,
    Json,
    Levels,
    Quiet,
    SentenceEmbeddings,
    StepLayout,
    Taxonomy,
    Tokenizer,
    Verbose,
    choices,
    command,
    log,
    writable,
)
from tempclr_cli.core.data import layouts
from tempclr_cli.core.eval import STEP_SCORES

Scores = choices("Scores", STEP_SCORES)
Mode = choices("Mode", layouts.MODES)
StepText = choices("StepText", layouts.STEP_TEXTS)


@command
def localize(
    features: Annotated[Path, typer.Argument(help="Features folder (one vector per second, from `tempclr extract`).")],
    annotations: Annotated[
        Path,
        typer.Option(
            help="COIN.json, a CrossTask folder (tasks_primary.txt + "
            "annotations/), HT-Step's annotations.json, goalstep_valid.json, a "
            "BaGLM *_video_annots.json, or YouCookII's JSON."
        ),
    ],
    format_: Annotated[
        StepLayout, typer.Option("--format", help="Annotation layout (youcook2: each video is its own task).")
    ] = StepLayout.coin,
    split: Annotated[
        str,
        typer.Option(
            help="Subset to evaluate (COIN: testing, training; CrossTask: test, train, validation "
            "as the release splits videos.csv; HT-Step: val_seen, ...), or all."
        ),
    ] = "all",
    mode: Annotated[
        Optional[Mode],
        typer.Option(
            help="ordered: each step one second, in the listed order (DP); unordered: each "
            "step on its own over time (may be missing, repeated, out of order). Default: "
            "ordered for coin, crosstask, youcook2, else unordered."
        ),
    ] = None,
    top_k: Annotated[
        Optional[int],
        typer.Option(
            min=1,
            help="Candidate segments per step (unordered; default 5): peaks of the "
            "step's smoothed score, each extended while the score stays near the peak, no "
            "two overlapping.",
        ),
    ] = None,
    predictions_out: Annotated[
        Optional[Path],
        typer.Option(
            help="Write the candidates as a predictions CSV "
            "(video-id,t-start,t-end,label,score; `tempclr score` and HT-Step's EvalAI "
            "read it)."
        ),
    ] = None,
    taxonomy: Taxonomy = None,
    step_text: Annotated[
        StepText, typer.Option(help="HT-Step step text: the headline, the paragraph, or both.")
    ] = StepText.headline,
    levels: Annotated[
        Levels, typer.Option(help="Goal-Step queries: steps and substeps (the official task), or one level.")
    ] = Levels.both,
    scores: Annotated[
        Scores,
        typer.Option(
            help="Per-second step scores: log-softmax over the video's steps of dot products "
            "(as released), or raw cosine similarity."
        ),
    ] = Scores.log_softmax,
    checkpoint: Checkpoint = None,
    tokenizer: Tokenizer = None,
    sentence_embeddings: SentenceEmbeddings = None,
    json_: Json = False,
    device: Device = "auto",
    verbose: Verbose = False,
    quiet: Quiet = False,
) -> None:
    """Zero-shot step grounding: scored candidates and their metrics.

    Ordered mode assigns each step of a video's task one second, in order (free
    background), as the COIN / CrossTask release does; unordered mode gives each step
    its --top-k best segments. The metrics are those of the layout (`tempclr score
    --help`), over the videos that have features.

    Example:

    \b
      tempclr localize feats/ --annotations COIN.json --format coin \\
          --split testing --json
      tempclr localize feats/ --annotations annotations.json --format htstep \\
          --taxonomy taxonomy.csv --split val_seen --predictions-out preds.csv
    """
    from tempclr_cli.core.data.layouts import ReadOptions
    from tempclr_cli.core.eval.localization import localize_steps

    writable(predictions_out, "--predictions-out", folder=False)
    options = ReadOptions(taxonomy=taxonomy, step_text=step_text.value, levels=levels.value)
    result = localize_steps(
        features,
        annotations,
        format_.value,
        split,
        checkpoint,
        device,
        scores.value,
        mode.value if mode else None,
        top_k,
        predictions_out,
        options,
        lambda m: log(m, quiet),
        sentence_embeddings,
        tokenizer,
    )
    if not json_:
        print(result.to_text())
        return
    out = result.to_json()
    if "step-recall" in result.results:  # the keys localize has always had
        found = result.results["step-recall"]
        out.update(
            recall=round(found["values"]["recall"], 2),
            tasks=found["tasks"],
            per_task={task: round(r, 2) for task, r in found["per_task"].items()},
        )
    print(json.dumps(out))
