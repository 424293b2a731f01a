"""A thousand broken inputs, nothing lost (#30): property-based fuzzing with hypothesis.

One property for every kind of input a user feeds tempclr: the call either succeeds with
nothing silently shortened, or raises TempclrError (exit 2 at the command line) whose
message names the file at fault; never another exception (a traceback at the command
line). Videos, damaged from real codecs, either give features that cover what decodes
or a failure row, and never stop the run.

The `ci` profile (the default) runs a fixed, derandomised set: at least 1,000 cases in
all. `pytest tests/test_fuzz.py --hypothesis-profile=deep` runs ten times as many, each
time new. `TEMPCLR_FUZZ_REPORT=FILE` writes the outcome counts (docs/reliability.md).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tempclr_cli.core.errors import TempclrError

pytestmark = pytest.mark.slow

settings.register_profile("ci", derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))
settings.register_profile("deep", deadline=None, max_examples=2000, suppress_health_check=list(HealthCheck))
if settings.get_current_profile_name() == "default":  # --hypothesis-profile=deep chooses another
    settings.load_profile("ci")

OUTCOMES: dict[str, Counter] = {}


def outcome(kind: str, what: str) -> None:
    OUTCOMES.setdefault(kind, Counter())[what] += 1


def teardown_module():
    report = os.environ.get("TEMPCLR_FUZZ_REPORT")
    if report:
        Path(report).write_text(json.dumps({k: dict(v) for k, v in OUTCOMES.items()}, indent=1))


def expect_clear(kind: str, call, path: Path):
    """Run `call()`: ok, or a TempclrError naming `path`; anything else fails the test."""
    try:
        result = call()
    except TempclrError as e:
        assert path.name in str(e) or str(path) in str(e), f"{kind}: error does not name {path}: {e}"
        outcome(kind, "clear error")
        return None
    outcome(kind, "ok")
    return result


# --- step files -------------------------------------------------------------------------------------

LINES = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            "# a comment",
            "",
            "   ",
            "crack --> eggs",
            "<b>bold</b> step",
            "\u05e9\u05dc\u05d5\u05dd step",
            "e\u0301\u0301 combining",
            "\U0001f373 emoji",
            "x" * 5000,
            "\x00nul",
        ]
    ),
)


@st.composite
def step_bytes(draw) -> bytes:
    lines = draw(st.lists(LINES, max_size=30))
    if draw(st.booleans()) and draw(st.integers(0, 9)) == 0:
        lines = ["step"] * 10_000
    sep = draw(st.sampled_from(["\n", "\r\n", "\r", "\n\r\n"]))
    text = sep.join(lines)
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1", "raw"]))
    if encoding == "raw":
        return draw(st.binary(max_size=400))
    try:
        return text.encode(encoding, errors="surrogatepass")
    except UnicodeEncodeError:
        return text.encode("utf-8", errors="surrogatepass")


@pytest.fixture(scope="module")
def aligner():
    from tempclr_cli.core.align.aligner import Aligner

    return Aligner(model="tiny", pretrained="none", device="cpu")


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fuzz") / "clips.npy"
    np.save(path, np.random.default_rng(0).standard_normal((40, 64)).astype(np.float16))
    return path


@settings(max_examples=250)
@given(data=step_bytes())
def test_step_files(data, aligner, clips, tmp_path_factory):
    path = tmp_path_factory.mktemp("steps") / "steps.txt"
    path.write_bytes(data)
    result = expect_clear("step files", lambda: aligner.align(clips, path), path)
    if result is not None:  # nothing silently dropped: every step line that is not a comment is a step
        from tempclr_cli.core.align.steps import read_steps

        assert [s.text for s in result.steps] == read_steps(str(path))


# --- annotation files ---------------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from([float("nan"), -1.0, 1e12, "1.5", "x" * 100_000]),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@st.composite
def annotation(draw) -> tuple[str, object]:
    fmt = draw(st.sampled_from(["youcook2", "coin", "howto100m"]))
    text_key, list_key = {
        "youcook2": ("sentence", "annotations"),
        "coin": ("label", "annotation"),
        "howto100m": ("text", "start"),
    }[fmt]
    if fmt == "howto100m":
        n = draw(st.integers(0, 4))
        entry = {
            "start": draw(st.lists(SCALARS, min_size=n, max_size=n)),
            "end": draw(st.lists(SCALARS, max_size=4)),
            "text": draw(st.lists(SCALARS, min_size=n, max_size=n)),
        }
        return fmt, draw(st.one_of(st.just({"v1": entry, "v2": entry}), JSON))
    step = st.fixed_dictionaries(
        {
            "segment": st.one_of(
                st.lists(SCALARS, max_size=3), st.tuples(st.floats(-5, 50), st.floats(-5, 50)).map(list)
            ),
            text_key: SCALARS,
        }
    )
    video = st.fixed_dictionaries(
        {
            "subset": st.sampled_from(["training", "validation", "testing", 7]),
            "duration": SCALARS,
            list_key: st.one_of(st.lists(step, max_size=4), SCALARS),
        }
    )
    db = st.dictionaries(st.sampled_from(["a", "b", "a ", "\u00e9"]), st.one_of(video, JSON), max_size=3)
    return fmt, draw(st.one_of(db.map(lambda d: {"database": d}), JSON))


@settings(max_examples=250)
@given(case=annotation())
def test_annotation_files(case, tmp_path_factory):
    from tempclr_cli.core.data.annotations import read_annotations

    fmt, data = case
    path = tmp_path_factory.mktemp("ann") / f"{fmt}.json"
    path.write_text(json.dumps(data, allow_nan=True))
    videos = expect_clear("annotation files", lambda: read_annotations(path, fmt), path)
    for v in videos or []:  # what was read is what the file says: finite, ordered times
        assert all(np.isfinite([s.start, s.end]).all() and s.start <= s.end for s in v.steps)


@settings(max_examples=60)
@given(
    lines=st.lists(
        st.one_of(st.text(max_size=30), st.sampled_from(["a/b.avi 1", "x.avi", "c,d", "c,", ",d"])), max_size=6
    )
)
def test_label_lists(lines, tmp_path_factory):
    from tempclr_cli.core.data.labels import read_labels

    path = tmp_path_factory.mktemp("labels") / "labels.txt"
    path.write_text("\n".join(lines), errors="surrogatepass")
    expect_clear("label lists", lambda: read_labels(path), path)


# --- recipes ------------------------------------------------------------------------------------

SECTIONS = ["data", "model", "loss", "optim", "train", "eval", "base", "nope"]
RECIPE_VALUES = st.one_of(
    SCALARS, st.lists(SCALARS, max_size=3), st.sampled_from(["tclr", "tempclr", "softdtw", "dtw"])
)


@st.composite
def recipe_text(draw) -> str:
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(st.text(max_size=200))
    if kind == 1:  # anchors and aliases, up to billion-laughs depth
        depth = draw(st.integers(1, 9))
        lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
        lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, depth)]
        return "\n".join(lines + [f"train: {{epochs: *a{depth - 1}}}"])
    doc = {
        s: draw(
            st.dictionaries(
                st.sampled_from(
                    ["root", "lr", "epochs", "kind", "distance", "units", "batch_size", "name", "seed", "typo"]
                ),
                RECIPE_VALUES,
                max_size=4,
            )
        )
        for s in draw(st.lists(st.sampled_from(SECTIONS), max_size=4, unique=True))
    }
    return yaml.safe_dump(doc)


@settings(max_examples=250)
@given(text=recipe_text(), sets=st.lists(st.text(max_size=25), max_size=3))
def test_recipes_and_set_overrides(text, sets, tmp_path_factory):
    from tempclr_cli.core.train.recipe import load_recipe

    path = tmp_path_factory.mktemp("recipe") / "r.yaml"
    path.write_text(text, errors="surrogatepass")
    try:
        expect_clear("recipes", lambda: load_recipe(path, sets), path)
    except AssertionError:
        if not sets:  # an error about a --set string names the override, not the file
            raise
        outcome("recipes", "clear error (override)")


# --- feature files ------------------------------------------------------------------------------


@st.composite
def feature_array(draw):
    kind = draw(st.integers(0, 6))
    if kind == 0:
        return np.array([{"pickled": "object"}], dtype=object)
    dtype = draw(
        st.sampled_from([np.float16, np.float32, np.float64, np.int8, np.int64, np.uint8, np.bool_, np.complex64])
    )
    shape = draw(st.sampled_from([(), (0,), (5,), (0, 64), (3, 64), (40, 64), (2, 3, 64), (40, 63), (1, 100_000)]))
    array = np.random.default_rng(draw(st.integers(0, 99))).standard_normal(shape).astype(dtype)
    if kind == 1 and array.size and np.issubdtype(array.dtype, np.floating):
        array.flat[draw(st.integers(0, array.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return array


@settings(max_examples=150)
@given(array=feature_array(), steps=st.integers(1, 5))
def test_feature_files(array, steps, aligner, tmp_path_factory):
    folder = tmp_path_factory.mktemp("feats")
    path = folder / "v.npy"
    np.save(path, array, allow_pickle=True)  # an object array is a pickle: it must never be loaded
    result = expect_clear("feature files", lambda: aligner.align(path, [f"step {k}" for k in range(steps)]), path)
    if result is not None:
        assert len(result.steps) == steps and len(result.clip_starts) == array.shape[0]


# --- videos ---------------------------------------------------------------------------------------

CODECS = [
    ("h264.mp4", "libx264"),
    ("hevc.mp4", "libx265"),
    ("vp9.webm", "libvpx-vp9"),
    ("av1.mp4", "libsvtav1"),
    ("mpeg4.avi", "mpeg4"),
    ("mjpeg.mkv", "mjpeg"),
]


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, bytes]:
    """Real files from each codec PyAV writes here: 3 s at 10 fps, 64 x 48; and odd ones."""
    from tempclr_cli.core.media.video import write_video

    root = tmp_path_factory.mktemp("codecs")
    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1: errors only, not its banner
    rng = np.random.default_rng(0)
    frames = [(rng.integers(0, 255, (48, 64, 3)) // 32 * 32).astype(np.uint8) for _ in range(30)]
    out = {}
    for name, codec in CODECS:
        try:
            out[name] = write_video(root / name, frames, 10, codec=codec).read_bytes()
        except Exception:  # noqa: BLE001 - a codec this PyAV build lacks
            continue
    out["one-frame.mp4"] = write_video(root / "one.mp4", frames[:1], 10).read_bytes()
    out["tiny-1x1.mp4"] = write_video(root / "t.mp4", [np.zeros((2, 2, 3), np.uint8)] * 5, 10).read_bytes()
    out["odd-7x5.mkv"] = write_video(root / "o.mkv", [f[:5, :7] for f in frames], 10, codec="mpeg4").read_bytes()
    out["vfr.mp4"] = write_video(
        root / "vfr.mp4", frames, 10, times=list(np.cumsum(rng.uniform(0.02, 0.3, 30)))
    ).read_bytes()
    assert len(out) >= 8
    return out


@st.composite
def damaged(draw, names: list[str]) -> tuple[str, list]:
    name = draw(st.sampled_from(names))
    ops = draw(
        st.lists(
            st.tuples(st.sampled_from(["flip", "zero", "cut", "head"]), st.floats(0, 1), st.integers(1, 400)),
            min_size=1,
            max_size=3,
        )
    )
    return name, ops


def apply(data: bytes, ops: list) -> bytes:
    buf = bytearray(data)
    for op, where, size in ops:
        at = int(where * max(0, len(buf) - 1))
        if op == "flip":
            for k in range(at, min(len(buf), at + size), 7):
                buf[k] ^= 0x5A
        elif op == "zero":
            buf[at : at + size] = bytes(min(size, len(buf) - at))
        elif op == "cut":
            del buf[at:]
        else:  # the header: the first bytes
            buf[: min(size, len(buf))] = bytes(min(size, len(buf)))
    return bytes(buf)


VIDEO_CASES = 300


def test_damaged_videos_never_stop_the_run(sources, tmp_path):
    """300 damaged files in one folder, extracted in one run: every file ends as features that
    cover what decodes (the row says how long, complete on disk) or a failures.jsonl row."""
    import torch

    from tempclr_cli.core.encode import extract

    from tempclr_cli.core.encode.jobs import plan
    from tempclr_cli.core.encode.registry import load_encoder

    strategy = damaged(sorted(sources))
    cases = []

    @settings(max_examples=VIDEO_CASES, derandomize=True, database=None, phases=[Phase.generate])
    @given(case=strategy)
    def collect(case):
        cases.append(case)

    collect()
    folder = tmp_path / "videos"
    folder.mkdir()
    for k, (name, ops) in enumerate(cases):
        (folder / f"{k:03d}-{name}").write_bytes(apply(sources[name], ops))
    encoder = load_encoder("tiny", "none", None, torch.device("cpu"))
    jobs = plan(sorted(folder.iterdir()), tmp_path / "out", folder)
    results = [
        e
        for e in extract.run(jobs, encoder, extract.ExtractConfig(workers=0), tmp_path / "out")
        if not isinstance(e, int)
    ]
    assert len(results) == len(cases)  # every file answered; none stopped the run
    for r in results:
        if r.status == "ok":
            array = np.load(r.job.target)
            assert array.shape[0] == r.row["clips"] >= 1 and np.isfinite(array.astype(np.float32)).all()
            outcome("videos", "partial, reported" if r.row["truncated"] or r.row["decode_errors"] else "ok")
        else:
            assert r.status == "failed" and r.job.source.name in r.reason, r.reason
            outcome("videos", "clear error")
    failures = tmp_path / "out" / "failures.jsonl"
    failed = sum(r.status == "failed" for r in results)
    assert failed == (len(failures.read_text().splitlines()) if failures.exists() else 0)
    assert not list((tmp_path / "out").rglob("*.tmp"))  # nothing half-written
