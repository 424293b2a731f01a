"""Every path a command takes, given what a user might give by mistake (#36): a missing path, a
folder, an empty file, random bytes, a file of another kind. The answer is exit 2 with a line that
names the path or the option; never a Python exception as the message (exit 1, "rerun with
--verbose") or a traceback. Outputs: a folder where a file goes, a file where a folder goes, a
read-only place, a place under a file: exit 2 naming the option, before anything is computed.

The commands and their options are read from the Typer app, so a new command or path option
without a row in CALLS (a valid call that uses it) or OUTPUTS fails here, saying what to add.
The fast tier takes the cheap calls with the first four kinds of input; `-m slow` adds random
bytes (hypothesis), files of other kinds and the calls that need trained checkpoints.
"""

from __future__ import annotations

import itertools
import json
import shutil
import string
import subprocess
from functools import cache, cached_property
from pathlib import Path
from typing import get_args

import numpy as np
import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_cli import tempclr

from tempclr_cli.cli import app

ROOT = Path(__file__).parents[1]
TINY = {"model": "tiny", "pretrained": "synthetic", "device": "cpu"}
FILE_NAMES = {"steps", "checkpoint", "pretrained", "resume", "list_"}  # str options that name files
NOT_FILES = {  # str options FILE_NAMES would match that never open a file, and why
    ("index", "pretrained"): "recorded in index.jsonl as the weights' name for the text tower; no file is read",
}

# command -> valid calls from the fixtures below, {parameter: value}; "{name}" is World.name, "{fresh}" a new
# folder each call. Each path parameter is tested in the first call that has it. Calls marked SLOW need a
# trained checkpoint (or train): the slow tier only.
SLOW = "slow"
CALLS: dict[str, list[dict]] = {
    "align": [
        {"video": "{npy}", "steps": "{steps}", "output": "{fresh}/a.json", "plot": "{fresh}/a.png", **TINY},
        {"video": "{npy_dir}", "steps": "{steps_dir}", "output_dir": "{fresh}/out", **TINY},
        {"pairs": "{pairs}", "output_dir": "{fresh}/out", **TINY},
        {"video": "{npy}", "reference": ["{npy_other}", "{reference_srt}"], "format_": "json", **TINY},
        {
            "video": "{video}",
            "steps": "{steps}",
            "format_": "json",
            "model": "tiny",
            "pretrained": "{tiny_weights}",
            "device": "cpu",
        },
        {"video": "{npy}", "steps": "{steps}", "sentence_embeddings": "{sentence_embeddings}", "format_": "json"},
        {
            "video": "{released}/feats/v0.npy",
            "steps": "{released}/steps.txt",
            "checkpoint": "{released_ckpt}",
            "tokenizer": "{released}/tokenizer",
            "format_": "json",
        },
        {"video": "{npy}", "steps": "{steps}", "checkpoint": "{heads}", "format_": "json", **TINY, SLOW: True},
    ],
    "convert": [{"checkpoint": "{released_ckpt}", "output": "{fresh}/v.safetensors"}],
    "demo": [{"workdir": "{fresh}/demo", "fast": True, "device": "cpu", SLOW: True}],
    "evaluate": [
        {
            "checkpoint": "{classifier}",
            "clips": [1, 2],
            "plot": "{fresh}/c.png",
            "confusion": "{fresh}/m.png",
            "device": "cpu",
            SLOW: True,
        }
    ],
    "extract": [
        {"inputs": ["{video}"], "out": "{fresh}/f", "workers": 0, **TINY},
        {"list_": "{video_list}", "root": "{videos_dir}", "out": "{fresh}/f", "workers": 0, **TINY},
        {
            "inputs": ["{video}"],
            "out": "{fresh}/f",
            "workers": 0,
            "model": "tiny",
            "pretrained": "{tiny_weights}",
            "device": "cpu",
        },
        {
            "inputs": ["{short_video}"],
            "out": "{fresh}/f",
            "workers": 0,
            "model": "s3d-howto100m",
            "pretrained": "{s3d}/s3d_howto100m.pth",
            SLOW: True,
        },
        {
            "inputs": ["{tclr_actions}"],
            "out": "{fresh}/f",
            "workers": 0,
            "model": "r3d18",
            "checkpoint": "{tclr}",
            "device": "cpu",
            SLOW: True,
        },
    ],
    "fewshot": [
        {"features": "{action_feats}", "labels": "{actions}", "ways": 2, "episodes": 5, "device": "cpu"},
        {
            "features": "{action_feats}",
            "labels": "{actions}",
            "ways": 2,
            "episodes": 5,
            "checkpoint": "{heads}",
            "device": "cpu",
            SLOW: True,
        },
    ],
    "index": [{"folder": "{foreign}", "encoder": "tiny", "fps": 1.0, "output": "{fresh}/i"}],
    "localize": [
        {
            "features": "{feats}",
            "annotations": "{htstep}/annotations.json",
            "format_": "htstep",
            "taxonomy": "{htstep}/taxonomy.csv",
            "predictions_out": "{fresh}/p.csv",
            "device": "cpu",
        },
        {
            "features": "{released}/feats",
            "annotations": "{released}/ann.json",
            "format_": "youcook2",
            "checkpoint": "{released_ckpt}",
            "tokenizer": "{released}/tokenizer",
        },
        {
            "features": "{feats}",
            "annotations": "{annotations}",
            "format_": "youcook2",
            "sentence_embeddings": "{sentence_embeddings}",
        },
    ],
    "models": [{}],
    "retrieve": [
        {"features": "{feats}", "annotations": "{annotations}", "split": "all", "device": "cpu"},
        {
            "features": "{feats}",
            "annotations": "{annotations}",
            "split": "all",
            "sentence_embeddings": "{sentence_embeddings}",
        },
        {
            "features": "{released}/feats",
            "annotations": "{released}/ann.json",
            "checkpoint": "{released_ckpt}",
            "tokenizer": "{released}/tokenizer",
        },
        {
            "features": "{tclr_actions}",
            "annotations": "{tclr_actions}",
            "task": "nn",
            "format_": "ucf101",
            "checkpoint": "{tclr}",
            "clips": [1, 2],
            "plot": "{fresh}/r.png",
            "device": "cpu",
            SLOW: True,
        },
    ],
    "score": [
        {
            "predictions": "{predictions}",
            "annotations": "{htstep}/annotations.json",
            "format_": "htstep",
            "taxonomy": "{htstep}/taxonomy.csv",
        }
    ],
    "search": [
        {"features": "{feats}", "queries": "{queries}", "device": "cpu"},
        {"features": "{feats}", "query": "a red square", "sentence_embeddings": "{sentence_embeddings}"},
    ],
    "sweep": [{"recipe": "{classify_recipe}", "fraction": [1.0], "run_dir": "{fresh}/s", "device": "cpu", SLOW: True}],
    "synth": [{"out": "{fresh}/synth", "videos": 1, "classes": 0, "size": 32}],
    "train": [
        {"recipe": "{heads_recipe}", "set_": "{heads_set}", "run_dir": "{fresh}/run", "device": "cpu"},
        {
            "recipe": "{classify_recipe}",
            "set_": ["train.epochs=1"],
            "run_dir": "{fresh}/run",
            "plot": "{fresh}/c.png",
            "device": "cpu",
            SLOW: True,
        },
        {
            "recipe": "{heads_recipe}",
            "set_": "{resume_set}",
            "resume": "{heads}",
            "run_dir": "{fresh}/run",
            "device": "cpu",
            SLOW: True,
        },
    ],
}
# outputs: "file" or "folder"
OUTPUTS = {
    ("align", "output"): "file",
    ("align", "output_dir"): "folder",
    ("align", "plot"): "file",
    ("convert", "output"): "file",
    ("demo", "workdir"): "folder",
    ("evaluate", "plot"): "file",
    ("evaluate", "confusion"): "file",
    ("extract", "out"): "folder",
    ("index", "output"): "folder",
    ("localize", "predictions_out"): "file",
    ("retrieve", "plot"): "file",
    ("sweep", "run_dir"): "folder",
    ("synth", "out"): "folder",
    ("train", "run_dir"): "folder",
    ("train", "plot"): "file",
}
FAST_KINDS = ("missing", "folder", "empty", "text")
SLOW_KINDS = ("png", "npy", "json")  # and random bytes, in a test of its own
OUTPUT_KINDS = ("wrong-type", "read-only", "under-a-file")
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8cf"
    "c0f01f0005000201e2a7e3990000000049454e44ae426082"
)


# --- what the app declares ---------------------------------------------------------------------------


@cache
def commands() -> dict:
    return dict(sorted(typer.main.get_command(app).commands.items()))


def takes_path(command: str, param) -> bool:
    """Path-typed (Path, list[Path], tuple[Path, ...]), shown as PATH, or a str option that names a file."""
    annotation = param.type_descriptor.annotation
    return (command, param.name) not in NOT_FILES and (
        param.type_descriptor.is_path
        or Path in get_args(annotation)
        or param.metavar == "PATH"
        or (param.name in FILE_NAMES and annotation is str)
    )


def path_params() -> list[tuple[str, str]]:
    return [(name, p.name) for name, cmd in commands().items() for p in cmd.params if takes_path(name, p)]


def slots(command: str, name: str) -> list[str]:
    """A tuple option (--reference REF_VIDEO REF_STEPS) is one slot per path, `name[k]`."""
    param = _param(command, name)
    return [f"{name}[{k}]" for k in range(param.nargs)] if param.nargs > 1 else [name]


def input_cases(slow: bool) -> list:
    """(command, slot, kind, call index): the fast tier puts the first four kinds into the first call with a
    file for the slot; the slow tier the other kinds, and every kind into each other call that gives the slot
    another file (a folder of them, a video instead of features, ...)."""
    cases = []
    for command, name in path_params():
        if (command, name) in OUTPUTS:
            continue
        first = _call_for(command, name)
        seen, others = {str((first or {}).get(name))}, []
        for k, call in enumerate(CALLS.get(command, [])):
            if name in call and "{" in str(call[name]) and str(call[name]) not in seen:
                seen.add(str(call[name]))
                others.append((k, call))
        for k, call in [(None, first), *others]:
            costly = k is not None or (call or {}).get(SLOW, False)  # no call at all: fails fast, saying so
            for slot, kind in itertools.product(slots(command, name), FAST_KINDS + SLOW_KINDS):
                if slow == (costly or kind in SLOW_KINDS):
                    cases.append(
                        pytest.param(
                            command, slot, kind, k, id=f"{command}-{slot}-{kind}" + ("" if k is None else f"-call{k}")
                        )
                    )
    return cases


def output_cases(slow: bool) -> list:
    return [
        pytest.param(command, name, kind, id=f"{command}-{name}-{kind}")
        for (command, name), _ in sorted(OUTPUTS.items())
        for kind in OUTPUT_KINDS
        if slow == bool((_call_for(command, name) or {}).get(SLOW, False))
    ]


def _param(command: str, name: str):
    return next(p for p in commands()[command].params if p.name == name)


def _call_for(command: str, name: str) -> dict | None:
    """The first call with a file for `name` ({placeholder}), else the first with `name` at all."""
    calls = [c for c in CALLS.get(command, []) if name in c]
    return next((c for c in calls if "{" in str(c[name])), calls[0] if calls else None)


def _call(command: str, name: str) -> dict:
    call = _call_for(command, name)
    if call is None:
        pytest.fail(f"no call in CALLS uses tempclr {command} {_param(command, name).opts[0]}: add one")
    return call


# --- the small world every call reads ----------------------------------------------------------------


class World:
    """Small files for every call, made when a call first needs them (the slow ones train)."""

    def __init__(self, root: Path):
        self.root, self.count = root, itertools.count()

    def fresh(self) -> Path:
        path = self.root / "calls" / str(next(self.count))
        path.mkdir(parents=True)
        return path

    @cached_property
    def data(self) -> Path:
        from tempclr_cli.core.media.synth import SynthConfig, generate

        list(generate(self.root / "data", SynthConfig(videos=3, classes=4, class_videos=4, seed=36)))
        return self.root / "data"

    @cached_property
    def feats(self) -> Path:
        done = tempclr(
            "extract", str(self.data), "-o", str(self.root / "feats"), "--workers", "0", "-q", *_argv("extract", TINY)
        )
        assert done.returncode == 0, done.stderr
        return self.root / "feats"

    npy = property(lambda self: self.feats / "videos" / "synth0000.npy")
    npy_other = property(lambda self: self.feats / "videos" / "synth0001.npy")
    npy_dir = property(lambda self: self.feats / "videos")
    action_feats = property(lambda self: self.feats / "actions")
    steps = property(lambda self: self.data / "steps" / "synth0000.txt")
    steps_dir = property(lambda self: self.data / "steps")
    video = property(lambda self: self.data / "videos" / "synth0000.mp4")
    videos_dir = property(lambda self: self.data / "videos")
    actions = property(lambda self: self.data / "actions")
    annotations = property(lambda self: self.data / "youcookii_annotations_trainval.json")

    @cached_property
    def pairs(self) -> Path:
        return self._write("pairs.csv", f"video,steps\n{self.npy},{self.steps}\n")

    @cached_property
    def reference_srt(self) -> Path:
        return self._write(
            "reference.srt",
            "1\n00:00:01,000 --> 00:00:04,000\nthe first step\n\n2\n00:00:06,000 --> 00:00:09,000\nthe second step\n",
        )

    @cached_property
    def video_list(self) -> Path:
        return self._write("list.txt", f"{self.video}\n")

    @cached_property
    def queries(self) -> Path:
        return self._write("queries.txt", "a red square\nthe blue circle\n")

    @cached_property
    def sentence_embeddings(self) -> Path:
        """Every caption and query, embedded by hand: 64-d unit vectors from a seeded generator."""
        db = json.loads(self.annotations.read_text())["database"]
        sentences = {s["sentence"] for v in db.values() for s in v["annotations"]} | {"a red square", "the blue circle"}
        rng = np.random.default_rng(0)
        vectors = rng.standard_normal((len(sentences), 64))
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return self._write("sentences.json", json.dumps(dict(zip(sorted(sentences), vectors.tolist()))))

    @cached_property
    def foreign(self) -> Path:
        """Feature files of "another tool": bare .npy arrays, no index."""
        folder = self.root / "foreign"
        folder.mkdir()
        for npy in sorted(self.npy_dir.glob("*.npy"))[:2]:
            shutil.copy(npy, folder)
        return folder

    @cached_property
    def htstep(self) -> Path:
        from test_localize import _layouts_for

        _layouts_for(self.data, self.root)
        return self.root / "htstep"

    @cached_property
    def predictions(self) -> Path:
        out = self.root / "predictions.csv"
        done = tempclr(
            "localize",
            str(self.feats),
            "--annotations",
            str(self.htstep / "annotations.json"),
            "--format",
            "htstep",
            "--taxonomy",
            str(self.htstep / "taxonomy.csv"),
            "--predictions-out",
            str(out),
            "--device",
            "cpu",
            "-q",
        )
        assert done.returncode == 0, done.stderr
        return out

    @cached_property
    def tiny_weights(self) -> Path:
        """open_clip's tiny architecture with random weights, saved as a plain state dict (what --pretrained
        PATH reads)."""
        import torch

        from tempclr_cli.core.encode.clip_encoder import load_clip

        path = self.root / "tiny_weights.pt"
        torch.save(load_clip("tiny", "none").model.state_dict(), path)
        return path

    @cached_property
    def released(self) -> Path:
        """A TempCLR checkpoint in fairseq's layout, a tokenizer folder, 512-d features, steps, annotations."""
        from test_videoclip import CFG, WORDS, _fairseq_file, _model

        root = self.root / "released"
        (root / "tokenizer").mkdir(parents=True)
        vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
        (root / "tokenizer" / "vocab.txt").write_text(
            "\n".join(vocab + [f"w{i}" for i in range(CFG.vocab - len(vocab))])
        )
        _fairseq_file(root / "checkpoint_layernorm_DTW.pt", _model())
        (root / "feats").mkdir()
        rng, db = np.random.default_rng(0), {}
        for k, length in enumerate((40, 25)):
            x = rng.standard_normal((length, 512))
            np.save(root / "feats" / f"v{k}.npy", (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float16))
            db[f"v{k}"] = {
                "subset": "validation",
                "duration": float(length),
                "annotations": [
                    {"segment": [2, 9], "sentence": "crack the egg"},
                    {"segment": [12, 20], "sentence": "fry the egg"},
                ],
            }
        (root / "ann.json").write_text(json.dumps({"database": db}))
        (root / "steps.txt").write_text("crack the egg\nwhisk in a bowl\n")
        return root

    released_ckpt = property(lambda self: self.released / "checkpoint_layernorm_DTW.pt")
    heads_recipe = property(lambda self: ROOT / "recipes" / "tempclr_synthetic.yaml")

    @property
    def heads_set(self) -> list[str]:
        return [
            f"data.root={self.feats}",
            f"data.annotations={self.annotations}",
            "train.epochs=1",
            "train.batch_size=2",
        ]

    @property
    def resume_set(self) -> list[str]:
        return [*self.heads_set, "train.epochs=2"]  # one epoch more than the run resumed from

    @cached_property
    def heads(self) -> Path:
        return self._train(self.heads_recipe, self.heads_set)

    @cached_property
    def short_video(self) -> Path:
        from videos import cfr

        return cfr(self.root / "short.mp4", 1.0)

    @cached_property
    def s3d(self) -> Path:
        """S3D MIL-NCE's two released files, random weights (tests/test_s3d.py's)."""
        import torch
        from test_s3d import WORDS, _randomised

        folder = self.root / "s3d"
        folder.mkdir()
        torch.save(_randomised().float().state_dict(), folder / "s3d_howto100m.pth")
        np.save(folder / "s3d_dict.npy", WORDS)
        return folder

    @cached_property
    def tclr_actions(self) -> Path:
        """Action clips long enough for TCLR's 16-frame clips at stride 4 (24 fps, as tests/test_tclr.py)."""
        from tempclr_cli.core.media.synth import SynthConfig, generate

        list(generate(self.root / "tclr", SynthConfig(videos=0, classes=4, class_videos=4, fps=24, size=32, seed=2)))
        return self.root / "tclr" / "actions"

    @cached_property
    def tclr_set(self) -> list[str]:
        return [
            f"data.root={self.tclr_actions}",
            f"data.annotations={self.tclr_actions}",
            "train.epochs=1",
            "train.batch_size=4",
        ]

    @cached_property
    def tclr(self) -> Path:
        return self._train(ROOT / "recipes" / "tclr_synthetic.yaml", self.tclr_set)

    @cached_property
    def classify_recipe(self) -> Path:
        return self._write(
            "classify.yaml",
            json.dumps(
                {
                    "base": str(ROOT / "recipes" / "tclr_synthetic_finetune.yaml"),
                    "data": {"root": str(self.tclr_actions), "annotations": str(self.tclr_actions)},
                    "model": {"checkpoint": str(self.tclr)},
                    "train": {"batch_size": 4},
                    "eval": {"clips": 1},
                }
            ),
        )

    @cached_property
    def classifier(self) -> Path:
        return self._train(self.classify_recipe, ["train.epochs=1"])

    def _train(self, recipe: Path, overrides: list[str]) -> Path:
        run = self.fresh() / "run"
        done = tempclr(
            "train",
            str(recipe),
            *[a for o in overrides for a in ("--set", o)],
            "--run-dir",
            str(run),
            "--device",
            "cpu",
            "-q",
        )
        assert done.returncode == 0, done.stderr
        return run / "last.pt"

    def _write(self, name: str, text: str) -> Path:
        (self.root / name).write_text(text)
        return self.root / name

    def value(self, template, fresh: Path):
        """A call's value with its {placeholders} filled in (lists element by element)."""
        if isinstance(template, list):
            return [self.value(t, fresh) for t in template]
        if not isinstance(template, str) or "{" not in template:
            return template
        if template.startswith("{") and template.endswith("}") and template.count("{") == 1:
            found = fresh if template == "{fresh}" else getattr(self, template[1:-1])
            return [str(v) for v in found] if isinstance(found, list) else str(found)
        names = [n for _, n, _, _ in string.Formatter().parse(template) if n]
        return template.format(**{n: fresh if n == "fresh" else getattr(self, n) for n in names})


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> World:
    return World(tmp_path_factory.mktemp("paths"))


@pytest.fixture(scope="session")
def read_only(tmp_path_factory):
    """A folder nothing can be written to: a read-only tmpfs where mounting is allowed, else mode 555
    (None where neither holds, as for root without mount rights)."""
    folder = tmp_path_factory.mktemp("ro")
    mounted = not subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)], capture_output=True
    ).returncode
    if not mounted:
        folder.chmod(0o555)
    yield None if not mounted and _writable(folder) else folder
    if mounted:
        subprocess.run(["umount", str(folder)], capture_output=True)


def _writable(folder: Path) -> bool:
    import os

    return os.access(folder, os.W_OK)


# --- running a call ----------------------------------------------------------------------------------


def _argv(command: str, values: dict) -> list[str]:
    """The command line of `values` ({parameter name: value}), in the command's parameter order."""
    argv = []
    for p in commands()[command].params:
        if p.name not in values:
            continue
        value = values[p.name]
        items = value if isinstance(value, list) else [value]
        if p.param_type_name == "argument":
            argv += [str(v) for v in items]
        elif value is True:
            argv.append(p.opts[0])
        elif p.multiple:
            argv += [a for v in items for a in (p.opts[0], str(v))]
        else:
            argv += [p.opts[0], *map(str, items)]
    return argv


def run(world: World, command: str, call: dict, replace: tuple[str, object] | None = None):
    """Run `call` with one slot (`name` or `name[k]`) replaced: (returncode, stderr)."""
    fresh = world.fresh()
    values = {}
    slot, bad = replace or (None, None)
    name, _, index = (slot or "").partition("[")
    for key, template in call.items():
        if key == SLOW:
            continue
        if key == name and not index:
            values[key] = str(bad)
            continue
        values[key] = world.value(template, fresh)
        if key == name:
            values[key][int(index[:-1])] = str(bad)
    # --tokenizer reads TEMPCLR_BERT_TOKENIZER: none set from outside
    return tempclr(command, *_argv(command, values), env_extra={"TEMPCLR_BERT_TOKENIZER": None})


def baseline_value(world: World, call: dict, slot: str) -> Path:
    name, _, index = slot.partition("[")
    value = world.value(call[name], world.root)
    return Path(value[int(index[:-1])] if index else value[0] if isinstance(value, list) else value)


def bad_input(world: World, kind: str, like: Path, content: bytes | None = None) -> Path:
    """A path of `kind` named like the valid one (its suffix): what is where `like` should be."""
    folder = world.fresh()
    path = folder / f"{kind}{like.suffix}"
    if kind == "folder":
        path.mkdir()
    elif kind != "missing":
        path.write_bytes(
            content
            if content is not None
            else {
                "empty": b"",
                "text": b"this is not what was asked for\n",
                "png": PNG,
                "json": json.dumps({"not": ["what", "was", "asked", "for"]}).encode(),
                "npy": _npy_bytes(),
            }[kind]
        )
    return path


def _npy_bytes() -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.arange(6, dtype=np.float32).reshape(2, 3))
    return buffer.getvalue()


def names(stderr: str, command: str, slot: str, path: Path) -> bool:
    """The error names the path, or the option (its flag, or an argument's NAME)."""
    param = _param(command, slot.partition("[")[0])
    return (
        str(path) in stderr
        or path.name in stderr
        or any(o in stderr for o in param.opts if o.startswith("--"))
        or param.name.upper() in stderr
        or (param.metavar or "@") in stderr
    )


def assert_clear(done, command: str, slot: str, path: Path) -> None:
    what = f"tempclr {command} with {slot} = {path}"
    assert done.returncode != 1, f"{what}: exit 1 (an unexpected error):\n{done.stderr}"
    assert "rerun with --verbose" not in done.stderr and "Traceback" not in done.stderr, f"{what}:\n{done.stderr}"
    if done.returncode == 2:
        assert names(done.stderr, command, slot, path), (
            f"{what}: exit 2 without naming the path or option:\n{done.stderr}"
        )


# --- the tests ---------------------------------------------------------------------------------------


def test_every_command_and_path_option_has_a_call():
    """A new command, or a new path option, needs a valid call here (CALLS) or an output kind (OUTPUTS)."""
    missing_commands = sorted(set(commands()) - set(CALLS))
    assert not missing_commands, f"add a valid call of {missing_commands} to CALLS in {__file__}"
    uncovered = [f"{c} {_param(c, n).opts[0]}" for c, n in path_params() if _call_for(c, n) is None]
    assert not uncovered, f"add a call using {uncovered} to CALLS (or an OUTPUTS entry) in {__file__}"
    stale = [key for key in OUTPUTS if key not in path_params()]
    assert not stale, f"OUTPUTS names parameters the app does not have: {stale}"
    unknown = [
        (c, k)
        for c, calls in CALLS.items()
        for call in calls
        for k in call
        if k != SLOW and k not in {p.name for p in commands()[c].params}
    ]
    assert not unknown, f"CALLS names parameters the app does not have: {unknown}"


def test_the_enumeration_finds_the_file_options_of_the_issue():
    found = set(path_params())
    assert {
        ("extract", "list_"),
        ("align", "checkpoint"),
        ("align", "steps"),
        ("align", "reference"),
        ("localize", "taxonomy"),
        ("search", "queries"),
        ("retrieve", "sentence_embeddings"),
        ("align", "pairs"),
        ("score", "predictions"),
        ("train", "recipe"),
        ("train", "resume"),
    } <= found


@pytest.mark.parametrize(
    "command, index",
    [
        pytest.param(c, k, id=f"{c}-{k}", marks=[pytest.mark.slow] if call.get(SLOW) else [])
        for c, calls in CALLS.items()
        for k, call in enumerate(calls)
    ],
)
def test_each_call_is_valid(world, command, index):
    """The calls the bad inputs are put into succeed as they are: a failure below is the bad input's."""
    done = run(world, command, CALLS[command][index])
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("command, slot, kind, index", input_cases(slow=False))
def test_a_bad_input_path_is_named(world, command, slot, kind, index):
    call = _call(command, slot.partition("[")[0]) if index is None else CALLS[command][index]
    path = bad_input(world, kind, baseline_value(world, call, slot))
    assert_clear(run(world, command, call, (slot, path)), command, slot, path)


@pytest.mark.slow
@pytest.mark.parametrize("command, slot, kind, index", input_cases(slow=True))
def test_a_bad_input_path_is_named_everywhere(world, command, slot, kind, index):
    test_a_bad_input_path_is_named(world, command, slot, kind, index)


@pytest.mark.slow
@pytest.mark.parametrize(
    "command, slot", sorted({(c, s) for c, n in path_params() if (c, n) not in OUTPUTS for s in slots(c, n)})
)
def test_random_bytes_are_named(world, command, slot):
    call = _call(command, slot.partition("[")[0])
    like = baseline_value(world, call, slot)

    @settings(max_examples=3, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(content=st.binary(min_size=1, max_size=4096))
    def check(content):
        path = bad_input(world, "random", like, content)
        done = run(world, command, call, (slot, path))
        assert_clear(done, command, slot, path)

    check()


def bad_output(world: World, kind: str, like: Path, folder: bool, read_only: Path | None) -> Path:
    """Where an output cannot go: the other type of file system entry, a read-only folder, below a file."""
    place = world.fresh()
    if kind == "wrong-type":
        path = place / like.name
        path.write_text("a file\n") if folder else path.mkdir()
        return path
    if kind == "read-only":
        if read_only is None:
            pytest.skip("no read-only folder can be made here")
        return read_only / like.name
    (place / "a-file").write_text("a file\n")
    return place / "a-file" / like.name


def _check_output(world, read_only, command: str, name: str, kind: str) -> None:
    call = _call(command, name)
    path = bad_output(
        world, kind, Path(str(call[name]).replace("{fresh}", "x")), OUTPUTS[command, name] == "folder", read_only
    )
    done = run(world, command, call, (name, path))
    param = _param(command, name)
    assert done.returncode == 2 and (any(o in done.stderr for o in param.opts) or param.name.upper() in done.stderr), (
        f"tempclr {command} with {param.opts[0]} = {path} ({kind}): exit {done.returncode}:\n{done.stderr}"
    )


@pytest.mark.parametrize("command, name, kind", output_cases(slow=False))
def test_an_output_that_cannot_be_written_is_named(world, read_only, command, name, kind):
    _check_output(world, read_only, command, name, kind)


@pytest.mark.slow
@pytest.mark.parametrize("command, name, kind", output_cases(slow=True))
def test_an_output_that_cannot_be_written_is_named_everywhere(world, read_only, command, name, kind):
    _check_output(world, read_only, command, name, kind)


@pytest.mark.slow
def test_resuming_a_finished_run_into_a_new_folder_says_there_is_nothing_to_train(world):
    """Found by the calls above: --resume of a run that has all its epochs, into a new --run-dir, said
    "NEW/last.pt: checkpoint not found" (a file the user never named)."""
    done = tempclr(
        "train",
        str(world.heads_recipe),
        *[a for o in world.heads_set for a in ("--set", o)],
        "--resume",
        str(world.heads),
        "--run-dir",
        str(world.fresh() / "run"),
        "--device",
        "cpu",
    )
    assert done.returncode == 2 and f"--resume {world.heads}: nothing to train" in done.stderr, done.stderr
    assert "train.epochs=N" in done.stderr


def test_features_of_another_dim_are_named(world):
    """Found by the calls above: a .npy of another dim than the reference video's or the --checkpoint network's
    was a RuntimeError of matrix shapes (exit 1)."""
    small = world.fresh() / "small.npy"
    np.save(small, np.random.default_rng(0).standard_normal((12, 3)).astype(np.float32))
    transferred = tempclr(
        "align",
        str(small),
        "--reference",
        str(world.npy_other),
        str(world.reference_srt),
        "-f",
        "json",
        *_argv("align", TINY),
    )
    assert transferred.returncode == 2 and f"{small} was encoded with" in transferred.stderr, transferred.stderr
    assert "dim 3" in transferred.stderr and "dim 64" in transferred.stderr
    released = ["--checkpoint", str(world.released_ckpt), "--tokenizer", str(world.released / "tokenizer")]
    aligned = tempclr("align", str(world.npy), str(world.steps), "-f", "json", *released)
    assert aligned.returncode == 2, aligned.stderr
    assert f"{world.npy}: features of dim 64, but the --checkpoint heads take dim 512" in aligned.stderr
    for command in ("retrieve", "localize"):
        done = tempclr(
            command,
            str(world.feats),
            "--annotations",
            str(world.annotations),
            "--format",
            "youcook2",
            "--split",
            "all",
            *released,
        )
        assert (
            done.returncode == 2
            and "'s features: features of dim 64, but the --checkpoint heads take dim 512" in done.stderr
        ), done.stderr
