"""open_clip, imported without the modules a plain CLIP model never uses at run time.

`import open_clip` costs about 2.3 s, most of it in imports that no tempclr command needs:
torchvision's detection ops import `torch._dynamo` (the compiler, 1.2 s) for one helper
that they call only while compiling; open_clip imports timm for its timm-backed towers,
which loads the compiler too; and it imports Hugging Face `transformers` (about 0.9 s,
where the dev or videoclip extras installed it) for its HF text towers. A shell loop that
aligns one video per call pays this on every call (benchmarks/align.py).

`import_open_clip(model)` imports open_clip with stand-ins for `torch._dynamo.utils`,
`wcwidth` (ftfy, open_clip's text cleaner, binds two of wcwidth's functions it uses only to
pad text for display), and torchvision's `models` and `datasets` (`STAND_INS`), and without
timm or transformers, then takes them away again, so a later `import torch._dynamo`, `import
wcwidth`, `import torchvision.models`, `import timm` or `import transformers` gets the real
module. A stand-in is a lazy proxy: its functions, and any name
it lacks, load the real module on first use, so a newer importer that needs more of it is
only slower, never wrong. timm and transformers are
left out only when `model`'s config is known not to need them; a tower that needs one,
asked for later in the same process, re-imports open_clip's adapter module with the
library present (`ensure_adapters`).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import sys
import types
from pathlib import Path


class _StandIn(types.ModuleType):
    """Stands in for module `name` while open_clip imports. Each of `deferred` (the names the
    importer binds) is a function that loads the real module when it is called; any other name
    loads it the moment it is looked up, so a newer importer that needs more is only slower."""

    def __init__(self, name: str, deferred: tuple[str, ...]):
        super().__init__(name)
        for function in deferred:
            setattr(self, function, functools.partial(_call_real, name, function))

    def __getattr__(self, name: str):
        if name.startswith("__"):  # the import system asks for __path__ & co.: a plain module has none
            raise AttributeError(name)
        return getattr(_real(self.__name__), name)


def _real(name: str):
    if isinstance(sys.modules.get(name), _StandIn):
        del sys.modules[name]
    return importlib.import_module(name)


def _call_real(module: str, function: str, *args, **kwargs):
    return getattr(_real(module), function)(*args, **kwargs)


# module -> the functions its importer binds: torchvision's detection ops call `is_compile_supported`
# only inside torch.compile (the compiler: 1.2 s); ftfy binds wcwidth's two width functions for its
# display helpers, which tokenizing never calls (wcwidth 0.7's tables: 0.12 s); torchvision's package
# binds its model zoo and datasets, which open_clip never touches (0.1 s; open_clip needs one layer
# from torchvision.ops and the transforms)
STAND_INS = {
    "torch._dynamo.utils": ("is_compile_supported",),
    "wcwidth": ("wcswidth", "wcwidth"),
    "torchvision.models": (),
    "torchvision.datasets": (),
}


# library -> (open_clip's module that imports it inside try/except ImportError, the name it binds there)
ADAPTERS = {
    "timm": ("open_clip.timm_model", "timm"),
    "transformers": ("open_clip.hf_model", "transformers"),
    "huggingface_hub": ("open_clip.pretrained", "hf_hub_download"),  # downloads weights (and httpx: 0.5 s)
}
TOWERS = {  # library -> the config keys of a tower that needs it
    "timm": ("vision_cfg", ("timm_model_name",)),
    "transformers": ("text_cfg", ("hf_model_name", "hf_tokenizer_name")),
}
OFFLINE_WEIGHTS = ("none", "synthetic")  # random, or shipped: nothing to download


def import_open_clip(model: str | None = None, pretrained: str | None = None):
    """The open_clip module, imported lean when it is not yet imported (module docstring);
    with timm's and transformers' adapters working whenever `model` needs them (None:
    unknown, so it does), and the hub's whenever `pretrained` may be downloaded."""
    needed = _needs(model, pretrained)
    if "open_clip" not in sys.modules:
        import torch  # noqa: F401 - the stand-in lives under torch's package

        stand_ins = {
            name: _StandIn(name, deferred)
            for name, deferred in STAND_INS.items()
            if name not in sys.modules and name.rpartition(".")[0] not in sys.modules  # nor its package
        }
        for library in ADAPTERS:
            if library not in sys.modules and library not in needed:
                stand_ins[library] = None  # `import library` raises ImportError: open_clip's adapter goes without
        sys.modules.update(stand_ins)
        try:
            import open_clip  # noqa: F401
        finally:
            for name, module in stand_ins.items():
                if name in sys.modules and sys.modules[name] is module:
                    del sys.modules[name]
    ensure_adapters(needed)
    return sys.modules["open_clip"]


def ensure_adapters(libraries) -> None:
    """Re-run the import of open_clip's adapter for each of `libraries` that a lean import left
    without it (the adapter's classes share the module's globals, so they see it afterwards)."""
    for library in libraries:
        module, name = ADAPTERS[library]
        adapter = sys.modules.get(module)
        if adapter is not None and getattr(adapter, name, None) is None and importlib.util.find_spec(library):
            importlib.reload(adapter)


def _needs(model: str | None, pretrained: str | None = None) -> set[str]:
    """The adapter libraries `model` with `pretrained` needs: a tower's library only for a model
    whose config file (tempclr's or open_clip's) names that tower, the hub only for weights that
    may be downloaded (a tag; not 'none', 'synthetic' or a local file); all of them for what is not
    known here."""
    if model is None or model.startswith(("local-dir:", "hf-hub:")) or (config := config_file(model)) is None:
        return set(ADAPTERS)
    cfg = json.loads(config.read_text())
    needed = {
        library for library, (section, keys) in TOWERS.items() if any(cfg.get(section, {}).get(key) for key in keys)
    }
    local = pretrained is not None and (pretrained in OFFLINE_WEIGHTS or Path(pretrained).expanduser().is_file())
    return needed if local else needed | {"huggingface_hub"}


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
