"""TCLR training clips: which frames, how they are augmented, and the datasets that read them.

Per video and step: a global clip of `frames` frames at `stride` (a span of
frames x stride, from a random start) and `frames`/4 local clips of `frames` consecutive
frames tiling that span (local clip t starts at start + t x span/L). Two augmented views
of the global clip and two augmented draws of each local clip: 2 + 2L clips, each with
its own augmentation parameters applied identically to all of its frames. Videos
shorter than the span are looped (frame indices wrap around).

Augmentations (the TCLR release's set, probabilities as published): random square crop
of side U(0.6, 1) x the short side resized to `size`, horizontal flip 0.5, colour jitter
(brightness, contrast, saturation in [0.75, 1.25], hue +-0.1, each with p 0.3),
grayscale 0.175, channel drop 0.125, random erase of a 9-18 px box (at 112 px, scaled)
0.5. Frames are in [0, 1], not mean/std normalised. The flip probability is a recipe
option (`data.hflip`): mirroring turns "moves left" into "moves right", so datasets whose
classes depend on direction (the synthetic clips, Something-Something) set it to 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.v2 import functional as TF

from tempclr_cli.core.encoders import center_crop
from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.video import VIDEO_EXTENSIONS, read_frames


@dataclass(frozen=True)
class ClipSpec:
    frames: int = 16
    stride: int = 4
    size: int = 112
    hflip: float = 0.5  # 0 where a mirror image changes the class (left vs right motions)

    @property
    def locals_(self) -> int:
        return max(1, self.frames // 4)  # one local clip per layer4 time step


def tclr_indices(n_frames: int, spec: ClipSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Frame indices of the global clip (T,) and of the local clips (L, T)."""
    span = spec.frames * spec.stride
    start = int(rng.integers(0, max(1, n_frames - span + 1)))
    global_idx = start + np.arange(spec.frames) * spec.stride
    offsets = start + np.arange(spec.locals_)[:, None] * (span // spec.locals_)
    local_idx = offsets + np.arange(spec.frames)[None, :]
    return global_idx % n_frames, local_idx % n_frames


def test_clips(frames: torch.Tensor, spec: ClipSpec, clips: int) -> torch.Tensor:
    """Evaluation clips (NN retrieval, multi-clip classification): frames (N, H, W, 3) uint8 ->
    (clips, 3, T, size, size) in [0, 1], `clips` clips at `spec.stride` with evenly spaced
    starts, centre crop; short videos loop."""
    span = (spec.frames - 1) * spec.stride + 1
    starts = np.linspace(0, max(0, len(frames) - span), clips).round().astype(int)
    idx = (starts[:, None] + np.arange(spec.frames)[None, :] * spec.stride) % len(frames)
    return center_crop(frames[torch.from_numpy(idx)].permute(0, 4, 1, 2, 3).float().div_(255), spec.size)


def augment(frames: torch.Tensor, spec: ClipSpec, rng: np.random.Generator) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (3, T, size, size) float in [0, 1], one parameter draw per clip."""
    size = spec.size
    x = frames.permute(0, 3, 1, 2).float().div_(255)  # (T, 3, H, W)
    H, W = x.shape[-2:]
    side = max(1, int(min(H, W) * rng.uniform(0.6, 1.0)))
    top, left = int(rng.integers(0, H - side + 1)), int(rng.integers(0, W - side + 1))
    x = TF.resized_crop(x, top, left, side, side, [size, size], antialias=True)
    if rng.random() < spec.hflip:
        x = TF.hflip(x)
    for adjust in (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation):
        if rng.random() < 0.3:
            x = adjust(x, float(rng.uniform(0.75, 1.25)))
    if rng.random() < 0.3:
        x = TF.adjust_hue(x, float(rng.uniform(-0.1, 0.1)))
    if rng.random() < 0.175:
        x = TF.rgb_to_grayscale(x, num_output_channels=3).contiguous()
    if rng.random() < 0.125:
        x[:, int(rng.integers(3))] = 0.0
    if rng.random() < 0.5:
        box = int(round(rng.uniform(9, 18) * size / 112)) or 1
        i, j = int(rng.integers(0, size - box + 1)), int(rng.integers(0, size - box + 1))
        x = TF.erase(x, i, j, box, box, torch.zeros(()))
    return x.clamp(0, 1).permute(1, 0, 2, 3).contiguous()


def read_diving48(root: Path, listing: Path) -> list[tuple[Path, str]]:
    """Diving48 V2 lists: a JSON list of {"vid_name", "label", "start_frame", "end_frame"}."""
    import json

    try:
        rows = json.loads(listing.read_text(encoding="utf-8"))
        return [(Path(root) / f"{r['vid_name']}.mp4", str(r["label"])) for r in rows]
    except FileNotFoundError:
        raise TempclrError(f"{listing}: Diving48 list not found") from None
    except (json.JSONDecodeError, KeyError, TypeError):
        raise TempclrError(f"{listing}: expected a JSON list of {{vid_name, label, start_frame, end_frame}}") from None


def split_videos(root: Path, fmt: str, annotations: Path | None, split: int, subset: str) -> list[tuple[Path, str]]:
    """(video path, class) of the `subset` ("train" or "test") of UCF101 / HMDB51 / Diving48 lists,
    or of class folders (all videos, train only)."""
    root = Path(root)
    folder = Path(annotations) if annotations else root
    if fmt == "diving48":
        return read_diving48(root, folder / f"Diving48_V2_{subset}.json")
    if fmt == "ucf101":
        listing = folder / f"{subset}list{split:02d}.txt"
        if not listing.exists():
            raise TempclrError(f"{listing}: UCF101 {subset} list not found (data.annotations: the ucfTrainTestlist folder)")
        rels = [line.split()[0] for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [(root / rel, rel.split("/")[0]) for rel in rels]
    if fmt == "hmdb51":
        status, items = "1" if subset == "train" else "2", []
        for path in sorted(folder.glob(f"*_test_split{split}.txt")):
            cls = path.name[: -len(f"_test_split{split}.txt")]
            for parts in (line.split() for line in path.read_text(encoding="utf-8").splitlines()):
                if len(parts) == 2 and parts[1] == status:
                    items.append((root / cls / parts[0], cls))
        if not items:
            raise TempclrError(f"{folder}: no HMDB51 split files (<class>_test_split{split}.txt) with {subset} videos")
        return items
    if fmt == "folder" and subset == "train":
        return [(p, p.parent.name) for p in sorted(root.glob("*/*")) if p.suffix.lower() in VIDEO_EXTENSIONS]
    raise TempclrError(f"data.format {fmt}: {subset} videos come from ucf101, hmdb51, diving48 lists (or folder: train)")


def train_videos(root: Path, fmt: str, annotations: Path | None, split: int) -> list[tuple[Path, str]]:
    return split_videos(root, fmt, annotations, split, "train")


class SeededVideos(Dataset):
    """A list of videos whose item i in epoch e draws its randomness from (seed, e, i):
    DataLoader workers and resumed runs agree on every random choice."""

    def __init__(self, videos: list[Path], spec: ClipSpec, seed: int = 0):
        self.videos, self.spec, self.seed, self.epoch = videos, spec, seed, 0
        self.short_side = max(spec.size, round(spec.size * 240 / 112))  # the release crops from 240 px frames

    def __len__(self) -> int:
        return len(self.videos)

    def load(self, i: int) -> tuple[np.random.Generator, torch.Tensor | None]:
        """The item's generator and its frames (None for a video that cannot be decoded)."""
        rng = np.random.default_rng([self.seed, self.epoch, i])
        try:
            return rng, torch.from_numpy(read_frames(self.videos[i], self.short_side))
        except Exception:  # noqa: BLE001 - a broken video is skipped and counted, never fatal
            return rng, None


def seeded_loader(dataset: SeededVideos, recipe, epoch: int, rank: int, world: int, collate_fn,
                  pin_memory: bool, full_batches: bool) -> tuple[DataLoader, int]:
    """This rank's loader for epoch `epoch` (a seeded shuffle split across ranks) and its batch size.

    `full_batches` keeps only whole batches, equal on every rank (batch norm, contrastive
    negatives); otherwise every video is used once.
    """
    from tempclr_cli.core.trainer import epoch_generator

    dataset.epoch = epoch
    order = torch.randperm(len(dataset), generator=epoch_generator(recipe.train.seed, epoch)).tolist()
    per_rank = max(1, recipe.train.batch_size // world)
    if full_batches:
        order = order[: len(order) // (per_rank * world) * per_rank * world]
    loader = DataLoader(dataset, batch_size=per_rank, sampler=order[rank::world], collate_fn=collate_fn,
                        num_workers=recipe.data.num_workers, pin_memory=pin_memory)
    return loader, per_rank


class VideoTask:
    """What the trainer tasks over videos share: this rank's seeded batches on the device,
    with undecodable videos counted (`skipped_videos` in the epoch's metrics), never fatal.
    Subclasses set dataset, recipe, device, collate_fn and full_batches."""

    skipped = 0

    def epoch_info(self) -> dict:
        skipped, self.skipped = self.skipped, 0
        return {"skipped_videos": skipped}

    def batches(self, epoch: int, rank: int, world: int):
        loader, per_rank = seeded_loader(self.dataset, self.recipe, epoch, rank, world, self.collate_fn,
                                         self.device.type == "cuda", self.full_batches)
        for batch in loader:
            if batch is None:  # no video of the batch decoded
                self.skipped += per_rank
                continue
            self.skipped += batch.skipped
            yield batch.to(self.device)


class TCLRVideos(SeededVideos):
    """Items: {"global": (2, 3, T, S, S), "local": (2, L, 3, T, S, S)} or None for an undecodable video."""

    def __getitem__(self, i: int):
        rng, frames = self.load(i)
        if frames is None:
            return None
        g, loc = tclr_indices(len(frames), self.spec, rng)
        views = torch.stack([augment(frames[g], self.spec, rng) for _ in range(2)])
        local = torch.stack([torch.stack([augment(frames[idx], self.spec, rng) for idx in loc]) for _ in range(2)])
        return {"global": views, "local": local}


@dataclass
class ClipBatch:
    global_clips: torch.Tensor  # (2, B, 3, T, S, S)
    local_clips: torch.Tensor  # (2, B, L, 3, T, S, S)
    skipped: int

    @property
    def size(self) -> int:
        return self.global_clips.shape[1] * (2 + 2 * self.local_clips.shape[2])  # clips

    def pin_memory(self) -> ClipBatch:  # DataLoader(pin_memory=True) calls this in its pinning thread
        return ClipBatch(self.global_clips.pin_memory(), self.local_clips.pin_memory(), self.skipped)

    def to(self, device) -> ClipBatch:
        return ClipBatch(self.global_clips.to(device, non_blocking=True), self.local_clips.to(device, non_blocking=True),
                         self.skipped)


def collate(items: list) -> ClipBatch | None:
    good = [it for it in items if it is not None]
    if not good:
        return None
    return ClipBatch(torch.stack([it["global"] for it in good], 1), torch.stack([it["local"] for it in good], 1),
                     len(items) - len(good))
