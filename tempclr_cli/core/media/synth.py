"""A generator of small, real datasets: procedural instructional videos and action clips.

Real datasets cannot be downloaded everywhere, so tests, benchmarks and the demo run
on these. Files are written in the real datasets' own formats:

    OUT/videos/<vid>.mp4                      instructional videos (H.264)
    OUT/steps/<vid>.txt                       one step sentence a line, in order
    OUT/youcookii_annotations_trainval.json   YouCookII layout, training/validation
    OUT/actions/<Class>/v_<Class>_gGG_cCC.mp4 action clips, one class per (shape, motion)
    OUT/actions/classInd.txt, trainlist01.txt, testlist01.txt   UCF101 layout
    OUT/actions/fewshot_train.txt, fewshot_test.txt   few-shot meta-splits (disjoint classes)

A step is a coloured shape doing one motion for a whole number of seconds. Action
classes come in pairs that are each other's reverse in time (slide left / slide right,
grow / shrink, rise / drop): the same frames in the opposite order, so an order-blind
method cannot tell them apart. A class is a shape doing a motion, or with
`class_by="motion"` the motion alone, the shape being drawn per clip: then, as in real
action datasets, appearance varies within a class and only the motion defines it. The
first 7/25 of each class's groups (at least one) form the test split, as groups 1-7 of
25 in UCF101's split 1.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tempclr_cli.core import io
from tempclr_cli.core.media import CLASS_BY
from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.media.video import write_video

SHAPES = ("circle", "square", "triangle", "cross")
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (50, 80, 230),
    "yellow": (235, 215, 40),
    "magenta": (210, 50, 200),
    "cyan": (40, 200, 210),
}
# motion -> (phrase, reverse motion)
MOTIONS = {
    "left": ("slides to the left", "right"),
    "right": ("slides to the right", "left"),
    "up": ("rises to the top", "down"),
    "down": ("drops to the bottom", "up"),
    "grow": ("grows bigger", "shrink"),
    "shrink": ("shrinks away", "grow"),
}
TEMPLATES = ("the {colour} {shape} {phrase}", "now a {colour} {shape} {phrase}")
CLASS_MOTION_PAIRS = (("left", "right"), ("grow", "shrink"), ("up", "down"))
ANNOTATIONS_FILE = "youcookii_annotations_trainval.json"


@dataclass(frozen=True)
class SynthConfig:
    videos: int = 20
    classes: int = 12
    class_videos: int = 8  # per class, 2 per group; the first 7/25 of the groups are the test split
    class_by: str = "shape-motion"  # or "motion": the shape varies within a class
    min_steps: int = 3
    max_steps: int = 6
    min_step_seconds: int = 2
    max_step_seconds: int = 5
    background: bool = True  # idle gaps (0-3 s) between steps
    size: int = 64
    fps: int = 8
    validation: float = 0.25  # share of instructional videos in the validation subset
    hue_shift: float = 0.0  # degrees round the colour wheel every colour is filmed turned by (a colour cast)
    seed: int = 0

    def check(self) -> None:
        if self.videos < 0 or self.classes < 0 or self.class_videos < 0:
            raise TempclrError("--videos, --classes and --class-videos must be >= 0")
        if not 1 <= self.min_steps <= self.max_steps <= len(SHAPES) * len(COLOURS) * len(MOTIONS):
            raise TempclrError("--min-steps/--max-steps: need 1 <= min-steps <= max-steps")
        if self.class_by not in CLASS_BY:
            raise TempclrError(f"--class-by {self.class_by}: {' or '.join(CLASS_BY)}")
        most = len(action_classes(None, self.class_by))
        if self.classes > most:
            raise TempclrError(f"--classes: at most {most} with --class-by {self.class_by}")
        if self.size < 16 or self.size % 2:
            raise TempclrError("--size: an even number of pixels >= 16 (H.264 needs even sizes)")
        if not 1 <= self.fps <= 60:
            raise TempclrError("--fps: between 1 and 60")
        if not math.isfinite(self.hue_shift):
            raise TempclrError("--hue-shift: a finite number of degrees")
        if self.class_videos and self.class_videos < 2:
            raise TempclrError("--class-videos: at least 2 (one test group, one train group)")


@dataclass(frozen=True)
class Action:
    shape: str
    colour: str
    motion: str

    def sentence(self, template: str = TEMPLATES[0]) -> str:
        return template.format(colour=self.colour, shape=self.shape, phrase=MOTIONS[self.motion][0])


@dataclass(frozen=True)
class Shot:
    """One planned stretch of a synthetic video: an action drawn from `start` to `end`, and the
    sentence its annotation gets (data.annotations.Step is what a reader makes of it)."""

    action: Action
    start: int  # seconds
    end: int
    sentence: str


def action_classes(n: int | None, class_by: str = "shape-motion") -> list[tuple[str, str | None, str]]:
    """The first `n` (name, shape, motion) classes (None: all); reverse pairs stay together. With
    class_by="motion" the shape is None (drawn per clip)."""
    out = []
    for a, b in CLASS_MOTION_PAIRS:
        for shape in SHAPES if class_by == "shape-motion" else (None,):
            for motion in (a, b):
                out.append((f"{(shape or '').capitalize()}{motion.capitalize()}", shape, motion))
    return out[:n]


# --- drawing -------------------------------------------------------------------


def _pose(motion: str, p: float) -> tuple[float, float, float]:
    """(cx, cy, radius) in [0,1] image units at progress p of a motion."""
    if motion in ("grow", "shrink"):
        q = p if motion == "grow" else 1 - p
        return 0.5, 0.5, 0.08 + 0.27 * q
    q = p if motion in ("right", "down") else 1 - p
    pos = 0.18 + 0.64 * q
    return (pos, 0.5, 0.16) if motion in ("left", "right") else (0.5, pos, 0.16)


def _mask(shape: str, cx: float, cy: float, r: float, grid: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    x, y = grid
    dx, dy = np.abs(x - cx), np.abs(y - cy)
    if shape == "circle":
        return dx**2 + dy**2 < r**2
    if shape == "square":
        return (dx < r * 0.85) & (dy < r * 0.85)
    if shape == "triangle":
        return (y > cy - r) & (y < cy + r) & (dx < (y - (cy - r)) * 0.6)
    return ((dx < r / 3) & (dy < r)) | ((dx < r) & (dy < r / 3))


def filmed_colours(hue_shift: float) -> dict[str, tuple[int, int, int]]:
    """The RGB each named colour is drawn in by a camera that turns hues by `hue_shift` degrees
    (60 turns red to about yellow, yellow to green, ...: the names no longer match the pixels)."""
    if hue_shift % 360 == 0:
        return dict(COLOURS)
    out = {}
    for name, rgb in COLOURS.items():
        h, lightness, sat = colorsys.rgb_to_hls(*(c / 255 for c in rgb))
        turned = colorsys.hls_to_rgb((h + hue_shift / 360) % 1.0, lightness, sat)
        out[name] = tuple(int(round(c * 255)) for c in turned)
    return out


class Canvas:
    """Draws frames of one video: a tinted backdrop plus at most one shape."""

    def __init__(self, size: int, rng: np.random.Generator, hue_shift: float = 0.0):
        self.colours = filmed_colours(hue_shift)
        ax = (np.arange(size) + 0.5) / size
        self.grid = np.meshgrid(ax, ax)
        tint = rng.integers(20, 60, size=3)
        shade = (0.7 + 0.3 * self.grid[1])[..., None]
        self.backdrop = (tint * shade).astype(np.uint8)

    def frame(self, action: Action | None, p: float) -> np.ndarray:
        img = self.backdrop.copy()
        if action is not None:
            cx, cy, r = _pose(action.motion, p)
            img[_mask(action.shape, cx, cy, r, self.grid)] = self.colours[action.colour]
        return img


# --- generation ------------------------------------------------------------------


def _plan_video(rng: np.random.Generator, cfg: SynthConfig) -> list[Shot]:
    n = int(rng.integers(cfg.min_steps, cfg.max_steps + 1))
    pool = [Action(s, c, m) for s in SHAPES for c in COLOURS for m in MOTIONS]
    picks = rng.choice(len(pool), size=n, replace=False)
    steps, t = [], int(rng.integers(0, 3)) if cfg.background else 0
    for k in picks:
        length = int(rng.integers(cfg.min_step_seconds, cfg.max_step_seconds + 1))
        action = pool[k]
        template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
        steps.append(Shot(action, t, t + length, action.sentence(template)))
        t += length + (int(rng.integers(0, 4)) if cfg.background else 0)
    return steps


def _step_frames(steps: list[Shot], duration: int, fps: int, canvas: Canvas) -> Iterator[np.ndarray]:
    for k in range(duration * fps):
        t = k / fps
        step = next((s for s in steps if s.start <= t < s.end), None)
        if step is None:
            yield canvas.frame(None, 0.0)
        else:
            yield canvas.frame(step.action, (t - step.start) / (step.end - step.start))


def _duration(steps: list[Shot], rng: np.random.Generator, cfg: SynthConfig) -> int:
    return steps[-1].end + (int(rng.integers(0, 3)) if cfg.background else 0)


def generate(out: str | Path, cfg: SynthConfig) -> Iterator[Path]:
    """Write the dataset under `out`, yielding each video path as it is written."""
    cfg.check()
    out = Path(out)
    rng = np.random.default_rng(cfg.seed)
    database = {}
    n_val = int(round(cfg.videos * cfg.validation))
    for i in range(cfg.videos):
        vid = f"synth{i:04d}"
        steps = _plan_video(rng, cfg)
        duration = _duration(steps, rng, cfg)
        canvas = Canvas(cfg.size, rng, cfg.hue_shift)
        path = out / "videos" / f"{vid}.mp4"
        write_video(path, _step_frames(steps, duration, cfg.fps, canvas), cfg.fps)
        io.write_text(out / "steps" / f"{vid}.txt", "".join(s.sentence + "\n" for s in steps))
        database[vid] = {
            "subset": "validation" if i >= cfg.videos - n_val else "training",
            "duration": float(duration),
            "recipe_type": "synthetic",
            "video_url": "",
            "annotations": [
                {"id": k, "segment": [s.start, s.end], "sentence": s.sentence} for k, s in enumerate(steps)
            ],
        }
        yield path
    if cfg.videos:
        io.write_json(out / ANNOTATIONS_FILE, {"database": database})
    yield from _generate_actions(out / "actions", cfg, rng)
    io.write_json(out / "manifest.json", {"generator": "tempclr synth", "config": cfg.__dict__})


def _generate_actions(root: Path, cfg: SynthConfig, rng: np.random.Generator) -> Iterator[Path]:
    classes = action_classes(cfg.classes, cfg.class_by)
    if not classes or not cfg.class_videos:
        return
    train, test = [], []
    seconds = 3
    test_groups = max(1, round((cfg.class_videos + 1) // 2 * 7 / 25))
    for c, (name, shape, motion) in enumerate(classes, start=1):
        for k in range(cfg.class_videos):
            group, clip = k // 2 + 1, k % 2 + 1
            rel = f"{name}/v_{name}_g{group:02d}_c{clip:02d}.mp4"
            action = Action(shape or str(rng.choice(SHAPES)), str(rng.choice(list(COLOURS))), motion)
            canvas = Canvas(cfg.size, rng, cfg.hue_shift)
            n = seconds * cfg.fps
            lead = int(rng.integers(0, cfg.fps))  # idle frames before the motion starts
            frames = (canvas.frame(action, min(max((j - lead) / (n - lead - 1), 0.0), 1.0)) for j in range(n))
            write_video(root / rel, frames, cfg.fps)
            if group <= test_groups:
                test.append(rel)
            else:
                train.append(f"{rel} {c}")
            yield root / rel
    io.write_text(root / "classInd.txt", "".join(f"{c} {n}\n" for c, (n, _, _) in enumerate(classes, 1)))
    io.write_text(root / "trainlist01.txt", "".join(line + "\n" for line in train))
    io.write_text(root / "testlist01.txt", "".join(line + "\n" for line in test))
    # few-shot meta-splits: disjoint classes (time-reversed pairs stay on one side), `class/video` lines
    meta_test = {name for name, _, _ in classes[len(classes) - 2 * math.ceil(len(classes) / 4) :]}
    for split, keep in (("train", lambda n: n not in meta_test), ("test", lambda n: n in meta_test)):
        lines = [
            f"{name}/v_{name}_g{k // 2 + 1:02d}_c{k % 2 + 1:02d}\n"
            for name, _, _ in classes
            if keep(name)
            for k in range(cfg.class_videos)
        ]
        io.write_text(root / f"fewshot_{split}.txt", "".join(lines))


def count_videos(cfg: SynthConfig) -> int:
    """How many video files `generate` writes (for progress bars)."""
    return cfg.videos + len(action_classes(cfg.classes, cfg.class_by)) * cfg.class_videos
