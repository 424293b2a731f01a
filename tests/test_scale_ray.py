"""`extract --engine ray` (#39) on a local Ray instance of 2 CPUs: the plain run's features, bit for bit
with --decode exact, in any output format; a run killed midway and rerun extracts every video once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from test_faults import TINY
from test_scale_shards import SECONDS, make_shards

from tempclr_cli.core.data.features import FeatureStore

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'tempclr[ray]'")


@pytest.fixture(scope="module")
def local_ray():
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["webdataset", "parquet"])
def test_ray_gives_the_plain_runs_features_bit_for_bit(local_ray, tmp_path, fmt):
    from tempclr_cli.core.encode.extract import ExtractConfig, extract_videos

    make_shards(tmp_path)
    shards = [str(tmp_path / "shards" / "{00000..00001}.tar")]
    cfg = ExtractConfig(workers=2, decode="exact")
    common = {"model": "tiny", "pretrained": "none", "device": "cpu", "output_format": fmt}
    summary = extract_videos(shards, tmp_path / "ray", cfg, engine="ray", **common)
    assert summary["ok"] == 6 and not summary["failed"]
    extract_videos(shards, tmp_path / "plain", cfg, **common)
    by_ray, plain = FeatureStore(tmp_path / "ray"), FeatureStore(tmp_path / "plain")
    assert sorted(by_ray.paths) == sorted(SECONDS)
    for key in SECONDS:
        assert np.array_equal(by_ray.find(key).read(), plain.find(key).read())  # the stored bits
        assert by_ray.row(key)["starts"] == plain.row(key)["starts"]
    again = extract_videos(shards, tmp_path / "ray", cfg, engine="ray", **common)
    assert again["skipped"] == 6 and again["ok"] == 0


@pytest.mark.slow
def test_ray_run_killed_midway_then_rerun_extracts_every_video_once(tmp_path):
    make_shards(tmp_path)
    cmd = [
        sys.executable,
        "-m",
        "tempclr_cli",
        "extract",
        str(tmp_path / "shards" / "{00000..00001}.tar"),
        "--output-format",
        "webdataset",
        "--engine",
        "ray",
        "--workers",
        "2",
        "--json",
        "-q",
        *TINY,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_AUTH_MODE": "disabled"}
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [*cmd, "-o", str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    while proc.poll() is None and not (out / "index.jsonl").exists():
        time.sleep(0.01)  # killed once the first shard is written, the second in flight
    os.killpg(proc.pid, 9)  # the driver and the local Ray instance it started
    proc.communicate()
    assert len((out / "index.jsonl").read_text().splitlines()) < 6, "the run ended before it was killed"
    rerun = subprocess.run([*cmd, "-o", str(out)], env=env, capture_output=True, text=True, start_new_session=True)
    assert rerun.returncode == 0, rerun.stderr
    rows = [json.loads(r) for r in (out / "index.jsonl").read_text().splitlines()]
    assert sorted(r["key"] for r in rows) == sorted(SECONDS)  # every video, each once
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary, no claim left
