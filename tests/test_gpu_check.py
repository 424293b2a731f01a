"""scripts/gpu_check.sh --dry-run runs to the end on the CPU, so its first GPU run cannot fail on a typo."""

from __future__ import annotations

import pytest

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[1]


@pytest.mark.slow
def test_the_gpu_check_dry_run_goes_through_every_step(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path / "out"), "VENV": str(tmp_path / "venv"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--dry-run"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    log = (tmp_path / "out" / "gpu_check.log").read_text()
    assert "(dry run)" in log and "tempclr 0.1" in log
    assert "skipped" in (tmp_path / "out" / "pytest_cuda.log").read_text()  # the cuda tier ran and said why it skipped
    figures = json.loads((tmp_path / "out" / "gpu_figures.json").read_text())
    assert set(figures) >= {"device", "soft_dtw", "all_pairs", "row_scan", "extract"}
    rows = figures["soft_dtw"]["rows"]
    assert {(r["L"], r["cost"].split()[0]) for r in rows} == {
        (16, "D=64"),
        (16, "precomputed"),
        (48, "D=64"),
        (48, "precomputed"),
    }
    assert all(r["tempclr"]["ms"] > 0 and r["row_scan"]["ms"] > 0 and r["backend"] == "numba" for r in rows)
    assert figures["all_pairs"]["tempclr"]["ms"] > 0 and figures["extract"]["clips"] == 4
    assert figures["extract_s3d"]["clips"] == 2  # S3D end to end: 1-s clips of 30 frames from a 2-s video
    assert {k.split("_")[0] for k in figures["nvdec"] if k.endswith("_cuda")} == {"480p", "720p", "1080p"}
