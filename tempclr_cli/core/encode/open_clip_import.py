"""open_clip, imported without the two modules a CLIP model never uses at run time.

`import open_clip` costs about 2.3 s, most of it in two imports that no tempclr command
needs: torchvision's detection ops import `torch._dynamo` (the compiler, 1.2 s) for one
helper that they call only while compiling, and open_clip imports timm for its
timm-backed towers, which loads the compiler too. A shell loop that aligns one video
per call pays this on every call (benchmarks/align.py).

`import_open_clip(model)` imports open_clip with a stand-in for `torch._dynamo.utils`
and without timm, then takes both away again, so a later `import torch._dynamo` or
`import timm` gets the real module. The stand-in is a lazy proxy: any name it lacks
loads the real module on first use, so a newer torchvision that needs more of it is
only slower, never wrong. timm is left out only when `model` is known not to need it;
a timm-backed tower asked for later in the same process re-imports open_clip's timm
adapter with timm present (`ensure_timm`).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import types
from pathlib import Path

_DYNAMO_UTILS = "torch._dynamo.utils"


class _LazyDynamoUtils(types.ModuleType):
    """Stands in for `torch._dynamo.utils` while open_clip imports; the real module loads
    the first time anything but `is_compile_supported` is looked up on it."""

    def __getattr__(self, name: str):
        if name.startswith("__"):  # the import system asks for __path__ & co.: a plain module has none
            raise AttributeError(name)
        return getattr(_real_dynamo_utils(), name)

    @staticmethod
    def is_compile_supported(device_type) -> bool:  # torchvision calls it only inside torch.compile
        return _real_dynamo_utils().is_compile_supported(device_type)


def _real_dynamo_utils():
    if isinstance(sys.modules.get(_DYNAMO_UTILS), _LazyDynamoUtils):
        del sys.modules[_DYNAMO_UTILS]
    return importlib.import_module(_DYNAMO_UTILS)


def import_open_clip(model: str | None = None):
    """The open_clip module, imported lean when it is not yet imported (module docstring);
    with timm's adapter working whenever `model` needs timm (None: unknown, so it does)."""
    needs_timm = _needs_timm(model)
    if "open_clip" not in sys.modules:
        import torch  # noqa: F401 - the stand-in lives under torch's package

        stand_ins = {}
        if "torch._dynamo" not in sys.modules:
            stand_ins[_DYNAMO_UTILS] = _LazyDynamoUtils(_DYNAMO_UTILS)
        if "timm" not in sys.modules and not needs_timm:
            stand_ins["timm"] = None  # `import timm` raises ImportError: open_clip's adapter goes without
        sys.modules.update(stand_ins)
        try:
            import open_clip  # noqa: F401
        finally:
            for name, module in stand_ins.items():
                if name in sys.modules and sys.modules[name] is module:
                    del sys.modules[name]
    if needs_timm:
        ensure_timm()
    return sys.modules["open_clip"]


def ensure_timm() -> None:
    """Re-run open_clip's timm adapter import if a lean import left it without timm (its
    classes share the module's globals, so they see timm afterwards)."""
    adapter = sys.modules.get("open_clip.timm_model")
    if adapter is not None and adapter.timm is None and importlib.util.find_spec("timm") is not None:
        importlib.reload(adapter)


def _needs_timm(model: str | None) -> bool:
    """False only for a model whose config file (tempclr's or open_clip's) names no timm tower."""
    if model is None or model.startswith(("local-dir:", "hf-hub:")):
        return True
    config = config_file(model)
    if config is None:
        return True
    vision = json.loads(config.read_text()).get("vision_cfg", {})
    return bool(vision.get("timm_model_name"))


def _config_dirs() -> list[Path]:
    """tempclr's shipped configs, then open_clip's own, found without importing open_clip."""
    spec = importlib.util.find_spec("open_clip")
    roots = (spec.submodule_search_locations or []) if spec else []
    return [Path(__file__).parent / "model_configs", *(Path(root) / "model_configs" for root in roots)]


def open_clip_configs() -> list[Path]:
    """Every architecture's config file, sorted by name (the first of a name wins)."""
    found: dict[str, Path] = {}
    for folder in _config_dirs():
        for path in sorted(folder.glob("*.json")):
            found.setdefault(path.stem, path)
    return [found[k] for k in sorted(found, key=str.lower)]


def config_file(model: str) -> Path | None:
    """The model's JSON config, found without importing open_clip."""
    for folder in _config_dirs():
        if (folder / f"{model}.json").is_file():
            return folder / f"{model}.json"
    return None
