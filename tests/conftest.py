"""Shared fixtures. Tests run single-threaded (two busy OpenMP pools on 2 cores crawl)."""

from __future__ import annotations

import json
import os
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


@pytest.fixture(scope="session")
def step_dataset(tmp_path_factory):
    """30 synthetic step videos and their tiny-encoder features (extracted in this process)."""
    from tempclr_cli.core.encode import extract
    from tempclr_cli.core.encode.jobs import plan
    from tempclr_cli.core.encode.encoders import load_encoder
    from tempclr_cli.core.media.synth import SynthConfig, generate
    from tempclr_cli.core.media.video import find_videos

    root = tmp_path_factory.mktemp("steps")
    data, feats = root / "data", root / "features"
    list(generate(data, SynthConfig(videos=30, classes=0, seed=5)))
    encoder = load_encoder("tiny", "none", None, torch.device("cpu"), seed=0)
    jobs = plan(find_videos([data / "videos"]), feats, data / "videos")
    results = [e for e in extract.run(jobs, encoder, extract.ExtractConfig(workers=0), feats) if not isinstance(e, int)]
    assert all(r.status == "ok" for r in results)
    return data, feats
