"""Shared fixtures. Tests run single-threaded (two busy OpenMP pools on 2 cores crawl)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)

DATA = Path(__file__).parent / "data"


def pytest_collection_modifyitems(config, items):
    """`cuda` tests run only where torch sees a GPU; elsewhere they are skipped and say why."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device (torch.cuda.is_available() is False)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def reference() -> dict:
    """Values computed with the authors' formulas (copied from shared/vectors)."""
    return json.loads((DATA / "reference_values.json").read_text())


def _entries(root: Path) -> dict[str, tuple[int, int] | None]:
    """Every file (size, mtime) and folder (None) under root: what a test that writes into it changes."""
    return {
        str(p.relative_to(root)): None if p.is_dir() else (p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in root.rglob("*")
    }


@contextmanager
def kept_pristine(root: Path) -> Iterator[None]:
    """Fails the session's last user of a shared fixture if any test added, changed or removed a file under root.

    Session fixtures are built once per test process and read by many modules: a test that writes into one
    would make the next test's outcome depend on the order xdist happens to run them in."""
    before = _entries(root)
    yield
    after = _entries(root)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, (
        f"a test wrote into the shared fixture {root} ({', '.join(changed[:5])}): "
        "copy it into tmp_path first (shutil.copytree)"
    )


def synthesized(data: Path, feats: Path, cfg, pretrained: str) -> None:
    """`tempclr synth`'s dataset for cfg under data and its tiny-encoder features under feats, as
    `tempclr extract DATA/videos -o FEATS --model tiny --pretrained PRETRAINED --workers 0` writes them.

    feats is packed for search here, as the first `tempclr search` of it would pack it (beside its index), so
    that searching a shared store writes nothing into it."""
    from tempclr_cli.core.data.packed import pack
    from tempclr_cli.core.encode.extract import ExtractConfig, extract_videos
    from tempclr_cli.core.media.synth import generate

    list(generate(data, cfg))
    done = extract_videos([str(data / "videos")], feats, ExtractConfig(workers=0), "tiny", pretrained, device="cpu")
    assert done["ok"] == cfg.videos and not done["failed"], done
    pack(feats)


@pytest.fixture(scope="session")
def step_dataset(tmp_path_factory) -> Iterator[tuple[Path, Path]]:
    """30 synthetic step videos (data: videos/, steps/, YouCookII annotations) and their tiny/none features."""
    from tempclr_cli.core.media.synth import SynthConfig

    root = tmp_path_factory.mktemp("steps")
    data, feats = root / "data", root / "features"
    synthesized(data, feats, SynthConfig(videos=30, classes=0, seed=5), "none")
    with kept_pristine(root):
        yield data, feats


@pytest.fixture(scope="session")
def synthetic_store(tmp_path_factory) -> Iterator[Path]:
    """Six synthetic step videos (videos/, steps/, YouCookII annotations) and their tiny/synthetic features in
    feats/, whose text tower tells the steps' sentences apart (test_search, test_foreign_features)."""
    from tempclr_cli.core.media.synth import SynthConfig

    root = tmp_path_factory.mktemp("store")
    synthesized(root, root / "feats", SynthConfig(videos=6, classes=0, class_videos=0, seed=38), "synthetic")
    with kept_pristine(root):
        yield root


@pytest.fixture(scope="session")
def tclr_actions(tmp_path_factory) -> Iterator[Path]:
    """Four synthetic action classes of four 3-s clips each (UCF101 layout, split lists beside them), at 24 fps
    so that TCLR's 16-frame clips at stride 4 fit (test_tclr)."""
    from tempclr_cli.core.media.synth import SynthConfig, generate

    root = tmp_path_factory.mktemp("actions")
    list(generate(root, SynthConfig(videos=0, classes=4, class_videos=4, fps=24, size=32, seed=2)))
    with kept_pristine(root):
        yield root / "actions"
