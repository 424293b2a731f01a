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


@pytest.fixture(scope="session")
def reference() -> dict:
    """Values computed with the authors' formulas (copied from shared/vectors)."""
    return json.loads((DATA / "reference_values.json").read_text())
