"""The GPU-backed core on a GPU: `pytest -m cuda` (skipped, with the reason, where torch sees no CUDA).

What the CPU tests cannot check: the CUDA DTW row scan against the CPU's compiled kernels,
training steps under autocast, extraction on the GPU, and DDP over NCCL.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from ranks import run_ranks
from test_cli import tempclr

from tempclr_cli.core.align import dtw as kernels

pytestmark = pytest.mark.cuda
CUDA = torch.device("cuda")


def batch(pairs: int, dtype: torch.dtype, seed: int = 0):
    """`pairs` cost matrices up to 9 x 14 with per-pair lengths (padding is garbage, not zeros)."""
    gen = torch.Generator().manual_seed(seed)
    cost = torch.rand(pairs, 9, 14, generator=gen, dtype=dtype) * 2
    lengths = torch.stack(
        [torch.randint(1, 10, (pairs,), generator=gen), torch.randint(1, 15, (pairs,), generator=gen)], 1
    )
    return cost, lengths


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-4), (torch.float64, 1e-9)])
def test_dtw_family_on_cuda_equals_the_cpu_kernels(dtype, tol):
    cost, lengths = batch(10_000, dtype)
    cpu = kernels.dtw(cost, lengths=lengths)
    gpu = kernels.dtw(cost.to(CUDA), lengths=lengths.to(CUDA))
    torch.testing.assert_close(gpu.values.cpu(), cpu.values, rtol=tol, atol=tol)
    for k in range(0, 10_000, 997):  # the paths too
        assert torch.equal(gpu.paths[k].cpu(), cpu.paths[k])
    for gamma in (0.1, 1.0):
        x_cpu = cost.clone().requires_grad_(True)
        x_gpu = cost.to(CUDA).clone().requires_grad_(True)
        v_cpu = kernels.soft_dtw(x_cpu, gamma=gamma, lengths=lengths)
        v_gpu = kernels.soft_dtw(x_gpu, gamma=gamma, lengths=lengths.to(CUDA))
        torch.testing.assert_close(v_gpu.detach().cpu(), v_cpu.detach(), rtol=tol, atol=tol)
        v_cpu.sum().backward()
        v_gpu.sum().backward()
        torch.testing.assert_close(x_gpu.grad.cpu(), x_cpu.grad, rtol=10 * tol, atol=10 * tol)
        o_cpu = kernels.otam(cost, gamma=gamma, symmetric=True, lengths=lengths)
        o_gpu = kernels.otam(cost.to(CUDA), gamma=gamma, symmetric=True, lengths=lengths.to(CUDA))
        torch.testing.assert_close(o_gpu.cpu(), o_cpu, rtol=tol, atol=tol)


def test_pairwise_dtw_on_cuda_equals_the_cpu_kernel():
    gen = torch.Generator().manual_seed(1)
    x = torch.nn.functional.normalize(torch.randn(60, 8, 32, generator=gen), dim=-1)
    y = torch.nn.functional.normalize(torch.randn(70, 30, 32, generator=gen), dim=-1)
    xl, yl = torch.randint(1, 9, (60,), generator=gen), torch.randint(1, 31, (70,), generator=gen)
    cpu = kernels.pairwise_dtw(x, y, xl, yl)
    gpu = kernels.pairwise_dtw(x.to(CUDA), y.to(CUDA), xl.to(CUDA), yl.to(CUDA))
    torch.testing.assert_close(gpu.cpu().float(), cpu.float(), rtol=1e-4, atol=1e-4)


def test_a_tempclr_step_under_amp(step_dataset, tmp_path):
    from tempclr_cli.core.train.recipe import load_recipe
    from tempclr_cli.core.train.tempclr_heads import TempCLRTask
    from tempclr_cli.core.train.trainer import train

    data, feats = step_dataset
    recipe = load_recipe(
        os.path.join(os.path.dirname(__file__), "..", "recipes", "tempclr_synthetic.yaml"),
        [
            f"data.root={feats}",
            f"data.annotations={data / 'youcookii_annotations_trainval.json'}",
            "train.epochs=1",
            "train.amp=true",
        ],
    )
    row = train(recipe, TempCLRTask(recipe, CUDA, tmp_path), tmp_path, CUDA)
    assert np.isfinite(row["total"]) and row["amp"] in ("bfloat16", "float16")  # the choice is logged


def test_a_tclr_step_under_amp(tmp_path):
    from tempclr_cli.core.media.synth import SynthConfig, generate
    from tempclr_cli.core.train.recipe import load_recipe
    from tempclr_cli.core.train.tclr_pretraining import TCLRTask
    from tempclr_cli.core.train.trainer import train

    list(generate(tmp_path / "d", SynthConfig(videos=0, classes=2, class_videos=4, size=32, fps=24, class_by="motion")))
    recipe = load_recipe(
        os.path.join(os.path.dirname(__file__), "..", "recipes", "tclr_synthetic.yaml"),
        [
            f"data.root={tmp_path / 'd' / 'actions'}",
            f"data.annotations={tmp_path / 'd' / 'actions'}",
            "train.epochs=1",
            "train.amp=true",
            "train.batch_size=4",
            "data.num_workers=0",
        ],
    )
    row = train(recipe, TCLRTask(recipe, CUDA), tmp_path / "run", CUDA)
    assert np.isfinite(row["total"]) and row["amp"] in ("bfloat16", "float16")


def test_extract_on_cuda_gives_the_cpu_features(tmp_path):
    from videos import cfr

    video = cfr(tmp_path / "v.mp4", 4.0)
    args = [str(video), "--model", "tiny", "--pretrained", "none", "--workers", "0", "--dtype", "float32", "-q"]
    for device in ("cpu", "cuda"):
        done = tempclr("extract", *args, "-o", str(tmp_path / device), "--device", device)
        assert done.returncode == 0, done.stderr
    a, b = np.load(tmp_path / "cpu" / "v.npy"), np.load(tmp_path / "cuda" / "v.npy")
    assert a.shape == b.shape
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.min() > 0.99  # autocast (bf16 / fp16) tolerance


def test_ddp_over_nccl_on_one_gpu(step_dataset, tmp_path):
    from test_train import RECIPE, WORLD_OF_ONE

    data, feats = step_dataset
    overrides = [
        f"data.root={feats}",
        f"data.annotations={data / 'youcookii_annotations_trainval.json'}",
        "train.batch_size=8",
        "train.epochs=1",
    ]
    script = WORLD_OF_ONE.replace('torch.device("cpu")', 'torch.device("cuda")')
    (row,) = run_ranks(script, tmp_path, str(RECIPE), str(tmp_path / "run"), *overrides, nproc=1, name="nccl")
    assert row["ddp"] and np.isfinite(row["total"])


def test_device_auto_picks_the_gpu():
    out = subprocess.run(
        [sys.executable, "-c", "from tempclr_cli.core.runtime import resolve_device as r; print(r('auto'))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip().startswith("cuda")


def test_fewshot_on_cuda_gives_the_cpu_accuracies(tmp_path):
    """`fewshot --device cuda` computes every distance on the GPU: the same episodes, the same answers."""
    import json

    rng = np.random.default_rng(0)
    rows = []
    for c in range(4):
        base = rng.standard_normal((6, 16))
        for v in range(5):
            np.save(tmp_path / f"c{c}_{v}.npy", (base + 0.5 * rng.standard_normal((6, 16))).astype(np.float16))
            rows.append(f"c{c}_{v},class{c}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    args = [
        "fewshot",
        str(tmp_path),
        "--labels",
        str(tmp_path / "labels.csv"),
        "--ways",
        "3",
        "--episodes",
        "300",
        "--json",
    ]
    cpu, gpu = tempclr(*args, "--device", "cpu"), tempclr(*args, "--device", "cuda")
    assert cpu.returncode == gpu.returncode == 0, gpu.stderr
    a, b = json.loads(cpu.stdout)["results"], json.loads(gpu.stdout)["results"]
    assert [r["distance"] for r in a] == [r["distance"] for r in b]
    for x, y in zip(a, b):
        assert abs(x["accuracy"] - y["accuracy"]) <= 1.0, (x, y)  # float32 ties may fall the other way


def test_s3d_on_cuda_under_autocast_gives_the_cpu_embeddings():
    from tempclr_cli.core.encode.s3d import S3DEncoder
    from tempclr_cli.core.models.s3d import S3D

    torch.manual_seed(0)
    model = S3D(np.array(["a"]), vocab=2).eval()
    frames = torch.randint(0, 255, (45, 64, 64, 3), dtype=torch.uint8)  # 1.5 s: the second one black-padded
    cpu = S3DEncoder(model, torch.device("cpu"), "s3d-howto100m", "random").encode_images(frames)
    gpu = S3DEncoder(model.to(CUDA), CUDA, "s3d-howto100m", "random").encode_images(frames).cpu()
    cos = torch.nn.functional.cosine_similarity(cpu, gpu, dim=-1)
    assert gpu.shape == (45, 512) and cos.min() > 0.999, cos.min()


def test_nvdec_decodes_the_frames_the_cpu_decodes(tmp_path):
    """`--hwaccel cuda` on an H.264 file decodes on NVDEC (the row says so), and exact mode's
    frames match the CPU's (H.264 decoding is exact; only the colour conversion's input
    layout, NV12, differs)."""
    from videos import cfr

    from tempclr_cli.core.media.decode import DecodeReport
    from tempclr_cli.core.media.sampling import sample_frames

    path = cfr(tmp_path / "v.mp4", seconds=4.0, fps=30, size=64)
    report = DecodeReport()
    gpu = [s.image.astype(float) for s in sample_frames(path, 1.0, None, report, decode="exact", hwaccel="cuda")]
    cpu = [s.image.astype(float) for s in sample_frames(path, 1.0, None, decode="exact")]
    assert report.decoded_on == "cuda" and len(gpu) == len(cpu) == 4
    assert max(np.abs(a - b).max() for a, b in zip(gpu, cpu)) <= 2
