"""YAML recipes: typed sections, inheritance (`base:`), `--set` overrides, strict validation.

A recipe file is plain YAML read with `yaml.safe_load`. Every key must exist in the
dataclasses below, so a typo stops the run instead of quietly training on a default:

    optim.lrr: unknown key in recipes/x.yaml; did you mean optim.lr?

`base: other.yaml` inherits another recipe (deep merge; paths relative to the file).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from tempclr_cli.core.align import measures
from tempclr_cli.core.checkpoint import KINDS
from tempclr_cli.core.data import layouts
from tempclr_cli.core.data.splits import ACTION_LAYOUTS
from tempclr_cli.core.errors import TempclrError

# data.format: an action layout (TCLR, classification) or a step-annotation layout read without options (TempCLR)
DATA_FORMATS = (*ACTION_LAYOUTS, *(name for name, lay in layouts.layouts().items() if not lay.options))

REQUIRED = dataclasses.MISSING


def _range(lo: float | None = None, hi: float | None = None, **kw) -> Any:
    """A field with an allowed closed range, checked on load."""
    return field(metadata={"range": (lo, hi)}, **kw)


@dataclass
class DataConfig:
    """Where the data lives and how it is read."""

    root: str  # dataset folder (videos, or features for TempCLR); required
    format: Literal[DATA_FORMATS] = "ucf101"  # splits.ACTION_LAYOUTS or data.layouts, the two tables
    annotations: str | None = None  # annotation file/folder, relative to the recipe if not absolute
    split: int = _range(1, 3, default=1)
    clip_frames: int = _range(1, None, default=16)
    stride: int = _range(1, None, default=4)
    size: int = _range(16, None, default=112)
    hflip: float = _range(0.0, 1.0, default=0.5)  # TCLR augmentation: mirror probability (0: direction matters)
    augment: Literal["pretraining", "linear"] = (
        "pretraining"  # TCLR strengths: pre-training, or the lighter linear/fine-tune set
    )
    crop_x: Literal["uniform", "released"] = (
        "uniform"  # TCLR crop x-range: uniform, or the release's left-leaning range
    )
    short_videos: Literal["released", "loop"] = "released"  # TCLR: drop <= (frames-2) x stride, mirror-pad; or loop all
    units: int = _range(
        1, None, default=5
    )  # TempCLR: steps per sequence (the release's 5); fewshot: segments per video
    unit: Literal["pooled", "clips"] = "pooled"  # TempCLR: a step's clips pooled into one unit, or each clip a unit
    label_fraction: float = _range(0.0, 1.0, default=1.0)
    val_fraction: float = _range(0.0, 0.9, default=0.0)  # classify: held-out share of train for validation (best.pt)
    num_workers: int = _range(0, None, default=4)


@dataclass
class ModelConfig:
    name: Literal["r3d18", "r2plus1d18", "r3d18-small", "tempclr-heads", "videoclip"] = "r3d18"
    channels: Literal["bgr", "rgb"] = "bgr"  # TCLR: colour order the backbone sees (the release's, OpenCV's: BGR)
    batchnorm: Literal["per-view", "joint"] = (
        "per-view"  # TCLR pre-training: one pass per view/clip (released) or one joint pass
    )
    bn_stats: Literal["update", "frozen"] = (
        "update"  # classify with freeze: BN in train mode (released) or kept as pre-trained
    )
    dim: int = _range(1, None, default=512)  # feature width (TempCLR heads: input feature dim)
    proj_dim: int = _range(1, None, default=128)
    layers: int = _range(0, None, default=1)
    dropout: float = _range(0.0, 1.0, default=0.1)
    checkpoint: str | None = None  # initialise from this checkpoint (classify: a TCLR run)
    freeze: bool = False  # classify: train only the classifier (linear evaluation)
    train: Literal["layernorm", "all"] = "layernorm"  # videoclip: TempCLR's LayerNorm-only fine-tuning, or every weight
    tokenizer: str | None = (
        None  # videoclip: bert-base-uncased's tokenizer folder (default: tokenizer/ beside, the cache)
    )


LOSS_MEASURES = measures.names("loss")
TASK_KINDS = tuple(KINDS)


@dataclass
class LossConfig:
    kind: Literal[TASK_KINDS] = "tclr"  # a registered training task (core.checkpoint.KINDS)
    temperature: float | None = _range(1e-4, None, default=None)  # None: the method's (TCLR 0.1, TempCLR 1)
    scaling: Literal["official", "mean"] = "official"  # TCLR: the released unweighted sum, or each term a mean CE
    ic_global: float = _range(0.0, None, default=1.0)
    ic_local: float = _range(0.0, None, default=1.0)
    local_local: float = _range(0.0, None, default=1.0)
    global_local: float = _range(0.0, None, default=1.0)
    distance: Literal[LOSS_MEASURES] = "softdtw"  # a differentiable measure of align.measures
    gamma: float = _range(1e-4, None, default=0.1)
    band: int | None = _range(
        0, None, default=None
    )  # a Sakoe-Chiba radius (cells) on the sequence distance; None: none
    negatives: int = _range(1, None, default=31)
    shuffle: Literal["steps", "steps+units", "steps-or-units"] = "steps"  # TempCLR negatives (see tempclr_heads)
    clip_similarity: Literal["dot", "cosine"] = "dot"  # TempCLR clip-caption term: raw dots, or cosine / temperature
    sequence_weight: float = _range(0.0, None, default=0.7)
    clip_weight: float = _range(0.0, None, default=0.3)


@dataclass
class OptimConfig:
    lr: float = _range(0.0, None, default=1e-3)
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = _range(0.0, None, default=0.0)
    warmup: list[float] = field(default_factory=lambda: [0.01, 0.05, 0.1, 0.5, 1.0])
    plateau_patience: int = _range(0, None, default=9)
    plateau_factor: float = _range(0.0, 1.0, default=0.1)
    plateau_count: Literal["consecutive", "cumulative"] = (
        "consecutive"  # bad epochs in a row (pre-training) or since the last drop (linear eval)
    )
    grad_clip: float | None = None


@dataclass
class TrainConfig:
    epochs: int = _range(1, None, default=100)
    batch_size: int = _range(1, None, default=40)
    amp: bool = True
    checkpoint_every: int = _range(1, None, default=10)
    log_every: int = _range(1, None, default=10)
    seed: int = 0


@dataclass
class EvalConfig:
    clips: int = _range(1, None, default=9)
    crop: float = _range(0.1, 1.0, default=0.8)  # TCLR evaluation: centre crop, share of the short side
    topk: list[int] = field(default_factory=lambda: [1, 5, 10, 20])


# the published temperature of each method, where a recipe sets none
DEFAULT_TEMPERATURE = {"tclr": 0.1, "tempclr": 1.0, "classify": 1.0, "fewshot": 1.0, "videoclip": 1.0}


@dataclass
class Recipe:
    """A whole recipe; each section is its own dataclass."""

    data: DataConfig
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self):
        if self.loss.temperature is None:
            self.loss.temperature = DEFAULT_TEMPERATURE[self.loss.kind]


# --- loading -----------------------------------------------------------------


def shipped_recipe(name: str) -> Path:
    """A recipe shipped with the package (the repository's recipes/ folder), by file name."""

    for folder in _shipped_folders():
        if (folder / name).is_file():
            return folder / name
    raise TempclrError(f"{name}: no such shipped recipe")


def _shipped_folders() -> list[Path]:
    import tempclr_cli

    package = Path(tempclr_cli.__file__).resolve().parent
    return [package / "recipes", package.parent / "recipes"]  # installed: package data; a checkout: beside it


def shipped_recipes() -> list[str]:
    """The names of the recipes shipped with the package (without .yaml), sorted."""
    return sorted({p.stem for folder in _shipped_folders() if folder.is_dir() for p in folder.glob("*.yaml")})


def describe_recipe(name: str) -> dict:
    """What a shipped recipe trains, for `train --list`: its `loss.kind` (bases resolved) and
    the first sentence of its header comment."""
    path = shipped_recipe(f"{name}.yaml")
    header = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        header.append(line.lstrip("# ").strip())
    about = " ".join(header).split(". ")[0].rstrip(".")
    return {"name": name, "kind": load_recipe(path).loss.kind, "about": about}


def find_recipe(arg: str | Path) -> Path:
    """The recipe a user names: a file that exists, else the shipped recipe of that name
    (`recipes/tclr_ucf.yaml` from any folder, `tclr_ucf.yaml`, or `tclr_ucf`)."""
    path = Path(arg)
    if path.is_file():
        return path
    name = path.name if path.suffix in (".yaml", ".yml") else f"{path.name}.yaml"
    for folder in _shipped_folders():
        if (folder / name).is_file():
            return folder / name
    raise TempclrError(
        f"{arg}: recipe not found, here or among the shipped ones ({', '.join(shipped_recipes())}; "
        "`tempclr train --list`)"
    )


def load_recipe(path: str | Path, overrides: list[str] = ()) -> Recipe:
    """Read `path` (following `base:`), apply `key.sub=value` overrides, validate."""
    path = Path(path)
    raw = _read_with_bases(path, seen=())
    recipe = _build(Recipe, raw, prefix="", source=str(path))
    if not overrides:
        return recipe
    for item in overrides:
        _apply_override(raw, item)
    return _build(Recipe, raw, prefix="", source=f"--set overrides (recipe {path})")


def recipe_from_dict(raw: dict, source: str = "a recipe", overrides: list[str] = ()) -> Recipe:
    """Validate a recipe given as a dict (as if read from YAML, e.g. the one a checkpoint
    stores), after `key.sub=value` overrides; `source` names it in errors."""
    raw = copy.deepcopy(raw)
    for item in overrides:
        _apply_override(raw, item)
    return _build(Recipe, raw, prefix="", source=f"--set overrides ({source})" if overrides else source)


def recipe_to_dict(recipe: Recipe) -> dict:
    return dataclasses.asdict(recipe)


def recipe_to_yaml(recipe: Recipe) -> str:
    return yaml.safe_dump(recipe_to_dict(recipe), sort_keys=False)


def _read_yaml(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TempclrError(f"{path}: recipe not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise TempclrError(f"{path}: cannot read recipe ({e})") from None
    try:
        raw = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError) as e:  # ValueError: an integer of over 4300 digits
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        what = (
            " ".join(filter(None, (getattr(e, "context", None), getattr(e, "problem", None)))) or str(e).splitlines()[0]
        )
        raise TempclrError(f"{path}{where}: invalid YAML ({what})") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise TempclrError(f"{path}: a recipe must be a mapping of sections, got {type(raw).__name__}")
    return raw


def _read_with_bases(path: Path, seen: tuple[Path, ...]) -> dict:
    resolved = path.resolve()
    if resolved in seen:
        raise TempclrError(f"{path}: 'base' chain loops back to itself")
    raw = _read_yaml(path)
    _resolve_relative_paths(raw, path.parent)
    base = raw.pop("base", None)
    if base is None:
        return raw
    if not isinstance(base, str):
        raise TempclrError(f"base: must be a file name in {path}")
    parent = _read_with_bases(path.parent / base, seen + (resolved,))
    return _deep_merge(parent, raw)


_PATH_KEYS = {("data", "root"), ("data", "annotations"), ("model", "checkpoint")}


def _resolve_relative_paths(raw: dict, folder: Path) -> None:
    """Paths inside a recipe are relative to the recipe's own folder."""
    for section, key in _PATH_KEYS:
        value = raw.get(section, {}).get(key) if isinstance(raw.get(section), dict) else None
        if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
            raw[section][key] = str((folder / value).resolve())


def _deep_merge(base: dict, top: dict) -> dict:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _apply_override(raw: dict, item: str) -> None:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise TempclrError(f"--set {item!r}: expected KEY=VALUE, e.g. --set optim.lr=3e-4")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except (yaml.YAMLError, ValueError):
        parsed = value
    node = raw
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise TempclrError(f"--set {item!r}: {part} is not a section")
    node[parts[-1]] = parsed


def _all_keys(cls, prefix: str = "") -> list[str]:
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        path = f"{prefix}{f.name}"
        keys.append(path)
        if dataclasses.is_dataclass(hints[f.name]):
            keys.extend(_all_keys(hints[f.name], path + "."))
    return keys


def _unknown_key(path: str, source: str) -> TempclrError:
    close = difflib.get_close_matches(path, _all_keys(Recipe), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else ""
    return TempclrError(f"{path}: unknown key in {source}{hint}")


def _build(cls, raw: Any, prefix: str, source: str):
    where = prefix.rstrip(".") or "recipe"
    if not isinstance(raw, dict):
        raise TempclrError(f"{where}: expected a section (mapping) in {source}, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in names:
            raise _unknown_key(f"{prefix}{key}", source)
    values = {}
    for f in dataclasses.fields(cls):
        path = f"{prefix}{f.name}"
        if f.name not in raw:
            if f.default is REQUIRED and f.default_factory is REQUIRED:
                if dataclasses.is_dataclass(hints[f.name]):
                    values[f.name] = _build(hints[f.name], {}, path + ".", source)
                    continue
                raise TempclrError(f"{path}: required but missing in {source}")
            continue
        if dataclasses.is_dataclass(hints[f.name]):
            values[f.name] = _build(hints[f.name], raw[f.name] or {}, path + ".", source)
        else:
            values[f.name] = _check(raw[f.name], hints[f.name], f, path, source)
    return cls(**values)


def _check(value: Any, hint: Any, f: dataclasses.Field, path: str, source: str) -> Any:
    value = _coerce(value, hint, path, source)
    for v in value if isinstance(value, list) else [value]:
        if isinstance(v, float) and not math.isfinite(v):
            raise TempclrError(f"{path}: {v} is not a finite number in {source}")
        if isinstance(v, int) and abs(v) >= 2**63:  # no count or seed is that large; torch would overflow
            raise TempclrError(f"{path}: {str(v)[:12]}... ({len(str(v))} digits) is too large in {source}")
    lo, hi = f.metadata.get("range", (None, None))
    if value is not None and not isinstance(value, bool):
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            bounds = f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"
            raise TempclrError(f"{path}: {value} is out of range {bounds} in {source}")
    return value


def _coerce(value: Any, hint: Any, path: str, source: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], path, source)
    if origin is Literal:
        if value not in args:
            choices = ", ".join(map(str, args))
            raise TempclrError(f"{path}: {value!r} is not one of {choices} in {source}")
        return value
    if origin is list:
        if not isinstance(value, list):
            value = [value]
        return [_coerce(v, args[0], f"{path}[{i}]", source) for i, v in enumerate(value)]
    if hint is float and isinstance(value, (int, str)) and not isinstance(value, bool):
        try:  # YAML 1.1 reads `3e-4` (no dot) as a string
            return float(value)
        except ValueError:
            pass
    if (isinstance(value, bool) and hint is not bool) or not isinstance(value, hint):
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise TempclrError(f"{path}: expected {hint.__name__}, got {shown} in {source}")
    return value
