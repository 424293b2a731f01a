"""Checkpoints: written atomically, read with `torch.load(weights_only=True)`.

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


def load_checkpoint(path: str | Path, device="cpu", kinds: tuple[str, ...] | None = None) -> dict:
    """Read a tempclr checkpoint; with `kinds`, fail clearly unless its `kind` is one of them."""
    path = Path(path)
    if not path.is_file():
        raise TempclrError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # noqa: BLE001 - corrupt files fail in many ways
        raise TempclrError(f"{path}: not a readable tempclr checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict):
        raise TempclrError(f"{path}: not a tempclr checkpoint (a {type(state).__name__}, not a dict)")
    if kinds and state.get("kind") not in kinds:
        wanted = " or ".join(KINDS[k] for k in kinds)
        found = KINDS.get(state.get("kind"), repr(state.get("kind")))
        hint = "; train one with a loss.kind: classify recipe" if kinds == ("classify",) else ""
        raise TempclrError(f"{path}: not a {wanted} checkpoint (it holds a {found} run){hint}")
    return state


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
        raise TempclrError(f"{source}: does not match {what}'s layout ({'; '.join(wrong[:5])}"
                           f"{' ...' if len(wrong) > 5 else ''})")
    return model
