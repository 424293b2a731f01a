"""`tempclr extract` as a user runs it: real videos in, .npy + index out, failures listed, resumable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from test_cli import tempclr
from videos import audio_only, cfr

TINY = ["--model", "tiny", "--pretrained", "none", "--device", "cpu"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """Two folders with a same-named video each, plus one of every broken kind."""
    root = tmp_path_factory.mktemp("videos")
    (root / "a").mkdir()
    (root / "b").mkdir()
    cfr(root / "a" / "clip.mp4", seconds=3.0, fps=10, size=48)
    cfr(root / "b" / "clip.mp4", seconds=2.4, fps=10, size=48)
    cfr(root / "b" / "other.mkv", seconds=1.0, fps=10, size=48)
    (root / "zero.mp4").write_bytes(b"")
    (root / "random.avi").write_bytes(np.random.default_rng(1).bytes(4000))
    audio_only(root / "audio.mp4")
    return root


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_extract_folder_mirrors_tree_and_lists_failures(tree, tmp_path):
    out = tmp_path / "feats"
    result = tempclr("extract", str(tree), "-o", str(out), "--workers", "2", *TINY)
    assert result.returncode == 3, result.stderr  # some videos failed
    assert result.stdout.strip() == str(out)
    a, b = np.load(out / "a" / "clip.npy"), np.load(out / "b" / "clip.npy")
    # 2.4 s: samples at 0.5 and 1.5 s; the tail clip gets none (its centre, 2.5 s, is past the end)
    assert a.shape == (3, 64) and b.shape == (2, 64) and a.dtype == np.float16
    np.testing.assert_allclose(np.linalg.norm(a.astype(np.float32), axis=1), 1.0, atol=2e-3)
    assert np.load(out / "b" / "other.npy").shape == (1, 64)
    index = {r["features"]: r for r in rows(out / "index.jsonl")}
    row = index["a/clip.npy"]
    assert row["status"] == "ok" and row["clips"] == 3 and row["dim"] == 64
    assert row["starts"] == [0.0, 1.0, 2.0] and row["ends"] == [1.0, 2.0, 3.0]
    # fast decoding (the default) shows the nearest I- or P-frame: within a quarter second at 1 fps
    assert row["decode"] == "fast" and row["skipping"] == "B-frames" and 0 < row["max_offset"] <= 0.25
    assert row["frame_times"] == pytest.approx([0.5, 1.5, 2.5], abs=row["max_offset"] + 1e-6)
    assert row["model"] == "tiny" and row["pretrained"] == "none"
    failures = {os.path.basename(r["source"]): r["reason"] for r in rows(out / "failures.jsonl")}
    assert set(failures) == {"zero.mp4", "random.avi", "audio.mp4"}
    assert "empty file" in failures["zero.mp4"] and "no video stream" in failures["audio.mp4"]
    assert not list(out.rglob("*.tmp"))


def test_rerun_skips_done_videos_and_overwrite_redoes_them(tree, tmp_path):
    out = tmp_path / "feats"
    ok = [str(tree / "a" / "clip.mp4"), str(tree / "b" / "clip.mp4")]
    assert tempclr("extract", *ok, "-o", str(out), "--workers", "0", *TINY).returncode == 0
    before = (out / "a" / "clip.npy").stat().st_mtime_ns
    again = tempclr("extract", *ok, "-o", str(out), "--json", *TINY)
    assert again.returncode == 0
    summary = json.loads(again.stdout)
    assert summary["skipped"] == 2 and summary["ok"] == 0
    assert (out / "a" / "clip.npy").stat().st_mtime_ns == before
    (out / "b" / "clip.npy").write_bytes(b"half-written")  # not loadable: redone
    redo = json.loads(tempclr("extract", *ok, "-o", str(out), "--json", *TINY).stdout)
    assert redo["skipped"] == 1 and redo["ok"] == 1
    forced = json.loads(tempclr("extract", *ok, "-o", str(out), "--json", "--overwrite", *TINY).stdout)
    assert forced["ok"] == 2


def test_list_from_stdin_and_shards_cover_everything_once(tree, tmp_path):
    listing = "\n".join(str(p) for p in sorted(tree.rglob("*clip.mp4")) + [str(tree / "b" / "other.mkv")])
    outs = []
    for i in range(2):
        out = tmp_path / f"s{i}"
        result = tempclr("extract", "--list", "-", "-o", str(out), "--shard", f"{i}/2", "--json", *TINY, stdin=listing)
        assert result.returncode == 0, result.stderr
        outs.append({p.relative_to(out).as_posix() for p in out.rglob("*.npy")})
    assert outs[0].isdisjoint(outs[1])
    assert outs[0] | outs[1] == {"a/clip.npy", "b/clip.npy", "b/other.npy"}


def test_per_frame_features_and_float32(tree, tmp_path):
    out = tmp_path / "f"
    args = [str(tree / "a" / "clip.mp4"), "-o", str(out), "--per-frame", "--fps", "2", "--dtype", "float32"]
    assert tempclr("extract", *args, *TINY).returncode == 0
    feats = np.load(out / "clip.npy")
    assert feats.shape == (6, 64) and feats.dtype == np.float32
    row = rows(out / "index.jsonl")[0]
    assert row["starts"] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "tiny", "--pretrained", "/no/such/file.pt"], "no such checkpoint file"),
        (["--model", "nope-model", "--pretrained", "none"], "no such encoder; `tempclr models` lists them"),
        (["--model", "ViT-B-32", "--pretrained", "not-a-tag"], "not a weight tag for ViT-B-32"),
        (["--fps", "0.5", *TINY], "some clips would get no frame"),
        (["--root", "/no/such/root", *TINY], "--root /no/such/root: not found; expected the folder to mirror"),
    ],
)
def test_bad_options_exit_2_with_one_line(tree, tmp_path, args, message):
    result = tempclr("extract", str(tree / "a" / "clip.mp4"), "-o", str(tmp_path / "o"), *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_missing_input_exits_2(tmp_path):
    result = tempclr("extract", str(tmp_path / "nothing"), *TINY)
    assert result.returncode == 2 and "no such file or folder" in result.stderr


@pytest.mark.slow
def test_killed_run_leaves_no_half_written_features_and_resumes(tmp_path):
    videos = tmp_path / "v"
    for k in range(12):
        cfr(videos / f"v{k:02d}.mp4", seconds=20, fps=10, size=64)
    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "tempclr_cli", "extract", str(videos), "-o", str(out), "--workers", "0", "-q", *TINY]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "index.jsonl").exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for npy in out.glob("*.npy"):
        assert np.load(npy).shape == (20, 64)  # whatever exists is whole
    from tempclr_cli.core.data.features import index_offsets

    # done: a whole .npy with its index row (the kill may land after the file, before its row: then it is redone)
    done = sum((out / name).exists() for name in index_offsets(out / "index.jsonl"))
    resumed = json.loads(tempclr("extract", str(videos), "-o", str(out), "--json", *TINY).stdout)
    assert resumed["skipped"] == done and resumed["ok"] == 12 - done
    assert len(list(out.glob("*.npy"))) == 12


def test_atomic_writes_get_ordinary_permissions(tmp_path):
    import stat

    from tempclr_cli.core import io

    io.write_text(tmp_path / "a.txt", "x")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o666 & ~mask


@pytest.mark.slow
def test_rows_time_decoding_and_encoding_where_they_happen(tmp_path):
    """#31: each row says how long decoding took (in its worker) and encoding (here), and how
    long this process waited for frames; the summary says which side bound the run."""
    import time

    import torch

    from tempclr_cli.core.encode import extract
    from tempclr_cli.core.encode import summary as summary_of

    from tempclr_cli.core.encode.jobs import plan
    from tempclr_cli.core.encode.registry import load_encoder
    from videos import cfr

    videos = [cfr(tmp_path / "in" / f"v{k}.mp4", 3.0) for k in range(2)]
    tiny = load_encoder("tiny", "none", None, torch.device("cpu"))

    class Slow:  # the same encoder, 0.2 s slower a batch
        def __getattr__(self, name):
            return getattr(tiny, name)

        def encode_images(self, frames):
            time.sleep(0.2)
            return tiny.encode_images(frames)

    jobs = plan(videos, tmp_path / "out", tmp_path / "in")
    rows = [
        e.row
        for e in extract.run(jobs, Slow(), extract.ExtractConfig(workers=1), tmp_path / "out")
        if not isinstance(e, int)
    ]
    for row in rows:
        assert row["encode_seconds"] >= 0.2 and row["decode_seconds"] > 0 and row["waited_seconds"] >= 0
    # which side bound a run is read from those times (not asserted on this run's own: on a loaded machine the
    # worker's start-up alone can outlast the encoder's sleeps)
    summary = {"ok": 2, "decode_seconds": 0.1, "encode_seconds": 0.4, "waited_seconds": 0.05}
    assert summary_of.bound(summary) == "encode"
    assert summary_of.bound({**summary, "waited_seconds": summary["encode_seconds"] + 1}) == "decode"
    # #40: how many decoding workers would keep this encoder busy: decoding time over encoding time
    assert summary_of.workers_to_keep_up({"ok": 3, "decode_seconds": 9.0, "encode_seconds": 2.0}) == 5
    assert summary_of.workers_to_keep_up({"ok": 3, "decode_seconds": 1.0, "encode_seconds": 2.0}) == 1
    assert summary_of.workers_to_keep_up({"ok": 0, "decode_seconds": 0.0, "encode_seconds": 0.0}) is None


def test_decode_modes_are_recorded_and_give_the_same_clips(tmp_path):
    from test_video import _textured

    from tempclr_cli.core.media.video import write_video

    write_video(tmp_path / "v" / "moving.mp4", (_textured(k) for k in range(30 * 6)), 30)
    feats = {}
    for mode in ("fast", "exact"):
        out = tmp_path / mode
        args = ["--decode", mode] if mode == "exact" else []  # fast is the default
        result = tempclr("extract", str(tmp_path / "v"), "-o", str(out), "--workers", "0", *args, *TINY)
        assert result.returncode == 0, result.stderr
        (row,) = rows(out / "index.jsonl")
        assert row["decode"] == mode and 0 <= row["max_offset"] <= 0.25 and row["clips"] == 6
        feats[mode] = np.load(out / "moving.npy").astype(np.float32)
    cosine = (feats["fast"] * feats["exact"]).sum(1)  # unit rows
    assert cosine.min() > 0.98, cosine
    assert (
        tempclr("extract", str(tmp_path / "v"), "-o", str(tmp_path / "x"), "--decode", "quick", *TINY).returncode == 2
    )


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's malloc_trim")
def test_freed_heap_pages_go_back_to_the_system():
    """What keeps a 10-hour extraction's memory flat (docs/reliability.md): heap blocks freed
    below a live one stay resident until the heap is trimmed."""
    from tempclr_cli.core.runtime import release_free_memory

    def resident_mb() -> float:
        return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) / 1024

    blocks = [bytearray(64 * 1024) for _ in range(1024)]  # 64 MB in heap-sized blocks (below the mmap threshold)
    keep = blocks[-1]  # a live block on top: free() alone cannot shrink the heap under it
    del blocks
    before = resident_mb()
    assert release_free_memory() is True
    assert resident_mb() < before - 32
    assert len(keep) == 64 * 1024


@pytest.mark.parametrize("workers", [0, pytest.param(1, marks=pytest.mark.slow)])  # 1: a spawned decoding worker
def test_hwaccel_cuda_decodes_on_nvdec_or_says_why_not(tmp_path, workers):
    """Without a device FFmpeg cannot open NVDEC: the video decodes on the CPU, with a
    warning and the reason in its row, and the same features as a plain run."""
    import torch

    cfr(tmp_path / "in" / "v.mp4", seconds=3.0, fps=10, size=48)
    plain = tempclr("extract", str(tmp_path / "in"), "-o", str(tmp_path / "cpu"), "--workers", "0", *TINY)
    result = tempclr(
        "extract",
        str(tmp_path / "in"),
        "-o",
        str(tmp_path / "hw"),
        "--hwaccel",
        "cuda",
        "--workers",
        str(workers),
        *TINY,
    )
    assert plain.returncode == result.returncode == 0, result.stderr
    row = rows(tmp_path / "hw" / "index.jsonl")[0]
    assert rows(tmp_path / "cpu" / "index.jsonl")[0]["decoded_on"] == "cpu"
    if torch.cuda.is_available():
        assert row["decoded_on"] == "cuda"
        return
    assert row["decoded_on"].startswith("cpu (cuda: ") and "decoded on the cpu (cuda: " in result.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "hw" / "v.npy"), np.load(tmp_path / "cpu" / "v.npy"))


def test_hwaccel_auto_decodes_on_the_cpu_when_features_are_not_on_a_gpu(tmp_path, monkeypatch):
    """Review of #40: on a CUDA machine, `--device cpu` keeps `--hwaccel auto` on the CPU (no NVDEC
    frames copied back for a CPU encoder, no spawned workers); a CUDA device keeps it "auto". The rule
    lives in `sampling_for`, so align on a video file and extract --plan follow it too."""
    import torch

    from tempclr_cli.core.encode import extract, registry

    cfr(tmp_path / "in" / "v.mp4", seconds=1.0, fps=10, size=48)
    seen, load = [], registry.load_encoder

    def on_device(name, weights, ckpt, on, seed):  # the tiny encoder, built on the CPU, said to be on `on`
        encoder = load(name, "none", ckpt, "cpu", seed)
        encoder.device = on
        return encoder

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(extract, "resolve_device", lambda spec: torch.device(spec))
    monkeypatch.setattr(registry, "load_encoder", on_device)
    monkeypatch.setattr(extract, "run", lambda todo, encoder, cfg, *rest: seen.append(cfg.hwaccel) or iter(()))
    for device in ("cpu", "cuda"):
        extract.extract_videos([tmp_path / "in"], tmp_path / device, extract.ExtractConfig(), "tiny", device=device)
    assert seen == ["none", "auto"]
    encoders = {device: on_device("tiny", "none", None, torch.device(device), 0) for device in ("cpu", "cuda")}
    assert {d: extract.sampling_for(e, extract.ExtractConfig()).hwaccel for d, e in encoders.items()} == {
        "cpu": "none",
        "cuda": "auto",
    }


def test_nvdec_opens_on_this_processs_gpu_under_torchrun(tmp_path, monkeypatch):
    """Review of #40: each torchrun process decodes on its own GPU (LOCAL_RANK), not all on GPU 0."""
    import av.codec.hwaccel

    from tempclr_cli.core.media import decode

    asked = []
    monkeypatch.setenv("LOCAL_RANK", "3")
    monkeypatch.setattr(av.codec.hwaccel, "HWAccel", lambda **kw: asked.append(kw) or None)
    decode._open_on(cfr(tmp_path / "v.mp4", seconds=0.2, fps=10, size=48), "cuda")
    assert asked[0]["device"] == "3" and asked[0]["device_type"] == "cuda"
