"""One training loop for every recipe: resumable, DDP-ready, AMP on CUDA, readable in one sitting.

A *task* supplies what differs between methods (model, batches, loss); this loop owns
the rest. The order of side effects per epoch: set the learning rate, run the steps
(forward under autocast, finite-loss check, backward, clip, step), reduce the epoch
loss across ranks, update the plateau schedule, then (rank 0 only) append metrics and
write checkpoints `last.pt` (every epoch), `epoch_NNNN.pt` (every N) and `best.pt`.

Epochs count from 1 everywhere a person reads them: progress, metrics rows, result
JSON and `epoch_NNNN.pt` (a checkpoint's `epoch` is the number of epochs done).

Determinism: a task draws the batches and random choices of epoch e from generators
seeded with (seed, e), and the global RNG state is saved with each checkpoint, so a
run resumed from `last.pt` replays exactly what an uninterrupted run does (on CPU;
CUDA kernels may differ in the last bits).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from tempclr_cli.core import io
from tempclr_cli.core.align.dtw import DTWInputError
from tempclr_cli.core.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.runtime import autocast, autocast_dtype, seed_everything
from tempclr_cli.core.train.recipe import Recipe, recipe_to_dict, recipe_to_yaml


class Task(Protocol):
    kind: str
    unit: str  # what batch.size counts, for the items/s rate
    channels_last: bool  # on CUDA, convert the model to channels_last_3d (3-D convnets)

    def describe(self) -> str:
        """One line for the log: what the task trains on."""

    def build_model(self) -> torch.nn.Module: ...

    def model_args(self) -> dict: ...

    def batches(self, epoch: int, rank: int, world: int) -> Iterable:
        """This rank's batches of epoch `epoch`; each has a `size` (items, for items/s)."""

    def steps_per_epoch(self, world: int) -> int: ...

    def loss(self, model: torch.nn.Module, batch) -> dict[str, torch.Tensor]: ...

    def meta(self) -> dict: ...


class TrainingDiverged(TempclrError):
    exit_code = 4


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owned: bool = False  # this module joined the process group, so it leaves it too
    distributed: bool = False  # launched by torchrun: DDP wraps the model, even for one process

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: torch.device) -> Dist:
    """Join the process group when launched by torchrun (it sets MASTER_ADDR; a world of one
    too, so one GPU runs the multi-GPU code path): NCCL on CUDA, else gloo."""
    from tempclr_cli.core.runtime import local_rank, rendezvous

    if not rendezvous():
        return Dist()
    import torch.distributed as dist

    owned = not dist.is_initialized()
    if owned:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), local_rank(), owned, True)


class WarmupPlateau:
    """lr = base x warmup[e] during warm-up; then divide by 1/factor when the epoch loss has
    not improved for `patience` epochs (the TCLR release's schedule)."""

    def __init__(self, base: float, warmup: list[float], patience: int, factor: float, cumulative: bool = False):
        self.base, self.warmup, self.patience, self.factor = base, warmup, patience, factor
        self.cumulative = (
            cumulative  # count every bad epoch since the last drop (the linear release), not a run of them
        )
        self.best, self.bad_epochs, self.drops = float("inf"), 0, 0

    def lr(self, epoch: int) -> float:
        if epoch < len(self.warmup):
            return self.base * self.warmup[epoch]
        return self.base * self.factor**self.drops

    def step(self, epoch_loss: float) -> bool:
        """Record an epoch's loss; True when it is the best so far."""
        if epoch_loss < self.best:
            self.best, self.bad_epochs = epoch_loss, self.bad_epochs if self.cumulative else 0
            return True
        self.bad_epochs += 1
        if self.bad_epochs >= self.patience > 0:
            self.drops, self.bad_epochs = self.drops + 1, 0
        return False

    def state_dict(self) -> dict:
        return {"best": self.best, "bad_epochs": self.bad_epochs, "drops": self.drops}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.bad_epochs, self.drops = state["best"], state["bad_epochs"], state["drops"]


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


def rank_batches(count: int, recipe: Recipe, epoch: int, rank: int, world: int) -> list[list[int]]:
    """This rank's batches of item indices for epoch `epoch`: a shuffle seeded by (train.seed,
    epoch), padded so that every rank gets as many items, dealt round-robin, cut into
    train.batch_size / world. One process and several ranks see the same global batches."""
    order = torch.randperm(count, generator=epoch_generator(recipe.train.seed, epoch)).tolist()
    order += order[: (-len(order)) % world]
    mine = order[rank::world]
    per_rank = max(1, recipe.train.batch_size // world)
    return [mine[k : k + per_rank] for k in range(0, len(mine), per_rank)]


def steps_per_epoch(count: int, recipe: Recipe, world: int) -> int:
    """How many batches `rank_batches` gives each rank."""
    return math.ceil(math.ceil(count / world) / max(1, recipe.train.batch_size // world))


def resolve_resume(resume: str | None, run_dir: Path) -> Path | None:
    if resume is None:
        if (run_dir / "last.pt").exists():
            raise TempclrError(
                f"{run_dir} already holds a run (last.pt): continue it with --resume auto, or choose another --run-dir"
            )
        return None
    if resume == "auto":
        last = run_dir / "last.pt"
        return last if last.exists() else None
    path = Path(resume)
    if not path.is_file():
        raise TempclrError(f"--resume {resume}: checkpoint not found (use --resume auto to start fresh if none)")
    return path


def _sync_metrics(path: Path, last: dict | None) -> None:
    """Make metrics.jsonl end with the resumed checkpoint's epoch (a killed run may lack its row)."""
    import json

    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    if last is None:
        rows = []
    else:
        rows = [r for r in rows if r["epoch"] < last["epoch"]] + [last]
    io.write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def _log_line(p: dict) -> str:
    """One plain progress line of train.log (what a terminal's bar shows)."""
    return (
        f"{time.strftime('%Y-%m-%d %H:%M:%S')} epoch {p['epoch']} step {p['step']}/{p['steps']} "
        f"loss {p['loss']:.4f} lr {p['lr']:.2e} {p['items_per_s']:.1f} {p['unit']}/s"
    )


def _diverged(cause: str, epoch: int, step: int, run_dir: Path) -> str:
    last = run_dir / "last.pt"
    kept = f"the last good checkpoint is {last}" if last.exists() else "no checkpoint was written yet"
    return (
        f"training diverged at epoch {epoch + 1}, step {step + 1}: {cause}; {kept} (lower optim.lr or set "
        "optim.grad_clip)"
    )


def train(
    recipe: Recipe,
    task: Task,
    run_dir: Path,
    device: torch.device,
    resume: str | None = None,
    on_step: Callable[[dict], None] | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> dict:
    """Train `task` per `recipe`; returns the last epoch's metrics row.

    Under torchrun the process group is joined here and left on return: a gloo group
    left to interpreter shutdown can abort the process ("terminate called without an
    active exception") after training succeeded.
    """
    dist = setup_distributed(device)
    try:
        return _train(recipe, task, run_dir, device, dist, resume, on_step, on_epoch)
    finally:
        if dist.owned:
            torch.distributed.destroy_process_group()


def _train(
    recipe: Recipe,
    task: Task,
    run_dir: Path,
    device: torch.device,
    dist: Dist,
    resume: str | None,
    on_step: Callable[[dict], None] | None,
    on_epoch: Callable[[dict], None] | None,
) -> dict:
    cfg, optim = recipe.train, recipe.optim
    seed_everything(cfg.seed)  # the initial weights depend on train.seed only (a resume then loads its own)
    model = task.build_model().to(device)
    if device.type == "cuda" and task.channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    if dist.world > 1 and device.type == "cuda":
        # batch statistics over the global batch, as in one process (SyncBatchNorm needs a GPU;
        # on CPU/gloo each rank normalises its own share of the batch)
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    wrapped = torch.nn.parallel.DistributedDataParallel(model, ids) if dist.distributed else model
    opt = torch.optim.Adam(model.parameters(), lr=optim.lr, betas=tuple(optim.betas), weight_decay=optim.weight_decay)
    sched = WarmupPlateau(
        optim.lr, optim.warmup, optim.plateau_patience, optim.plateau_factor, optim.plateau_count == "cumulative"
    )
    use_amp = cfg.amp and device.type == "cuda"
    amp = {"amp": str(autocast_dtype(device)).removeprefix("torch.")} if use_amp else {}  # bf16 or fp16, logged
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    start_epoch, step, best_val = 0, 0, -1.0
    checkpoint = resolve_resume(resume, run_dir)
    if checkpoint:
        state = load_checkpoint(checkpoint, device, kinds=(task.kind,))
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["schedule"])
        scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        start_epoch, step, best_val = state["epoch"], state["step"], state.get("best_val", -1.0)
    if dist.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        io.write_text(run_dir / "recipe.yaml", recipe_to_yaml(recipe))
        _sync_metrics(run_dir / "metrics.jsonl", state["metrics"] if checkpoint else None)
    row: dict = {}
    first_step = step
    for epoch in range(start_epoch, cfg.epochs):
        # -- learning rate for this epoch
        lr = sched.lr(epoch)
        for group in opt.param_groups:
            group["lr"] = lr
        # -- the steps
        wrapped.train()
        sums: dict[str, torch.Tensor] = {}
        n_steps, items, start = 0, 0, time.perf_counter()
        for batch in task.batches(epoch, dist.rank, dist.world):
            try:
                with autocast(device, use_amp):
                    terms = task.loss(wrapped, batch)
            except DTWInputError as e:  # NaN/inf costs: from the data on the first step, else from the weights
                if step == first_step:
                    raise
                raise TrainingDiverged(
                    _diverged(f"the model's outputs became non-finite ({e})", epoch, step, run_dir)
                ) from None
            total = terms["total"]
            if not bool(torch.isfinite(total.detach())):
                raise TrainingDiverged(_diverged(f"the loss became {float(total.detach())}", epoch, step, run_dir))
            opt.zero_grad(set_to_none=True)
            scaler.scale(total).backward()
            if optim.grad_clip:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(model.parameters(), optim.grad_clip)
            scaler.step(opt)
            scaler.update()
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + v.detach().float()
            n_steps, step = n_steps + 1, step + 1
            items += batch.size
            if n_steps % cfg.log_every == 0 or n_steps == 1:
                progress = {
                    "epoch": epoch + 1,
                    "step": n_steps,
                    "steps": task.steps_per_epoch(dist.world),
                    "loss": float(total.detach()),
                    "lr": lr,
                    "items_per_s": items / (time.perf_counter() - start),
                    "unit": task.unit,
                }
                if dist.main:
                    io.append_line(run_dir / "train.log", _log_line(progress))
                if on_step:
                    on_step(progress)
        if n_steps == 0:
            raise TempclrError("an epoch had no batches: the training set is empty (check data.root/annotations)")
        # -- epoch loss, reduced over ranks
        means = torch.stack([sums[k] / n_steps for k in sorted(sums)])
        if dist.world > 1:
            torch.distributed.all_reduce(means)
            means /= dist.world
        info = getattr(task, "epoch_info", dict)()
        row = {
            "epoch": epoch + 1,
            "step": step,
            "lr": lr,
            **dict(zip(sorted(sums), means.tolist())),
            **info,
            **amp,
            "seconds": round(time.perf_counter() - start, 3),
            "items_per_s": round(items / (time.perf_counter() - start), 2),
        }
        is_best = sched.step(row["total"])  # the schedule follows the training loss, as released
        if dist.main and hasattr(task, "validate"):
            row.update(task.validate(model))
        if "val_top1" in row:  # with a validation set, best.pt is the best validation epoch
            is_best, best_val = row["val_top1"] > best_val, max(best_val, row["val_top1"])
        # -- metrics and checkpoints (rank 0)
        if dist.main:
            state = {
                "kind": task.kind,
                "model_args": task.model_args(),
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "schedule": sched.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": rng_state(),
                "epoch": epoch + 1,
                "step": step,
                "recipe": recipe_to_dict(recipe),
                "meta": task.meta(),
                "metrics": row,
                "best_val": best_val,
            }
            save_checkpoint(run_dir / "last.pt", state)
            if (epoch + 1) % cfg.checkpoint_every == 0:
                save_checkpoint(run_dir / f"epoch_{epoch + 1:04d}.pt", state)
            if is_best:
                save_checkpoint(run_dir / "best.pt", state)
            io.append_jsonl(run_dir / "metrics.jsonl", row)  # after last.pt: a row means a checkpoint
        if on_epoch:
            on_epoch(row)
    return row
