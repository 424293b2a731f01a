"""`extract --plan`: size a run before launching it, as Ego4D's extraction profiles a few videos first.

Durations come from every video's container header (cached in OUT/durations.json, which the array
tasks then reuse to balance their shards); a few videos, spread over the list, are decoded and
encoded here to measure the two rates. A run decodes in `decoders` processes while one encoder
consumes them (torchrun rank, array task or Ray GPU actor), so its time is the slower of the two:

    decode hours = video seconds / (decode rate per core x decoders) / 3600
    encode hours = sampled frames / encode rate / 3600
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from tempclr_cli.core.data.stores import bytes_per_video, get_layout
from tempclr_cli.core.encode.extract import DecodeStream, ExtractConfig, sampling_for
from tempclr_cli.core.encode.jobs import Job, parts_of, plan_jobs
from tempclr_cli.core.encode.shards import durations, filled, read_inputs

PROBES = 3  # videos decoded and encoded to measure the rates


def measure(sources: list, encoder, cfg: ExtractConfig, probes: int = PROBES) -> dict:
    """Decode rate (video seconds per second, one core) and encode rate (frames per second) on
    `probes` videos spread over `sources` (Path or tar Member), each decoded in this process."""
    picks = [sources[round(k * (len(sources) - 1) / max(probes - 1, 1))] for k in range(min(probes, len(sources)))]
    seconds = decoding = encoding = 0.0
    frames = 0
    for source in dict.fromkeys(picks):
        for item in DecodeStream([Job(source, Path("probe.npy"))], cfg, encoder.image_size, protocol=encoder.protocol):
            if "error" in item:
                break
            if item["frames"] is not None:
                clock = time.perf_counter()
                encoder.encode_images(item["frames"])
                encoding += time.perf_counter() - clock
                frames += len(item["times"])
            if item["last"]:
                seconds += item["report"].duration
                decoding += item["report"].decode_seconds
    return {
        "probed": len(set(picks)),
        "decode_rate": round(seconds / decoding, 2) if decoding else None,
        "encode_rate": round(frames / encoding, 1) if encoding else None,
    }


def plan_run(
    sources: list,
    out: Path,
    cfg: ExtractConfig,
    encoder,
    root: Path | None = None,
    output_format: str = "npy",
    per_part: int = 1000,
    tasks: int = 1,
    decoders: int = 2,
    engine: str = "local",
    log=lambda message: None,
) -> dict:
    """What a run over `sources` would take and write, without extracting: videos, total seconds,
    expected clips, output bytes and files, the rates measured here, and the hours per task
    (`tasks` array tasks or GPUs, each fed by `decoders` decoding processes)."""
    layout = get_layout(output_format)
    cfg = sampling_for(encoder, cfg)
    videos = read_inputs(sources, root)
    declared = durations(videos, out, log)
    lengths = filled(list(declared.values())) or [0.0] * len(videos)
    per_clip = 1 / cfg.fps if cfg.per_frame else cfg.clip_seconds
    clips = [max(1, round(s / per_clip)) for s in lengths]
    itemsize = np.dtype(cfg.dtype).itemsize
    rates = measure([v.source for v in videos], encoder, cfg)
    total = sum(lengths)
    decode_hours = total / (rates["decode_rate"] * decoders) / 3600 if rates["decode_rate"] else None
    encode_hours = total * cfg.fps / rates["encode_rate"] / 3600 if rates["encode_rate"] else None
    per_task = max(h for h in (decode_hours, encode_hours) if h is not None) / tasks if rates["decode_rate"] else None
    return {
        "videos": len(videos),
        "unreadable_durations": sum(s is None for s in declared.values()),
        "seconds": round(total, 1),
        "clips": sum(clips),
        "format": layout.name,
        "bytes": sum(bytes_per_video(layout, c, encoder.dim, itemsize) for c in clips),
        "files": len(parts_of(plan_jobs(videos, out, layout, per_part))) + 1,  # parts and index.jsonl
        **rates,
        "device": str(encoder.device),
        "engine": engine,
        "tasks": tasks,
        "decoders": decoders,
        "decode_hours": decode_hours and round(decode_hours / tasks, 3),
        "encode_hours": encode_hours and round(encode_hours / tasks, 3),
        "hours_per_task": per_task and round(per_task, 3),
        "bound": None if not per_task else ("decode" if (decode_hours or 0) >= (encode_hours or 0) else "encode"),
    }
