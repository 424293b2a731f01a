"""`tempclr demo --fast`: every stage runs, its artefacts are real, a second run re-uses them."""

from __future__ import annotations

import json

import av
from test_cli import tempclr


def test_demo_runs_end_to_end_and_reuses_its_work(tmp_path):
    work = tmp_path / "demo"
    first = tempclr("demo", "--fast", "--workdir", str(work), "--device", "cpu")
    assert first.returncode == 0, first.stderr
    for text in ("before training", "after TempCLR training", "align: held-out video", "few-shot", "artefacts"):
        assert text in first.stdout
    for measure in ("capavg", "dtw", "otam", "softdtw", "mean"):
        assert measure in first.stdout
    assert (work / "alignment.png").read_bytes()[:4] == b"\x89PNG"
    with av.open(str(work / "alignment.srt")) as c:
        cues = [p for p in c.demux(c.streams.subtitles[0]) if p.size]
    held_out = sorted((work / "data" / "steps").glob("*.txt"))[-1]
    assert len(cues) == len(held_out.read_text().splitlines())
    metrics = [json.loads(line) for line in (work / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 4  # the fast demo trains 4 epochs
    second = tempclr("demo", "--fast", "--workdir", str(work), "--device", "cpu")
    assert second.returncode == 0, second.stderr
    assert "dataset: re-using" in second.stderr and "features: re-using" in second.stderr
    assert "already finished" in second.stderr
    assert len((work / "run" / "metrics.jsonl").read_text().splitlines()) == 4
