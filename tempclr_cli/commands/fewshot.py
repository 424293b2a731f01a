"""`tempclr fewshot FEATURES --labels PATH`: N-way K-shot episodes, distances side by side."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from tempclr_cli.commands._common import Device, Json, Quiet, Seed, Verbose, choices, command, log, number
from tempclr_cli.core.align import measures


Distance = choices("Distance", measures.names("fewshot"))


@command
def fewshot(
    features: Annotated[Path, typer.Argument(help="Features folder from `tempclr extract` (per clip or --per-frame).")],
    labels: Annotated[
        Path,
        typer.Option(
            help="UCF101/HMDB51 split folder, a video,class CSV, a class/video_id list, or class sub-folders."
        ),
    ],
    ways: Annotated[int, typer.Option(help="Classes per episode (N).", min=2)] = 5,
    shots: Annotated[int, typer.Option(help="Support videos per class (K).", min=1)] = 1,
    queries: Annotated[int, typer.Option(help="Query videos per class.", min=1)] = 1,
    episodes: Annotated[int, typer.Option(help="Number of random episodes.", min=1)] = 10000,
    distance: Annotated[
        Optional[list[Distance]],
        typer.Option(
            help="; ".join(f"{m}: {measures.MEASURES[m].summary}" for m in measures.names("fewshot"))
            + ". Repeat for several. Default: all."
        ),
    ] = None,
    gamma: Annotated[
        float, typer.Option(help="Soft-min smoothing of otam/softdtw (0: hard).", callback=number(0))
    ] = 0.1,
    frames: Annotated[
        Optional[int],
        typer.Option(
            min=1,
            help="Resample every video to N uniformly spaced segments (the OTAM protocol: 8), so "
            "per-clip and per-frame features give sequences of one length.",
        ),
    ] = None,
    per_class: Annotated[
        bool, typer.Option("--per-class", help="Also show accuracy per class and its main confusion.")
    ] = False,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Leave out videos without features and classes with too few videos.")
    ] = False,
    checkpoint: Annotated[
        Optional[str],
        typer.Option(
            help="Trained heads applied to every clip first: TempCLR heads or a few-shot run (loss.kind: fewshot).",
            rich_help_panel="Encoder",
        ),
    ] = None,
    json_: Json = False,
    device: Device = "auto",
    seed: Seed = 0,
    verbose: Verbose = False,
    quiet: Quiet = False,
) -> None:
    """Few-shot action recognition accuracy, with 95% CIs.

    One accuracy with its 95% confidence interval per distance. Every distance is evaluated
    on the same episodes (deterministic for --seed). A query's class is the one whose K
    supports are closest on average. --checkpoint passes query and support clips through a
    trained video head first: TempCLR heads, or a few-shot run (loss.kind: fewshot,
    recipes/tempclr_fewshot_synthetic.yaml) trained on meta-train classes; evaluate it on
    --labels of meta-test classes.

    Example:

    \b
      tempclr fewshot feats/ --labels ucfTrainTestlist/ --ways 5 --shots 1 \\
          --episodes 10000
    """
    from tempclr_cli.core.eval.fewshot import FewshotConfig, fewshot_from_files
    from tempclr_cli.render import fewshot_table

    names = [d.value for d in distance or list(Distance)]
    cfg = FewshotConfig(ways, shots, queries, episodes, gamma, seed, frames)
    start = time.perf_counter()
    results = fewshot_from_files(
        features, labels, cfg, names, skip_invalid, checkpoint, lambda m: log(m, quiet), device
    )
    log(f"loaded and scored in {time.perf_counter() - start:.2f} s", quiet)
    if json_:
        print(
            json.dumps(
                {
                    "ways": ways,
                    "shots": shots,
                    "queries": queries,
                    "episodes": episodes,
                    "seed": seed,
                    "results": [r.to_dict() if per_class else {**r.to_dict(), "per_class": None} for r in results],
                }
            )
        )
        return
    fewshot_table(results, per_class)
