"""TempCLR training through the shared trainer: outputs, resume, divergence, DDP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from ranks import run_ranks
from test_cli import tempclr

from tempclr_cli.core.checkpoint import load_checkpoint
from tempclr_cli.core.train.recipe import load_recipe
from tempclr_cli.core.train.tempclr_heads import TempCLRTask
from tempclr_cli.core.train.trainer import TrainingDiverged, train

RECIPE = Path(__file__).parents[1] / "recipes" / "tempclr_synthetic.yaml"


def recipe_for(step_dataset, *overrides):
    data, feats = step_dataset
    return load_recipe(
        RECIPE,
        [
            f"data.root={feats}",
            f"data.annotations={data / 'youcookii_annotations_trainval.json'}",
            "train.batch_size=8",
            *overrides,
        ],
    )


def final_weights(run_dir: Path) -> dict:
    return load_checkpoint(run_dir / "last.pt")["model"]


@pytest.mark.slow
def test_cli_train_writes_a_run_folder(step_dataset, tmp_path):
    data, feats = step_dataset
    run = tmp_path / "run"
    result = tempclr(
        "train",
        str(RECIPE),
        "--set",
        f"data.root={feats}",
        "--set",
        f"data.annotations={data / 'youcookii_annotations_trainval.json'}",
        "--set",
        "train.epochs=3",
        "--set",
        "train.checkpoint_every=2",
        "--run-dir",
        str(run),
        "--device",
        "cpu",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["run_dir"] == str(run) and summary["epoch"] == 3
    assert {p.name for p in run.iterdir()} >= {
        "recipe.yaml",
        "metrics.jsonl",
        "last.pt",
        "best.pt",
        "epoch_0002.pt",
        "sentences.pt",
    }
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3] and all("sequence" in r and "clip_caption" in r for r in rows)
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["kind"] == "tempclr" and state["epoch"] == 3 and state["meta"]["encoder_model"] == "tiny"
    assert load_recipe(run / "recipe.yaml").train.epochs == 3
    again = tempclr(
        "train",
        str(RECIPE),
        "--set",
        f"data.root={feats}",
        "--set",
        f"data.annotations={data / 'youcookii_annotations_trainval.json'}",
        "--run-dir",
        str(run),
    )
    assert again.returncode == 2 and "already holds a run" in again.stderr and "--resume auto" in again.stderr


def test_untrained_heads_are_the_identity(step_dataset, tmp_path):
    task = TempCLRTask(recipe_for(step_dataset), torch.device("cpu"), tmp_path)
    heads = task.build_model().eval()
    x, s = torch.randn(2, 9, task.dim), torch.randn(4, task.dim)
    video, text = heads(x, None, s)
    assert torch.equal(video, x) and torch.equal(text, s)


@pytest.mark.slow
def test_resume_reaches_the_same_weights(step_dataset, tmp_path):
    full, split = tmp_path / "full", tmp_path / "split"
    r6 = recipe_for(step_dataset, "train.epochs=4")
    train(r6, TempCLRTask(r6, torch.device("cpu"), full), full, torch.device("cpu"))
    r3 = recipe_for(step_dataset, "train.epochs=2")
    train(r3, TempCLRTask(r3, torch.device("cpu"), split), split, torch.device("cpu"))
    torch.manual_seed(12345)  # a fresh process would not share the RNG state: resume must restore it
    train(r6, TempCLRTask(r6, torch.device("cpu"), split), split, torch.device("cpu"), resume="auto")
    a, b = final_weights(full), final_weights(split)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_sigkill_then_resume_auto(step_dataset, tmp_path):
    data, feats = step_dataset
    run = tmp_path / "run"
    args = [
        "-m",
        "tempclr_cli",
        "train",
        str(RECIPE),
        "--set",
        f"data.root={feats}",
        "--set",
        f"data.annotations={data / 'youcookii_annotations_trainval.json'}",
        "--set",
        "train.batch_size=8",
        "--set",
        "train.epochs=40",
        "--run-dir",
        str(run),
        "--device",
        "cpu",
        "-q",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "last.pt").exists():
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = load_checkpoint(run / "last.pt")["epoch"]
    assert 1 <= done <= 40
    resumed = subprocess.run([sys.executable, *args, "--resume", "auto"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, 41))  # one row per epoch, none lost or repeated by the kill
    # the uninterrupted run as a user runs it too: a fresh process, so nothing this test process did before
    # (other tests in the same pytest-xdist worker) can touch either side
    reference = tmp_path / "reference"
    whole = subprocess.run(
        [sys.executable, *args[:-5], "--run-dir", str(reference), "--device", "cpu", "-q"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert whole.returncode == 0, whole.stderr
    a, b = final_weights(reference), final_weights(run)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a), max((a[k] - b[k]).abs().max().item() for k in a)


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(step_dataset, tmp_path, monkeypatch):
    r = recipe_for(step_dataset, "train.epochs=5")
    task = TempCLRTask(r, torch.device("cpu"), tmp_path)
    real_loss, calls = task.loss, {"n": 0}

    def poisoned(model, batch):
        calls["n"] += 1
        terms = real_loss(model, batch)
        if calls["n"] > 2 * task.steps_per_epoch(1):  # from the third epoch on
            terms["total"] = terms["total"] * float("nan")
        return terms

    monkeypatch.setattr(task, "loss", poisoned)
    with pytest.raises(TrainingDiverged, match="diverged at epoch 3, .*the loss became nan"):  # epochs count from 1
        train(r, task, tmp_path, torch.device("cpu"))
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 2


def test_resume_from_a_missing_file_is_an_error(step_dataset, tmp_path):
    from tempclr_cli.core.errors import TempclrError

    r = recipe_for(step_dataset, "train.epochs=1")
    with pytest.raises(TempclrError, match="checkpoint not found"):
        train(
            r,
            TempCLRTask(r, torch.device("cpu"), tmp_path),
            tmp_path,
            torch.device("cpu"),
            resume=str(tmp_path / "x.pt"),
        )


DDP_SCRIPT = """
import sys, torch
torch.set_num_threads(1)
from pathlib import Path
from tempclr_cli.core.train.recipe import load_recipe
from tempclr_cli.core.train.tempclr_heads import TempCLRTask
from tempclr_cli.core.train.trainer import train

models = []
build = TempCLRTask.build_model
TempCLRTask.build_model = lambda self: models.append(build(self)) or models[-1]
recipe = load_recipe(sys.argv[1], sys.argv[3:])
run = Path(sys.argv[2])
row = train(recipe, TempCLRTask(recipe, torch.device("cpu"), run), run, torch.device("cpu"))
params = torch.cat([p.detach().flatten() for p in models[0].parameters()])
report({"total": row["total"], "params": params.tolist()})
"""


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_on_the_same_global_batch(step_dataset, tmp_path):
    data, feats = step_dataset
    # data.units=2: 22 sequences, an even count, so two ranks split the very batch one process sees (with 3
    # units the release's non-overlap rule leaves 21, and the second rank would pad with a repeat)
    overrides = [
        f"data.root={feats}",
        f"data.annotations={data / 'youcookii_annotations_trainval.json'}",
        "train.batch_size=8",
        "train.epochs=2",
        "model.dropout=0",
        "data.units=2",
    ]
    (one,) = run_ranks(DDP_SCRIPT, tmp_path, str(RECIPE), str(tmp_path / "one"), *overrides, nproc=0, name="single")
    rows = run_ranks(DDP_SCRIPT, tmp_path, str(RECIPE), str(tmp_path / "two"), *overrides)
    assert rows[0]["params"] == rows[1]["params"]  # the ranks stay identical
    assert rows[0]["total"] == pytest.approx(one["total"], rel=1e-5) and rows[1]["total"] == pytest.approx(
        one["total"], rel=1e-5
    )
    a, b = final_weights(tmp_path / "one"), final_weights(tmp_path / "two")
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


WORLD_OF_ONE = DDP_SCRIPT.replace(
    "row = train(",
    """wrapped = []
DDP = torch.nn.parallel.DistributedDataParallel
torch.nn.parallel.DistributedDataParallel = lambda *a, **k: wrapped.append(DDP(*a, **k)) or wrapped[-1]
row = train(""",
).replace("report({", 'report({"ddp": bool(wrapped), ')


@pytest.mark.slow
def test_torchrun_with_one_process_takes_the_ddp_path_and_matches_a_plain_run(step_dataset, tmp_path):
    """One GPU under torchrun (world size 1) runs the multi-GPU code: a process group, a DDP model."""
    data, feats = step_dataset
    overrides = [
        f"data.root={feats}",
        f"data.annotations={data / 'youcookii_annotations_trainval.json'}",
        "train.batch_size=8",
        "train.epochs=1",
        "model.dropout=0",
    ]
    (plain,) = run_ranks(
        WORLD_OF_ONE, tmp_path, str(RECIPE), str(tmp_path / "plain"), *overrides, nproc=0, name="plain"
    )
    (one,) = run_ranks(WORLD_OF_ONE, tmp_path, str(RECIPE), str(tmp_path / "one"), *overrides, nproc=1, name="one")
    assert one["ddp"] and not plain["ddp"]
    assert one["total"] == pytest.approx(plain["total"], rel=1e-6) and one["params"] == pytest.approx(
        plain["params"], abs=1e-6
    )
