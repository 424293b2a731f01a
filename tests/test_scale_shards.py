"""Extraction at dataset scale (#39): webdataset tar shards and CSV lists in, npy / webdataset / parquet
out, readable by every command; whole shards skipped on a rerun, broken outputs found by --verify and
redone; SLURM array tasks balanced by duration and together covering every video once."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from stepped import kill_at, start_stepped
from test_cli import tempclr
from test_faults import TINY
from videos import cfr

from tempclr_cli.core.data.features import FeatureStore
from tempclr_cli.core.data.stores import LAYOUTS
from tempclr_cli.core.encode.shards import assign, expand_braces

SECONDS = {"000000000": 1.0, "000000001": 4.0, "000000002": 2.0, "000010000": 3.0, "000010001": 1.0, "000010002": 5.0}


def make_shards(root: Path, seconds: dict = SECONDS, broken: str | None = None) -> Path:
    """video2dataset's layout: shards/0000N.tar of key.mp4, key.json, key.txt; the same videos as
    plain files in root/files. `broken`: that key's mp4 holds no video."""
    (root / "shards").mkdir(parents=True)
    for shard in sorted({k[:5] for k in seconds}):
        with tarfile.open(root / "shards" / f"{shard}.tar", "w") as tar:
            for key in sorted(k for k in seconds if k.startswith(shard)):
                video = cfr(root / "files" / f"{key}.mp4", seconds[key])
                if key == broken:
                    video.write_bytes(b"not a video" * 100)
                tar.add(video, f"{key}.mp4")
                for ext, data in (("json", json.dumps({"key": key, "status": "success"}).encode()), ("txt", b"cook")):
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    return root / "shards"


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Two shards of three videos, and the plain files' features (the reference)."""
    root = tmp_path_factory.mktemp("shards")
    make_shards(root)
    done = tempclr("extract", str(root / "files"), "-o", str(root / "ref"), "--workers", "0", "--json", *TINY)
    assert done.returncode == 0, done.stderr
    return root


def extract(*args: str, env: dict | None = None):
    return tempclr("extract", *args, "--workers", "0", "--json", *TINY, env_extra=env)


@pytest.mark.parametrize("fmt", list(LAYOUTS))
def test_tar_shards_in_any_format_out_give_the_plain_files_features(shards, tmp_path, fmt):
    done = extract(str(shards / "shards" / "{00000..00001}.tar"), "-o", str(tmp_path / "out"), "--output-format", fmt)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ok"] == 6
    store, ref = FeatureStore(tmp_path / "out"), FeatureStore(shards / "ref")
    assert sorted(store.paths) == sorted(SECONDS)  # the sample key is the id
    for key in SECONDS:
        (a, starts, ends), (b, starts_ref, _) = store.load(key), ref.load(key)
        assert np.array_equal(a, b) and starts == starts_ref and ends[-1] == SECONDS[key]
        assert store.row(key)["source"].endswith(f"{key[:5]}.tar/{key}.mp4") and store.row(key)["key"] == key
    parts = sorted(p.name for p in (tmp_path / "out").iterdir() if p.name != "index.jsonl")
    if not LAYOUTS[fmt].per_video:
        assert parts == [f"00000{LAYOUTS[fmt].suffix}", f"00001{LAYOUTS[fmt].suffix}"]  # one part per input shard


def test_retrieve_reads_a_webdataset_store_as_it_reads_npy(step_dataset, tmp_path):
    """A later command over the shards' features: retrieve gives the same numbers from either layout."""
    data, feats = step_dataset
    videos = sorted((data / "videos").rglob("*.mp4"))
    with tarfile.open(tmp_path / "00000.tar", "w") as tar:
        for v in videos:
            tar.add(v, v.name)
    done = extract(str(tmp_path / "00000.tar"), "-o", str(tmp_path / "wds"), "--output-format", "webdataset")
    assert done.returncode == 0, done.stderr
    ann = data / "youcookii_annotations_trainval.json"
    runs = [
        tempclr(
            "retrieve",
            str(f),
            "--annotations",
            str(ann),
            "--measure",
            "dtw",
            "--json",
            "--split",
            "all",
            "--device",
            "cpu",
        )
        for f in (feats, tmp_path / "wds")
    ]
    assert all(r.returncode == 0 for r in runs), runs[1].stderr
    assert json.loads(runs[0].stdout) == json.loads(runs[1].stdout)
    # search and align read it too: the same moments, and one video by its key (STORE/KEY)
    found = [
        tempclr("search", str(f), "a green circle grows bigger", "--json", "--device", "cpu")
        for f in (feats, tmp_path / "wds")
    ]
    assert all(r.returncode == 0 for r in found), found[1].stderr
    assert [Path(m["video"]).name for m in json.loads(found[0].stdout)] == [
        m["video"] for m in json.loads(found[1].stdout)
    ]
    steps = data / "steps" / f"{videos[0].stem}.txt"
    aligned = [
        tempclr("align", str(f / videos[0].stem), str(steps), "-f", "json", "--device", "cpu")
        for f in (feats, tmp_path / "wds")
    ]
    assert aligned[1].returncode == 0, aligned[1].stderr
    assert (
        json.loads(aligned[1].stdout)["steps"]
        == json.loads(
            tempclr("align", str(feats / f"{videos[0].stem}.npy"), str(steps), "-f", "json", "--device", "cpu").stdout
        )["steps"]
    )


def test_a_csv_list_gives_its_keys(shards, tmp_path):
    listing = tmp_path / "videos.csv"
    listing.write_text(
        "video_path,key\n" + "".join(f"{shards / 'files' / k}.mp4,clip-{k[-1]}\n" for k in ("000000001", "000010002"))
    )
    done = extract(str(listing), "-o", str(tmp_path / "out"), "--output-format", "parquet")
    assert done.returncode == 0, done.stderr
    store = FeatureStore(tmp_path / "out")
    assert sorted(store.paths) == ["clip-1", "clip-2"]
    assert np.array_equal(store.load("clip-2")[0], FeatureStore(shards / "ref").load("000010002")[0])


def test_failures_are_keyed_and_kept_in_the_shard(tmp_path):
    make_shards(tmp_path, broken="000000001")
    done = extract(str(tmp_path / "shards" / "00000.tar"), "-o", str(tmp_path / "out"), "--output-format", "webdataset")
    assert done.returncode == 3, done.stderr
    failure = json.loads((tmp_path / "out" / "failures.jsonl").read_text())
    assert failure["key"] == "000000001" and "00000.tar/000000001.mp4" in failure["reason"]
    assert "/proc/self" not in failure["reason"]  # the member is named, not the in-memory file it was read from
    with tarfile.open(tmp_path / "out" / "00000.tar") as tar:
        names = tar.getnames()
        assert "000000001.json" in names and "000000001.npy" not in names
        assert json.load(tar.extractfile("000000001.json"))["status"] == "failed"
    again = extract(
        str(tmp_path / "shards" / "00000.tar"), "-o", str(tmp_path / "out"), "--output-format", "webdataset"
    )
    assert json.loads(again.stdout)["skipped"] == 3  # the shard is whole: its failure is part of it


@pytest.mark.parametrize("fmt", ["webdataset", "parquet"])
def test_a_rerun_skips_whole_shards_and_redoes_a_partial_one(shards, tmp_path, fmt):
    out, args = tmp_path / "out", (str(shards / "shards" / "{00000..00001}.tar"), "--output-format", fmt)
    assert extract(*args, "-o", str(out)).returncode == 0
    rows = (out / "index.jsonl").read_text().splitlines()
    (out / "index.jsonl").write_text("\n".join(rows[:4]) + "\n")  # killed after shard 1 was renamed, before its rows
    stale = out / f".00001{LAYOUTS[fmt].suffix}.{os.uname().nodename.replace('.', '_')}-999999.x.tmp"
    stale.write_bytes(b"half a shard")  # what a killed run leaves
    again = extract(*args, "-o", str(out))
    assert json.loads(again.stdout)["skipped"] == 3 and json.loads(again.stdout)["ok"] == 3
    assert not stale.exists()
    keys = [json.loads(r)["key"] for r in (out / "index.jsonl").read_text().splitlines()]
    assert sorted(keys[:3] + keys[-3:]) == sorted(SECONDS)  # each video's last row is there once


@pytest.mark.parametrize("fmt", list(LAYOUTS))
def test_verify_reports_a_broken_output_and_redoes_it(shards, tmp_path, fmt):
    out, args = tmp_path / "out", (str(shards / "shards" / "{00000..00001}.tar"), "--output-format", fmt)
    assert extract(*args, "-o", str(out)).returncode == 0
    part = sorted(LAYOUTS[fmt].parts(out))[-1]
    data = bytearray(part.read_bytes())
    at = len(data) // 4
    if fmt == "parquet":  # its features column's pages (the file's first quarter may be another column)
        import pyarrow.parquet as pq

        column = pq.ParquetFile(part).metadata.row_group(0).column(1)
        at = column.data_page_offset + column.total_compressed_size // 2
    data[at : at + 64] = b"\xff" * 64  # damage a video's array (or the header before it)
    part.write_bytes(bytes(data))
    verified = extract(*args, "-o", str(out), "--verify")
    assert verified.returncode == 0, verified.stderr
    summary = json.loads(verified.stdout)
    assert summary["broken"] and part.name in summary["broken"][0] and "redone" in verified.stderr
    assert summary["ok"] == (1 if LAYOUTS[fmt].per_video else 3)
    ref = FeatureStore(shards / "ref")
    store = FeatureStore(out)
    assert all(np.array_equal(store.load(k)[0], ref.load(k)[0]) for k in SECONDS)


def test_verify_reads_what_a_plain_rerun_does_not(shards, tmp_path):
    """NaN written into an array's data: its header is whole, so a rerun skips it; --verify reads it."""
    out = tmp_path / "out"
    assert extract(str(shards / "files"), "-o", str(out)).returncode == 0
    target = out / "000000001.npy"
    array = np.load(target)
    array[1] = np.nan
    np.save(target, array)
    assert json.loads(extract(str(shards / "files"), "-o", str(out)).stdout)["ok"] == 0
    verified = json.loads(extract(str(shards / "files"), "-o", str(out), "--verify").stdout)
    assert verified["ok"] == 1 and "NaN" in verified["broken"][0] and "000000001.npy" in verified["broken"][0]
    assert np.isfinite(np.load(target)).all()


def test_brace_lists_expand_as_webdataset_does():
    assert expand_braces("s/{00008..00011}.tar") == [f"s/{k:05d}.tar" for k in range(8, 12)]
    assert expand_braces("{a,b}/{1..2}.tar") == ["a/1.tar", "a/2.tar", "b/1.tar", "b/2.tar"]
    assert expand_braces("plain{}.tar") == ["plain{}.tar"]


def test_greedy_largest_first_packs_by_duration():
    weights = [5.0, 4.0, 3.0, 3.0, 2.0, 1.0]  # each, heaviest first, to the lighter task: 5|4, 5|7, 8|7, 8|9, 9|9
    tasks = [assign(len(weights), k, 2, weights) for k in range(2)]
    assert sorted(tasks[0] + tasks[1]) == list(range(6))
    loads = [sum(weights[p] for p in t) for t in tasks]
    assert loads == [9.0, 9.0]  # 5+3+1 | 4+3+2
    assert assign(6, 1, 4) == [1, 5]  # by count: every n-th


def test_two_array_tasks_cover_every_video_once_balanced_by_duration(shards, tmp_path):
    out = tmp_path / "out"
    counts = []
    for task in ("0", "1"):
        env = {"SLURM_ARRAY_TASK_ID": task, "SLURM_ARRAY_TASK_COUNT": "2", "SLURM_ARRAY_TASK_MIN": "0"}
        done = extract(str(shards / "files"), "-o", str(out), "--balance", "duration", env=env)
        assert done.returncode == 0, done.stderr
        counts.append(json.loads(done.stdout)["videos"])
    rows = [json.loads(r) for r in (out / "index.jsonl").read_text().splitlines()]
    assert sorted(r["key"] for r in rows) == sorted(SECONDS)  # every video, each once
    durations = json.loads((out / "durations.json").read_text())
    assert durations == pytest.approx(SECONDS, abs=0.11)  # read from the headers, once
    by_task = [sum(SECONDS[r["key"]] for r in rows[: counts[0]]), sum(SECONDS[r["key"]] for r in rows[counts[0] :])]
    assert sorted(by_task) == [8.0, 8.0]  # 5+2+1 | 4+3+1 seconds
    by_count = [sum(SECONDS[k] for k in sorted(SECONDS)[t::2]) for t in range(2)]
    assert by_count == [4.0, 12.0]  # every other video: one task would take three times as long


# --- kill -9 during a run, then a rerun ----------------------------------------------------------


def _contents(out: Path) -> dict:
    store = FeatureStore(out)
    rows = [json.loads(r) for r in (out / "index.jsonl").read_text().splitlines()]
    return {
        "keys": sorted(store.paths),
        "last": {r["key"]: r["status"] for r in rows},
        "features": {k: store.load(k)[0].tolist() for k in sorted(store.paths)},
    }


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["webdataset", "parquet"])
def test_kill_9_during_a_sharded_run_then_rerun_extracts_every_video_once(shards, tmp_path, fmt):
    cmd = [
        sys.executable,
        "-m",
        "tempclr_cli",
        "extract",
        str(shards / "shards" / "{00000..00001}.tar"),
        "--output-format",
        fmt,
        "--workers",
        "0",
        "--json",
        "-q",
        *TINY,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([*cmd, "-o", str(tmp_path / "ref")], env=env, check=True, capture_output=True)
    out = tmp_path / "out"
    proc = start_stepped([*cmd, "-o", str(out)], env)
    kill_at(proc, lambda t: any(p.name.endswith(".tmp") for p in out.glob(".*")))  # the first shard half-written
    assert proc.returncode == -9, "the run ended before its first shard was half-written"
    rerun = subprocess.run([*cmd, "-o", str(out)], env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert _contents(out) == _contents(tmp_path / "ref")
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary, no claim left


def test_plan_sizes_the_run_without_extracting(shards, tmp_path):
    done = extract(
        str(shards / "shards" / "{00000..00001}.tar"),
        "-o",
        str(tmp_path / "out"),
        "--plan",
        "--output-format",
        "webdataset",
        "--shard",
        "0/2",
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["videos"] == 6 and found["seconds"] == pytest.approx(sum(SECONDS.values()), abs=0.5)
    assert found["clips"] == 16 and found["files"] == 3 and found["tasks"] == 2  # 1 s clips; 2 shards + the index
    assert found["decode_rate"] > 0 and found["encode_rate"] > 0 and found["hours_per_task"] >= 0
    assert found["bytes"] > 16 * 64 * 2  # the tiny encoder's 64-dim float16 rows, and more
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["durations.json"]  # nothing extracted
    assert found["device"] == "cpu"
    args = [str(shards / "shards" / "{00000..00001}.tar"), "-o", str(tmp_path / "out"), "--plan", *TINY]
    table = tempclr("extract", *args)  # the table a person reads (it once failed with KeyError)
    assert table.returncode == 0, table.stderr
    assert "6 (0 without a declared duration)" in table.stdout and "frames/s on cpu" in table.stdout
