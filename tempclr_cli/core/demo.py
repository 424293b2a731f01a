"""The offline main job: the whole pipeline on a synthetic dataset, stage by stage.

Every stage re-uses what a previous run left in the work folder (the dataset, the
features, a finished training run), so a second `tempclr demo` is quick.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from tempclr_cli.core import extract, retrieval
from tempclr_cli.core.annotations import read_youcook2
from tempclr_cli.core.features import FeatureStore
from tempclr_cli.core.recipe import Recipe, recipe_from_dict
from tempclr_cli.core.synth import ANNOTATIONS_FILE, SynthConfig, generate

MODEL, PRETRAINED = "tiny", "none"

# what recipes/tempclr_synthetic.yaml trains, with the demo's own folders
RECIPE = {
    "data": {"root": "features", "format": "youcook2", "annotations": f"data/{ANNOTATIONS_FILE}",
             "units": 3, "clip_frames": 2},
    "model": {"name": "tempclr-heads", "dim": 64, "layers": 1},
    "loss": {"kind": "tempclr", "distance": "softdtw", "gamma": 0.1, "negatives": 31, "temperature": 0.1},
    "optim": {"lr": 1e-3, "betas": [0.9, 0.98], "warmup": [0.1, 0.5], "grad_clip": 2.0},
    "train": {"epochs": 60, "batch_size": 16, "amp": False, "checkpoint_every": 20, "log_every": 1},
}


@dataclass(frozen=True)
class DemoConfig:
    videos: int = 160
    classes: int = 12
    class_videos: int = 8
    epochs: int = 60
    episodes: int = 2000
    seed: int = 0

    @classmethod
    def fast(cls) -> "DemoConfig":
        """A smaller run for tests: same stages, fewer videos and epochs."""
        return cls(videos=24, classes=6, class_videos=4, epochs=4, episodes=200)


class Demo:
    def __init__(self, workdir: str | Path, cfg: DemoConfig):
        self.dir, self.cfg = Path(workdir), cfg
        self.data, self.features = self.dir / "data", self.dir / "features"
        self.action_features, self.run_dir = self.dir / "action-features", self.dir / "run"

    def synth_config(self) -> SynthConfig:
        c = self.cfg
        return SynthConfig(videos=c.videos, classes=c.classes, class_videos=c.class_videos, seed=c.seed)

    def dataset_ready(self) -> bool:
        manifest = self.data / "manifest.json"
        return manifest.exists() and json.loads(manifest.read_text())["config"] == asdict(self.synth_config())

    def make_dataset(self):
        """Yields each written video (nothing when the same dataset is already there)."""
        if not self.dataset_ready():
            yield from generate(self.data, self.synth_config())

    def extraction_jobs(self) -> list[tuple[list[extract.Job], extract.ExtractConfig, Path]]:
        """(jobs still to do, config, output) for the step videos and the action clips."""
        from tempclr_cli.core.video import find_videos

        plans = [
            (self.data / "videos", extract.ExtractConfig(workers=0), self.features),
            (self.data / "actions", extract.ExtractConfig(fps=4.0, per_frame=True, workers=0), self.action_features),
        ]
        out = []
        for source, cfg, target in plans:
            jobs = extract.plan(find_videos([source]), target, source)
            out.append(([j for j in jobs if not extract.is_done(j.target)], cfg, target))
        return out

    def recipe(self) -> Recipe:
        raw = json.loads(json.dumps(RECIPE))
        raw["data"]["root"] = str(self.features)
        raw["data"]["annotations"] = str(self.data / ANNOTATIONS_FILE)
        raw["train"]["epochs"] = self.cfg.epochs
        raw["train"]["seed"] = self.cfg.seed
        return recipe_from_dict(raw, "the demo recipe")

    def retrieval(self, heads=None) -> dict:
        """Validation paragraph-video retrieval, Cap. Avg. and DTW, background removed."""
        from tempclr_cli.core.tempclr_training import sentence_encoder

        store = FeatureStore(self.features)
        videos = [v for v in read_youcook2(self.data / ANNOTATIONS_FILE) if v.subset == "validation"]
        encode = sentence_encoder(MODEL, PRETRAINED, self.cfg.seed, torch.device("cpu"))
        text, units, _ = retrieval.prepare(videos, store, encode, heads)
        return retrieval.evaluate(text, units, ["capavg", "dtw"])

    def held_out_video(self) -> str:
        videos = read_youcook2(self.data / ANNOTATIONS_FILE)
        return next(v.id for v in reversed(videos) if v.subset == "validation")
