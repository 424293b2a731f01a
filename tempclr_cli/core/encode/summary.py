"""What an extraction run did: its summary, counted video by video (`tally`), which side bound it
(`bound`, `workers_to_keep_up`), and under torchrun every rank's, summed (`merged_over_ranks`)."""

from __future__ import annotations

import math


def tally(summary: dict, event) -> None:
    """Count one video's result into the run's summary."""
    if event.status == "skipped":
        summary["skipped"] += 1
    elif event.status == "ok":
        summary["ok"] += 1
        summary["clips"] += event.clips
        for key in ("decode_seconds", "encode_seconds", "waited_seconds"):
            summary[key] = round(summary[key] + event.row[key], 3)
        if event.row["truncated"]:
            summary["truncated"].append(str(event.job.source))
    else:
        summary["failed"].append({"source": str(event.job.source), "reason": event.reason})


def bound(summary: dict) -> str | None:
    """What limited the run: "decode" when the encoder mostly waited for decoded frames (add
    --workers or cores), "encode" when decoding kept up (a faster encoder or a GPU helps);
    None when no video was encoded (nothing was measured)."""
    if not summary["ok"]:
        return None
    return "decode" if summary["waited_seconds"] > summary["encode_seconds"] else "encode"


def workers_to_keep_up(summary: dict) -> int | None:
    """How many decoding workers would keep the encoder busy: the run's decoding time over its
    encoding time (each worker decodes its videos while the encoder takes the batches of all), at
    least 1. None when nothing was encoded. A GPU encodes S3D's 30-fps clips far faster than one
    CPU core decodes them: this is the --workers to ask for (or the cores to find)."""
    if not summary["ok"] or summary["encode_seconds"] <= 0:
        return None
    return max(1, math.ceil(summary["decode_seconds"] / summary["encode_seconds"]))


def merged_over_ranks(summary: dict) -> dict:
    """Under torchrun (a rendezvous in the environment) every rank's summary, summed: the
    same answer as one process. Elsewhere (one process, SLURM tasks) this process's own."""
    import datetime

    import torch.distributed as dist

    from tempclr_cli.core.runtime import process_rank, rendezvous

    if process_rank()[1] < 2 or not rendezvous():
        return summary
    owned = not dist.is_initialized()
    if owned:  # a rank with nothing left to do waits here for the others' whole extraction, not 30 minutes
        dist.init_process_group("gloo", timeout=datetime.timedelta(days=7))
    try:
        parts: list = [None] * dist.get_world_size()
        dist.all_gather_object(parts, summary)
        dist.barrier()  # no rank leaves (and tears down its end of the group) while another still gathers
    finally:
        if owned:  # a group left to the interpreter's exit can abort it ("terminate called ...")
            dist.destroy_process_group()
    merged = {"out": summary["out"], "ranks": len(parts), "seconds": max(p.get("seconds", 0) for p in parts)}
    for key in ("videos", "skipped", "ok", "clips", "decode_seconds", "encode_seconds", "waited_seconds"):
        merged[key] = sum(p[key] for p in parts)
    merged["bound"] = bound(merged)
    merged["workers_to_keep_up"] = max((p.get("workers_to_keep_up") or 0 for p in parts), default=0) or None  # per rank
    for key in ("failed", "truncated", "renamed", "broken"):
        merged[key] = [x for p in parts for x in p[key]]
    merged["format"] = summary["format"]
    return merged
