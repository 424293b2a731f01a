"""The table of step-annotation layouts: every registration keeps its contract, each reader reads its
official layout (small files written here, and the public files where a fetched mirror has them)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from grounding_files import GOALSTEP, baglm_video, write_goalstep, write_htstep

from tempclr_cli.core.data import layouts
from tempclr_cli.core.data.layouts import ReadOptions, read_layout
from tempclr_cli.core.errors import TempclrError

MIRRORS = Path("/work/.mirror")


def sample_files(root: Path) -> dict[str, tuple[Path, ReadOptions]]:
    """One small file (or folder) per registered layout, in its official layout."""
    annotations, taxonomy = write_htstep(root / "htstep")
    youcook = {
        "database": {
            "y1": {
                "subset": "training",
                "duration": 20.0,
                "annotations": [
                    {"id": 0, "segment": [1, 4], "sentence": "crack eggs"},
                    {"id": 1, "segment": [5, 9], "sentence": "whisk"},
                ],
            }
        }
    }
    coin = {
        "database": {
            "c1": {
                "subset": "testing",
                "class": "Tea",
                "duration": 20.0,
                "annotation": [
                    {"id": "12", "segment": [1.0, 4.0], "label": "boil"},
                    {"id": "11", "segment": [5.0, 9.0], "label": "fill"},
                ],
            }
        }
    }
    crosstask = root / "crosstask"
    (crosstask / "annotations").mkdir(parents=True)
    (crosstask / "tasks_primary.txt").write_text("77\nMake Tea\nhttp://x\n3\nfill,boil,pour\n\n")
    (crosstask / "annotations" / "77_x1.csv").write_text("2,3.0,6.5\n1,0.5,2.0\n")
    files = {
        "youcook2": youcook,
        "coin": coin,
        "howto100m": {"h1": {"start": [0], "end": [2], "text": ["hi"]}},
        "baglm": [
            baglm_video(
                "b1", ["fill", "boil"], [{"clip_start_sec": 1.0, "clip_end_sec": 3.0, "query": "boil", "step": 4}]
            )
        ],
    }
    found = {}
    for name, data in files.items():
        (root / f"{name}.json").write_text(json.dumps(data))
        found[name] = (root / f"{name}.json", ReadOptions())
    found["crosstask"] = (crosstask, ReadOptions())
    found["htstep"] = (annotations, ReadOptions(taxonomy=taxonomy))
    found["goalstep"] = (write_goalstep(root / "goalstep_valid.json"), ReadOptions())
    return found


def test_every_layout_keeps_the_contract(tmp_path):
    """Each registration: its facts are declared, its protocols exist, its sample reads into videos whose ground
    truth is labelled, and (for grounding layouts) whose every labelled step is a query."""
    from tempclr_cli.core.eval.grounding import PROTOCOLS

    table, samples = layouts.layouts(), sample_files(tmp_path)
    assert set(samples) == set(table)  # a new layout adds a sample here
    for name, layout in table.items():
        assert layout.reads in ("file", "folder") and layout.summary and layout.annotations
        assert set(layout.protocols) <= set(PROTOCOLS) and (layout.labels or not layout.grounding)
        assert (samples[name][0].is_dir()) == (layout.reads == "folder")
        videos = read_layout(samples[name][0], name, samples[name][1])
        assert videos and all(v.steps for v in videos if v.id != "tea2"), name
        for v in videos:
            assert [s.start for s in v.steps] == sorted(s.start for s in v.steps)
            if layout.grounding:
                assert {s.id for s in v.steps} <= {q.label for q in v.queries}, (name, v.id)


def test_commands_offer_exactly_the_grounding_layouts():
    from tempclr_cli.commands.localize import StepLayout
    from tempclr_cli.commands.score import StepLayout as ScoreLayout

    assert [x.value for x in StepLayout] == [x.value for x in ScoreLayout] == list(layouts.names(grounding=True))
    assert "howto100m" not in layouts.names(grounding=True) and "howto100m" in layouts.names()


def test_htstep_queries_are_the_variation_steps_in_taxonomy_order(tmp_path):
    annotations, taxonomy = write_htstep(tmp_path)
    videos = {v.id: v for v in read_layout(annotations, "htstep", ReadOptions(split="val_seen", taxonomy=taxonomy))}
    assert set(videos) == {"tea1", "egg1", "tea2"}  # --split: by subset
    assert [(q.label, q.text) for q in videos["egg1"].queries] == [
        ("7", "Melt butter."),
        ("8", "Crack eggs."),
        ("9", "Serve."),
    ]  # variation B only
    assert [(s.id, s.start) for s in videos["tea1"].steps] == [("0", 2.0), ("1", 10.2), ("2", 30.0)]
    assert [s.rank for s in videos["tea1"].steps] == [1, 0, 2]  # file order kept for the official scorer
    assert [q.label for q in videos["tea2"].queries] == ["0", "1", "2"]  # no annotations; one variation
    assert videos["egg1"].task == "Fry Eggs"
    paragraph = read_layout(annotations, "htstep", ReadOptions(taxonomy=taxonomy, step_text="paragraph"))
    both = read_layout(annotations, "htstep", ReadOptions(taxonomy=taxonomy, step_text="both"))
    assert [q.text for q in paragraph[0].queries] == [
        "Fill the kettle and boil it.",
        "Add the tea.",
        "Pour the water over the tea; wait.",
    ]  # no paragraph: headline
    assert both[0].queries[0].text == "Boil water. Fill the kettle and boil it." and both[0].queries[1].text == (
        "Add the tea."
    )


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["tea1"]["annotations"][0].update(id=99), r"video tea1: annotations\[0\].id: 99 is not a"),
        (
            lambda d: d["tea1"]["annotations"][0].update(id="x"),
            r"video tea1: annotations\[0\].id: expected a global_step",
        ),
        (
            lambda d: d["egg1"]["annotations"][1].update(id=6),
            r"video egg1: annotations\[1\].id: step 6 is of variation",
        ),
        (lambda d: d["tea1"].update(activity="Fry Eggs"), r"video tea1: annotations\[0\].id: step 1 belongs to"),
        (
            lambda d: d["tea1"]["annotations"][2].update(segment=[5, 1]),
            r"video tea1: annotations\[2\].segment: ends \(1.0\)",
        ),
        (lambda d: d["tea1"]["annotations"][2].update(segment=[5]), r"video tea1: annotations\[2\]: expected"),
        (lambda d: d["tea1"].pop("subset"), r"video tea1: subset: expected text"),
    ],
)
def test_htstep_errors_name_the_file_and_the_field(tmp_path, change, message):
    annotations, taxonomy = write_htstep(tmp_path)
    data = json.loads(annotations.read_text())
    change(data)
    annotations.write_text(json.dumps(data))
    with pytest.raises(TempclrError, match=f"annotations.json: {message}"):
        read_layout(annotations, "htstep", ReadOptions(taxonomy=taxonomy))


def test_htstep_taxonomy_and_options_errors(tmp_path):
    annotations, taxonomy = write_htstep(tmp_path)
    with pytest.raises(TempclrError, match="--format htstep needs --taxonomy"):
        read_layout(annotations, "htstep")
    taxonomy.write_text("global_step_index,activity,headline\n0,a,b\n")
    with pytest.raises(
        TempclrError, match="taxonomy.csv: line 1: no step_index, variation, variation_index, paragraph column"
    ):
        read_layout(annotations, "htstep", ReadOptions(taxonomy=taxonomy))
    write_htstep(
        tmp_path, taxonomy=[(0, "Make Tea", 0, "none", 1, "a", ""), ("one", "Make Tea", 1, "none", 2, "b", "")]
    )
    with pytest.raises(TempclrError, match="taxonomy.csv: line 3: global_step_index: expected a step number"):
        read_layout(annotations, "htstep", ReadOptions(taxonomy=taxonomy))
    with pytest.raises(TempclrError, match="--taxonomy applies to --format htstep, not coin"):
        read_layout(annotations, "coin", ReadOptions(taxonomy=taxonomy))
    with pytest.raises(TempclrError, match="--split dev: --format htstep knows one of train, val_seen"):
        read_layout(annotations, "htstep", ReadOptions(taxonomy=taxonomy, split="dev"))
    with pytest.raises(TempclrError, match=r"--split valid: --format goalstep knows all \(the file is one split\)"):
        read_layout(annotations, "goalstep", ReadOptions(split="valid"))


def test_goalstep_queries_in_nlq_order(tmp_path):
    """parse_goalstep_jsons.py's order: each step, then its substeps; labels are places in that order."""
    path = write_goalstep(tmp_path / "goalstep_valid.json")
    first = read_layout(path, "goalstep")[0]
    assert [(q.label, q.text) for q in first.queries] == [
        ("0", "boil water"),
        ("1", "fill kettle"),
        ("2", "wait"),
        ("3", "pour water"),
    ]
    assert first.task == "COOKING:MAKE_TEA" and len(first.steps) == 4
    steps = read_layout(path, "goalstep", ReadOptions(levels="steps"))[0]
    subs = read_layout(path, "goalstep", ReadOptions(levels="substeps"))[0]
    assert [q.label for q in steps.queries] == ["0", "3"] and [q.label for q in subs.queries] == ["1", "2"]
    assert [(s.start, s.end) for s in subs.steps] == [(0.5, 10.0), (10.0, 30.0)]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["videos"][0]["segments"][0].update(end_time=0.5), r"videos\[0\].segments\[0\].end_time: ends"),
        (
            lambda d: d["videos"][0]["segments"][0]["segments"][1].update(step_description=" "),
            r"videos\[0\].segments\[0\].segments\[1\].step_description: expected text",
        ),
        (
            lambda d: d["videos"][1].update(start_time=None, segments=None, step_segments=[]),
            r"videos\[1\].segments: expected a list of step segments \(goalstep_test.json holds no times",
        ),
        (
            lambda d: d["videos"][1]["segments"][0].update(start_time="soon"),
            r"videos\[1\].segments\[0\].start_time: expected",
        ),
        (lambda d: d["videos"][0].pop("video_uid"), r"videos\[0\].video_uid: expected a video uid"),
    ],
)
def test_goalstep_errors_name_the_file_and_the_field(tmp_path, change, message):
    path = write_goalstep(tmp_path / "goalstep_valid.json")
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    with pytest.raises(TempclrError, match=f"goalstep_valid.json: {message}"):
        read_layout(path, "goalstep")


def _queries(*rows) -> list[dict]:
    return [
        {"clip_start_sec": s, "clip_end_sec": e, "query": q, **({"step": step} if step is not None else {})}
        for s, e, q, step in rows
    ]


def test_baglm_reads_the_four_published_variants(tmp_path):
    """As published: HT-Step's int global ids, COIN's string ids and string numbers, CrossTask's index into
    task_steps, Goal-Step's queries without ids (labelled by their index in the step list)."""
    files = {
        "htstep": [
            baglm_video(
                "h",
                ["Pour.", "Boil water.", "Serve hot.", "Serve hot."],
                _queries((10.0, 20.5, "Boil water.", 0), (2.0, 4.0, "Serve hot.", 3832)),
            ),
            baglm_video("h2", ["Pour.", "Stir."], []),
        ],  # no query: no id known, not an index either
        "coin": [
            baglm_video(
                "c",
                ["aim at the pin", "push the pin out", "aim at the pin"],
                _queries(("1.0", "3", "aim at the pin", "250"), ("4.0", "6.0", "aim at the pin", "252")),
                ("activity", "ReplacePin"),
                duration="185.085",
                fps="29.97",
            )
        ],
        "crosstask": [
            baglm_video(
                "x",
                ["add flour", "add sugar", "pour egg"],
                _queries((94, 98, "pour egg", 2)),
                ("task_name", "Make Pancakes"),
                "task_steps",
                duration="328.5",
                fps="29.97",
            )
        ],
        "goalstep": [
            baglm_video(
                "g",
                ["knead", "pour flour"],
                _queries((3.0, 40.0, "knead", None), (50.0, 60.0, "pour flour", None), (70.0, 80.0, "knead", None)),
                ("goal_category", "COOKING:MAKE_BREAD"),
            )
        ],
    }
    read = {}
    for name, data in files.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
        read[name], *read[f"{name} more"] = read_layout(tmp_path / f"{name}.json", "baglm")
    assert [q.label for q in read["htstep"].queries] == ["", "0", "3832", ""]  # unnamed steps have no label
    assert [q.label for q in read["htstep more"][0].queries] == ["", ""]
    assert [q.label for q in read["coin"].queries] == ["250", "", "252"] and read["coin"].duration == 185.085
    assert [s.start for s in read["coin"].steps] == [1.0, 4.0] and read["coin"].task == "ReplacePin"
    assert [q.label for q in read["crosstask"].queries] == ["0", "1", "2"]  # ids that index the list: every step
    assert read["crosstask"].steps[0].id == "2" and read["crosstask"].task == "Make Pancakes"
    assert [q.label for q in read["goalstep"].queries] == ["0", "1"]
    assert [s.id for s in read["goalstep"].steps] == ["0", "1", "0"]


@pytest.mark.parametrize(
    "video, message",
    [
        ({"video_uid": ""}, r"\[0\].video_uid: expected a video id"),
        (
            baglm_video("v", ["a"], _queries((1, 2, "b", 1))),
            r"\[0\] \(video v\).clips\[0\].annotations\[0\]."
            r"language_queries\[0\].query: 'b' is not in",
        ),
        (
            baglm_video("v", ["a"], _queries((1, "x", "a", 1))),
            r"\[0\] \(video v\).clips\[0\].annotations\[0\]."
            r"language_queries\[0\].clip_end_sec: expected a number",
        ),
        (
            baglm_video("v", ["a"], _queries((1, 2, "a", True))),
            r"\[0\] \(video v\).clips\[0\].annotations\[0\]."
            r"language_queries\[0\].step: expected a step id",
        ),
        (baglm_video("v", "a", []), r"\[0\] \(video v\).step_headline: expected the video's list of step texts"),
        ({**baglm_video("v", ["a"], []), "clips": 3}, r"\[0\] \(video v\).clips: expected a list"),
        (
            {**baglm_video("v", ["a"], []), "video_duration": "long"},
            r"\[0\] \(video v\).video_duration: "
            r"expected a number",
        ),
    ],
)
def test_baglm_errors_name_the_file_and_the_field(tmp_path, video, message):
    (tmp_path / "b.json").write_text(json.dumps([video]))
    with pytest.raises(TempclrError, match=f"b.json: {message}"):
        read_layout(tmp_path / "b.json", "baglm")


def test_migrated_layouts_label_their_steps(tmp_path):
    """COIN: a task's steps ordered and labelled by step id; CrossTask: by number in tasks_primary.txt; YouCookII:
    the video's own segments by id."""
    samples = sample_files(tmp_path)
    (coin,) = read_layout(samples["coin"][0], "coin")
    assert [(q.label, q.text) for q in coin.queries] == [("11", "fill"), ("12", "boil")]
    (cross,) = read_layout(samples["crosstask"][0], "crosstask")
    assert [(q.label, q.text) for q in cross.queries] == [("1", "fill"), ("2", "boil"), ("3", "pour")]
    assert [(s.id, s.text) for s in cross.steps] == [("1", "fill"), ("2", "boil")]
    (you,) = read_layout(samples["youcook2"][0], "youcook2")
    assert [(q.label, q.text) for q in you.queries] == [("0", "crack eggs"), ("1", "whisk")] and you.task == "y1"


def _mirror_file(repo: str, path: str, out: Path) -> Path:
    """A file of a fetched mirror (`fetch github:<repo>`), or skip."""
    git = MIRRORS / repo.replace("/", "+") / "repo"
    if not git.is_dir():
        pytest.skip(f"no fetched mirror of {repo} here")
    done = subprocess.run(["git", "-C", str(git), "show", f"HEAD:{path}"], capture_output=True)
    if done.returncode:
        pytest.skip(f"{repo}:{path} is not in the mirror")
    out.write_bytes(done.stdout)
    return out


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, videos, queries",
    [
        ("htstep/htstep", 600, 3441),
        ("crosstask/crosstask", 2308, 17521),
        ("coin/coin", 2354, 9190),
        ("ego4d_goalstep/ego4d_goalstep", 134, 3349),
    ],
)
def test_baglm_published_files_read_as_published(tmp_path, name, videos, queries):
    path = _mirror_file("lucazanella/baglm", f"datasets/{name}_video_annots.json", tmp_path / "annots.json")
    read = read_layout(path, "baglm")
    assert len(read) == videos and sum(len(v.steps) for v in read) == queries


@pytest.mark.slow
def test_goalstep_published_valid_file(tmp_path):
    """134 videos, 7,696 queries (steps and substeps), 3,349 of them steps."""
    path = _mirror_file("facebookresearch/ego4d-goalstep", "data/goalstep_valid.json", tmp_path / "valid.json")
    assert sum(len(v.queries) for v in read_layout(path, "goalstep")) == 7696
    assert sum(len(v.queries) for v in read_layout(path, "goalstep", ReadOptions(levels="steps"))) == 3349
    assert len(GOALSTEP) == 2  # the small file above has the same shape


def _worked_layout() -> str:
    """docs/architecture.md's worked example of a layout and a protocol, as written there."""
    import re

    doc = (Path(__file__).parents[1] / "docs" / "architecture.md").read_text()
    blocks = [re.sub(r"(?m)^  ", "", b) for b in re.findall(r"```python\n(.*?)```", doc, re.S)]
    return next(b for b in blocks if 'register_layout("tsv"' in b)


@pytest.mark.slow
def test_the_worked_layout_and_protocol_reach_score_and_localize(tmp_path):
    """Registered before the commands import: `score` and `localize` offer the layout and report the protocol."""
    import sys

    (tmp_path / "steps.tsv").write_text("v1\t2.5\t6\twhisk\nv1\t8\t9\tfry\n")
    (tmp_path / "p.csv").write_text("video-id,t-start,t-end,label,score\nv1,2,3,whisk,0.9\nv1,4,5,fry,0.8\n")
    code = (
        _worked_layout()
        + f"""
import json
from typer.testing import CliRunner
from tempclr_cli.cli import app
runner = CliRunner()
scored = runner.invoke(app, ["score", {str(tmp_path / "p.csv")!r}, "--annotations", {str(tmp_path / "steps.tsv")!r},
                             "--format", "tsv", "--json"])
print(json.dumps({{"localize": runner.invoke(app, ["localize", "--help"]).output, "score": scored.stdout}}))
"""
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert "tsv" in out["localize"]
    metrics = json.loads(out["score"])["metrics"]
    assert metrics["first-second"]["values"] == {"R@1 first": 50.0}  # whisk: second 2 = floor(2.5); fry: 4, not 8
    assert metrics["point-recall"]["values"] == {"R@1": 50.0}
