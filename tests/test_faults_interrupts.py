"""Interrupted and concurrent extraction (#21): kill -9 at five moments then a rerun, and two
runs into one folder, each end with exactly what one uninterrupted run writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from stepped import kill_at, start_stepped
from test_faults import TINY
from videos import cfr

VOLATILE = {"seconds", "decode_seconds", "encode_seconds", "waited_seconds"}  # index fields that may differ: timings


def extract_cmd(videos: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tempclr_cli",
        "extract",
        str(videos),
        "-o",
        str(out),
        "--workers",
        "0",
        "--json",
        "-q",
        *TINY,
    ]


ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def start(videos: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        extract_cmd(videos, out), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def contents(out: Path) -> dict:
    """Everything a run leaves: file names, index rows (less timing) and feature values."""
    rows = [json.loads(r) for r in (out / "index.jsonl").read_text().splitlines()]
    return {
        "files": sorted(str(p.relative_to(out)) for p in out.rglob("*")),
        "rows": sorted(json.dumps({k: v for k, v in r.items() if k not in VOLATILE}, sort_keys=True) for r in rows),
        "features": {p.name: np.load(p).tolist() for p in sorted(out.rglob("*.npy"))},
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Eight short videos and one uninterrupted extraction of them."""
    root = tmp_path_factory.mktemp("interrupts")
    for k in range(8):
        cfr(root / "videos" / f"v{k}.mp4", 2.0 + k % 3)
    done = subprocess.run(
        extract_cmd(root / "videos", root / "ref"),
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert done.returncode == 0, done.stderr
    return root, contents(root / "ref")


def index_rows(out: Path) -> int:
    try:
        return len((out / "index.jsonl").read_text().splitlines())
    except FileNotFoundError:
        return 0


MOMENTS = {  # when to kill: before the model loads (t: CPU seconds it has run), then at four points of the work
    "starting": lambda out, t: t > 0.3,
    "first decode": lambda out, t: out.is_dir(),
    "first feature file": lambda out, t: any(out.rglob("*.npy")),
    "after 2 rows": lambda out, t: index_rows(out) >= 2,
    "after 5 rows": lambda out, t: index_rows(out) >= 5,
}


@pytest.mark.slow
@pytest.mark.parametrize("moment", list(MOMENTS))
def test_kill_9_then_rerun_equals_an_uninterrupted_run(reference, tmp_path, moment):
    root, expected = reference
    out = tmp_path / "out"
    proc = start_stepped(extract_cmd(root / "videos", out), ENV)
    kill_at(proc, lambda t: MOMENTS[moment](out, t))
    assert proc.returncode == -9, f"the run ended before '{moment}'"  # the kill really interrupted it
    rerun = start(root / "videos", out)
    stdout, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr
    assert contents(out) == expected  # same files (no .tmp, no claim), same rows, same features


@pytest.mark.slow
def test_a_stepped_run_left_to_finish_writes_what_a_plain_run_writes(reference, tmp_path):
    """The harness above is neutral: stopped and continued every 5 ms of CPU, a run ends with exit 0
    and the uninterrupted run's files."""
    root, expected = reference
    proc = start_stepped(extract_cmd(root / "videos", tmp_path), ENV)
    steps = []
    kill_at(proc, lambda t: steps.append(t) and False)
    assert proc.returncode == 0 and len(steps) > 100  # it did stop, again and again
    assert contents(tmp_path) == expected


@pytest.mark.slow
def test_two_runs_into_one_folder_extract_each_video_once(reference, tmp_path):
    root, expected = reference
    out = tmp_path / "shared"
    runs = [start(root / "videos", out) for _ in range(2)]
    summaries = []
    for run in runs:
        stdout, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stderr
        summaries.append(json.loads(stdout))
    assert sum(s["ok"] for s in summaries) == 8  # every video once: no run redid another's
    assert all(s["ok"] + s["skipped"] == 8 for s in summaries)
    assert contents(out) == expected


WATCH = """
import json, sys, time
path, seen, t_end = sys.argv[1], set(), time.time() + 2
while time.time() < t_end:
    try:
        with open(path) as f:
            seen.add(f.read() or "empty")
    except FileNotFoundError:
        seen.add("released")
print(json.dumps(sorted(seen)))
"""


def test_a_claim_is_never_seen_without_its_owner(tmp_path):
    """A run killed while claiming must not leave an empty claim: no one could tell it from a
    live run's, and the video would be skipped forever (a CI run caught exactly that)."""
    from tempclr_cli.core import io

    path = tmp_path / ".v.npy.claim"
    watcher = subprocess.Popen([sys.executable, "-c", WATCH, str(path)], stdout=subprocess.PIPE, text=True)
    while watcher.poll() is None:
        assert io.claim(path)
        path.unlink()
    seen = json.loads(watcher.communicate()[0])
    assert io.OWNER in seen and "released" in seen  # it watched claims come and go
    assert "empty" not in seen


def test_claims_work_where_the_file_system_has_no_hard_links(tmp_path, monkeypatch):
    from tempclr_cli.core import io

    def no_links(src, dst):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    path = tmp_path / ".v.npy.claim"
    assert io.claim(path, "otherhost-1")
    assert not io.claim(path)  # held by a host we cannot check: left alone
    assert path.read_text() == "otherhost-1" and [p.name for p in tmp_path.iterdir()] == [path.name]


def test_an_empty_claim_is_taken_over_once_it_is_old(tmp_path):
    """Where claims are written in two steps, a writer killed between them leaves an empty one."""
    from tempclr_cli.core import io

    path = tmp_path / ".v.npy.claim"
    path.touch()
    assert not io.claim(path)  # may be a live writer about to fill it
    old = time.time() - io.EMPTY_CLAIM_SECONDS - 1
    os.utime(path, (old, old))
    assert io.claim(path) and path.read_text() == io.OWNER


RACE = """
import sys, time
from tempclr_cli.core import io
folder, start = sys.argv[1], float(sys.argv[2])
while time.time() < start:
    pass
taken = sum(io.claim(f"{folder}/.v{k}.npy.claim") for k in range(200))
time.sleep(max(0.0, start + 8 - time.time()))  # stay alive: a finished run's claims are stale, free to take
print(taken)
"""


@pytest.mark.slow
def test_of_runs_that_find_one_stale_claim_only_one_takes_it(tmp_path):
    """Four runs meet 200 claims that a killed run left: each claim goes to exactly one of them."""
    from tempclr_cli.core import io

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    for k in range(200):
        (tmp_path / f".v{k}.npy.claim").write_text(f"{io._HOST}-{dead.stdout.strip()}")
    start = time.time() + 1.5
    runs = [
        subprocess.Popen([sys.executable, "-c", RACE, str(tmp_path), str(start)], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    taken = [int(r.communicate(timeout=60)[0]) for r in runs]
    assert sum(taken) == 200, taken
