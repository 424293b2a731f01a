"""Scale out (#17): extraction under torchrun and SLURM sharding, logs off a terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from test_faults import TINY
from videos import cfr

from tempclr_cli.core.encode.jobs import parse_shard


@pytest.mark.slow
def test_torchrun_extract_splits_the_videos_and_prints_one_merged_summary(tmp_path):
    for k in range(6):
        cfr(tmp_path / "in" / f"v{k}.mp4", 2.0)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "tempclr_cli",
            "extract",
            str(tmp_path / "in"),
            "-o",
            str(tmp_path / "out"),
            "--workers",
            "0",
            "--json",
            *TINY,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", "TEMPCLR_PROGRESS_SECONDS": "0"},
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)  # one JSON document: rank 0's, covering both ranks
    assert summary["ranks"] == 2 and summary["ok"] == 6 and summary["videos"] == 6
    rows = [json.loads(r) for r in (tmp_path / "out" / "index.jsonl").read_text().splitlines()]
    assert sorted(r["features"] for r in rows) == [f"v{k}.npy" for k in range(6)]  # each video exactly once
    assert "extracting 3/3" in done.stderr  # plain progress lines off a terminal, from rank 0 only
    assert not any(glyph in done.stderr for glyph in "━█▏") and done.stderr.count("to extract") == 1


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"RANK": "1", "WORLD_SIZE": "4"}, (1, 4)),
        ({"SLURM_PROCID": "2", "SLURM_NTASKS": "3"}, (2, 3)),
        ({}, (0, 1)),
    ],
)
def test_the_shard_comes_from_torchrun_or_slurm(monkeypatch, env, expected):
    for key in ("RANK", "WORLD_SIZE", "SLURM_PROCID", "SLURM_NTASKS"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert parse_shard(None) == expected
    assert parse_shard("0/2") == (0, 2)  # an explicit --shard wins


@pytest.mark.slow
def test_training_off_a_terminal_logs_plain_lines_and_train_log(step_dataset, tmp_path):
    recipe = os.path.join(os.path.dirname(__file__), "..", "recipes", "tempclr_synthetic.yaml")
    data, features = step_dataset
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tempclr_cli",
            "train",
            recipe,
            "--set",
            f"data.root={features}",
            "--set",
            f"data.annotations={data / 'youcookii_annotations_trainval.json'}",
            "--set",
            "train.epochs=2",
            "--set",
            "train.log_every=1",
            "--run-dir",
            str(tmp_path / "run"),
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", "TEMPCLR_PROGRESS_SECONDS": "0"},
    )
    assert done.returncode == 0, done.stderr
    assert "epoch 2" in done.stderr and "loss" in done.stderr and "━" not in done.stderr
    log = (tmp_path / "run" / "train.log").read_text().splitlines()
    assert log and all(" epoch " in line and " loss " in line and "/s" in line for line in log)
    assert len(done.stdout.strip().splitlines()) == 1  # the result JSON, once


def test_a_rank_with_nothing_to_do_waits_for_the_others_past_torchs_30_minutes(monkeypatch):
    """Review of #39: on a resumed run a rank whose videos are all done gathers the summaries at
    once and waits for ranks still extracting; gloo's default 30-minute timeout tore the job down."""
    import datetime

    import torch.distributed as dist

    from tempclr_cli.core.encode.summary import merged_over_ranks

    asked = {}
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("MASTER_ADDR", "localhost")
    monkeypatch.setattr(dist, "init_process_group", lambda backend, **kw: asked.update(kw))
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(dist, "all_gather_object", lambda parts, mine: parts.__setitem__(slice(None), [mine, mine]))
    monkeypatch.setattr(dist, "barrier", lambda: None)
    monkeypatch.setattr(dist, "destroy_process_group", lambda: None)
    mine = {"out": "o", "videos": 3, "skipped": 3, "ok": 0, "clips": 0, "format": "npy"}
    mine |= {"decode_seconds": 0.0, "encode_seconds": 0.0, "waited_seconds": 0.0}
    mine |= {"failed": [], "truncated": [], "renamed": [], "broken": []}
    assert merged_over_ranks(mine)["skipped"] == 6
    assert asked["timeout"] >= datetime.timedelta(days=1)
