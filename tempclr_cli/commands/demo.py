"""`tempclr demo`: the whole pipeline offline, on a synthetic dataset, in a few minutes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tempclr_cli.commands._common import Device, Quiet, Seed, Verbose, command, err, log, progress


@command
def demo(
    workdir: Annotated[Path, typer.Option(help="Folder for the dataset, features, run and outputs (re-used).")] = Path("tempclr-demo"),
    fast: Annotated[bool, typer.Option("--fast", help="A smaller, quicker run (fewer videos and epochs).")] = False,
    device: Device = "auto",
    seed: Seed = 0,
    verbose: Verbose = False,
    quiet: Quiet = False,
) -> None:
    """Generate data, extract features, train TempCLR heads, then align, retrieve and run few-shot.

    Uses the shipped `tiny` encoder with random weights (no download): the numbers
    show the pipeline working and training helping, not what pretrained weights reach.
    README's "With real weights" section gives the same steps for your own data.
    """
    from rich.console import Console

    from tempclr_cli.commands.align import _table as align_table
    from tempclr_cli.commands.fewshot import _print_table as fewshot_table
    from tempclr_cli.commands.retrieve import _print_table as retrieval_table
    from tempclr_cli.commands.train import run_training
    from tempclr_cli.core.demo import Demo, DemoConfig
    from tempclr_cli.core.runtime import resolve_device

    cfg = DemoConfig.fast() if fast else DemoConfig(seed=seed)
    d = Demo(workdir, cfg)
    out = Console()
    _dataset(d, quiet)
    _features(d, resolve_device(device), quiet)
    before = d.retrieval()
    run_training(d.recipe(), d.run_dir, device, "auto", quiet)
    heads = _heads(d)
    after = d.retrieval(heads)
    out.rule("paragraph-to-video retrieval, validation videos")
    out.print("before training (raw encoder features):")
    retrieval_table(before, -1)
    out.print("after TempCLR training:")
    retrieval_table(after, -1)
    result, srt, png = _align(d, heads, quiet)
    out.rule(f"align: held-out video {result.video}")
    out.print(align_table(result), end="")
    out.rule("few-shot action recognition, 5-way 1-shot")
    fewshot_table(_fewshot(d, quiet), per_class=False)
    out.rule("artefacts")
    for name, path in [("dataset", d.data), ("features", d.features), ("run", d.run_dir / "last.pt"),
                       ("alignment plot", png), ("subtitles", srt)]:
        out.print(f"{name:>15}: {path}")
    log("done; run `tempclr demo` again to re-use everything, or see README for real weights", quiet)


def _dataset(d, quiet: bool) -> None:
    from tempclr_cli.core.synth import count_videos

    if d.dataset_ready():
        log(f"dataset: re-using {d.data}", quiet)
        return
    with progress(quiet) as bar:
        task = bar.add_task("dataset", total=count_videos(d.synth_config()))
        for _ in d.make_dataset():
            bar.advance(task)


def _features(d, device, quiet: bool) -> None:
    from tempclr_cli.core import extract
    from tempclr_cli.core.demo import MODEL, PRETRAINED
    from tempclr_cli.core.encoders import load_encoder

    plans = d.extraction_jobs()
    if not any(jobs for jobs, _, _ in plans):
        log("features: re-using", quiet)
        return
    encoder = load_encoder(MODEL, PRETRAINED, None, device, d.cfg.seed)
    with progress(quiet) as bar:
        for jobs, cfg, out in plans:
            task = bar.add_task(f"features {out.name}", total=len(jobs))
            for event in extract.run(jobs, encoder, cfg, out):
                if not isinstance(event, int):
                    bar.advance(task)
                    if event.status != "ok":
                        err.print(f"[yellow]failed[/yellow] {event.reason}")


def _heads(d):
    from tempclr_cli.core.heads import load_heads

    return load_heads(d.run_dir / "last.pt")[0]


def _align(d, heads, quiet: bool):
    import torch

    from tempclr_cli.core import subtitles
    from tempclr_cli.core.align import align, read_steps
    from tempclr_cli.core.demo import MODEL, PRETRAINED
    from tempclr_cli.core.features import FeatureStore
    from tempclr_cli.core.heads import apply_heads
    from tempclr_cli.core.io import write_text
    from rich.markup import escape

    from tempclr_cli.core.errors import TempclrError
    from tempclr_cli.core.plot import alignment_plot
    from tempclr_cli.core.tempclr_training import encode_sentences

    vid = d.held_out_video()
    steps = read_steps(str(d.data / "steps" / f"{vid}.txt"))
    clips, starts, ends = FeatureStore(d.features).load(vid)
    sentences = encode_sentences(steps, MODEL, PRETRAINED, d.cfg.seed, None, torch.device("cpu"))
    clips, sentences = apply_heads(heads, torch.from_numpy(clips), sentences)
    result = align(sentences, clips, steps, starts, ends, video=str(d.data / "videos" / f"{vid}.mp4"))
    srt, png = d.dir / "alignment.srt", d.dir / "alignment.png"
    write_text(srt, subtitles.srt([(s.start, s.end, s.text) for s in result.steps]))
    try:
        alignment_plot(result, png)
    except TempclrError as e:  # matplotlib is the optional `plot` extra: the demo goes on without it
        log(f"[yellow]no alignment plot[/yellow]: {escape(str(e))}", quiet)
        png = "(not written: pip install 'tempclr\\[plot]')"
    return result, srt, png


def _fewshot(d, quiet: bool):
    from tempclr_cli.core.fewshot import DISTANCES, FewshotConfig, evaluate, load_videos
    from tempclr_cli.core.labels import read_labels

    cfg = FewshotConfig(ways=5, shots=1, queries=1, episodes=d.cfg.episodes, seed=d.cfg.seed)
    videos, _ = load_videos(read_labels(d.data / "actions"), d.action_features, cfg, skip_invalid=False)
    return evaluate(videos, cfg, list(DISTANCES))
