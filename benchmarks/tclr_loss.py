"""TCLR losses: the vectorised form against the released per-pair / per-video loops, batch 40.

    python benchmarks/tclr_loss.py

Value + gradient of the official composition (IC global + local, LL, GL) on unit
embeddings (D=128, 4 local clips, two views/draws). The peer is the release's structure:
NT-Xent calls in Python loops over clip pairs (56) and over videos (LL), and four GL
calls. Also reports the training-step throughput of the reduced model with the
released per-view BatchNorm passes (the default) against one joint pass.
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F

from tempclr_cli.core.train.losses import tclr_losses


def nt_xent(zi, zj, t):
    n = zi.shape[0]
    reps = torch.cat([zj, zi])
    sim = reps @ reps.T
    pos = torch.cat([torch.diag(sim, n), torch.diag(sim, -n)])[:, None]
    ones = torch.ones(n)
    mask = ~(torch.eye(2 * n) + torch.diag(ones, n) + torch.diag(ones, -n)).bool()
    logits = torch.cat([pos, sim[mask].view(2 * n, -1)], 1) / t
    return F.cross_entropy(logits, torch.zeros(2 * n, dtype=torch.long), reduction="sum") / (2 * n)


def released(g, s, loc, t=0.1):
    B = g.shape[1]
    ic2 = nt_xent(g[0], g[1], t)
    ic1 = (
        sum(
            nt_xent(loc[a][:, c], loc[b][:, d], t)
            for a in range(2)
            for b in range(2)
            for c in range(4)
            for d in range(4)
            if not (a == b and c == d)
        )
        / 4
    )
    ll = sum(nt_xent(loc[0][v], loc[1][v], t) for v in range(B))
    gl = 0
    for a in range(2):
        for b in range(2):
            sim = torch.bmm(s[a], loc[b].transpose(1, 2))
            sim = torch.cat([sim, sim.transpose(1, 2)]).reshape(-1, 4) / t
            gl = gl + F.cross_entropy(sim, torch.arange(4).repeat(2 * B), reduction="sum") / (2 * B)
    return ic2 + ic1 + ll + gl


def timed(fn, repeat=20):
    times = []
    for _ in range(repeat + 3):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times[3:]) * 1000


def main() -> None:
    torch.set_num_threads(2)
    B, D = 40, 128
    gen = torch.Generator().manual_seed(0)
    raw = [torch.randn(*shape, generator=gen) for shape in ((2, B, D), (2, B, 4, D), (2, B, 4, D))]

    def run(fn):
        xs = [x.clone().requires_grad_(True) for x in raw]
        loss = fn(*[F.normalize(x, dim=-1) for x in xs])
        loss.backward()
        return float(loss.detach())

    ours = lambda *x: tclr_losses(*x, temperature=0.1, scaling="official")["total"]  # noqa: E731
    assert abs(run(ours) - run(released)) < 1e-3
    t_ours, t_peer = timed(lambda: run(ours)), timed(lambda: run(released))
    from tempclr_cli.core.models.r3d import TCLRModel

    g, loc = torch.rand(2, 8, 3, 16, 32, 32), torch.rand(2, 8, 4, 3, 16, 32, 32)
    steps = {}
    for batchnorm in ("per-view", "joint"):
        model = TCLRModel("r3d18-small", 64, batchnorm=batchnorm)
        steps[batchnorm] = timed(lambda: tclr_losses(*model(g, loc))["total"].backward(), repeat=3)  # noqa: B023
    print(f"torch {torch.__version__}, 2 threads")
    print("| measure | tempclr | released loops | ratio |\n|---|---:|---:|---:|")
    print(f"| loss value + gradient, batch {B}, D={D} (ms) | {t_ours:.2f} | {t_peer:.2f} | {t_peer / t_ours:.1f}x |")
    print(
        "\n| training step, r3d18-small, 8 videos x 10 clips of 16x32x32 | per-view (default) | joint | joint / "
        "per-view |"
    )
    print("|---|---:|---:|---:|")
    rate = {k: 80 / (v / 1000) for k, v in steps.items()}
    print(f"| clips/s | {rate['per-view']:.1f} | {rate['joint']:.1f} | {rate['joint'] / rate['per-view']:.2f}x |")


if __name__ == "__main__":
    main()
