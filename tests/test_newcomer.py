"""A newcomer's first hour (#36): bad inputs answer with exit 2 and a sentence that names the file or
option and what is accepted, never a Python exception; outputs are what their names say."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_cli import tempclr

TINY = ["--model", "tiny", "--pretrained", "none", "--device", "cpu"]


@pytest.fixture()
def npy(tmp_path) -> tuple[Path, Path]:
    np.save(tmp_path / "f.npy", np.random.default_rng(0).standard_normal((20, 64)).astype(np.float16))
    (tmp_path / "steps.txt").write_text(
        "crack the eggs into a bowl, then whisk them until the whole mixture is "
        "frothy and pale yellow\nheat the pan\nfry the omelette\n"
    )
    return tmp_path / "f.npy", tmp_path / "steps.txt"


def test_extract_on_an_empty_folder_says_no_videos_and_exits_2(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not a video\n")
    done = tempclr("extract", str(tmp_path / "empty"), "-o", str(tmp_path / "out"), *TINY)
    assert done.returncode == 2 and "no videos found" in done.stderr and ".mp4" in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()


def test_a_missing_list_file_is_named(tmp_path):
    done = tempclr("extract", "--list", str(tmp_path / "missing.txt"), "-o", str(tmp_path / "out"), *TINY)
    assert done.returncode == 2 and "missing.txt: --list file not found" in done.stderr
    assert "FileNotFoundError" not in done.stderr


def test_a_bad_choice_reads_plainly():
    done = tempclr("models", "--kind", "nope")
    assert done.returncode == 2 and "'nope' is not one of 'image-text', 'video-text', 'video'" in done.stderr
    assert "Value error" not in done.stderr


@pytest.mark.parametrize("content", [b"hello\n", b"", b"x" * 100, bytes(range(256))])
def test_a_checkpoint_that_is_no_checkpoint_is_refused_with_what_is_accepted(npy, tmp_path, content):
    (tmp_path / "ck.pt").write_bytes(content)
    done = tempclr("align", *map(str, npy), "--checkpoint", str(tmp_path / "ck.pt"), *TINY)
    assert done.returncode == 2, done.stderr
    assert "ck.pt" in done.stderr and "expected a `tempclr train` run's last.pt" in done.stderr
    assert "Error:" not in done.stderr.replace("error:", "")  # no Python exception's name


def test_a_missing_released_checkpoint_is_named_before_the_tokenizer(npy, tmp_path):
    done = tempclr("align", *map(str, npy), "--checkpoint", str(tmp_path / "tempclr_dtw.safetensors"))
    assert done.returncode == 2
    assert "tempclr_dtw.safetensors: checkpoint not found" in done.stderr and "yyuncong/TempCLR" in done.stderr
    assert "tokenizer" not in done.stderr


@pytest.mark.parametrize(
    "suffix, magic", [(".png", b"\x89PNG"), (".jpg", b"\xff\xd8\xff"), (".svg", b"<?xml"), (".pdf", b"%PDF")]
)
def test_a_plot_is_written_in_the_format_its_suffix_names(npy, tmp_path, suffix, magic):
    pytest.importorskip("matplotlib")
    done = tempclr("align", *map(str, npy), *TINY, "-f", "json", "-q", "--plot", str(tmp_path / f"p{suffix}"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / f"p{suffix}").read_bytes().startswith(magic)


@pytest.mark.parametrize("option", [["--plot", "p.gif"], ["-o", "x.docx"], ["-o", "x.json", "-f", "srt"]])
def test_an_output_suffix_that_names_no_format_is_refused_before_anything_is_written(npy, tmp_path, option):
    done = tempclr("align", *map(str, npy), *TINY, *option, "-q", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert option[1] in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.npy", "steps.txt"]


def test_the_suffix_picks_the_format_of_o(npy, tmp_path):
    done = tempclr("align", *map(str, npy), *TINY, "-o", str(tmp_path / "x.vtt"), "-q")
    assert done.returncode == 0 and (tmp_path / "x.vtt").read_text().startswith("WEBVTT")


def test_a_table_written_to_a_file_is_plain_text_within_columns(npy, tmp_path, monkeypatch):
    """#36: from a terminal, `-f table -o t.txt` wrote the terminal's colour codes into the file."""
    import tempclr_cli.commands.align as command

    monkeypatch.setattr(command, "stdout_is_terminal", lambda: True)
    done = tempclr(
        "align", *map(str, npy), *TINY, "-f", "table", "-o", str(tmp_path / "t.txt"), "-q", env_extra={"COLUMNS": "80"}
    )
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "t.txt").read_text()
    assert "\x1b[" not in text and max(len(line) for line in text.splitlines()) <= 80
    monkeypatch.undo()
    piped = tempclr("align", *map(str, npy), *TINY, "-f", "table", "-q", env_extra={"COLUMNS": "60"})
    assert max(len(line) for line in piped.stdout.splitlines()) <= 60


def test_json_lines_of_a_batch_account_for_every_video(tmp_path):
    np.save(tmp_path / "a.npy", np.random.default_rng(0).standard_normal((10, 64)).astype(np.float16))
    np.save(tmp_path / "b.npy", np.random.default_rng(1).standard_normal((10, 64)).astype(np.float16))
    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "a.txt").write_text("one\ntwo\n")
    done = tempclr("align", str(tmp_path), str(tmp_path / "steps"), "--output-dir", str(tmp_path / "out"), *TINY, "-q")
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(Path(r["video"]).name, r.get("skipped")) for r in rows] == [("b.npy", "no steps file"), ("a.npy", None)]
    assert "skipped" in done.stderr and "b.npy" in done.stderr


@pytest.mark.parametrize(
    "torch_v, vision_v, fix",
    [
        ("2.14.1+cpu", "0.29.1", "'torchvision==0.29.*' --index-url https://download.pytorch.org/whl/cpu"),
        ("2.13.0+cpu", "0.29.1+cpu", "'torchvision==0.28.*' --index-url https://download.pytorch.org/whl/cpu"),
        ("2.14.1", "0.29.1+cpu", "'torchvision==0.29.*'"),
    ],
)
def test_a_torch_torchvision_mismatch_is_named_with_the_fix_before_anything_imports(
    monkeypatch, torch_v, vision_v, fix
):
    """#36: a CPU-only torch beside a CUDA torchvision failed with 'operator torchvision::nms does not exist'."""
    from importlib import metadata

    from tempclr_cli.core import runtime

    real = metadata.version
    monkeypatch.setattr(
        metadata, "version", lambda name: {"torch": torch_v, "torchvision": vision_v}.get(name) or real(name)
    )
    runtime.torch_stack_mismatch.cache_clear()
    try:
        done = tempclr("models", "--json")
    finally:
        runtime.torch_stack_mismatch.cache_clear()
    assert done.returncode == 2 and done.stdout == ""
    assert f"torch {torch_v} and torchvision {vision_v} are not builds of one release" in done.stderr
    assert fix in done.stderr


def test_matching_builds_pass():
    from tempclr_cli.core.runtime import torch_stack_mismatch

    assert torch_stack_mismatch() is None  # this environment, installed as README says
    for pair in (("2.14.1+cpu", "0.29.1+cpu"), ("2.9.1", "0.24.1"), ("2.14.1+cu130", "0.29.1+cu130")):
        assert torch_stack_mismatch(pair) is None


def test_the_offline_error_for_the_default_model_suggests_a_first_try(npy, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    done = tempclr("align", *map(str, npy), "--device", "cpu")
    assert done.returncode == 2 and "--model tiny --pretrained synthetic" in done.stderr


def test_a_broken_recipe_names_its_line(tmp_path):
    (tmp_path / "bad.yaml").write_text("data:\n  root: x\n  format: [unclosed\n")
    done = tempclr("train", str(tmp_path / "bad.yaml"), "--print-recipe")
    assert done.returncode == 2 and "bad.yaml:4:1: invalid YAML" in done.stderr


def test_models_marks_the_default_and_counts_open_clip(tmp_path):
    table = tempclr("models", env_extra={"COLUMNS": "200"})
    assert "ViT-B-32 (default)" in table.stdout and "more open_clip architectures" in table.stdout
    assert len(table.stdout.splitlines()) < 40
    every = tempclr("models", "--all", env_extra={"COLUMNS": "200"})
    assert len(every.stdout.splitlines()) > 140
    rows = json.loads(tempclr("models", "--json").stdout)
    assert [r["name"] for r in rows if r["default"]] == ["ViT-B-32"] and len(rows) > 140


def test_train_list_says_what_each_recipe_trains():
    rows = [line.split("\t") for line in tempclr("train", "--list").stdout.splitlines()]
    assert all(len(r) == 3 and r[2] for r in rows)
    assert ["tclr_ucf", "tclr"] == rows[[r[0] for r in rows].index("tclr_ucf")][:2]


def test_help_reads_in_words():
    """#36: metavars said TEXT beside N and X, and bounds read `x>=1`."""
    from test_house import help_text

    text = " ".join(help_text("extract").split())
    assert "TEXT" not in text and "x>=" not in text
    assert "--batch-size N" in text and "at least 1" in text and "--shard I/N" in text


def test_a_run_where_every_video_failed_names_no_bound(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "broken.mp4").write_bytes(b"not a video" * 100)
    done = tempclr("extract", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--workers", "0", *TINY)
    assert done.returncode == 3 and "-bound" not in done.stderr


@pytest.mark.parametrize("name", ["classInd.txt", "trainlist01.txt"])
def test_a_binary_file_among_the_split_lists_is_named(tmp_path, name):
    """#36 item 7, left by the path sweep: files inside a dataset's list folder were read with a bare
    UTF-8 decode (UnicodeDecodeError, exit 1)."""
    from tempclr_cli.core.data.splits import split_videos, ucf101_classes

    (tmp_path / "classInd.txt").write_text("1 Walk\n")
    (tmp_path / "trainlist01.txt").write_text("Walk/v.avi 1\n")
    (tmp_path / name).write_bytes(bytes(range(128, 256)))
    from tempclr_cli.core.errors import TempclrError

    with pytest.raises(TempclrError, match=f"{name}: not UTF-8 text"):
        ucf101_classes(tmp_path) if name == "classInd.txt" else split_videos(tmp_path, "ucf101", tmp_path, 1, "train")


def test_pypi_wheels_are_cpu_builds_off_linux(monkeypatch):
    """Review of #36: on Windows and macOS PyPI's untagged torch is a CPU build, so a CPU-index torchvision
    beside it is a working pair, not a mismatch (on Linux PyPI's are CUDA builds)."""
    import sys

    from tempclr_cli.core.runtime import torch_stack_mismatch

    monkeypatch.setattr(sys, "platform", "win32")
    torch_stack_mismatch.cache_clear()
    try:
        assert torch_stack_mismatch(("2.14.1", "0.29.1+cpu")) is None
        assert torch_stack_mismatch(("2.14.1+cu130", "0.29.1")) is not None  # a CUDA torch, PyPI's CPU torchvision
    finally:
        torch_stack_mismatch.cache_clear()


def test_a_torn_safetensors_and_a_checkpoint_of_another_version_are_named(npy, tmp_path):
    """Review of #36 item 7: a torn .safetensors and a checkpoint of the right kind but other contents exited 1."""
    import torch

    from tempclr_cli.core.checkpoint import save_checkpoint

    (tmp_path / "torn.safetensors").write_bytes(b'\x10\x00\x00\x00\x00\x00\x00\x00{"a":1}' + b"x" * 30)
    save_checkpoint(tmp_path / "old.pt", {"kind": "tempclr", "model": {"x": torch.zeros(2)}, "meta": {}})
    for name, said in (("torn.safetensors", "cannot read it safely"), ("old.pt", "contents do not fit it")):
        done = tempclr("align", *map(str, npy), "--checkpoint", str(tmp_path / name), *TINY)
        assert done.returncode == 2 and name in done.stderr and said in done.stderr, done.stderr
