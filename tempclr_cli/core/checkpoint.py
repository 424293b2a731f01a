"""Checkpoints, the one front door: what a file is, told from its bytes (`identify`), tempclr's own
written atomically and read with `torch.load(weights_only=True)`, and fairseq's released VideoCLIP /
TempCLR files read without running their code (`read_fairseq`).

A checkpoint is a plain dict of tensors and Python scalars/containers; RNG states are
converted to such types so that `weights_only` loading accepts them.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from tempclr_cli.core import io
from tempclr_cli.core.errors import TempclrError


def save_checkpoint(path: str | Path, state: dict) -> Path:
    path = Path(path)
    with io.atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


# every `kind` of checkpoint (one per training task: `loss.kind`), and what it holds as error messages name it;
# the one list of kinds (recipes, the task registry and the loader read it)
KINDS = {
    "tempclr": "TempCLR heads",
    "tclr": "TCLR",
    "classify": "classification",
    "fewshot": "few-shot video heads",
    "videoclip": "TempCLR-tuned VideoCLIP",
}


ACCEPTED = (
    "a `tempclr train` run's last.pt / best.pt, an authors' TCLR .pth, a VideoCLIP / TempCLR checkpoint "
    "(fairseq .pt) or its `tempclr convert` .safetensors"
)
PUBLISHED = (
    "VideoCLIP's checkpoint_best.pt is published in fairseq's examples/MMPT README and TempCLR's "
    "checkpoint_layernorm_DTW / _OTAM / checkpoint_allparameters_DTW in github.com/yyuncong/TempCLR's README; "
    "README.md, 'Run TempCLR's released model', says how to fetch and convert them"
)
_RELEASED_NAMES = ("checkpoint_best", "checkpoint_layernorm_", "checkpoint_allparameters_", "tempclr_", "videoclip")
_PICKLE_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"  # torch.save's legacy format


def identify(path: str | Path, expected: str = ACCEPTED) -> str:
    """What a checkpoint file is, read from its first bytes, never from its name: "safetensors",
    "fairseq" (a released VideoCLIP / TempCLR checkpoint: it pickles fairseq's argparse / omegaconf
    configuration) or "torch" (any other `torch.save` file: a tempclr run, an authors' TCLR .pth).
    A missing file, a folder or anything else is refused with what is accepted (a missing file
    named like a released checkpoint, with where those are published), before any other file
    (a tokenizer, a base model) is looked for; `expected` names what the caller takes."""
    path = Path(path)
    if path.is_dir():
        raise TempclrError(f"{path}: is a folder; expected {expected}")
    if not path.is_file():
        released = path.suffix == ".safetensors" or path.name.startswith(_RELEASED_NAMES)
        what = "checkpoint not found" if expected == ACCEPTED else f"not found; expected {expected}"
        raise TempclrError(f"{path}: {what}" + (f"; {PUBLISHED}" if released else ""))
    with open(path, "rb") as f:
        head = f.read(len(_PICKLE_MAGIC))
    size = path.stat().st_size
    if head.startswith(b"PK\x03\x04"):  # torch.save's zip format
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        except Exception as e:  # noqa: BLE001 - a zip that torch cannot read: torn or foreign
            raise TempclrError(
                f"{path}: a damaged or foreign zip file ({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
                f"expected {expected}"
            ) from None
        return "fairseq" if any(n.startswith(("argparse", "omegaconf")) for n in names) else "torch"
    if head == _PICKLE_MAGIC:
        return "torch"
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") + 8 <= size:
        return "safetensors"
    what = "an empty file" if size == 0 else "not a file of weights"
    raise TempclrError(f"{path}: {what}; expected {expected}")


def read_weights(path: str | Path, what: str = "a checkpoint") -> object:
    """What a weights file holds, whatever wrote it (released S3D weights, a tensor of features, a
    safetensors file): checked by `identify` first, then read with `weights_only` (a pickle that
    names code is refused, never run) or safetensors' own reader; a file that cannot be read is one
    error naming it and `what` was expected."""
    path = Path(path)
    kind = identify(path, what)
    try:
        if kind == "safetensors":
            from safetensors.torch import load_file

            return load_file(path)
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - a pickle with code, a torn file: one clear refusal
        raise TempclrError(
            f"{path}: cannot read it safely as {what} ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
        ) from None


def load_checkpoint(path: str | Path, device="cpu", kinds: tuple[str, ...] | None = None) -> dict:
    """Read a tempclr checkpoint; with `kinds`, fail clearly unless its `kind` is one of them."""
    path = Path(path)
    if identify(path) != "torch":
        raise TempclrError(f"{path}: a released VideoCLIP / TempCLR checkpoint, not a `tempclr train` run's")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # noqa: BLE001 - corrupt files fail in many ways
        raise TempclrError(f"{path}: a damaged checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict):
        raise TempclrError(f"{path}: not a tempclr checkpoint (a {type(state).__name__}, not a dict)")
    check_kind(state, path, kinds)
    return state


def check_kind(state: dict, path: str | Path, kinds: tuple[str, ...] | None) -> None:
    """With `kinds`, fail clearly unless the checkpoint's `kind` is one of them."""
    if kinds and state.get("kind") not in kinds:
        wanted = " or ".join(KINDS[k] for k in kinds)
        found = KINDS.get(state.get("kind"), repr(state.get("kind")))
        hint = "; train one with a loss.kind: classify recipe" if kinds == ("classify",) else ""
        raise TempclrError(f"{path}: not a {wanted} checkpoint (it holds a {found} run){hint}")


# --- fairseq checkpoints (VideoCLIP / TempCLR as released), read without running their code ---------------

CONFIG_MODULES = (  # what a fairseq checkpoint may name: configuration, read into inert stand-ins
    "argparse",
    "omegaconf",
    "fairseq",
    "mmpt",
    "tempclr",
    "typing",
    "enum",
    "collections",
    "pathlib",
    "numpy",
)
_UNSAFE = (
    "os",
    "posix",
    "nt",
    "subprocess",
    "builtins",
    "sys",
    "shutil",
    "importlib",
    "runpy",
    "code",
    "pty",
    "socket",
    "pickle",
    "io",
    "functools",
    "operator",
    "torch._C",
    "eval",
    "exec",
)


class _Inert:
    """Stands in for a config class while unpickling: keeps whatever state it is given."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state):
        self.state = state

    def __call__(self, *args, **kwargs):  # a config enum or factory called during unpickling
        return _Inert(*args, **kwargs)


def _stand_ins(names: list[str], path) -> list[tuple[type, str]]:
    """An inert class per global the checkpoint names, or an error naming one that is not a config."""
    refused = [
        n for n in names if not n.startswith(CONFIG_MODULES) or n.split(".")[-1] in _UNSAFE or n.startswith(_UNSAFE)
    ]
    if refused:
        raise TempclrError(
            f"{path}: refused, it names {', '.join(refused[:5])} (code, not configuration "
            "or weights); tempclr never runs a checkpoint's code"
        )
    return [(type(n.rsplit(".", 1)[-1], (_Inert,), {}), n) for n in names]


def read_fairseq(path: str | Path) -> object:
    """A fairseq checkpoint (VideoCLIP / TempCLR as released): read with `weights_only`, each
    configuration class it names (argparse, omegaconf, fairseq's dataclasses) an inert stand-in
    that keeps its state, and any other global (code: os, subprocess, builtins, ...) refused by
    name. tempclr never runs a checkpoint's code."""
    path = Path(path)
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        with torch.serialization.safe_globals(_stand_ins(names, path)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except TempclrError:
        raise
    except Exception as e:  # noqa: BLE001 - a torn or foreign file: one clear refusal
        raise TempclrError(
            f"{path}: cannot read it as a checkpoint ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
        ) from None


def rng_state() -> dict:
    """Python, NumPy and torch RNG states as weights_only-safe values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def load_strictly(model: torch.nn.Module, state: dict, source, what: str) -> torch.nn.Module:
    """`model.load_state_dict(state)`, strict, with a TempclrError that names the keys that do not
    fit (the first five) or the tensor of the wrong shape: `what` is the layout expected."""
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # a tensor of the wrong shape
        raise TempclrError(f"{source}: does not match {what}'s layout ({str(e).splitlines()[-1].strip()})") from None
    wrong = [f"missing {k}" for k in result.missing_keys] + [f"unexpected {k}" for k in result.unexpected_keys]
    if wrong:
        raise TempclrError(
            f"{source}: does not match {what}'s layout ({'; '.join(wrong[:5])}{' ...' if len(wrong) > 5 else ''})"
        )
    return model
