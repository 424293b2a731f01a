"""`tempclr search` (#38): moments of synthetic videos found from their captions, scores against a
plain loop over the .npy files, the moment rule on worked examples, the packed store's cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from test_cli import tempclr

from tempclr_cli.core.data.features import FeatureStore
from tempclr_cli.core.data.packed import pack
from tempclr_cli.core.eval.search import Searcher, clip_scores, moment_runs


@pytest.fixture
def store(synthetic_store: Path) -> Path:
    """Six synthetic videos (`tempclr synth`'s generator) and their tiny/synthetic features (conftest's, shared)."""
    return synthetic_store


def captions(root: Path) -> list[tuple[str, dict]]:
    """(video, step) for every step whose sentence content is the store's only one: "now a red
    square" and "the red square" read alike to the tiny tower, so the shape, colour and motion decide."""
    db = json.loads((root / "youcookii_annotations_trainval.json").read_text())["database"]
    steps = [(v, s) for v in sorted(db) for s in db[v]["annotations"]]
    content = [" ".join(s["sentence"].split()[2:]) for _, s in steps]
    return [(v, s) for (v, s), c in zip(steps, content) if content.count(c) == 1]


def iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    return inter / (max(a[1], b[1]) - min(a[0], b[0]))


def test_search_finds_the_captioned_steps(store, tmp_path):
    steps = captions(store)
    assert len(steps) >= 20
    queries = tmp_path / "queries.txt"
    queries.write_text("".join(s["sentence"] + "\n" for _, s in steps))
    done = tempclr("search", str(store / "feats"), "--queries", str(queries), "--top-k", "3", "--device", "cpu")
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert [a["query"] for a in answers] == [s["sentence"] for _, s in steps]  # one line a query, in order
    first = top3 = 0
    for (video, step), answer in zip(steps, answers):
        moments = answer["moments"]
        assert len(moments) == 3 and [m["score"] for m in moments] == sorted(
            (m["score"] for m in moments), reverse=True
        )
        hits = [m["video"] == video and iou((m["start"], m["end"]), step["segment"]) >= 0.5 for m in moments]
        first += hits[0]
        top3 += any(hits)
    assert first >= 0.85 * len(steps) and top3 == len(steps), (first, top3, len(steps))


def test_one_query_prints_a_json_list_and_a_single_npy_is_searched(store):
    video, step = captions(store)[0]
    done = tempclr("search", str(store / "feats"), step["sentence"], "--top-k", "2", "--json", "--device", "cpu")
    assert done.returncode == 0, done.stderr
    moments = json.loads(done.stdout)
    assert [sorted(m) for m in moments] == [["end", "score", "start", "video"]] * 2
    assert moments[0]["video"] == video and [moments[0]["start"], moments[0]["end"]] == step["segment"]
    one = tempclr("search", str(store / "feats" / f"{video}.npy"), step["sentence"], "--top-k", "1", "--device", "cpu")
    assert json.loads(one.stdout) == moments[:1]  # piped: JSON without --json; the same moment from the file alone


def test_a_terminal_gets_a_table(store, monkeypatch):
    video, step = captions(store)[0]
    monkeypatch.setattr("tempclr_cli.commands.search.stdout_is_terminal", lambda: True)
    done = tempclr("search", str(store / "feats"), step["sentence"], "--top-k", "2", "--device", "cpu")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert step["sentence"] in lines[0] and all(c in done.stdout for c in ("video", "start", "end", "score"))
    assert video in done.stdout and f"{float(step['segment'][0]):.1f}" in done.stdout
    asked = tempclr("search", str(store / "feats"), step["sentence"], "--top-k", "2", "--json", "--device", "cpu")
    assert json.loads(asked.stdout)[0]["video"] == video  # --json still gives JSON


def test_scores_match_a_plain_loop_over_the_npy_files(store):
    """The packed float16 product against float64 cosines computed file by file."""
    searcher = Searcher(store / "feats", device="cpu")
    queries = [s["sentence"] for _, s in captions(store)[:12]]
    emb = searcher.encode(queries).double()
    reference = []
    for video in searcher.store.videos:
        clips = torch.from_numpy(np.load(store / "feats" / f"{video}.npy").astype(np.float64))
        reference.append(torch.nn.functional.normalize(clips, dim=-1) @ emb.T)
    reference = torch.cat(reference).T.numpy()  # (Q, N)
    few = clip_scores(searcher.store.matrix, emb[:3].float(), block=7)  # float16 products, blocks cut mid-video
    many = clip_scores(searcher.store.matrix, emb.float(), block=7)  # float32 products of a float16 copy
    assert np.abs(few - reference[:3]).max() < 2e-3 and np.abs(many - reference).max() < 2e-3
    np.testing.assert_array_equal(few, clip_scores(searcher.store.matrix, emb[:3].float()))
    for query, moments, scores in zip(queries, searcher.search(queries, top_k=3), reference):
        for m in moments:  # each moment's score is its best clip's cosine
            v = searcher.store.videos.index(m.video)
            lo, hi = searcher.store.offsets[v], searcher.store.offsets[v + 1]
            times = searcher.store.times[lo:hi]
            inside = scores[lo:hi][(times[:, 0] >= m.start) & (times[:, 1] <= m.end)]
            assert m.score == pytest.approx(inside.max(), abs=2e-3), query


def test_the_moment_rule_on_worked_examples():
    # A moment keeps the clips within a quarter of its peak's height over its video's median (EXTENT), across dips
    # of one clip (GAP). video 0: median 0.1. Peak 1.0 at clip 2: floor 1.0 - 0.25 * 0.9 = 0.775 holds clips 2, 3 and,
    # across the dip at clip 4, clip 5: one moment, 2-5. Clip 8 (0.3; floor 0.25) is two clips further: its own.
    # video 1: median 0.325. Clip 0 (0.95; floor 0.79) alone; clip 4 (0.6; floor 0.53) with clip 3 (0.55).
    # video 2: median 0. Clip 1 (1.0; floor 0.75) alone; clip 2 (0.4; floor 0.3) reaches back into it, so its moment
    # starts after it: 2-3. Clips at or below their video's median start nothing.
    scores = np.array(
        [0, 0, 1.0, 0.9, 0.2, 0.8, 0, 0, 0.3, 0, 0.95, 0.1, 0.1, 0.55, 0.6, 0.1, 0, 1.0, 0.4, 0.35, 0, 0, 0], np.float32
    )
    offsets = np.array([0, 10, 16, 23])
    assert moment_runs(scores, offsets, 10) == [
        (2, 5, 2),
        (17, 17, 17),
        (10, 10, 10),
        (13, 14, 14),
        (18, 19, 18),
        (8, 8, 8),
    ]  # the tie (1.0) keeps store order
    assert moment_runs(scores, offsets, 2) == [(2, 5, 2), (17, 17, 17)]
    assert moment_runs(np.zeros(5, np.float32), np.array([0, 5]), 3) == []  # no peak, no moment


def test_the_pack_is_cached_beside_the_index_and_rebuilt_when_it_changes(store, tmp_path):
    feats = tmp_path / "feats"
    shutil.copytree(store / "feats", feats, ignore=shutil.ignore_patterns("index.search*"))
    said = []
    first = pack(feats, log=said.append)
    assert len(said) == 1 and "packing 6 videos" in said[0]
    assert sorted(p.name for p in feats.glob("index.search*"))[-1] == "index.search.json"
    assert len(FeatureStore(feats).paths) == 6  # the pack is not taken for a video
    again = pack(feats, log=said.append)
    assert len(said) == 1 and again.videos == first.videos  # read back, not packed again
    assert isinstance(again.matrix, np.memmap)
    # a new video appended to the index (as a rerun of extract appends it) is searched next time
    rows = (feats / "index.jsonl").read_text().splitlines()
    row = json.loads(rows[0])
    shutil.copy(feats / row["features"], feats / "copy.npy")
    with open(feats / "index.jsonl", "a") as f:
        f.write(json.dumps({**row, "features": "copy.npy"}) + "\n")
    grown = pack(feats, log=said.append)
    assert len(said) == 2 and "copy" in grown.videos and len(grown.matrix) == len(first.matrix) + row["clips"]
    assert len(list(feats.glob("index.search.*.f16"))) == 1  # the old pack is gone
    assert not list(feats.glob(".*.tmp"))


def test_a_store_that_cannot_be_written_is_searched_from_memory(store, tmp_path, monkeypatch):
    feats = tmp_path / "feats"
    shutil.copytree(store / "feats", feats, ignore=shutil.ignore_patterns("index.search*"))
    monkeypatch.setattr("tempclr_cli.core.data.packed.os.access", lambda path, mode: False)  # as for a read-only mount
    said = []
    packed = pack(feats, log=said.append)
    assert len(packed.videos) == 6 and "cannot be written" in said[-1]
    assert not list(feats.glob("index.search*"))
    assert np.array_equal(packed.matrix, pack(store / "feats").matrix)


def test_bad_input_exits_2_naming_it(store, tmp_path):
    feats = str(store / "feats")
    neither = tempclr("search", feats)
    assert neither.returncode == 2 and "QUERY or --queries" in neither.stderr
    assert tempclr("search", feats, "x", "--top-k", "0").returncode == 2
    missing = tempclr("search", str(tmp_path / "nope"), "x")
    assert missing.returncode == 2 and "nope" in missing.stderr
    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n")
    empty = tempclr("search", feats, "--queries", str(blank))
    assert empty.returncode == 2 and "holds no query" in empty.stderr
    no_index = tmp_path / "bare"
    no_index.mkdir()
    shutil.copy(store / "feats" / "synth0000.npy", no_index)
    unknown = tempclr("search", str(no_index), "x", "--device", "cpu")
    assert unknown.returncode == 2 and "--sentence-embeddings" in unknown.stderr
