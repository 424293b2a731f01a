"""One place for device selection, seeding and mixed precision (shared by every command)."""

from __future__ import annotations

import contextlib
import functools
import os
import random
import sys

from tempclr_cli.core.errors import TempclrError


@functools.cache
def torch_stack_mismatch(versions: tuple[str, str] | None = None) -> str | None:
    """Why torch and torchvision cannot work together, or None, read from their installed versions
    (package metadata: nothing is imported). A CPU-only torch beside a CUDA torchvision, or a
    torchvision built for another torch release, fails at the first import with "operator
    torchvision::nms does not exist"; this says which one to reinstall, and how, instead.
    `versions`: (torch, torchvision) as pip names them, for tests; default: the installed ones."""
    from importlib import metadata

    if versions is None:
        try:
            versions = (metadata.version("torch"), metadata.version("torchvision"))
        except metadata.PackageNotFoundError:
            return None  # the import itself will say what is missing
    (torch_v, vision_v) = versions
    (torch_release, _, torch_build), (vision_release, _, vision_build) = torch_v.partition("+"), vision_v.partition("+")
    major, minor = (int(x) for x in torch_release.split(".")[:2])
    wanted = f"0.{minor + 15}" if major == 2 else None  # torchvision 0.15 came with torch 2.0, 0.29 with 2.14
    # PyPI's wheels carry no build tag: CUDA builds on Linux, CPU builds elsewhere (Windows, macOS)
    cpu = lambda build: build == "cpu" or (not build and not sys.platform.startswith("linux"))
    same_build = cpu(torch_build) == cpu(vision_build)
    if same_build and (wanted is None or vision_release.startswith(wanted + ".") or vision_release == wanted):
        return None
    if not same_build:
        why = "CPU-only torch, CUDA torchvision" if cpu(torch_build) else "CUDA torch, CPU-only torchvision"
    else:
        why = f"torch {torch_release} goes with torchvision {wanted}"
    index = f" --index-url https://download.pytorch.org/whl/{torch_build}" if torch_build else ""
    return (
        f"torch {torch_v} and torchvision {vision_v} are not builds of one release ({why}): reinstall "
        f"torchvision to match torch: pip install --force-reinstall --no-deps 'torchvision=={wanted}.*'{index}"
    )


def resolve_device(spec: str = "auto"):
    """Map `auto|cpu|cuda|cuda:N|mps` to a torch.device; `auto` prefers CUDA, then MPS."""
    import torch

    spec = spec.strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank())
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if spec == "cuda" and torch.cuda.is_available():  # under torchrun, each process its own GPU
        spec = f"cuda:{local_rank()}"
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise TempclrError(f"--device {spec!r}: not a device; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TempclrError(f"--device {spec}: CUDA is not available on this machine; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise TempclrError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise TempclrError(f"--device {spec}: MPS is not available on this machine; use --device cpu")
    if device.type not in ("cpu", "cuda", "mps"):
        raise TempclrError(f"--device {spec}: unsupported device type; use auto, cpu, cuda, cuda:N or mps")
    return device


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) so runs repeat."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def autocast_dtype(device):
    """What autocast computes in on `device`: bf16 where CUDA supports it, else fp16 (None off CUDA)."""
    import torch

    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device, enabled: bool = True):
    """bf16/fp16 autocast on CUDA (`autocast_dtype`), a no-op elsewhere."""
    import torch

    if not enabled or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=autocast_dtype(device))


def process_rank() -> tuple[int, int]:
    """(rank, world size) of this process: torchrun's RANK / WORLD_SIZE, else SLURM's
    SLURM_PROCID / SLURM_NTASKS (an `srun` or `sbatch --ntasks` job), else (0, 1)."""
    for rank, world in (("RANK", "WORLD_SIZE"), ("SLURM_PROCID", "SLURM_NTASKS")):
        if rank in os.environ and world in os.environ:
            return int(os.environ[rank]), int(os.environ[world])
    return 0, 1


def process_share() -> tuple[int, int]:
    """(i, n): this process's share of a sharded job. A SLURM array's task k of K (`--array=A-B[:step]`,
    counted from its first id), with the `srun` tasks inside each task splitting its share again; else
    `process_rank` (torchrun's rank, SLURM's task)."""
    env = os.environ
    if "RANK" in env or not {"SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT"} <= env.keys():
        return process_rank()
    step, first = int(env.get("SLURM_ARRAY_TASK_STEP", 1)), int(env.get("SLURM_ARRAY_TASK_MIN", 0))
    task = (int(env["SLURM_ARRAY_TASK_ID"]) - first) // step
    rank, world = process_rank()  # SLURM_PROCID / SLURM_NTASKS of this array task's own tasks
    return task * world + rank, int(env["SLURM_ARRAY_TASK_COUNT"]) * world


def local_rank() -> int:
    """This process's GPU on its node: torchrun's LOCAL_RANK (0 elsewhere)."""
    return int(os.environ.get("LOCAL_RANK", 0))


def rendezvous() -> bool:
    """Whether torchrun started this process (it sets MASTER_ADDR, with a world of one too): a process
    group can be joined. SLURM tasks without torchrun share work through files, not a group.
    The one place the launcher's environment is read, with `process_rank` and `local_rank`."""
    return "MASTER_ADDR" in os.environ


def release_free_memory() -> bool:
    """Give the C heap's free pages back to the system (glibc's `malloc_trim`).

    glibc raises its mmap threshold (up to 32 MB) each time a large mmapped block is freed;
    from then on, blocks such as a batch of decoded frames come from the heap, which
    fragments, and its free pages stay resident: extracting a 10-hour video grew from 0.7 to
    1.1 GB in about half the runs, from a random point on. Trimming every few batches keeps
    it flat at no measurable cost; pinning the threshold instead (`mallopt`) also kept it
    flat but made the run 33% slower (docs/reliability.md). A no-op (False) where the C
    library is not glibc."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim else False


@functools.cache
def _malloc_trim():
    """glibc's malloc_trim, looked up once (`find_library` runs `ldconfig` each time), or None."""
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
