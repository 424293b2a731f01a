"""Damaged inputs and odd layouts (#21): each gives a correct result or a clear error that names
the file or option at fault, with the documented exit code; nothing a user has is lost."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from test_cli import tempclr
from videos import cfr

TINY = ["--model", "tiny", "--pretrained", "none", "--device", "cpu"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Three 3-s videos, their tiny features, a steps file and YouCookII annotations for them."""
    root = tmp_path_factory.mktemp("faults")
    for name in ("a", "b", "c"):
        cfr(root / "videos" / f"{name}.mp4", 3.0)
    done = tempclr("extract", str(root / "videos"), "-o", str(root / "feats"), "--workers", "0", "-q", *TINY)
    assert done.returncode == 0, done.stderr
    (root / "steps.txt").write_text("first\nsecond\n")
    db = {
        vid: {
            "subset": "validation",
            "duration": 3.0,
            "annotations": [
                {"id": 0, "segment": [0.0, 1.5], "sentence": "first"},
                {"id": 1, "segment": [1.5, 3.0], "sentence": "second"},
            ],
        }
        for vid in ("a", "b", "c", "lost1", "lost2")
    }
    (root / "ann.json").write_text(json.dumps({"database": db}))
    return root


def test_two_videos_with_one_stem_are_both_extracted_under_distinct_names(tmp_path):
    """#30: clip.mp4 and clip.mkv once stopped the whole run (exit 2); now each keeps its
    extension in its feature name, the index maps it, and readers find them by file name."""
    cfr(tmp_path / "in" / "clip.mp4", 1.0)
    cfr(tmp_path / "in" / "clip.mkv", 2.0)
    cfr(tmp_path / "in" / "other.mp4", 1.0)
    done = tempclr("extract", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--workers", "0", "--json", *TINY)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["ok"] == 3 and sorted(r["features"] for r in summary["renamed"]) == ["clip.mkv.npy", "clip.mp4.npy"]
    assert "shares its stem" in done.stderr
    assert sorted(p.name for p in (tmp_path / "out").glob("*.npy")) == ["clip.mkv.npy", "clip.mp4.npy", "other.npy"]
    from tempclr_cli.core.data.features import FeatureStore

    store = FeatureStore(tmp_path / "out")
    assert store.row("clip.mkv")["source"].endswith("clip.mkv") and store.row("other")["clips"] == 1
    assert "clip" not in store  # ambiguous: neither is taken silently
    again = tempclr("extract", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--workers", "0", "--json", *TINY)
    assert json.loads(again.stdout)["skipped"] == 3  # resumable as ever


def test_output_through_a_symlink_writes_the_target(store, tmp_path):
    target = tmp_path / "real.srt"
    target.write_text("old")
    link = tmp_path / "link.srt"
    link.symlink_to(target)
    done = tempclr(
        "align",
        str(store / "feats" / "a.npy"),
        str(store / "steps.txt"),
        "-f",
        "srt",
        "-o",
        str(link),
        "--device",
        "cpu",
    )
    assert done.returncode == 0, done.stderr
    assert link.is_symlink() and "first" in target.read_text()


@pytest.mark.parametrize(
    "option, value",
    [("--clip-seconds", "-1"), ("--clip-seconds", "0"), ("--fps", "nan"), ("--fps", "inf"), ("--drop-cost", "nan")],
)
def test_align_rejects_meaningless_numbers(store, option, value):
    done = tempclr("align", str(store / "videos" / "a.mp4"), str(store / "steps.txt"), option, value, *TINY)
    assert done.returncode == 2 and option in done.stderr


@pytest.mark.parametrize(
    "args, option",
    [
        (["extract", "x.mp4", "--fps", "nan"], "--fps"),
        (["extract", "x.mp4", "--clip-seconds", "-2"], "--clip-seconds"),
        (["extract", "x.mp4", "--batch-size", "0"], "--batch-size"),
        (["extract", "x.mp4", "--workers", "-1"], "--workers"),
        (["fewshot", "f", "--labels", "l", "--ways", "1"], "--ways"),
        (["fewshot", "f", "--labels", "l", "--gamma", "nan"], "--gamma"),
        (["fewshot", "f", "--labels", "l", "--frames", "0"], "--frames"),
        (["retrieve", "f", "--annotations", "a", "--split-number", "4"], "--split-number"),
        (["retrieve", "f", "--annotations", "a", "--task", "nn", "--clips", "0"], "--clips"),
        (["sweep", "r.yaml", "--fraction", "0"], "--fraction"),
        (["sweep", "r.yaml", "--fraction", "1.5"], "--fraction"),
        (["synth", "out", "--size", "8"], "--size"),
        (["evaluate", "x.pt", "--clips", "0"], "--clips"),
    ],
)
def test_numeric_options_are_checked_before_anything_runs(args, option):
    done = tempclr(*args)
    assert done.returncode == 2 and option in done.stderr, done.stderr


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_recipe_numbers_must_be_finite(value):
    recipe = str(Path(__file__).parents[1] / "recipes" / "tempclr_synthetic.yaml")
    done = tempclr("train", recipe, "--set", f"optim.lr={value}", "--print-recipe")
    assert done.returncode == 2 and "optim.lr" in done.stderr and "finite" in done.stderr


def test_bad_files_exit_2_and_name_the_file(store, tmp_path):
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    done = tempclr("align", str(empty), str(store / "steps.txt"), *TINY)
    assert done.returncode == 2 and "empty.npy" in done.stderr
    done = tempclr("align", str(store / "feats" / "a.npy"), str(tmp_path), "--device", "cpu")
    assert done.returncode == 2 and "is a folder" in done.stderr and "Traceback" not in done.stderr
    noise = tmp_path / "noise.json"
    noise.write_bytes(np.random.default_rng(0).bytes(4000))
    done = tempclr("retrieve", str(store / "feats"), "--annotations", str(noise), "--device", "cpu")
    assert done.returncode == 2 and "noise.json" in done.stderr


def test_a_folder_as_video_fails_at_once(store, tmp_path):
    done = tempclr("align", str(tmp_path), str(store / "steps.txt"), *TINY)
    assert done.returncode == 2 and "is a folder" in done.stderr
    assert "model tiny" not in done.stderr and "encoding" not in done.stderr  # before any model loads


def test_retrieve_says_which_annotated_videos_have_no_features(store):
    args = ["retrieve", str(store / "feats"), "--annotations", str(store / "ann.json"), "--json", "--device", "cpu"]
    done = tempclr(*args)
    assert done.returncode == 0, done.stderr
    assert "2 annotated videos have no features" in done.stderr and "lost1" in done.stderr and "lost2" in done.stderr
    assert json.loads(done.stdout)["missing_features"] == ["lost1", "lost2"] and json.loads(done.stdout)["videos"] == 3
    strict = tempclr(*args, "--strict")
    assert strict.returncode == 2 and "lost1" in strict.stderr and not strict.stdout


def test_nn_retrieval_refuses_a_model_no_recipe_describes(tmp_path):
    done = tempclr(
        "retrieve",
        str(tmp_path),
        "--task",
        "nn",
        "--format",
        "ucf101",
        "--annotations",
        str(tmp_path),
        "--checkpoint",
        "none",
        "--device",
        "cpu",
    )
    assert done.returncode == 2 and "--set optim.lr=0" in done.stderr


def test_a_diverging_run_exits_4_and_keeps_its_finite_checkpoint(step_dataset, tmp_path):
    """optim.lr=1e30 makes the outputs non-finite: a diverged model (exit 4), not bad input (exit 2)."""
    import torch

    from tempclr_cli.core.checkpoint import load_checkpoint

    (data, feats), run = step_dataset, tmp_path / "run"
    recipe = str(Path(__file__).parents[1] / "recipes" / "tempclr_synthetic.yaml")
    args = [
        "train",
        recipe,
        "--set",
        f"data.root={feats}",
        "--set",
        f"data.annotations={data / 'youcookii_annotations_trainval.json'}",
        "--run-dir",
        str(run),
        "--device",
        "cpu",
        "-q",
        "--set",
        "train.batch_size=4",
    ]
    assert tempclr(*args, "--set", "train.epochs=2").returncode == 0
    done = tempclr(
        *args, "--set", "train.epochs=4", "--set", "optim.lr=1e30", "--set", "optim.grad_clip=null", "--resume", "auto"
    )
    assert done.returncode == 4, done.stderr
    assert "diverged" in done.stderr and "last.pt" in done.stderr
    state = load_checkpoint(run / "last.pt")
    assert state["epoch"] == 2 and all(bool(torch.isfinite(v).all()) for v in state["model"].values())


def test_a_rerun_repairs_a_missing_index_row_and_removes_stale_temporaries(tmp_path):
    import socket

    for name in ("a", "b"):
        cfr(tmp_path / "in" / f"{name}.mp4", 2.0)
    out = tmp_path / "out"
    args = ["extract", str(tmp_path / "in"), "-o", str(out), "--workers", "0", "--json", "-q", *TINY]
    assert tempclr(*args).returncode == 0
    rows = (out / "index.jsonl").read_text().splitlines()
    (out / "index.jsonl").write_text("".join(r + "\n" for r in rows if '"a.npy"' not in r))  # killed between the writes
    dead = f".b.npy.{socket.gethostname().replace('.', '_')}-99999999.k1ll3d.tmp"  # left by a killed process
    (out / dead).write_bytes(b"half a file")
    again = tempclr(*args)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["ok"] == 1  # a.npy is redone, b.npy kept
    index = [json.loads(r) for r in (out / "index.jsonl").read_text().splitlines()]
    assert sorted(r["features"] for r in index) == ["a.npy", "b.npy"]  # one row per feature file
    assert not list(out.rglob("*.tmp"))


@pytest.mark.parametrize("suffix", [".ts", ".mkv", ".mp4"])
def test_a_stream_that_starts_late_counts_its_clips_from_its_first_frame(tmp_path, suffix):
    """A 0.4 s cut whose first frame is at 8.3 s: one clip (was 9), times as a player shows them."""
    from tempclr_cli.core.media.video import write_video
    from videos import frame_with_index

    video = write_video(
        tmp_path / f"cut{suffix}", (frame_with_index(k) for k in range(4)), 10, times=[8.3 + k / 10 for k in range(4)]
    )
    done = tempclr("extract", str(video), "-o", str(tmp_path / "f"), "--workers", "0", "-q", *TINY)
    assert done.returncode == 0, done.stderr
    row = json.loads((tmp_path / "f" / "index.jsonl").read_text().splitlines()[-1])
    assert row["clips"] == 1 and row["starts"] == [0.0]
    assert row["start_offset"] == pytest.approx(8.3) and row["duration"] == pytest.approx(0.4)
    (tmp_path / "s.txt").write_text("one step\n")
    aligned = tempclr("align", str(video), str(tmp_path / "s.txt"), "-f", "json", *TINY)
    result = json.loads(aligned.stdout)
    assert result["duration"] == pytest.approx(0.4) and result["steps"][0]["start"] == 0.0


def test_a_cut_off_video_is_kept_flagged_and_reported(tmp_path):
    full = cfr(tmp_path / "in" / "full.mkv", 4.0)
    data = full.read_bytes()
    (tmp_path / "in" / "half.mkv").write_bytes(data[: len(data) // 2])  # the header still says 4 s
    done = tempclr("extract", str(tmp_path / "in"), "-o", str(tmp_path / "f"), "--workers", "0", "--json", *TINY)
    assert done.returncode == 0, done.stderr
    assert "half.mkv" in done.stderr and "truncated" in done.stderr
    summary = json.loads(done.stdout)
    assert [Path(s).name for s in summary["truncated"]] == ["half.mkv"]
    rows = {json.loads(r)["features"]: json.loads(r) for r in (tmp_path / "f" / "index.jsonl").read_text().splitlines()}
    assert rows["half.npy"]["truncated"] is True and rows["half.npy"]["duration"] < 2
    assert rows["full.npy"]["truncated"] is False and rows["full.npy"]["duration"] == pytest.approx(4.0)


def test_one_index_row_is_found_without_reading_the_store(tmp_path):
    """`align x.npy` in a store of thousands: the row is found by a byte search (#17)."""
    from tempclr_cli.core.data.features import row_of
    from tempclr_cli.core.data.features import read_row

    rows = [{"source": f"v{k}.mp4", "features": f"v{k}.npy", "clips": 1, "status": "ok"} for k in range(5000)]
    rows += [
        {"source": "a.mp4", "features": "sub/a.npy", "clips": 1, "status": "ok"},
        {"source": "ba.mp4", "features": "sub/ba.npy", "clips": 2, "status": "ok"},
        {"source": "a2.mp4", "features": "sub/a.npy", "clips": 3, "status": "ok"},
    ]  # a rerun's newer row
    text = "".join(json.dumps(r) + "\n" for r in rows) + '{"source": "torn", "features": "sub/a.npy", "cl'
    (tmp_path / "index.jsonl").write_text(text)
    assert read_row(tmp_path, "sub/a.npy")["clips"] == 3  # the last whole row wins, the torn one is skipped
    assert read_row(tmp_path, "sub/ba.npy")["clips"] == 2 and read_row(tmp_path, "nope.npy") == {}
    (tmp_path / "sub").mkdir()
    assert row_of(tmp_path / "sub" / "a.npy")["source"] == "a2.mp4"


@pytest.mark.slow
def test_a_corrupt_packet_costs_its_frames_not_the_rest_of_the_video(tmp_path):
    """#30: 50 bytes overwritten inside a 20-s H.264 file once ended decoding at the bad packet
    (11 s kept, flagged truncated); now the packet is skipped, counted, and the rest decodes."""
    import av

    from tempclr_cli.core.media.decode import DecodeReport, decode_packets
    from tempclr_cli.core.media.sampling import sample_frames
    from tempclr_cli.core.media.video import write_video

    rng = np.random.default_rng(0)
    frames = [(rng.integers(0, 255, (96, 128, 3)) // 64 * 64).astype(np.uint8) for _ in range(30 * 20)]
    clean = write_video(tmp_path / "clean.mp4", frames, 30).read_bytes()
    bad = tmp_path / "bad.mp4"
    for off in np.linspace(len(clean) * 0.3, len(clean) * 0.8, 40).astype(int):  # find a packet the decoder rejects
        data = bytearray(clean)
        data[off : off + 50] = bytes(rng.integers(0, 255, 50, dtype=np.uint8))
        bad.write_bytes(data)
        with av.open(str(bad)) as container:
            errors: list = []
            try:
                sum(1 for _ in decode_packets(container, container.streams.video[0], errors))
            except av.FFmpegError:
                continue
        if errors:
            break
    else:
        pytest.skip("no offset made the decoder reject a packet")
    report = DecodeReport()
    samples = list(sample_frames(bad, 1.0, 96, report))
    assert report.decode_errors >= 1 and not report.truncated
    assert len(samples) == 20 and report.duration > 19.9  # every second is there


@pytest.mark.slow
def test_a_full_disk_fails_the_rest_by_name_and_a_rerun_finishes(tmp_path):
    """#30: extraction into a small tmpfs that fills part-way: exit 3, what was written is whole,
    no temporary is left, and a rerun after space is freed finishes the rest."""
    import shutil
    import subprocess

    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        for k in range(8):
            cfr(tmp_path / "in" / f"v{k}.mp4", 20.0)
        (disk / "ballast").write_bytes(b"\0" * 560_000)  # leaves room for the first few videos' features
        args = [
            "extract",
            str(tmp_path / "in"),
            "-o",
            str(disk / "out"),
            "--workers",
            "0",
            "--dtype",
            "float32",
            "--json",
            "-q",
            *TINY,
        ]
        full = tempclr(*args)
        assert full.returncode == 3, full.stderr
        summary = json.loads(full.stdout)
        assert summary["ok"] >= 1 and summary["failed"] and summary["ok"] + len(summary["failed"]) == 8
        assert all("free space and rerun" in f["reason"] for f in summary["failed"])
        for npy in (disk / "out").glob("*.npy"):
            assert np.load(npy).shape == (20, 64)  # whatever is there is whole
        assert not [p for p in (disk / "out").rglob("*") if p.name.endswith(".tmp")]
        (disk / "ballast").unlink()
        rerun = tempclr(*args)
        assert rerun.returncode == 0, rerun.stderr
        assert json.loads(rerun.stdout)["ok"] == len(summary["failed"])
        assert len(list((disk / "out").glob("*.npy"))) == 8
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)
        shutil.rmtree(disk, ignore_errors=True)


@pytest.mark.parametrize(
    "args, message",
    [
        (["extract", "IN", "-o", "FILE"], "--out FILE: is a file; expected a folder"),
        (["align", "IN", "STEPS", "-o", "FOLDER"], "--output FOLDER: is a folder; expected a file name"),
        (["extract", "IN", "-o", "RO/out"], "cannot be written to (read-only or no permission)"),
        (["train", "tempclr_synthetic", "--run-dir", "RO/run"], "cannot be written to"),
    ],
)
@pytest.mark.slow
def test_outputs_that_cannot_be_written_fail_before_any_model_loads(tmp_path, args, message):
    """#30: a read-only folder or a folder where a file goes (and the reverse): exit 2 at once."""
    import subprocess

    video = cfr(tmp_path / "v.mp4", 1.0)
    (tmp_path / "steps.txt").write_text("a\n")
    (tmp_path / "FILE").write_text("")
    (tmp_path / "FOLDER").mkdir()
    ro = tmp_path / "RO"
    ro.mkdir()
    mounted = not subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)], capture_output=True
    ).returncode
    if not mounted:
        ro.chmod(0o555)
        if os.access(ro, os.W_OK):  # root without mount rights: nothing is read-only here
            pytest.skip("no read-only folder can be made here")
    try:
        names = {"IN": str(video), "STEPS": str(tmp_path / "steps.txt")}
        real = [names.get(a, str(tmp_path / a) if a.split("/")[0] in ("FILE", "FOLDER", "RO") else a) for a in args]
        result = tempclr(*real, process=True)
        assert (
            result.returncode == 2
            and message.replace("FILE", str(tmp_path / "FILE"))
            .replace("FOLDER", str(tmp_path / "FOLDER"))
            .split(": ")[-1]
            in result.stderr
        ), result.stderr
    finally:
        if mounted:
            subprocess.run(["umount", str(ro)], capture_output=True)


def _every_decodable_frame(path) -> list[float]:
    """Reference, written plainly: one decoder thread, every packet, bad ones skipped, a
    demuxing error ends the packets, then the decoder is drained; the frames' times from the
    first, without those that go back in time (damaged timestamps), as no player shows them."""
    import av

    times: list[float] = []
    try:
        container = av.open(str(path))
    except av.FFmpegError:
        return []
    with container:
        if not container.streams.video or container.streams.video[0].codec_context is None:
            return []
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        frames = []
        try:
            for packet in container.demux(stream):
                try:
                    frames += packet.decode()
                except av.FFmpegError:
                    pass
        except av.FFmpegError:
            frames += stream.codec_context.decode(None)
        for f in frames:
            t = float(f.pts * stream.time_base)
            if not times or t > times[-1]:
                times.append(t)
    return [t - times[0] for t in times]


@pytest.mark.parametrize("preset", ["medium", "veryfast"])  # fast mode skips non-reference frames, or B-frames
def test_damaged_files_give_every_frame_that_decodes(tmp_path, preset):
    """Frame threads lost the last 1-3 frames of 9 of these 50 files (those in flight when a
    packet failed), and a demuxing error lost the frames the decoder still held: every sample
    now shows the frame a plain one-thread decode of everything shows at its time, in exact
    mode, and fast mode gives as many samples over the same span."""
    from videos import faststart_h264, fuzzed

    from tempclr_cli.core.media.decode import DecodeReport, VideoError
    from tempclr_cli.core.media.sampling import sample_frames

    checked = 0
    for path in fuzzed(faststart_h264(tmp_path / "source.mp4", 4.0, preset), tmp_path / "in", count=50):
        times = _every_decodable_frame(path)
        exact, fast = DecodeReport(), DecodeReport()
        try:
            samples = list(sample_frames(path, 1.0, 32, exact, decode="exact"))
        except VideoError:
            assert not times, path.name
            continue
        shown = [max(t for t in times if t <= s.time + 1e-9) for s in samples]
        assert [s.frame_time for s in samples] == pytest.approx(shown), path.name
        assert exact.duration == pytest.approx(times[-1] + 0.1, abs=0.011), path.name  # the last frame's end (10 fps)
        assert len(list(sample_frames(path, 1.0, 32, fast, decode="fast"))) == len(samples), path.name
        assert fast.duration == pytest.approx(exact.duration) and fast.truncated == exact.truncated, path.name
        checked += 1
    assert checked >= 25
