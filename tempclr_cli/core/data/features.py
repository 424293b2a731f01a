"""A feature store: per-video (clips, dim) features with clip times, in any layout of
`stores.LAYOUTS` (one `.npy` per video, webdataset tars, parquet files).

Works with folders written by `tempclr extract` (clip times from `index.jsonl`) and
with the VideoCLIP/TempCLR layout (one vector per second, no index).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tempclr_cli.core.data.stores import Stored, iter_stored
from tempclr_cli.core.errors import TempclrError

INDEX = "index.jsonl"


@dataclass(frozen=True)
class EncoderSpec:
    model: str
    pretrained: str
    seed: int = 0  # random weights ('none') are drawn from this seed

    @classmethod
    def from_row(cls, row: dict) -> "EncoderSpec":
        """From an `index.jsonl` row written by `tempclr extract`."""
        return cls(row["model"], row["pretrained"], row.get("seed", 0))

    @classmethod
    def from_meta(cls, meta: dict) -> "EncoderSpec":
        """From a TempCLR heads checkpoint's `meta`."""
        return cls(meta["encoder_model"], meta["encoder_pretrained"], meta.get("encoder_seed", 0))

    def to_row(self) -> dict:
        """The encoder fields of an `index.jsonl` row (the one place they are written)."""
        return {"model": self.model, "pretrained": self.pretrained, "seed": self.seed}

    def to_meta(self) -> dict:
        return {"encoder_model": self.model, "encoder_pretrained": self.pretrained, "encoder_seed": self.seed}


class FeatureStore:
    """Look up the videos of a store by id: their key (for `.npy` files, the relative path without
    suffix), or a unique last path component. Every layout of `stores.LAYOUTS` is read (one folder
    may even mix them); rows come from `index.jsonl`, else from the part (webdataset, parquet)."""

    def __init__(self, folder: str | Path, clip_seconds: float = 1.0):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise TempclrError(f"{self.folder}: features folder not found")
        self.clip_seconds = clip_seconds
        self.index = self.folder / INDEX
        self.offsets = index_offsets(self.index)  # rows are parsed when asked for: 100k of them fill gigabytes
        self.paths: dict[str, Stored] = {}  # id -> where its features lie
        names: dict[str, list[Stored]] = {}
        for stored in iter_stored(self.folder):
            self.paths.setdefault(stored.key, stored)
            names.setdefault(Path(stored.key).name, []).append(stored)
        for name, found in names.items():
            if len(found) == 1:
                self.paths.setdefault(name, found[0])

    def __contains__(self, video_id: str) -> bool:
        return self.find(video_id) is not None

    def find(self, video_id: str) -> Stored | None:
        return self.paths.get(video_id) or self.paths.get(Path(video_id).name)

    def row(self, video_id: str) -> dict:
        """The index.jsonl row of a video (else the row its part keeps; {} when neither has one)."""
        stored = self.find(video_id)
        return (self._row_of(stored) if stored else None) or {}

    def _row_of(self, stored: Stored) -> dict | None:
        offset = self.offsets.get(stored.features)
        return stored.part.meta(stored.key) if offset is None else self._row_at(offset)

    def _row_at(self, offset: int) -> dict:
        with open(self.index, "rb") as f:
            f.seek(offset)
            return json.loads(f.readline())

    def load(self, video_id: str) -> tuple[np.ndarray, list[float], list[float]]:
        """(features float32 (clips, dim), clip starts, clip ends) in seconds."""
        stored = self.find(video_id)
        if stored is None:
            raise TempclrError(f"{video_id}: no feature file under {self.folder}")
        return load_matrix(stored, self._row_of(stored), self.clip_seconds)

    def encoder(self):
        """The EncoderSpec recorded by `tempclr extract`: the text tower that matches these features."""
        if self.offsets:
            return EncoderSpec.from_row(self._row_at(next(iter(self.offsets.values()))))
        for stored in self.paths.values():  # a store of shards without its index: the rows the parts keep
            row = stored.part.meta(stored.key)
            if row and "model" in row:
                return EncoderSpec.from_row(row)
        raise TempclrError(f"{self.folder}: no index.jsonl naming the encoder; use features from `tempclr extract`")


def load_matrix(path: Path | Stored, row: dict | None = None, clip_seconds: float = 1.0):
    """Read one video's features (a `.npy` file or a video of a store); times from its index row
    when it matches, else uniform."""
    array, name = (path.read(), path.name) if isinstance(path, Stored) else (_load_npy(path), path)
    if array.ndim != 2 or array.shape[0] == 0:
        raise TempclrError(f"{name}: expected a (clips, dim) matrix, got shape {array.shape}")
    if array.dtype.kind not in "fiub":
        raise TempclrError(f"{name}: expected real-valued features, got {array.dtype}")
    finite = np.isfinite(array).all(axis=1) if array.dtype.kind == "f" else np.ones(len(array), bool)
    if not finite.all():
        raise TempclrError(f"{name}: clip {int(np.argmin(finite))} holds NaN or inf; extract this video again")
    if row and row.get("clips") == array.shape[0]:
        return array.astype(np.float32), row["starts"], row["ends"]
    starts = [k * clip_seconds for k in range(array.shape[0])]
    return array.astype(np.float32), starts, [s + clip_seconds for s in starts]


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path)
    except (OSError, ValueError, EOFError) as e:  # EOFError: an empty or cut-off file
        raise TempclrError(f"{path}: not a readable .npy feature file ({e})") from None


def row_of(npy: Path) -> dict:
    """The index.jsonl row of one feature file (searching parent folders for the index; {}
    without one), found without reading the whole store (`read_row`)."""
    for folder in [npy.parent, *npy.parents]:
        if (folder / INDEX).exists():
            return read_row(folder, _relative(npy, folder))
    return {}


def _relative(npy: Path, folder: Path) -> str:
    """`npy`'s path inside `folder` as its index row names it; a symbolic link that `tempclr index`
    made into the store (to features elsewhere) is named by where it lies, not where it points."""
    try:
        return str(npy.resolve().relative_to(folder.resolve()))
    except ValueError:
        return os.path.relpath(os.path.abspath(npy), os.path.abspath(folder))


def index_offsets(index: Path) -> dict[str, int]:
    """Where the last row of each features path starts in `index` (later runs supersede
    earlier ones), for paths whose last row is ok; rows are parsed once and dropped, so a
    store of 100k videos costs a dict of offsets, not 100k rows."""
    offsets: dict[str, int] = {}
    if not index.exists():
        return offsets
    with open(index, "rb") as f:
        at = 0
        for line in f:
            try:
                row = json.loads(line)
                offsets[row["features"]] = at if row.get("status") == "ok" else -1
            except (ValueError, KeyError, TypeError):  # a row torn by a crash: its video counts as not done
                pass
            at += len(line)
    return {k: v for k, v in offsets.items() if v >= 0}


def read_row(folder: Path, features: str) -> dict:
    """The last ok index row of one features path, without parsing the others: a byte search
    for its `"features": ...` field, so one lookup in a store of 100k videos stays fast."""
    path = folder / INDEX
    if not path.exists():
        return {}
    data, needle = path.read_bytes(), f'"features": {json.dumps(features)}'.encode()
    found, at = {}, data.find(needle)
    while at >= 0:
        start, end = data.rfind(b"\n", 0, at) + 1, data.find(b"\n", at)
        try:
            row = json.loads(data[start : end if end >= 0 else len(data)])
            if row.get("features") == features:
                found = row
        except ValueError:  # a row torn by a crash
            pass
        at = data.find(needle, at + 1)
    return found if found.get("status") == "ok" else {}


def segment_centres(x: np.ndarray, n: int) -> np.ndarray:
    """(T, D) -> (n, D): the centre element of each of n equal segments (Cao et al.'s OTAM
    protocol, as TSN samples at test time), so every video gives a sequence of length n."""
    idx = np.floor((np.arange(n) + 0.5) * len(x) / n).astype(int)
    return x[idx]
