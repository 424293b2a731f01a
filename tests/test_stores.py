"""The table of feature-store layouts (#39): every registered layout writes a part that appears whole
or not at all, and `FeatureStore` reads back what was written, arrays and rows, through the table."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tempclr_cli.core.data import stores
from tempclr_cli.core.data.features import FeatureStore, load_matrix
from tempclr_cli.core.errors import TempclrError


def _row(key: str, array: np.ndarray | None, layout: stores.Layout, part: str) -> dict:
    if array is None:
        return {"key": key, "features": layout.member(part, key), "status": "failed", "reason": "damaged"}
    n = len(array)
    return {
        "key": key,
        "features": layout.member(part, key),
        "clips": n,
        "dim": array.shape[1],
        "status": "ok",
        "starts": [0.5 * k for k in range(n)],
        "ends": [0.5 * k + 0.5 for k in range(n)],
        "model": "tiny",
        "pretrained": "none",
        "seed": 0,
    }


def _write(folder, layout: stores.Layout, videos: dict, index: bool = True) -> None:
    """`videos` {key: array or None} into `folder`, one part per video or one for all, rows indexed."""
    rows = []
    groups = [[k] for k in videos] if layout.per_video else [list(videos)]
    for n, keys in enumerate(groups):
        name = f"{keys[0]}{layout.suffix}" if layout.per_video else f"{n:05d}{layout.suffix}"
        writer = layout.writer(folder / name)
        for key in keys:
            rows.append(_row(key, videos[key], layout, name))
            writer.add(key, videos[key], rows[-1])
        writer.close()
    if index:
        (folder / "index.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _videos(dtype=np.float16) -> dict:
    rng = np.random.default_rng(0)
    return {"a": rng.standard_normal((3, 8)).astype(dtype), "b": None, "c": rng.standard_normal((5, 8)).astype(dtype)}


@pytest.mark.parametrize("name", list(stores.LAYOUTS))
@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_every_layout_reads_back_what_it_wrote(tmp_path, name, dtype):
    layout, videos = stores.LAYOUTS[name], _videos(dtype)
    _write(tmp_path, layout, videos)
    store = FeatureStore(tmp_path)
    assert "b" not in store and sorted(k for k in store.paths) == ["a", "c"]  # a failed video has no features
    for key in ("a", "c"):
        array, starts, ends = store.load(key)
        assert np.array_equal(array, videos[key].astype(np.float32)) and store.find(key).read().dtype == dtype
        assert starts == [0.5 * k for k in range(len(array))] and ends[-1] == 0.5 * len(array)  # times from the row
        assert store.row(key)["clips"] == len(array) and tuple(store.find(key).shape()) == videos[key].shape
        assert stores.problem(store.find(key), store.row(key)) is None
    assert store.encoder().model == "tiny"


@pytest.mark.parametrize("name", [n for n, layout in stores.LAYOUTS.items() if layout.keeps_rows])
def test_a_part_that_keeps_its_rows_is_read_without_an_index(tmp_path, name):
    """A shard made elsewhere (or an index lost): times and the encoder come from the part itself."""
    layout, videos = stores.LAYOUTS[name], _videos()
    _write(tmp_path, layout, videos, index=False)
    store = FeatureStore(tmp_path)
    assert store.load("c")[1] == [0.5 * k for k in range(5)] and store.encoder().pretrained == "none"


@pytest.mark.parametrize("name", list(stores.LAYOUTS))
def test_a_part_appears_only_when_closed_and_an_abort_leaves_nothing(tmp_path, name):
    layout, array = stores.LAYOUTS[name], np.ones((2, 4), np.float32)
    writer = layout.writer(tmp_path / f"p{layout.suffix}")
    writer.add("k", array, _row("k", array, layout, f"p{layout.suffix}"))
    assert not (tmp_path / f"p{layout.suffix}").exists() and layout.parts(tmp_path) == []
    writer.abort()
    assert list(tmp_path.iterdir()) == []  # no temporary left behind either
    writer = layout.writer(tmp_path / f"p{layout.suffix}")
    writer.add("k", array, _row("k", array, layout, f"p{layout.suffix}"))
    writer.close()
    assert [p.name for p in tmp_path.iterdir()] == [f"p{layout.suffix}"]


@pytest.mark.parametrize("name", list(stores.LAYOUTS))
def test_problem_names_an_array_that_does_not_match_its_row(tmp_path, name):
    layout = stores.LAYOUTS[name]
    array = np.array([[1.0, 0.0], [np.nan, 1.0]], np.float32)
    _write(tmp_path, layout, {"k": array})
    stored = FeatureStore(tmp_path).find("k")
    assert "NaN" in stores.problem(stored, {"clips": 2, "dim": 2})
    assert "shape" in stores.problem(stored, {"clips": 3, "dim": 2})
    with pytest.raises(TempclrError, match="NaN"):
        load_matrix(stored)


def test_a_truncated_tar_is_refused_by_name(tmp_path):
    layout = stores.LAYOUTS["webdataset"]
    _write(tmp_path, layout, _videos())
    part = tmp_path / "00000.tar"
    part.write_bytes(part.read_bytes()[:700])
    with pytest.raises(TempclrError, match="00000.tar"):
        FeatureStore(tmp_path).load("c")


def test_bytes_per_video_follow_the_layout():
    npy, tar = stores.LAYOUTS["npy"], stores.LAYOUTS["webdataset"]
    assert stores.bytes_per_video(tar, 100, 512, 2) > stores.bytes_per_video(npy, 100, 512, 2) > 100 * 512 * 2
