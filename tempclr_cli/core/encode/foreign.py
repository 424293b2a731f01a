"""Features made by other tools, made readable by tempclr: `index.jsonl` rows for a folder of
(clips, dim) arrays, the `index` command's core.

Researchers hold features from video_features (`{video}_{feature_type}.npy`, beside 1-D
`_fps.npy` and `_timestamps_ms.npy`), from Ego4D's downloads (`{video_uid}.pt`: Omnivore and
EgoVLP windows of 32 frames every 16 at 30 fps), from the HowTo100M extractor
(`{video_id}.npy`, one a second) or NaSVA's InternVideo release. The user declares the clip
timing (`--fps`: vectors a second; `--clip-seconds`: the span each one sees, 1/fps unless
given) and the encoder that made them; rows get what `tempclr extract` writes for its own
(`features.row_of`, `read_row`, `load_matrix`, `EncoderSpec`), so `align`, `localize`,
`retrieve` and `search` read them as they read extracted features.

Arrays are not copied where they can be read in place (`FOREIGN_FORMATS`):

- a `.npy` is indexed where it is when the index goes into its own folder and its name is
  its video id; otherwise a symbolic link named `{id}.npy` is made beside the index;
- a `.pt` / `.pth` (`torch.load(weights_only=True)`, a (clips, dim) tensor) is converted
  once to `{id}.npy` beside the index, written atomically (a rerun reuses it while it is
  newer than its source).

Every file is checked before the index is touched: a 1-D array, an empty one, one that is
not floating point, one with NaN or inf, or one whose dim differs from the declared
(`--dim`, else the encoder's registered dim, else the first file's) is named, and nothing
is indexed until all pass.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tempclr_cli.core import io
from tempclr_cli.core.data.features import INDEX, EncoderSpec
from tempclr_cli.core.encode.registry import find_encoder
from tempclr_cli.core.errors import TempclrError

ROWS_CHECKED = 1 << 16  # NaN is looked for a block of rows at a time: a mapped file is never read whole


def _read_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)  # ValueError for pickled objects: never loaded
    except (OSError, ValueError, EOFError) as e:
        raise TempclrError(f"{path}: not a readable .npy without pickles ({e})") from None


def _read_torch(path: Path) -> np.ndarray:
    import torch

    from tempclr_cli.core.checkpoint import read_weights

    value = read_weights(path, "a torch file of one (clips, dim) tensor")
    if not isinstance(value, torch.Tensor):
        what = (
            f"a dict (keys {', '.join(map(str, list(value)[:5]))})" if isinstance(value, dict) else type(value).__name__
        )
        raise TempclrError(f"{path}: holds {what}; expected one (clips, dim) tensor")
    return (value.float() if value.dtype == torch.bfloat16 else value).numpy()  # numpy has no bfloat16


@dataclass(frozen=True)
class ForeignFormat:
    summary: str
    in_place: bool  # numpy maps it as it is: indexed where it lies, or linked, never copied
    read: Callable[[Path], np.ndarray] = field(repr=False)  # -> (clips, dim) array; TempclrError when unreadable


FOREIGN_FORMATS: dict[str, ForeignFormat] = {
    ".npy": ForeignFormat("numpy array, read in place (no pickles)", True, _read_npy),
    ".pt": ForeignFormat("torch tensor (weights_only), converted to .npy once", False, _read_torch),
    ".pth": ForeignFormat("torch tensor (weights_only), converted to .npy once", False, _read_torch),
}


@dataclass(frozen=True)
class Timing:
    """Clip k spans [k / fps, k / fps + clip_seconds) seconds."""

    fps: float
    clip_seconds: float

    @classmethod
    def declared(cls, fps: float | None, clip_seconds: float | None) -> "Timing":
        if fps is None and clip_seconds is None:
            raise TempclrError(
                "give --fps (feature vectors a second) or --clip-seconds (the seconds each one covers): "
                "the files do not say when their clips are"
            )
        for name, value in (("--fps", fps), ("--clip-seconds", clip_seconds)):
            if value is not None and not value > 0:
                raise TempclrError(f"{name} {value}: must be > 0")
        return cls(fps or 1 / clip_seconds, clip_seconds or 1 / fps)

    def times(self, clips: int) -> tuple[list[float], list[float]]:
        starts = [k / self.fps for k in range(clips)]
        return [round(s, 4) for s in starts], [round(s + self.clip_seconds, 4) for s in starts]


@dataclass
class Imported:
    """One file's fate: its video id, where its features are read from, how they got there."""

    video: str
    source: Path
    features: Path  # the .npy the index names (relative to the index folder)
    how: str  # "in place" | "linked" | "converted"
    shape: tuple[int, int] = (0, 0)


@dataclass
class IndexSummary:
    index: Path
    encoder: EncoderSpec
    dim: int
    files: list[Imported]
    text_tower: bool  # tempclr can embed sentences for these features (else: --sentence-embeddings)

    def counts(self) -> dict[str, int]:
        """How many files were read in place, linked, converted."""
        return dict(Counter(f.how for f in self.files))

    def to_json(self) -> dict:
        return {
            "index": str(self.index),
            **self.encoder.to_row(),
            "dim": self.dim,
            "videos": len(self.files),
            **{how.replace(" ", "_"): n for how, n in self.counts().items()},
            "text_tower": self.text_tower,
        }


def index_features(
    folder: str | Path,
    encoder: str,
    fps: float | None = None,
    clip_seconds: float | None = None,
    dim: int | None = None,
    pretrained: str | None = None,
    out: str | Path | None = None,
    suffix: str = "",
    log: Callable[[str], None] = lambda _: None,
) -> IndexSummary:
    """Write `index.jsonl` rows into `out` (default: `folder`) for every foreign feature file under
    `folder` (module docstring); with `suffix`, only files whose name ends with it (before the
    extension), which the video id drops: `_clip` for video_features' `v1_clip.npy`."""
    folder, timing = Path(folder), Timing.declared(fps, clip_seconds)
    out = Path(out) if out is not None else folder
    if not folder.is_dir():
        raise TempclrError(f"{folder}: no such folder of feature files")
    spec, dim, whence, text = _encoder(encoder, pretrained, dim)
    files, problems, flat = _plan(folder, out, suffix), [], False
    for f in files:
        try:
            array, convert = _load(f, out)
            flat = flat or array.ndim == 1
            f.shape = _checked(f.source, array, dim, whence)
        except TempclrError as e:
            problems.append(str(e))
            continue
        if dim is None:
            dim, whence = f.shape[1], f"the dim of {f.source}"
        if convert:  # written now, read once: a rerun after a refusal reuses it
            log(f"converting {f.source} -> {out / f.features}")
            io.save_npy(out / f.features, array)
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        hint = (
            (
                " (--suffix picks the feature files of a layout that keeps other arrays beside them: _clip for "
                "video_features' {video}_clip.npy)"
            )
            if flat and not suffix
            else ""
        )
        raise TempclrError(
            f"{len(problems)} of {len(files)} files refused, nothing indexed: " + "; ".join(problems[:5]) + more + hint
        )
    for f in files:
        if f.how == "linked":
            _link(f.source, out / f.features)
    _write_index(out / INDEX, [_row(f, spec, timing) for f in files])
    return IndexSummary(out / INDEX, spec, dim, files, text)


def _encoder(name: str, pretrained: str | None, dim: int | None) -> tuple[EncoderSpec, int | None, str, bool]:
    """The spec to record, the dim every file must have (None: the first file's) and where it
    comes from, and whether tempclr has a text tower for it."""
    try:
        info = find_encoder(name)
    except TempclrError:
        return EncoderSpec(name, pretrained or "unspecified"), dim, "--dim", False
    known = info.dim if isinstance(info.dim, int) else None
    if dim is not None and known is not None and dim != known:
        raise TempclrError(f"--dim {dim}: {name} embeds in {known} dimensions (`tempclr models`)")
    whence = "--dim" if dim is not None else f"{name}'s dim"
    return EncoderSpec(name, pretrained or info.default_weights or "unspecified"), dim or known, whence, info.text


def _plan(folder: Path, out: Path, suffix: str) -> list[Imported]:
    """The feature files under `folder` and what each becomes; two files for one video id are refused."""
    own = _made_here(folder)
    inside = out.resolve() != folder.resolve() and out.resolve().is_relative_to(folder.resolve())
    files: dict[str, Imported] = {}
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in FOREIGN_FORMATS and p.is_file()):
        rel = path.relative_to(folder)
        if str(rel) in own or (inside and path.resolve().is_relative_to(out.resolve())):
            continue  # what an earlier run linked or converted here
        stem = rel.with_suffix("")
        if not stem.name.endswith(suffix) or stem.name == suffix:
            continue
        video = str(stem.with_name(stem.name[: len(stem.name) - len(suffix)]))
        target = Path(video + ".npy")
        in_place = FOREIGN_FORMATS[path.suffix.lower()].in_place
        how = (
            "in place"
            if in_place and target == rel and out.resolve() == folder.resolve()
            else ("linked" if in_place else "converted")
        )
        if video in files:
            raise TempclrError(
                f"{files[video].source} and {path} are both video {video}: keep one, or index them "
                "into separate folders (-o)"
            )
        files[video] = Imported(video, path, target, how)
    if not files:
        kinds = ", ".join(FOREIGN_FORMATS)
        raise TempclrError(f"{folder}: no feature files ({kinds}){f' ending with {suffix}' if suffix else ''}")
    return list(files.values())


def _made_here(folder: Path) -> set[str]:
    """Features paths that an earlier `index` into `folder` linked or converted there: tempclr's, not the tool's."""
    made = set()
    for row in _rows(folder / INDEX):
        if row.get("imported", {}).get("how") in ("linked", "converted"):
            made.add(row["features"])
    return made


def _load(f: Imported, out: Path) -> tuple[np.ndarray, bool]:
    """The array of one file, and whether it is still to be converted: a conversion newer than
    its source is read instead of the source."""
    target = out / f.features
    if f.how == "converted" and target.exists() and target.stat().st_mtime_ns >= f.source.stat().st_mtime_ns:
        try:
            return _read_npy(target), False
        except TempclrError:  # cut short by hand: convert again
            pass
    return FOREIGN_FORMATS[f.source.suffix.lower()].read(f.source), f.how == "converted"


def _checked(path: Path, array: np.ndarray, dim: int | None, whence: str) -> tuple[int, int]:
    """(clips, dim) of a foreign array, or a TempclrError naming the file and what is wrong."""
    if array.ndim != 2:
        raise TempclrError(
            f"{path}: a {array.ndim}-D array of shape {tuple(array.shape)}; expected (clips, dim), "
            "one feature vector a row"
        )
    if not array.shape[0] or not array.shape[1]:
        raise TempclrError(f"{path}: empty array of shape {tuple(array.shape)}")
    if array.dtype.kind != "f":
        raise TempclrError(f"{path}: {array.dtype} values; expected floating-point features")
    if dim is not None and array.shape[1] != dim:
        raise TempclrError(f"{path}: dim {array.shape[1]}, but {whence} is {dim}")
    for lo in range(0, len(array), ROWS_CHECKED):
        finite = np.isfinite(array[lo : lo + ROWS_CHECKED]).all(axis=1)
        if not finite.all():
            raise TempclrError(f"{path}: clip {lo + int(np.argmin(finite))} holds NaN or inf")
    return int(array.shape[0]), int(array.shape[1])


def _link(source: Path, target: Path) -> None:
    """A symbolic link `target` -> `source`, replaced atomically (a reader sees the old link or the new)."""
    if target.is_symlink() and target.resolve() == source.resolve():
        return
    if target.exists() and not target.is_symlink():
        raise TempclrError(f"{target}: exists and is not a link to {source}; index into another folder (-o)")
    target.parent.mkdir(parents=True, exist_ok=True)
    link = target.with_name(f".{target.name}.{io.OWNER}.tmp")
    link.unlink(missing_ok=True)
    os.symlink(source.resolve(), link)
    os.replace(link, target)


def _row(f: Imported, spec: EncoderSpec, timing: Timing) -> dict:
    """The index row `tempclr extract` would write for these features (`features.load_matrix` reads it)."""
    starts, ends = timing.times(f.shape[0])
    return {
        "features": str(f.features),
        "clips": f.shape[0],
        "dim": f.shape[1],
        "starts": starts,
        "ends": ends,
        "duration": ends[-1],
        "fps": timing.fps,
        "clip_seconds": timing.clip_seconds,
        **spec.to_row(),
        "protocol": "imported",
        "imported": {"from": str(f.source.resolve()), "how": f.how},
        "status": "ok",
    }


def _rows(index: Path) -> list[dict]:
    rows = []
    if index.exists():
        for line in index.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:  # a row torn by a crash
                pass
    return rows


def _write_index(index: Path, rows: list[dict]) -> None:
    """Replace the rows of these features in `index` (others stay), in one atomic write."""
    mine = {r["features"] for r in rows}
    kept = [r for r in _rows(index) if r.get("features") not in mine]
    io.write_text(index, "".join(json.dumps(r) + "\n" for r in kept + rows))
