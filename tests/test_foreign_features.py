"""Features from other tools (#38): `tempclr index` on video_features' and Ego4D's layouts, read in place or
converted once, then searched, retrieved and aligned; sentence vectors from a file; refusals by name."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from test_cli import tempclr
from test_search import captions, iou

from tempclr_cli.core.data.features import FeatureStore, read_row, row_of
from tempclr_cli.core.encode.foreign import FOREIGN_FORMATS
from tempclr_cli.core.encode.sentence_embeddings import SENTENCE_FILES, SentenceEmbeddings
from tempclr_cli.core.errors import TempclrError

TINY = ["--encoder", "tiny", "--pretrained", "synthetic"]


@pytest.fixture(scope="module")
def layouts(synthetic_store, tmp_path_factory):
    """A copy of the shared synthetic store (these tests index into it) re-laid out as two other tools lay out
    theirs, with the captions' vectors in a file.

    video_features: clip/{video}_clip.npy beside 1-D {video}_fps.npy and {video}_timestamps_ms.npy.
    Ego4D: egovlp/{video_uid}.pt, one float32 tensor a video. Both hold float32 vectors 7 times unit length
    (other tools do not normalise), and Ego4D's encoder is one tempclr has no text tower for."""
    from tempclr_cli.core.encode.encoders import load_encoder

    root = tmp_path_factory.mktemp("foreign") / "store"
    shutil.copytree(synthetic_store, root)
    vf, ego = root / "video_features" / "clip", root / "ego4d" / "egovlp"
    vf.mkdir(parents=True)
    ego.mkdir(parents=True)
    for npy in sorted((root / "feats").glob("synth*.npy")):
        clips = np.load(npy).astype(np.float32) * 7
        np.save(vf / f"{npy.stem}_clip.npy", clips)
        np.save(vf / f"{npy.stem}_fps.npy", np.array([1.0]))
        np.save(vf / f"{npy.stem}_timestamps_ms.npy", np.arange(len(clips)) * 1000.0)
        torch.save(torch.from_numpy(clips), ego / f"{npy.stem}.pt")
    db = json.loads((root / "youcookii_annotations_trainval.json").read_text())["database"]
    sentences = sorted({s["sentence"] for v in db.values() for s in v["annotations"]})
    vectors = load_encoder("tiny", "synthetic", None, "cpu").encode_text(sentences).detach().numpy()
    (root / "sentences.json").write_text(json.dumps(dict(zip(sentences, vectors.tolist()))))
    np.savez(root / "sentences.npz", sentences=np.array(sentences), embeddings=vectors)
    return root


def retrieval(*args: str) -> dict:
    done = tempclr("retrieve", *args, "--split", "all", "--json", "--device", "cpu")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["results"]


def found_steps(root: Path, features: Path, *options: str) -> int:
    """How many captioned steps have a top-3 moment in their video with IoU >= 0.5; every search must succeed."""
    steps = captions(root)
    queries = root / "queries.txt"
    queries.write_text("".join(s["sentence"] + "\n" for _, s in steps))
    done = tempclr("search", str(features), "--queries", str(queries), "--top-k", "3", "--device", "cpu", *options)
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line)["moments"] for line in done.stdout.splitlines()]
    return sum(
        any(m["video"] == v and iou((m["start"], m["end"]), s["segment"]) >= 0.5 for m in moments)
        for (v, s), moments in zip(steps, answers)
    )


def test_video_features_layout_is_linked_not_copied_then_searched(layouts, tmp_path):
    out = tmp_path / "indexed"
    done = tempclr(
        "index", str(layouts / "video_features" / "clip"), "--suffix", "_clip", *TINY, "--fps", "1", "-o", str(out)
    )
    assert done.returncode == 0, done.stderr
    assert "6 videos (6 linked)" in done.stdout
    links = sorted(out.glob("*.npy"))
    assert [p.name for p in links] == [f"synth000{k}.npy" for k in range(6)] and all(p.is_symlink() for p in links)
    assert links[0].resolve() == (layouts / "video_features" / "clip" / "synth0000_clip.npy").resolve()
    row = read_row(out, "synth0000.npy")
    assert row == row_of(links[0])  # the row of a link is found where the link lies
    assert row["model"] == "tiny" and row["starts"][:3] == [0.0, 1.0, 2.0] and row["ends"][:3] == [1.0, 2.0, 3.0]
    clips, starts, _ = FeatureStore(out).load("synth0000")
    np.testing.assert_array_equal(clips, np.load(layouts / "video_features" / "clip" / "synth0000_clip.npy"))
    assert starts == row["starts"]
    assert found_steps(layouts, out) == len(captions(layouts))


def test_video_features_layout_is_retrieved_as_the_extracted_store(layouts, tmp_path):
    out = tmp_path / "indexed"
    folder = str(layouts / "video_features" / "clip")
    assert tempclr("index", folder, "--suffix", "_clip", *TINY, "--fps", "1", "-o", str(out)).returncode == 0
    annotations = ["--annotations", str(layouts / "youcookii_annotations_trainval.json")]
    assert retrieval(str(out), *annotations) == retrieval(str(layouts / "feats"), *annotations)


def test_a_layout_with_other_arrays_beside_is_refused_by_name_and_nothing_indexed(layouts):
    folder = layouts / "video_features" / "clip"
    done = tempclr("index", str(folder), *TINY, "--fps", "1")
    assert done.returncode == 2
    assert "synth0000_fps.npy: a 1-D array of shape (1,)" in done.stderr and "--suffix" in done.stderr
    assert not (folder / "index.jsonl").exists()


def test_ego4d_layout_is_converted_once_and_searched_with_sentence_vectors(layouts):
    ego = layouts / "ego4d" / "egovlp"
    done = tempclr("index", str(ego), "--encoder", "egovlp", "--fps", "1", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["converted"] == 6 and summary["dim"] == 64 and summary["text_tower"] is False
    assert "no text tower for egovlp" in done.stderr
    converted = ego / "synth0003.npy"
    assert not converted.is_symlink()
    np.testing.assert_array_equal(np.load(converted), torch.load(ego / "synth0003.pt").numpy())
    before = converted.stat().st_mtime_ns
    assert tempclr("index", str(ego), "--encoder", "egovlp", "--fps", "1").returncode == 0
    assert converted.stat().st_mtime_ns == before  # reused, not converted again
    assert len((ego / "index.jsonl").read_text().splitlines()) == 6  # rows replaced, not appended twice
    no_text = tempclr("search", str(ego), "the red square grows bigger", "--device", "cpu")
    assert no_text.returncode == 2 and "made by egovlp" in no_text.stderr and "--sentence-embeddings" in no_text.stderr
    assert found_steps(layouts, ego, "--sentence-embeddings", str(layouts / "sentences.json")) == len(captions(layouts))


def test_ego4d_layout_is_retrieved_with_sentence_vectors(layouts):
    ego = layouts / "ego4d" / "egovlp"
    assert tempclr("index", str(ego), "--encoder", "egovlp", "--fps", "1").returncode == 0
    annotations = ["--annotations", str(layouts / "youcookii_annotations_trainval.json")]
    without = tempclr("retrieve", str(ego), *annotations, "--split", "all", "--device", "cpu")
    assert without.returncode == 2 and "made by egovlp" in without.stderr and "--sentence-embeddings" in without.stderr
    ours = retrieval(str(ego), *annotations, "--sentence-embeddings", str(layouts / "sentences.npz"))
    assert ours == retrieval(str(layouts / "feats"), *annotations)  # the same vectors as the tiny tower gives


def test_align_on_an_imported_npy_with_sentence_vectors(layouts, tmp_path):
    """The steps of each imported video land where they are annotated, as with the encoder's own tower; a
    video file, which would need an encoder tempclr runs, is refused by name."""
    ego = layouts / "ego4d" / "egovlp"
    assert tempclr("index", str(ego), "--encoder", "egovlp", "--fps", "1").returncode == 0
    db = json.loads((layouts / "youcookii_annotations_trainval.json").read_text())["database"]
    for video, entry in sorted(db.items()):
        (tmp_path / f"{video}.txt").write_text("".join(s["sentence"] + "\n" for s in entry["annotations"]))
        done = tempclr(
            "align",
            str(ego / f"{video}.npy"),
            str(tmp_path / f"{video}.txt"),
            "--sentence-embeddings",
            str(layouts / "sentences.json"),
            "-f",
            "json",
        )
        assert done.returncode == 0, done.stderr
        steps = json.loads(done.stdout)["steps"]
        assert [(s["start"], s["end"]) for s in steps] == [
            tuple(map(float, s["segment"])) for s in entry["annotations"]
        ]
    (tmp_path / "v.mp4").write_bytes(b"")
    video = tempclr(
        "align",
        str(tmp_path / "v.mp4"),
        str(tmp_path / f"{video}.txt"),
        "--sentence-embeddings",
        str(layouts / "sentences.json"),
    )
    assert video.returncode == 2 and "aligns .npy features" in video.stderr


def test_declared_clip_timing(layouts, tmp_path):
    ego = layouts / "ego4d" / "egovlp"
    out = tmp_path / "o"
    args = ["index", str(ego), "--encoder", "omnivore", "-o", str(out)]
    assert tempclr(*args, "--fps", "1.875", "--clip-seconds", "1.0667").returncode == 0  # 32 frames every 16 at 30 fps
    row = read_row(out, "synth0000.npy")
    assert row["starts"][:3] == [0.0, 0.5333, 1.0667] and row["ends"][:3] == [1.0667, 1.6, 2.1334]
    assert row["fps"] == 1.875 and row["clip_seconds"] == 1.0667 and row["imported"]["how"] == "converted"
    assert tempclr(*args, "--clip-seconds", "2").returncode == 0
    assert read_row(out, "synth0000.npy")["starts"][:3] == [0.0, 2.0, 4.0]
    neither = tempclr(*args)
    assert neither.returncode == 2 and "--fps" in neither.stderr
    assert tempclr(*args, "--fps", "0").returncode == 2


def bad_files(folder: Path) -> dict[str, str]:
    """One file for each refusal, and what its error says."""
    good = np.ones((4, 8), np.float32)
    np.save(folder / "good.npy", good)
    nan = good.copy()
    nan[2, 3] = np.nan
    np.save(folder / "nan.npy", nan)
    np.save(folder / "wide.npy", np.ones((4, 9), np.float32))
    np.save(folder / "flat.npy", np.ones(8, np.float32))
    np.save(folder / "ints.npy", np.ones((4, 8), np.int64))
    np.save(folder / "pickled.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    torch.save({"features": torch.ones(4, 8)}, folder / "dict.pt")
    (folder / "cut.pth").write_bytes(b"PK\x03\x04 not a whole file")
    return {
        "nan.npy": "clip 2 holds NaN",
        "wide.npy": "dim 9, but the dim of",
        "flat.npy": "1-D array",
        "ints.npy": "int64 values",
        "pickled.npy": "without pickles",
        "dict.pt": "holds a dict (keys features)",
        "cut.pth": "a damaged or foreign zip file",
    }


def test_bad_files_are_refused_by_name(tmp_path):
    expected = bad_files(tmp_path)
    done = tempclr("index", str(tmp_path), "--encoder", "mine", "--fps", "1")
    assert done.returncode == 2 and f"{len(expected)} of {len(expected) + 1} files refused" in done.stderr
    for name in sorted(expected)[:5]:  # the first five in file order are spelled out, the rest counted
        assert f"{tmp_path / name}: " in done.stderr and expected[name] in done.stderr, name
    assert "and 2 more" in done.stderr
    assert not (tmp_path / "index.jsonl").exists()
    for name, what in expected.items():  # each alone, named with its reason
        alone = tmp_path / name.replace(".", "_")
        alone.mkdir()
        os.replace(tmp_path / name, alone / name)
        one = tempclr("index", str(alone), "--encoder", "mine", "--fps", "1", "--dim", "8")
        assert one.returncode == 2 and name in one.stderr and (what in one.stderr or "but --dim is 8" in one.stderr)
    declared = tempclr("index", str(tmp_path), "--encoder", "ViT-B-32", "--fps", "1", "--dim", "64")
    assert declared.returncode == 2 and "ViT-B-32 embeds in 512" in declared.stderr
    registered = tempclr("index", str(tmp_path), "--encoder", "tiny", "--fps", "1")
    assert registered.returncode == 2 and "good.npy: dim 8, but tiny's dim is 64" in registered.stderr


def test_a_folder_that_cannot_take_the_index_is_refused_before_any_file_is_read(tmp_path, monkeypatch):
    """Without -o the index goes into FOLDER; a read-only FOLDER is named at once, not after every .pt is
    converted (os.access is stood in: as root, as tests may run, every folder is writable)."""
    feats = tmp_path / "feats"
    feats.mkdir()
    torch.save(torch.ones(3, 8), feats / "a.pt")
    real = os.access
    monkeypatch.setattr(
        os, "access", lambda path, mode, **kw: not (Path(path) == feats and mode & os.W_OK) and real(path, mode, **kw)
    )
    done = tempclr("index", str(feats), "--encoder", "mine", "--fps", "1")
    assert done.returncode == 2
    assert f"{feats}: {feats} cannot be written to (read-only or no permission)" in done.stderr
    assert "without -o" in done.stderr and sorted(p.name for p in feats.iterdir()) == ["a.pt"]
    done = tempclr("index", str(feats), "--encoder", "mine", "--fps", "1", "-o", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "index.jsonl").exists()


@pytest.mark.parametrize("suffix", sorted(FOREIGN_FORMATS))
def test_every_foreign_format_reads_back_its_array(suffix, tmp_path):
    array = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    path = tmp_path / f"x{suffix}"
    if suffix == ".npy":
        np.save(path, array)
    else:
        torch.save(torch.from_numpy(array), path)
    read = FOREIGN_FORMATS[suffix].read(path)
    np.testing.assert_array_equal(read, array)
    assert isinstance(read, np.memmap) == FOREIGN_FORMATS[suffix].in_place  # in place: mapped, never copied


def write_sentences(path: Path, table: dict[str, list[float]]) -> None:
    """The same table in each of SENTENCE_FILES' layouts."""
    sentences, vectors = list(table), np.array(list(table.values()), np.float32)
    if path.suffix == ".json":
        path.write_text(json.dumps(table))
    elif path.suffix == ".npz":
        np.savez(path, sentences=np.array(sentences), embeddings=vectors)
    else:
        np.save(path, vectors)
        path.with_suffix(".txt").write_text("".join(s + "\n" for s in sentences))


@pytest.mark.parametrize("suffix", sorted(SENTENCE_FILES))
def test_every_sentence_file_layout_gives_its_vectors(suffix, tmp_path):
    table = {"crack the eggs": [1.0, 0.0, 2.0], "whisk them": [0.0, 3.0, 0.5]}
    path = tmp_path / f"s{suffix}"
    write_sentences(path, table)
    tower = SentenceEmbeddings(path)
    assert tower.dim == 3
    got = tower.encode_text(["whisk them", " crack the eggs ", "whisk them"])  # surrounding spaces do not count
    np.testing.assert_array_equal(
        got.numpy(), np.array([table["whisk them"], table["crack the eggs"], table["whisk them"]], np.float32)
    )
    with pytest.raises(TempclrError, match="no vector for 'fry them'"):
        tower.encode_text(["whisk them", "fry them"])


@pytest.mark.parametrize(
    "content,message",
    [
        ({"a": [1.0, 2.0], "b": [1.0]}, "the vector of 'b' has 1 numbers, the first one 2"),
        ({"a": [1.0, "x"]}, "the vector of 'a' is not a list of numbers"),
        ({"a": [1.0, float("nan")]}, "the vector of 'a' holds NaN"),
        ({}, "holds no sentences"),
        ([[1.0]], "expected one JSON object"),
    ],
)
def test_a_bad_sentence_file_is_named(content, message, tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(content))
    with pytest.raises(TempclrError, match=message):
        SentenceEmbeddings(path)


def test_sentence_vectors_of_another_dim_are_refused(layouts, tmp_path):
    path = tmp_path / "five.json"
    path.write_text(json.dumps({"the red square grows bigger": [1.0, 0, 0, 0, 0]}))
    done = tempclr("search", str(layouts / "feats"), "the red square grows bigger", "--sentence-embeddings", str(path))
    assert done.returncode == 2 and "dim 5" in done.stderr and "dim 64" in done.stderr


def test_localize_takes_sentence_vectors_for_imported_features(layouts):
    ego = layouts / "ego4d" / "egovlp"
    assert tempclr("index", str(ego), "--encoder", "egovlp", "--fps", "1").returncode == 0
    annotations = ["--annotations", str(layouts / "youcookii_annotations_trainval.json"), "--format", "youcook2"]
    without = tempclr("localize", str(ego), *annotations, "--json")
    assert without.returncode == 2 and "--sentence-embeddings" in without.stderr
    done = tempclr(
        "localize", str(ego), *annotations, "--sentence-embeddings", str(layouts / "sentences.json"), "--json"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["recall"] > 50
