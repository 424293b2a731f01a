"""The offline main job: the whole pipeline on a synthetic dataset, stage by stage.

Every stage re-uses what a previous run left in the work folder (the dataset, the
features, a finished training run), so a second `tempclr demo` is quick. Features come
from the shipped `tiny` encoder with its `synthetic` weights (trained on this synthetic
world only, never on the demo's videos: `scripts/train_tiny_synthetic.py`). Training
follows the shipped `recipes/tempclr_synthetic.yaml`, pointed at the work folder.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from tempclr_cli.core.data.annotations import read_youcook2
from tempclr_cli.core.data.features import FeatureStore
from tempclr_cli.core.encode import extract
from tempclr_cli.core.encode.jobs import Job, pending, plan
from tempclr_cli.core.encode.encoders import EncoderSpec, load_spec
from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.io import write_json
from tempclr_cli.core.eval import paragraph_retrieval as retrieval
from tempclr_cli.core.media.synth import ANNOTATIONS_FILE, SynthConfig, count_videos, generate
from tempclr_cli.core.progress import Progress, silent
from tempclr_cli.core.train.recipe import Recipe, load_recipe, shipped_recipe

ENCODER = EncoderSpec("tiny", "synthetic")  # the shipped tiny config with its synthetic-world weights
RECIPE = "tempclr_synthetic.yaml"


@dataclass(frozen=True)
class DemoConfig:
    videos: int = 160
    classes: int = 12
    class_videos: int = 8
    epochs: int | None = None  # None: the recipe's
    episodes: int = 2000
    hue_shift: float = 60.0  # the demo's colour cast (SynthConfig.hue_shift): what training has to learn
    seed: int = 0

    @classmethod
    def fast(cls, **overrides) -> "DemoConfig":
        """A smaller run for tests: same stages, fewer videos and epochs."""
        return cls(**{"videos": 24, "classes": 6, "class_videos": 4, "epochs": 20, "episodes": 200, **overrides})


@dataclass
class DemoResult:
    before: dict  # retrieval results per measure, raw encoder features
    after: dict  # the same after TempCLR training
    alignment: object  # Alignment of the held-out video
    truth: object  # its annotation (a Video)
    boundaries: dict  # {"before", "after"}: eval.alignment.summary over the validation videos
    fewshot: list  # FewshotResult per distance
    artefacts: dict[str, Path | None]  # what was written where (None: not written)
    notes: list[str]  # what was skipped, and why


class Demo:
    def __init__(self, workdir: str | Path, cfg: DemoConfig):
        self.dir, self.cfg = Path(workdir), cfg
        self.data, self.features = self.dir / "data", self.dir / "features"
        self.action_features, self.run_dir = self.dir / "action-features", self.dir / "run"
        self.encoder = EncoderSpec(ENCODER.model, ENCODER.pretrained, cfg.seed)

    def synth_config(self) -> SynthConfig:
        c = self.cfg
        return SynthConfig(
            videos=c.videos, classes=c.classes, class_videos=c.class_videos, hue_shift=c.hue_shift, seed=c.seed
        )

    def dataset_ready(self) -> bool:
        manifest = self.data / "manifest.json"
        return manifest.exists() and json.loads(manifest.read_text())["config"] == asdict(self.synth_config())

    def run(
        self,
        device: str = "auto",
        progress: Progress = silent,
        log: Callable[[str], None] = lambda _: None,
        train: Callable | None = None,
    ) -> DemoResult:
        """Every stage in order. `train(recipe, run_dir, device)` trains (default: `run_training`
        with no progress); the CLI passes one that shows its bars."""
        from tempclr_cli.core.runtime import resolve_device
        from tempclr_cli.core.train.run import run_training

        dev = resolve_device(device)
        self.make_dataset(progress, log)
        self.extract_features(dev, progress, log)
        before = self.retrieval()
        (train or run_training)(self.recipe(), self.run_dir, device, "auto")
        heads = self.heads()
        after = self.retrieval(heads)
        from tempclr_cli.core.align.aligner import Aligner

        trained = Aligner(checkpoint=str(self.run_dir / "last.pt"), device="cpu", seed=self.cfg.seed)
        boundaries = {
            "before": self.boundaries(Aligner(device="cpu", seed=self.cfg.seed)),
            "after": self.boundaries(trained),
        }
        alignment, truth, artefacts, notes = self.align_held_out(trained)
        fewshot = self.fewshot()
        results = self.dir / "results.json"
        write_json(
            results,
            {
                "encoder": asdict(self.encoder),
                "retrieval": {"before": before, "after": after},
                "boundaries": boundaries,
                "fewshot": [{"distance": r.distance, "accuracy": r.accuracy, "ci95": r.ci95} for r in fewshot],
            },
        )
        artefacts = {
            "dataset": self.data,
            "features": self.features,
            "run": self.run_dir / "last.pt",
            **artefacts,
            "results": results,
        }
        return DemoResult(before, after, alignment, truth, boundaries, fewshot, artefacts, notes)

    def make_dataset(self, progress: Progress = silent, log: Callable[[str], None] = lambda _: None) -> None:
        if self.dataset_ready():
            log(f"dataset: re-using {self.data}")
            return
        stale = [p for p in (self.data, self.features, self.action_features, self.run_dir) if p.exists()]
        if stale:  # made from other settings (seed, size, colour cast): features and heads go with the data
            log(f"dataset: settings changed; removing {', '.join(p.name for p in stale)} and starting again")
            for path in stale:
                shutil.rmtree(path)
        advance = progress("dataset", count_videos(self.synth_config()))
        for _ in generate(self.data, self.synth_config()):
            advance(1)

    def extraction_jobs(self) -> list[tuple[list[Job], extract.ExtractConfig, Path]]:
        """(jobs still to do, config, output) for the step videos and the action clips."""
        from tempclr_cli.core.media.video import find_videos

        plans = [
            (self.data / "videos", extract.ExtractConfig(workers=0), self.features),
            (self.data / "actions", extract.ExtractConfig(fps=4.0, per_frame=True, workers=0), self.action_features),
        ]
        out = []
        for source, cfg, target in plans:
            jobs = plan(find_videos([source]), target, source)
            out.append((pending(jobs, target), cfg, target))
        return out

    def extract_features(
        self, device, progress: Progress = silent, log: Callable[[str], None] = lambda _: None
    ) -> None:
        plans = self.extraction_jobs()
        if not any(jobs for jobs, _, _ in plans):
            log("features: re-using")
            return
        encoder = load_spec(self.encoder, device)
        for jobs, cfg, out in plans:
            advance = progress("extracting features", len(jobs))
            for event in extract.run(jobs, encoder, cfg, out):
                if not isinstance(event, int):
                    advance(1)
                    if event.status != "ok":
                        log(f"failed {event.reason}")

    def recipe(self) -> Recipe:
        overrides = [
            f"data.root={self.features}",
            f"data.annotations={self.data / ANNOTATIONS_FILE}",
            f"train.seed={self.cfg.seed}",
        ] + ([f"train.epochs={self.cfg.epochs}"] if self.cfg.epochs else [])
        return load_recipe(shipped_recipe(RECIPE), overrides)

    def heads(self):
        from tempclr_cli.core.models.heads import load_heads

        return load_heads(self.run_dir / "last.pt")[0]

    def retrieval(self, heads=None) -> dict:
        """Validation paragraph-video retrieval, Cap. Avg. and DTW, background removed."""
        from tempclr_cli.core.encode.encoders import sentence_encoder

        store = FeatureStore(self.features)
        videos = [v for v in read_youcook2(self.data / ANNOTATIONS_FILE) if v.subset == "validation"]
        text, units, _ = retrieval.prepare(videos, store, sentence_encoder(self.encoder, torch.device("cpu")), heads)
        return retrieval.paragraph_retrieval(text, units, ["capavg", "dtw"])

    def validation_videos(self) -> list:
        return [v for v in read_youcook2(self.data / ANNOTATIONS_FILE) if v.subset == "validation"]

    def boundaries(self, aligner) -> dict:
        """Boundary errors of `aligner` on every validation video, as `tempclr align FEATURES.npy
        STEPS [--checkpoint RUN/last.pt]` computes them (eval.alignment.summary)."""
        from tempclr_cli.core.eval.alignment import summary

        return summary(
            (aligner.align(self.features / f"{v.id}.npy", [s.text for s in v.steps]), v)
            for v in self.validation_videos()
        )

    def align_held_out(self, aligner):
        """The last validation video aligned by `aligner` (the trained heads'), as `tempclr align
        FEATURES.npy STEPS --checkpoint RUN/last.pt` does: (Alignment, its annotation,
        artefacts, notes). The plot draws the annotated segments beside the predicted ones."""
        from dataclasses import replace

        from tempclr_cli.core.io import write_text
        from tempclr_cli.core.plot import alignment_plot

        truth = self.validation_videos()[-1]
        result = aligner.align(self.features / f"{truth.id}.npy", [s.text for s in truth.steps])
        result = replace(result, video=str(self.data / "videos" / f"{truth.id}.mp4"))
        srt, png, notes = self.dir / "alignment.srt", self.dir / "alignment.png", []
        write_text(srt, result.to_srt())
        try:
            alignment_plot(result, png, truth=[(s.start, s.end) for s in truth.steps])
        except TempclrError as e:  # matplotlib is the optional `plot` extra: the demo goes on without it
            notes.append(f"no alignment plot: {e}")
            png = None
        return result, truth, {"alignment plot": png, "subtitles": srt}, notes

    def fewshot(self) -> list:
        from tempclr_cli.core.data.labels import read_labels
        from tempclr_cli.core.eval.fewshot import DISTANCES, FewshotConfig, fewshot_accuracy, load_videos

        cfg = FewshotConfig(ways=5, shots=1, queries=1, episodes=self.cfg.episodes, seed=self.cfg.seed)
        videos, _ = load_videos(read_labels(self.data / "actions"), self.action_features, cfg, skip_invalid=False)
        return fewshot_accuracy(videos, cfg, list(DISTANCES))
