"""`align` for many videos and for people (#20): batch mode, the Python API, clean
subtitles, and the HTML review page checked in a real browser (headless Chromium)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import av
import pytest
from test_cli import tempclr

from tempclr_cli.core.media.synth import SynthConfig, generate

README = Path(__file__).parents[1] / "README.md"
SYNTHETIC = ["--model", "tiny", "--pretrained", "synthetic", "--device", "cpu"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Four synthetic videos, their features (tiny / synthetic) and step files."""
    root = tmp_path_factory.mktemp("batch")
    list(generate(root, SynthConfig(videos=4, classes=0, class_videos=0, seed=21)))
    done = tempclr("extract", str(root / "videos"), "-o", str(root / "feats"), "--workers", "0", "-q", *SYNTHETIC)
    assert done.returncode == 0, done.stderr
    return root


def annotations(root: Path) -> dict:
    return json.loads((root / "youcookii_annotations_trainval.json").read_text())["database"]


def test_a_batch_pairs_by_stem_loads_once_and_reports_a_failure_by_name(store, tmp_path):
    steps = tmp_path / "steps"
    shutil.copytree(store / "steps", steps)
    (steps / "synth0002.txt").unlink()  # one video without its steps: skipped and said so (#29)
    args = [str(store / "feats"), str(steps), "-f", "all", "--device", "cpu"]
    skipping = tempclr("align", *args, "--output-dir", str(tmp_path / "skip"), "-q")
    assert skipping.returncode == 0, skipping.stderr
    # #36: under -q too, the skipped video is said on stderr, has its own JSON line, and the summary counts it
    assert "skipped" in skipping.stderr and "synth0002" in skipping.stderr
    rows = [json.loads(line) for line in skipping.stdout.splitlines()]
    assert [(Path(r["video"]).stem, r.get("skipped")) for r in rows] == [
        ("synth0002", "no steps file"),
        ("synth0000", None),
        ("synth0001", None),
        ("synth0003", None),
    ]
    assert not (tmp_path / "skip" / "failures.jsonl").exists()
    summary = tempclr("align", *args, "--output-dir", str(tmp_path / "skip2"))
    assert "3 of 4 aligned" in summary.stderr and "(15 files); 1 skipped (no steps file)" in summary.stderr
    done = tempclr("align", *args, "--output-dir", str(tmp_path / "out"), "--strict")
    assert done.returncode == 3, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]  # data only: one JSON object a line
    assert [(Path(r["video"]).stem, "failed" in r) for r in lines] == [
        ("synth0000", False),
        ("synth0001", False),
        ("synth0002", True),
        ("synth0003", False),
    ]
    lines = [r for r in lines if "failed" not in r]
    assert done.stderr.count("model tiny (synthetic)") == 1  # the model loaded once for the batch
    assert "synth0002" in done.stderr and "steps file not found" in done.stderr
    failures = [json.loads(r) for r in (tmp_path / "out" / "failures.jsonl").read_text().splitlines()]
    assert [Path(f["video"]).stem for f in failures] == ["synth0002"]
    for stem in ("synth0000", "synth0001", "synth0003"):
        assert sorted(p.suffix for p in (tmp_path / "out").glob(f"{stem}.*")) == [
            ".csv",
            ".html",
            ".json",
            ".srt",
            ".vtt",
        ]
    db = annotations(store)
    for row in lines:  # and the alignments are right: the shipped synthetic weights
        truth = db[Path(row["video"]).stem]["annotations"]
        assert [(s["start"], s["end"]) for s in row["steps"]] == [tuple(map(float, a["segment"])) for a in truth]


def test_pairs_csv_and_the_format_follows_the_suffix(store, tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(f"video,steps\n{store / 'feats' / 'synth0001.npy'},{store / 'steps' / 'synth0001.txt'}\n")
    done = tempclr(
        "align", "--pairs", str(pairs), "--output-dir", str(tmp_path / "out"), "-f", "srt", "--device", "cpu"
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "synth0001.srt").read_text().startswith("1\n00:00:")
    single = tempclr(
        "align",
        str(store / "feats" / "synth0000.npy"),
        str(store / "steps" / "synth0000.txt"),
        "-o",
        str(tmp_path / "x.srt"),
        "--device",
        "cpu",
    )
    assert single.returncode == 0 and (tmp_path / "x.srt").read_text().startswith("1\n00:00:")
    need_dir = tempclr(
        "align", str(store / "feats" / "synth0000.npy"), str(store / "steps" / "synth0000.txt"), "-f", "all"
    )
    assert need_dir.returncode == 2 and "--output-dir" in need_dir.stderr


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_markup_and_arrows_in_a_step_cannot_break_a_cue(store, tmp_path, fmt):
    steps = (store / "steps" / "synth0003.txt").read_text().splitlines()
    dirty = [f"{s} <b>now</b> --> & then" for s in steps]
    (tmp_path / "steps.txt").write_bytes("\ufeff".encode() + "\n".join(dirty).encode())  # with a byte-order mark
    target = tmp_path / f"x.{fmt}"
    done = tempclr(
        "align",
        str(store / "feats" / "synth0003.npy"),
        str(tmp_path / "steps.txt"),
        "-o",
        str(target),
        "--device",
        "cpu",
    )
    assert done.returncode == 0, done.stderr
    with av.open(str(target)) as container:
        cues = [bytes(p).decode() for p in container.demux(container.streams.subtitles[0]) if p.size]
    assert len(cues) == len(steps)  # one cue per step: nothing split or swallowed
    assert cues[0].startswith(steps[0])  # the BOM is not part of the first step
    assert all("-->" not in c for c in cues)


@pytest.mark.slow
def test_the_readme_api_example_runs(tmp_path):
    block = re.search(r"<!-- api-example -->\s*```python\n(.*?)```", README.read_text(), re.S)
    assert block, "README has no api-example block"
    done = subprocess.run(
        [sys.executable, "-c", block.group(1)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    printed = [line.split() for line in done.stdout.splitlines() if line[:1].isdigit()]
    truth = annotations(tmp_path / "example")["synth0000"]["annotations"]
    assert [(float(p[1]), float(p[2])) for p in printed] == [tuple(map(float, a["segment"])) for a in truth]
    assert (tmp_path / "example" / "review.html").read_text().startswith("<!doctype html>")


def _browser():
    """Headless Chromium through selenium; skipped where missing, except in CI (it must run there)."""
    chromedriver = shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        webdriver = None
    if webdriver is None or not chromedriver or not (shutil.which("chromium") or shutil.which("chromium-browser")):
        if os.environ.get("CI"):
            pytest.fail("headless Chromium is required in CI (apt-get install chromium chromium-driver; pip selenium)")
        pytest.skip(
            "no headless Chromium here (Debian: apt-get install chromium chromium-driver; pip install selenium)"
        )
    os.environ.setdefault("SE_AVOID_STATS", "true")
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))


@pytest.mark.slow
def test_the_review_page_plays_its_chapters_and_seeks_on_click(store, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    page = tmp_path / "review" / "synth0002.html"
    done = tempclr(
        "align",
        str(store / "feats" / "synth0002.npy"),
        str(store / "steps" / "synth0002.txt"),
        "-f",
        "html",
        "-o",
        str(page),
        "--device",
        "cpu",
    )
    assert done.returncode == 0, done.stderr
    text = page.read_text()
    assert "http://" not in text and "https://" not in text  # offline: nothing fetched from anywhere
    steps = (store / "steps" / "synth0002.txt").read_text().splitlines()
    truth = annotations(store)["synth0002"]["annotations"]
    driver = _browser()
    try:
        driver.get(page.as_uri())
        wait = WebDriverWait(driver, 20)
        wait.until(
            lambda d: d.execute_script(
                "return video.readyState >= 1 && chapters.track.cues && chapters.track.cues.length > 0"
            )
        )
        entries = driver.find_elements(By.CSS_SELECTOR, "li.step")
        assert len(entries) == len(steps)
        assert driver.execute_script("return chapters.track.cues.length") == len(steps)
        assert all(
            e.find_element(By.TAG_NAME, "img").get_attribute("src").startswith("data:image/png") for e in entries
        )
        assert driver.execute_script("return document.querySelectorAll('#heatmap rect.segment').length") == len(steps)
        entries[-1].click()
        wait.until(lambda d: abs(d.execute_script("return video.currentTime") - truth[-1]["segment"][0]) < 0.05)
        driver.save_screenshot(str(tmp_path / "review.png"))
    finally:
        driver.quit()
    assert (tmp_path / "review.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("kind", ["srt", "json", "youcook2"])
def test_steps_transfer_from_an_annotated_reference_video(store, tmp_path, kind):
    """The reference's timed steps (SRT, tempclr JSON or a YouCookII entry) label another video."""
    db = annotations(store)
    if kind == "youcook2":
        ref_steps = store / "youcookii_annotations_trainval.json"  # the database: the entry named like the video
    else:
        ref_steps = tmp_path / f"ref.{kind}"
        made = tempclr(
            "align",
            str(store / "feats" / "synth0000.npy"),
            str(store / "steps" / "synth0000.txt"),
            "-o",
            str(ref_steps),
            "--device",
            "cpu",
        )
        assert made.returncode == 0, made.stderr
    done = tempclr(
        "align",
        str(store / "feats" / "synth0000.npy"),
        "--reference",
        str(store / "feats" / "synth0000.npy"),
        str(ref_steps),
        "-f",
        "json",
        "--device",
        "cpu",
    )
    assert done.returncode == 0, done.stderr
    got = [(s["start"], s["end"], s["text"]) for s in json.loads(done.stdout)["steps"]]
    assert got == [(*map(float, a["segment"]), a["sentence"]) for a in db["synth0000"]["annotations"]]


@pytest.mark.parametrize("match", ["steps", "clips"])
def test_a_folder_is_labelled_from_one_reference(store, tmp_path, match):
    done = tempclr(
        "align",
        str(store / "feats"),
        "--reference",
        str(store / "feats" / "synth0001.npy"),
        str(store / "youcookii_annotations_trainval.json"),
        "--output-dir",
        str(tmp_path / "out"),
        "--match",
        match,
        "--device",
        "cpu",
    )
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(rows) == 4 and all(len(r["steps"]) == len(annotations(store)["synth0001"]["annotations"]) for r in rows)
    for row in rows:  # every step placed, in order, within the video
        times = [t for s in row["steps"] for t in (s["start"], s["end"])]
        assert times == sorted(times) and 0 <= times[0] and times[-1] <= row["duration"]


def test_clip_matching_transfers_steps_past_background_on_either_side():
    """Reference: A A A x x B B C C C (x: background only it has); target: n n A A B B B B n
    C C (n: background only the target has). Each step lands on the target's own clips."""
    import torch

    from tempclr_cli.core.align.aligner import _matched_clips, _segment_by_matched_clips

    a, b, c, x, n = torch.eye(5, dtype=torch.float64)
    ref = torch.stack([a, a, a, x, x, b, b, c, c, c])
    target = torch.stack([n, n, a, a, b, b, b, b, n, c, c])
    labels = torch.tensor([0, 0, 0, -1, -1, 1, 1, 2, 2, 2])
    seg = _segment_by_matched_clips(_matched_clips(ref, target, "clips", drop_cost=0.5), labels)
    assert list(zip(seg.starts, seg.ends)) == [(2, 3), (4, 7), (9, 10)]


def test_a_reference_procedure_is_found_inside_a_longer_video(tmp_path):
    """#40, --match subsequence: the reference's clips (A A B B B C C) found whole inside a target that
    has other footage before and after (n n n A A B B B C C n n); the steps land on the middle, and
    what comes before and after is background. Through the CLI, on .npy features."""
    import numpy as np

    rng = np.random.default_rng(0)
    a, b, c, *others = np.linalg.qr(rng.standard_normal((16, 16)))[0][:8]
    noisy = lambda rows: np.stack(rows) + 0.05 * rng.standard_normal((len(rows), 16))  # noqa: E731
    np.save(tmp_path / "ref.npy", noisy([a, a, b, b, b, c, c]).astype(np.float32))
    np.save(tmp_path / "target.npy", noisy([*others[:3], a, a, b, b, b, c, c, *others[3:5]]).astype(np.float32))
    (tmp_path / "ref.srt").write_text(
        "1\n00:00:00,000 --> 00:00:02,000\ncrack\n\n2\n00:00:02,000 --> 00:00:05,000\n"
        "whisk\n\n3\n00:00:05,000 --> 00:00:07,000\nfry\n"
    )
    reference = ["--reference", str(tmp_path / "ref.npy"), str(tmp_path / "ref.srt"), "--match", "subsequence"]
    tiny = ["--model", "tiny", "--pretrained", "none", "--mix-encoders", "--device", "cpu"]
    done = tempclr("align", str(tmp_path / "target.npy"), *reference, "-f", "json", *tiny)
    assert done.returncode == 0, done.stderr
    # a target shorter than the reference cannot hold all of it: refused, naming the modes that can
    np.save(tmp_path / "short.npy", noisy([a, b, b, c, c]).astype(np.float32))
    short = tempclr("align", str(tmp_path / "short.npy"), *reference, *tiny)
    assert short.returncode == 2 and "has 5 clips, the reference 7: use --match steps" in short.stderr
    steps = json.loads(done.stdout)["steps"]
    assert [(s["text"], s["start"], s["end"]) for s in steps[:2]] == [("crack", 3.0, 5.0), ("whisk", 5.0, 8.0)]
    # DTW may match the reference's last two clips to the target's first C (a tie in cost): fry ends at 9 or 10,
    # never in the footage after the procedure
    assert steps[2]["start"] == 8.0 and steps[2]["end"] in (9.0, 10.0)


@pytest.mark.parametrize("one_file", [["--plot", "p.png"], ["-o", "x.json"]])
def test_a_batch_refuses_options_that_write_one_videos_result(store, tmp_path, one_file):
    """Review of #36: a batch used to ignore --plot and -o (exit 0, neither written)."""
    one_file[1] = str(tmp_path / one_file[1])
    args = [str(store / "feats"), str(store / "steps"), "--output-dir", str(tmp_path / "out"), *one_file]
    done = tempclr("align", *args, "--device", "cpu")
    assert done.returncode == 2 and f"{one_file[0]} writes one video's result" in done.stderr
    assert "-f html" in done.stderr and not (tmp_path / "out").exists() and not Path(one_file[1]).exists()


def test_the_review_page_can_embed_its_video(store, tmp_path):
    page = tmp_path / "embedded.html"
    done = tempclr(
        "align",
        str(store / "feats" / "synth0001.npy"),
        str(store / "steps" / "synth0001.txt"),
        "-f",
        "html",
        "--embed-video",
        "-o",
        str(page),
        "--device",
        "cpu",
    )
    assert done.returncode == 0, done.stderr
    assert 'src="data:video/mp4;base64,' in page.read_text()  # the page alone is the whole review
    linked = tempclr(
        "align",
        str(store / "feats" / "synth0001.npy"),
        str(store / "steps" / "synth0001.txt"),
        "-f",
        "html",
        "-o",
        str(tmp_path / "linked.html"),
        "--device",
        "cpu",
    )
    assert linked.returncode == 0 and 'src="../' in (tmp_path / "linked.html").read_text()  # relative to the page


def _page(tmp_path, seconds: int) -> Path:
    """A review page of a 4-step alignment over `seconds` one-second clips (no video)."""
    import numpy as np

    from tempclr_cli.core.align.steps import Alignment, StepTiming

    K, bounds = 4, np.linspace(0, seconds, 5)
    steps = [StepTiming(k + 1, f"step {k + 1}", float(bounds[k]), float(bounds[k + 1]), 0.5) for k in range(K)]
    t = np.arange(seconds) + 0.5
    sim = np.stack([-np.abs(t - (bounds[k] + bounds[k + 1]) / 2) / seconds for k in range(K)])
    alignment = Alignment(
        f"v{seconds}.npy", float(seconds), steps, sim, list(range(seconds)), list(range(1, seconds + 1)), "", 1.0
    )
    page = tmp_path / f"v{seconds}.html"
    page.write_text(alignment.to_html(str(page)))
    return page


@pytest.mark.slow
def test_the_review_page_reads_at_any_length(tmp_path):
    """#29, as a person sees it in Chromium: a time axis and a colour scale, a score header, and
    segment outlines that stay thin on a 5-s video as on a 60-s one (they once swelled into blobs)."""
    import io as _io

    import numpy as np
    from PIL import Image
    from selenium.webdriver.common.by import By

    driver = _browser()
    red = {}
    try:
        driver.set_window_size(1100, 900)
        for seconds in (5, 60):
            driver.get(_page(tmp_path, seconds).as_uri())
            axis = driver.find_element(By.ID, "time-axis").text.split()
            assert axis[0] == "0:00.0" and axis[-1] == ("0:05.0" if seconds == 5 else "1:00.0")
            assert "similarity" in driver.find_element(By.ID, "colour-scale").text
            head = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "li.head span")]
            assert head == ["time", "score", "step"]
            shot = driver.find_element(By.CSS_SELECTOR, "#heatmap svg").screenshot_as_png
            (tmp_path / f"heatmap{seconds}.png").write_bytes(shot)
            rgb = np.asarray(Image.open(_io.BytesIO(shot)).convert("RGB")).astype(int)
            red[seconds] = float(((rgb[..., 0] > 200) & (rgb[..., 1] < 90) & (rgb[..., 2] < 90)).mean())
    finally:
        driver.quit()
    assert 0 < red[5] < 0.08 and 0 < red[60] < 0.08, red  # thin outlines: a few percent of the picture
    assert red[5] < 2 * red[60], red


@pytest.mark.parametrize("mode", ["pairs", "folders", "reference", "loop"])
def test_videos_sharing_a_stem_each_keep_their_results(tmp_path, mode):
    """#36: b.mkv and b.mp4 once both wrote OUT/b.* and one silently replaced the other while the
    summary said both were aligned; each now keeps its extension, as extract names features, also in
    a shell loop of single calls (`for v in videos/*; do tempclr align "$v" ...; done`)."""
    from videos import cfr

    videos, steps = tmp_path / "videos", tmp_path / "steps"
    for name, seconds in (("b.mkv", 4.0), ("b.mp4", 6.0)):
        cfr(videos / name, seconds)
    steps.mkdir()
    (steps / "b.txt").write_text("first\nsecond\n")
    (tmp_path / "pairs.csv").write_text("video,steps\nvideos/b.mkv,steps/b.txt\nvideos/b.mp4,steps/b.txt\n")
    (tmp_path / "ref.srt").write_text(
        "1\n00:00:00,000 --> 00:00:02,000\nfirst\n\n2\n00:00:02,000 --> 00:00:04,000\nsecond\n"
    )
    args = {
        "pairs": ["--pairs", str(tmp_path / "pairs.csv")],
        "folders": [str(videos), str(steps)],
        "reference": [str(videos), "--reference", str(videos / "b.mkv"), str(tmp_path / "ref.srt")],
        "loop": [str(videos / "b.mkv"), str(steps / "b.txt")],
    }[mode]
    options = ["--output-dir", str(tmp_path / "out"), "-f", "all", "--model", "tiny", "--pretrained", "none"]
    done = tempclr("align", *args, *options, "--device", "cpu")
    assert done.returncode == 0, done.stderr
    if mode == "loop":
        done = tempclr("align", str(videos / "b.mp4"), str(steps / "b.txt"), *options, "--device", "cpu")
        assert done.returncode == 0, done.stderr
    else:
        assert "2 of 2 aligned" in done.stderr and "(10 files)" in done.stderr
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(
        f"b.{ext}.{fmt}" for ext in ("mkv", "mp4") for fmt in ("csv", "html", "json", "srt", "vtt")
    )
    durations = {
        Path(json.loads((tmp_path / "out" / f"b.{ext}.json").read_text())["video"]).suffix: json.loads(
            (tmp_path / "out" / f"b.{ext}.json").read_text()
        )["duration"]
        for ext in ("mkv", "mp4")
    }
    assert durations == {".mkv": 4.0, ".mp4": 6.0}  # each file holds its own video's result


def test_one_video_with_two_step_lists_writes_two_results_and_a_repeated_pair_is_refused(store, tmp_path):
    feats, steps = store / "feats" / "synth0000.npy", store / "steps" / "synth0000.txt"
    (tmp_path / "short.txt").write_text("\n".join(steps.read_text().splitlines()[:2]) + "\n")
    (tmp_path / "pairs.csv").write_text(f"{feats},{steps}\n{feats},{tmp_path / 'short.txt'}\n")
    done = tempclr(
        "align",
        "--pairs",
        str(tmp_path / "pairs.csv"),
        "--output-dir",
        str(tmp_path / "out"),
        "-f",
        "json",
        "--device",
        "cpu",
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["synth0000.short.json", "synth0000.synth0000.json"]
    (tmp_path / "twice.csv").write_text(f"{feats},{steps}\n{feats},{steps}\n")
    twice = tempclr(
        "align",
        "--pairs",
        str(tmp_path / "twice.csv"),
        "--output-dir",
        str(tmp_path / "out2"),
        "-f",
        "json",
        "--device",
        "cpu",
    )
    assert twice.returncode == 2 and "pairs 1 and 2 are the same" in twice.stderr


def test_footage_before_and_after_the_steps_does_not_raise_the_warning(store, tmp_path):
    """Review of #36: separation was measured over the whole video, so an intro and an outro (other footage,
    which background drops) let a shifted video fit as well, and a correct alignment was flagged. It is
    measured over the stretch the steps cover."""
    import numpy as np

    feats, other = np.load(store / "feats" / "synth0000.npy"), np.load(store / "feats" / "synth0003.npy")
    pad = np.concatenate([other] * 3)[:40]
    np.save(tmp_path / "padded.npy", np.concatenate([pad, feats, pad[::-1]]))
    done = tempclr(
        "align",
        str(tmp_path / "padded.npy"),
        str(store / "steps" / "synth0000.txt"),
        "-f",
        "json",
        "--model",
        "tiny",
        "--pretrained",
        "synthetic",
        "--device",
        "cpu",
        "-q",
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert all(40 <= s["start"] < s["end"] <= 40 + len(feats) for s in out["steps"])  # the padding is background
    assert (out["separation"], out["time_separation"]) == (1.0, 1.0)
    assert out["warning"] is None and "hardly tells" not in done.stderr


def test_one_video_with_two_step_files_of_one_name_in_two_folders_writes_two_results(store, tmp_path):
    """Review of #36 item 1: s1/steps.txt and s2/steps.txt for one video were refused as "the same pair"."""
    feats, steps = store / "feats" / "synth0000.npy", store / "steps" / "synth0000.txt"
    for folder in ("s1", "s2"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "steps.txt").write_text(steps.read_text())
    (tmp_path / "pairs.csv").write_text(
        f"{feats},{tmp_path / 's1' / 'steps.txt'}\n{feats},{tmp_path / 's2' / 'steps.txt'}\n"
    )
    done = tempclr(
        "align",
        "--pairs",
        str(tmp_path / "pairs.csv"),
        "--output-dir",
        str(tmp_path / "out"),
        "-f",
        "json",
        "--device",
        "cpu",
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "synth0000.s1.steps.json",
        "synth0000.s2.steps.json",
    ]
