"""Rebuild the shipped `--model tiny --pretrained synthetic` weights from a seed.

    python scripts/train_tiny_synthetic.py            # writes tempclr_cli/core/encode/weights/tiny_synthetic.pt

A CLIP-style contrastive run of the shipped `tiny` open_clip config on frames and captions
of `tempclr synth`'s world, drawn on the fly by its own generator (`media.synth`: a
coloured shape doing a motion on a tinted backdrop, captioned as `synth` captions its
steps). Each batch holds fresh backdrops, actions and moments of their motion, so the
model cannot memorise videos; the held-out check (`--check`) then aligns synthetic videos
that `tempclr synth` writes with seeds never drawn here. About 5 minutes on 2 cores (OMP_NUM_THREADS=1).

The file holds the state dict in float16 without the text token table, plus the rows of
that table for the tokens the synthetic captions use (every other row is zero: the model
knows only this world), and prints its SHA-256 for `clip_encoder.SYNTHETIC_SHA256`.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tempclr_cli.core.encode.clip_encoder import SYNTHETIC_WEIGHTS, load_clip
from tempclr_cli.core.media.synth import COLOURS, MOTIONS, SHAPES, TEMPLATES, Action, Canvas

ACTIONS = [Action(s, c, m) for s in SHAPES for c in COLOURS for m in MOTIONS]


def batch(rng: np.random.Generator, n: int, size: int) -> tuple[np.ndarray, list[str], np.ndarray]:
    """n frames of random actions at random moments, their captions, and each frame's action id."""
    ids = rng.integers(0, len(ACTIONS), n)
    frames, captions = [], []
    for k in ids:
        action = ACTIONS[k]
        frames.append(Canvas(size, rng).frame(action, float(rng.uniform(0, 1))))
        captions.append(action.sentence(TEMPLATES[int(rng.integers(len(TEMPLATES)))]))
    frames = np.stack(frames).astype(np.int16) + rng.integers(-6, 7, (n, 1, 1, 3))  # a little codec-like drift
    return np.clip(frames, 0, 255).astype(np.uint8), captions, ids


def train(steps: int, batch_size: int, seed: int, log_every: int = 100):
    torch.manual_seed(seed)
    enc = load_clip("tiny", "none", "cpu", seed)
    model = enc.model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps, pct_start=0.1)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for step in range(1, steps + 1):
        frames, captions, ids = batch(rng, batch_size, enc.image_size)
        image = F.normalize(model.encode_image(enc.preprocess(frames)), dim=-1)
        text = F.normalize(model.encode_text(enc.tokenizer(captions)), dim=-1)
        logits = model.logit_scale.exp().clamp(max=100) * image @ text.T
        same = torch.from_numpy(ids[:, None] == ids[None, :]).float()  # one action drawn twice: two positives
        target = same / same.sum(1, keepdim=True)
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % log_every == 0 or step == 1:
            print(f"step {step}/{steps} loss {loss.item():.3f} ({time.perf_counter() - start:.0f} s)", flush=True)
    return model.eval(), enc.tokenizer


def save(model, tokenizer, out: Path) -> str:
    """float16 state dict, token table reduced to the rows the synthetic captions use."""
    captions = sorted({a.sentence(t) for a in ACTIONS for t in TEMPLATES})
    used = torch.unique(tokenizer(captions).flatten())
    state = {k: v.half() for k, v in model.state_dict().items() if k != "token_embedding.weight"}
    table = model.state_dict()["token_embedding.weight"]
    payload = {
        "format": "tempclr tiny synthetic v1",
        "state": state,
        "token_ids": used,
        "token_rows": table[used].half(),
        "vocab": table.shape[0],
    }
    return write_payload(payload, out)


def write_payload(payload: dict, out: Path) -> str:
    """Serialised in memory: torch.save names the archive after the file, so writing the
    temporary file directly would make the bytes (and the SHA-256) differ run to run."""
    import io

    from tempclr_cli.core.io import atomic_path

    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_path(out) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def check(model, videos: int = 24, seed: int = 1000) -> dict:
    """Zero-shot alignment of `videos` synthetic videos that `tempclr synth --seed SEED` writes."""
    import tempfile

    from tempclr_cli.core.align.steps import align
    from tempclr_cli.core.data.annotations import read_youcook2
    from tempclr_cli.core.encode.extract import ExtractConfig, encode_video
    from tempclr_cli.core.eval.alignment import summary
    from tempclr_cli.core.media.synth import ANNOTATIONS_FILE, SynthConfig, generate

    enc = load_clip("tiny", "none", "cpu")
    enc.model = model
    with tempfile.TemporaryDirectory() as tmp:
        list(generate(tmp, SynthConfig(videos=videos, classes=0, class_videos=0, seed=seed)))
        pairs = []
        for video in read_youcook2(Path(tmp) / ANNOTATIONS_FILE):
            feats, starts, ends, duration = encode_video(Path(tmp) / "videos" / f"{video.id}.mp4", enc, ExtractConfig())
            texts = [s.text for s in video.steps]
            pairs.append((align(enc.encode_text(texts), feats, texts, starts, ends, duration=duration), video))
        return summary(pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=SYNTHETIC_WEIGHTS)
    args = parser.parse_args()
    model, tokenizer = train(args.steps, args.batch_size, args.seed)
    print("held-out synthetic videos (synth --seed 1000), zero-shot alignment:", check(model))
    digest = save(model, tokenizer, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB), sha256 {digest}")


if __name__ == "__main__":
    main()
