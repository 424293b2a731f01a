"""A feature store packed into one memory-mapped matrix, so a query can be scored against every clip.

Scoring every clip of a store from its per-video `.npy` files opens and converts every file
for every query (16,667 files for a million clips of 60); packed, the store is one float16
matrix of unit rows that the operating system keeps in its page cache and that is multiplied
in place, a chunk at a time (benchmarks/search.py). The pack is built once from the store's
`index.jsonl` (without one, from its `.npy` files at one clip a second), cached beside it,
and rebuilt when the index changes (its size or modification time), so the rows that
`extract` or `index` add are searched next time:

    index.search.json         manifest: what it was built from (`key`), video ids, row offsets, dim, encoder
    index.search.<hash>.f16   (clips, dim) float16 unit rows, in .npy format (not named .npy: the store
                              lists its *.npy files as videos)
    index.search.<hash>.times (clips, 2) float32 start and end of each clip (s), .npy format

Data files are written atomically before the manifest that names them, so a reader sees a
whole pack or none. A folder that cannot be written to is packed in memory, every time.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tempclr_cli.core import io
from tempclr_cli.core.data.features import INDEX, EncoderSpec, FeatureStore, load_matrix, row_of
from tempclr_cli.core.data.stores import LAYOUTS, Stored
from tempclr_cli.core.errors import TempclrError

CACHE = "index.search"
VERSION = 1  # of the pack's layout: a pack of another version is rebuilt


@dataclass
class Packed:
    """Every clip of a store: video v's clips are rows offsets[v]:offsets[v + 1]."""

    source: Path
    videos: list[str]  # ids, as `FeatureStore` names them (relative path without .npy)
    offsets: np.ndarray  # (V + 1,) int64
    matrix: np.ndarray  # (N, D) float16, unit rows (an all-zero clip stays zero); memory-mapped when cached
    times: np.ndarray  # (N, 2) float32: start, end (s)
    spec: EncoderSpec | None  # the encoder recorded for the features (None: no index)

    @property
    def dim(self) -> int:
        return self.matrix.shape[1]

    def video_of(self, rows: np.ndarray) -> np.ndarray:
        """(K,) clip rows -> (K,) video numbers."""
        return np.searchsorted(self.offsets, rows, side="right") - 1


@dataclass(frozen=True)
class _Entry:
    video: str
    stored: Stored | Path  # where its features lie, in any layout of the store (a Path: one .npy given alone)
    row: dict | None

    @property
    def name(self) -> str:
        return self.stored.name if isinstance(self.stored, Stored) else str(self.stored)


def pack(features: str | Path, clip_seconds: float = 1.0, log: Callable[[str], None] = lambda _: None) -> Packed:
    """The pack of a features folder (cached beside its index, module docstring) or of one `.npy`."""
    path = Path(features)
    if path.is_file():
        return _pack_file(path, clip_seconds)
    if not path.is_dir():
        raise TempclrError(f"{path}: no such features folder or .npy file")
    key = _key(path, clip_seconds)  # taken before the rows are read: a row added meanwhile makes the next run repack
    cached = _cached(path, key)
    if cached is not None:
        return cached
    entries = _entries(path)
    log(f"packing {len(entries)} videos of {path} for search (once; again when its index changes)")
    return _build(path, key, entries, clip_seconds, log)


def _pack_file(path: Path, clip_seconds: float) -> Packed:
    entry = _Entry(path.stem, path, row_of(path) or None)
    array, starts, ends = load_matrix(path, entry.row, clip_seconds)
    matrix, times = _unit(array), np.stack([starts, ends], 1).astype(np.float32)
    spec = EncoderSpec.from_row(entry.row) if entry.row else None
    return Packed(path, [entry.video], np.array([0, len(matrix)], np.int64), matrix, times, spec)


def _key(folder: Path, clip_seconds: float) -> dict:
    """What the pack depends on: the index's size and time, or without one every part's (.npy, shard, parquet)."""
    index = folder / INDEX
    if index.exists():
        stat = index.stat()
        return {"version": VERSION, "index": [stat.st_size, stat.st_mtime_ns]}
    files = sorted(path for layout in LAYOUTS.values() for path in layout.parts(folder))
    stats = [f.stat() for f in files]
    return {
        "version": VERSION,
        "clip_seconds": clip_seconds,
        "files": len(files),
        "bytes": sum(s.st_size for s in stats),
        "mtime_ns": max((s.st_mtime_ns for s in stats), default=0),
    }


def _cached(folder: Path, key: dict) -> Packed | None:
    try:
        manifest = json.loads((folder / f"{CACHE}.json").read_text())
        if manifest.get("key") != key:
            return None
        matrix = np.load(folder / manifest["matrix"], mmap_mode="c")  # copy-on-write: torch takes it without a copy
        times = np.load(folder / manifest["times"])
    except (OSError, ValueError, KeyError, TypeError):  # none yet, or torn by hand: build it again
        return None
    offsets = np.asarray(manifest["offsets"], np.int64)
    spec = EncoderSpec(**manifest["encoder"]) if manifest["encoder"] else None
    if matrix.shape[0] != offsets[-1] or times.shape != (matrix.shape[0], 2):
        return None
    return Packed(folder, manifest["videos"], offsets, matrix, times, spec)


def _entries(folder: Path) -> list[_Entry]:
    """The store's videos, in any of its layouts (`FeatureStore`), with their index rows where it has them."""
    store = FeatureStore(folder)
    entries = [
        _Entry(vid, stored, store.row(vid) or None) for vid, stored in sorted(store.paths.items()) if vid == stored.key
    ]
    if not entries:
        raise TempclrError(
            f"{folder}: no features to search; expected a folder from `tempclr extract` or `tempclr "
            "index`, or one video's .npy"
        )
    return entries


def _spec(entries: list[_Entry]) -> EncoderSpec | None:
    """The one encoder of the store's rows; two would mean sentences that match half the store."""
    specs = {EncoderSpec.from_row(e.row): e for e in entries if e.row}
    if len(specs) > 1:
        (a, ea), (b, eb) = list(specs.items())[:2]
        raise TempclrError(
            f"{ea.name} was made by {a.model} ({a.pretrained}) and {eb.name} by {b.model} ({b.pretrained}): "
            "one search needs the features of one encoder (put them in separate folders)"
        )
    return next(iter(specs), None)


def _shapes(entries: list[_Entry]) -> list[tuple[int, int]]:
    """(clips, dim) of every video, from headers where the layout has them; every video must share one dim."""
    shapes = []
    for e in entries:
        shape = e.stored.shape()  # a readable array, or an error naming it
        if len(shape) != 2 or not shape[0]:
            raise TempclrError(f"{e.name}: expected a (clips, dim) matrix, got shape {shape}")
        if shapes and shape[1] != shapes[0][1]:
            raise TempclrError(
                f"{e.name} has dim {shape[1]} but {entries[0].name} has {shapes[0][1]}: one store, one dim"
            )
        shapes.append(shape)
    return shapes


def _build(folder: Path, key: dict, entries: list[_Entry], clip_seconds: float, log) -> Packed:
    spec, shapes = _spec(entries), _shapes(entries)
    offsets = np.concatenate([[0], np.cumsum([n for n, _ in shapes])]).astype(np.int64)
    size = (int(offsets[-1]), shapes[0][1])
    videos = [e.video for e in entries]
    if not os.access(folder, os.W_OK):
        log(f"{folder} cannot be written to: the pack stays in memory (every search packs it again)")
        matrix = np.empty(size, np.float16)
        times = _fill(matrix, entries, offsets, clip_seconds)
        return Packed(folder, videos, offsets, matrix, times, spec)
    tag = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    names = {"matrix": f"{CACHE}.{tag}.f16", "times": f"{CACHE}.{tag}.times"}
    with io.atomic_path(folder / names["matrix"]) as tmp:
        matrix = np.lib.format.open_memmap(tmp, "w+", np.float16, size)  # filled a video at a time: memory stays flat
        times = _fill(matrix, entries, offsets, clip_seconds)
        matrix.flush()
        matrix = np.load(tmp, mmap_mode="c")  # mapped before the rename: another run's clean-up cannot take it away
    io.save_npy(folder / names["times"], times)
    io.write_json(
        folder / f"{CACHE}.json",
        {"key": key, **names, "videos": videos, "offsets": offsets.tolist(), "encoder": spec and spec.to_row()},
    )
    for old in folder.glob(f"{CACHE}.*.*"):  # earlier packs (a reader that has one mapped keeps it until it closes)
        if old.name not in names.values():
            old.unlink(missing_ok=True)
    return Packed(folder, videos, offsets, matrix, times, spec)


def _fill(matrix: np.ndarray, entries: list[_Entry], offsets: np.ndarray, clip_seconds: float) -> np.ndarray:
    """Write each video's unit rows into `matrix`; returns the (N, 2) clip times."""
    times = np.empty((len(matrix), 2), np.float32)
    for e, lo, hi in zip(entries, offsets[:-1], offsets[1:]):
        array, starts, ends = load_matrix(e.stored, e.row, clip_seconds)  # refuses NaN and broken files, by name
        matrix[lo:hi] = _unit(array)
        times[lo:hi, 0], times[lo:hi, 1] = starts, ends
    return times


def _unit(array: np.ndarray) -> np.ndarray:
    """(T, D) float32 -> (T, D) float16 rows of length 1 (zero rows stay zero): scores are cosines."""
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return (array / np.maximum(norms, 1e-12)).astype(np.float16)
