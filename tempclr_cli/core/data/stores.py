"""The layouts a feature store takes on disk, in one table (`LAYOUTS`), read and written the same way.

A store is a folder: `index.jsonl`, `extract`'s ledger (one row per video: its key, the part that holds
its features, how they were made, status), and the features themselves in *parts*, files that appear
whole or not at all (written under a temporary name, renamed when closed):

    npy         one `<key>.npy` ((clips, dim)) per video: the part is the video (VideoCLIP's layout).
    webdataset  one tar per input shard, the shard's keys: `<key>.npy` ((clips, dim)) and `<key>.json` (its
                index row; a video that failed has only the json), as video2dataset writes a stage's outputs.
    parquet     one file per input shard, one row per video: key, features (a list of fixed-size lists:
                (clips, dim), float16 or float32), starts, ends, clips, dim, model, pretrained, seed, status,
                reason, and meta (the whole index row as JSON: decode facts, timings). Needs pyarrow.

Why parts: a million `.npy` files is a million inodes and opens; a shard of 1,000 videos is one, and it
restarts as a unit (a rerun skips whole parts and rewrites a partial one). A row's `features` field names
where its array lies (`Layout.member`): `a/b.npy`, `00000.tar/<key>.npy`, `00000.parquet/<key>`.

A new layout is one `Layout` passed to `register_layout`: a `PartWriter` factory, a `PartReader` factory
and the part's suffix; extract (`--output-format`), every reader of a store (`features.FeatureStore`)
and the contract test in tests/test_stores.py take it from the table.
"""

from __future__ import annotations

import io as bytes_io
import json
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from tempclr_cli.core import io
from tempclr_cli.core.errors import TempclrError


class PartWriter(Protocol):
    """One part being written. `add` each video (array None: it failed, `row` says why), then `close`
    (the part appears under its name, whole) or `abort` (nothing appears)."""

    def add(self, key: str, array: np.ndarray | None, row: dict) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


class PartReader(Protocol):
    """One part of a store. `keys` lists the videos whose features it holds (not the failed ones)."""

    path: Path
    relative: str  # the part's path inside the store, as index rows name it

    def keys(self) -> list[str]: ...

    def read(self, key: str) -> np.ndarray: ...  # (clips, dim), as stored

    def shape(self, key: str) -> tuple[int, ...]: ...  # without reading the array where the layout allows

    def meta(self, key: str) -> dict | None: ...  # the row stored beside the array (None: only the index has it)


@dataclass(frozen=True)
class Layout:
    name: str
    description: str
    suffix: str  # of a part's file name
    per_video: bool  # one part per video (its key is its path in the store), else one per shard of videos
    writer: Callable[[Path], PartWriter]  # a part at its final path
    reader: Callable[[Path, Path], PartReader]  # (part, store folder)
    member: Callable[[str, str], str]  # (part's path in the store, key) -> the `features` field of the video's row
    overhead: int = 0  # bytes a video costs besides its array and rows (file and member headers)
    keeps_rows: bool = False  # the part keeps each video's index row beside its array
    extra: str | None = None  # the pip extra it needs (`pip install tempclr[parquet]`)

    def parts(self, folder: Path) -> list[Path]:
        """The whole parts under `folder` (temporaries are hidden files and are not listed)."""
        return sorted(p for p in folder.rglob(f"*{self.suffix}") if not p.name.startswith(".") and p.is_file())


LAYOUTS: dict[str, Layout] = {}


def register_layout(layout: Layout) -> Layout:
    LAYOUTS[layout.name] = layout
    return layout


def get_layout(name: str) -> Layout:
    if name not in LAYOUTS:
        raise TempclrError(f"--output-format {name}: use one of {', '.join(LAYOUTS)}")
    return LAYOUTS[name]


@dataclass(frozen=True)
class Stored:
    """One video's features in a store: the part that holds them and its key there."""

    layout: Layout
    part: PartReader
    key: str

    @property
    def features(self) -> str:
        """Its `features` field in index.jsonl (and its name in messages)."""
        return self.layout.member(self.part.relative, self.key)

    @property
    def name(self) -> str:
        return str(self.part.path if self.layout.per_video else self.part.path / self.key)

    def read(self) -> np.ndarray:
        try:
            return self.part.read(self.key)
        except (OSError, ValueError, EOFError, KeyError, tarfile.TarError) as e:  # EOFError: a cut-off array
            raise TempclrError(f"{self.name}: not a readable feature array ({e})") from None

    def shape(self) -> tuple[int, ...]:
        try:
            return self.part.shape(self.key)
        except (OSError, ValueError, EOFError, KeyError, tarfile.TarError) as e:
            raise TempclrError(f"{self.name}: not a readable feature array ({e})") from None


def problem(stored: Stored, row: dict) -> str | None:
    """What is wrong with a stored array against its index row (`extract --verify`), or None: it
    must read whole, be (clips, dim) as the row says, and hold no NaN or inf."""
    try:
        array = stored.read()
    except TempclrError as e:
        return str(e)
    expected = (row.get("clips"), row.get("dim"))
    if array.ndim != 2 or tuple(array.shape) != expected:
        return f"{stored.name}: shape {array.shape}, but its index row says {expected}"
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        return f"{stored.name}: holds NaN or inf"
    return None


class _Temporary:
    """A part's temporary file beside its final path (io.atomic_path: the name a rerun's clean-up knows),
    renamed into place by `commit`, removed by `discard`. Kept open across many videos, unlike a `with`."""

    def __init__(self, path: Path):
        self._context = io.atomic_path(path)
        self.path = self._context.__enter__()

    def commit(self) -> None:
        self._context.__exit__(None, None, None)

    def discard(self) -> None:
        self._context.__exit__(_Discarded, _Discarded(), None)


class _Discarded(Exception):
    """Thrown into io.atomic_path to make it remove the temporary instead of renaming it."""


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = bytes_io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


# --- npy: one file per video -----------------------------------------------------------------------


class _NpyWriter:
    """The video's array, saved atomically at close; a failed video leaves no file (its row says why)."""

    def __init__(self, path: Path):
        self.path, self.array = path, None

    def add(self, key: str, array: np.ndarray | None, row: dict) -> None:
        self.array = array

    def close(self) -> None:
        if self.array is not None:
            io.save_npy(self.path, self.array)

    def abort(self) -> None:
        self.array = None


class _NpyPart:
    def __init__(self, path: Path, folder: Path):
        self.path, self.relative = path, str(path.relative_to(folder))
        self.key = str(Path(self.relative).with_suffix(""))

    def keys(self) -> list[str]:
        return [self.key]

    def read(self, key: str) -> np.ndarray:
        return np.load(self.path, allow_pickle=False)

    def shape(self, key: str) -> tuple[int, ...]:
        return np.load(self.path, mmap_mode="r", allow_pickle=False).shape

    def meta(self, key: str) -> dict | None:
        return None


register_layout(
    Layout(
        "npy",
        "one <key>.npy per video, mirroring the input tree",
        ".npy",
        True,
        _NpyWriter,
        _NpyPart,
        lambda part, key: part,
        overhead=128,
    )
)


# --- webdataset: one tar per shard -----------------------------------------------------------------


class _TarWriter:
    """Members `<key>.npy` and `<key>.json` appended to a temporary tar as videos finish (memory stays
    one video's); modification times 0, so the same videos make the same bytes."""

    def __init__(self, path: Path):
        self._file = _Temporary(path)
        self._tar = tarfile.open(self._file.path, "w", format=tarfile.PAX_FORMAT)

    def add(self, key: str, array: np.ndarray | None, row: dict) -> None:
        if array is not None:
            self._member(f"{key}.npy", _npy_bytes(array))
        self._member(f"{key}.json", json.dumps(row).encode())

    def _member(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), 0o644
        self._tar.addfile(info, bytes_io.BytesIO(data))

    def close(self) -> None:
        self._tar.close()
        self._file.commit()

    def abort(self) -> None:
        self._tar.close()
        self._file.discard()


class _TarPart:
    """A tar's members found from their headers only (tarfile seeks past the data); an array is read
    in place at its offset, never unpacked. Only uncompressed tars: offsets in a compressed stream
    cannot be sought."""

    def __init__(self, path: Path, folder: Path):
        self.path, self.relative = path, str(path.relative_to(folder))
        self._at: dict[str, tuple[int, int]] = {}
        with tarfile.open(path, "r:") as tar:
            for m in tar:
                if m.isfile():
                    self._at[m.name] = (m.offset_data, m.size)

    def keys(self) -> list[str]:
        return [name[: -len(".npy")] for name in self._at if name.endswith(".npy")]

    def _open(self, name: str):
        offset, _ = self._at[name]
        f = open(self.path, "rb")
        f.seek(offset)
        return f

    def read(self, key: str) -> np.ndarray:
        with self._open(f"{key}.npy") as f:
            return np.lib.format.read_array(f, allow_pickle=False)

    def shape(self, key: str) -> tuple[int, ...]:
        with self._open(f"{key}.npy") as f:
            header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            return header[np.lib.format.read_magic(f)](f)[0]

    def meta(self, key: str) -> dict | None:
        if f"{key}.json" not in self._at:
            return None
        with self._open(f"{key}.json") as f:
            return json.loads(f.read(self._at[f"{key}.json"][1]))


register_layout(
    Layout(
        "webdataset",
        "one tar per shard: <key>.npy and <key>.json",
        ".tar",
        False,
        _TarWriter,
        _TarPart,
        lambda part, key: f"{part}/{key}.npy",
        overhead=128 + 4 * 512,
        keeps_rows=True,
    )
)


# --- parquet: one row per video --------------------------------------------------------------------

ROW_GROUP = 64  # videos per row group: what a reader decodes to fetch one video


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise TempclrError("the parquet layout needs pyarrow: pip install 'tempclr[parquet]'") from None
    return pa, pq


class _ParquetWriter:
    """Rows buffered a row group at a time into a temporary file; the schema (value type, dim) comes from
    the first video that succeeded (a part of failed videos only: dim 0)."""

    def __init__(self, path: Path):
        self._file, self._rows, self._writer = _Temporary(path), [], None

    def add(self, key: str, array: np.ndarray | None, row: dict) -> None:
        self._rows.append((key, array, row))
        if len(self._rows) >= ROW_GROUP and (self._writer or any(a is not None for _, a, _ in self._rows)):
            self._flush()

    def _flush(self) -> None:
        pa, pq = _pyarrow()
        if self._writer is None:
            # dictionaries only where values repeat: a dictionary of float features is as large as they are
            self._writer = pq.ParquetWriter(
                self._file.path, _schema(pa, self._rows), use_dictionary=["model", "pretrained", "status"]
            )
        self._writer.write_table(_table(pa, self._writer.schema, self._rows))
        self._rows = []

    def close(self) -> None:
        if self._rows or self._writer is None:
            self._flush()
        self._writer.close()
        self._file.commit()

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._file.discard()


def _schema(pa, rows: list):
    first = next((a for _, a, _ in rows if a is not None), np.zeros((0, 0), np.float32))
    value = pa.from_numpy_dtype(first.dtype)
    return pa.schema(
        [
            ("key", pa.string()),
            ("features", pa.list_(pa.list_(value, first.shape[1]))),
            ("starts", pa.list_(pa.float64())),
            ("ends", pa.list_(pa.float64())),
            ("clips", pa.int32()),
            ("dim", pa.int32()),
            ("model", pa.string()),
            ("pretrained", pa.string()),
            ("seed", pa.int64()),
            ("status", pa.string()),
            ("reason", pa.string()),
            ("meta", pa.string()),
        ]
    )


def _table(pa, schema, rows: list):
    """One row group from (key, (clips, dim) array or None, index row) per video: the arrays as one
    flat buffer under list offsets (a null offset: a failed video's null cell)."""
    cell = schema.field("features").type.value_type  # fixed_size_list<value, dim>
    arrays = [a for _, a, _ in rows]
    flat = np.concatenate([a.reshape(-1) for a in arrays if a is not None] or [np.zeros(0, np.float32)])
    ends = np.cumsum([0 if a is None else len(a) for a in arrays]).tolist()
    offsets = [None if a is None else end - len(a) for a, end in zip(arrays, ends)] + [ends[-1]]
    values = pa.FixedSizeListArray.from_arrays(pa.array(flat, cell.value_type), cell.list_size)
    column = lambda field: [row.get(field) for _, _, row in rows]
    return pa.table(
        {
            "key": [k for k, _, _ in rows],
            "features": pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values),
            "starts": column("starts"),
            "ends": column("ends"),
            "clips": column("clips"),
            "dim": column("dim"),
            "model": column("model"),
            "pretrained": column("pretrained"),
            "seed": column("seed"),
            "status": column("status"),
            "reason": column("reason"),
            "meta": [json.dumps(r) for _, _, r in rows],
        },
        schema=schema,
    )


class _ParquetPart:
    """Keys and statuses read at once (two small columns); an array or its row by decoding its row
    group's column, the last group kept (videos are mostly read in order)."""

    def __init__(self, path: Path, folder: Path):
        _, pq = _pyarrow()
        self.path, self.relative = path, str(path.relative_to(folder))
        self._file = pq.ParquetFile(path)
        table = self._file.read(columns=["key", "status", "clips", "dim"])
        groups = [self._file.metadata.row_group(g).num_rows for g in range(self._file.num_row_groups)]
        where = [(g, i) for g, n in enumerate(groups) for i in range(n)]
        self._at = {k: w for k, w in zip(table.column("key").to_pylist(), where)}
        self._ok = [k for k, s in zip(table.column("key").to_pylist(), table.column("status").to_pylist()) if s == "ok"]
        self._shape = {k: (c, d) for k, c, d in zip(*(table.column(n).to_pylist() for n in ("key", "clips", "dim")))}
        self._cached: dict[str, tuple[int, object]] = {}

    def keys(self) -> list[str]:
        return list(self._ok)

    def _cell(self, key: str, column: str):
        group, i = self._at[key]
        if self._cached.get(column, (None,))[0] != group:
            self._cached[column] = (group, self._file.read_row_group(group, columns=[column]).column(column))
        return self._cached[column][1], i

    def read(self, key: str) -> np.ndarray:
        column, i = self._cell(key, "features")
        values = column[i].values  # (clips,) fixed-size lists of dim
        return values.flatten().to_numpy(zero_copy_only=False).reshape(len(values), values.type.list_size)

    def shape(self, key: str) -> tuple[int, ...]:
        return self._shape[key]

    def meta(self, key: str) -> dict | None:
        column, i = self._cell(key, "meta")
        return json.loads(column[i].as_py())


register_layout(
    Layout(
        "parquet",
        "one row per video: key, features, clip times, encoder, status",
        ".parquet",
        False,
        _ParquetWriter,
        _ParquetPart,
        lambda part, key: f"{part}/{key}",
        keeps_rows=True,
        extra="parquet",
    )
)


def bytes_per_video(layout: Layout, clips: int, dim: int, itemsize: int) -> int:
    """About how many bytes a video adds to a store of `layout` (`extract --plan`): its array, the
    layout's own overhead, its index row, and the row again where the part keeps it beside the array."""
    row = 80 * clips + 1500  # starts, ends, frame times and the other fields of an index row, as JSON
    return clips * dim * itemsize + layout.overhead + row * (2 if layout.keeps_rows else 1)


def iter_stored(folder: Path) -> Iterator[Stored]:
    """Every video of every part of every layout under `folder`, layout by layout, parts sorted."""
    for layout in LAYOUTS.values():
        for path in layout.parts(folder):
            try:
                part = layout.reader(path, folder)
            except (OSError, ValueError, tarfile.TarError) as e:
                raise TempclrError(
                    f"{path}: not a readable {layout.name} part ({e}); `tempclr extract ... --verify` redoes it"
                ) from None
            for key in part.keys():
                yield Stored(layout, part, key)
