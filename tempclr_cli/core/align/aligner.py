"""Align step sentences with a video file or a `.npy` feature file: the `align` command's core,
and the library's (`tempclr_cli.Aligner`, `tempclr_cli.align`).

The encoder is chosen once per input (`encode.encoders.choose_encoder`): the one named,
else the one recorded with the features (`index.jsonl`) or the one trained TempCLR
heads were trained over, else ViT-B-32 / OpenAI. Loaded encoders are kept, so aligning
many inputs loads each model once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tempclr_cli.core.align.steps import Alignment, read_steps
from tempclr_cli.core.align.steps import align as align_embeddings
from tempclr_cli.core.encode.encoders import EncoderSpec, choose_encoder
from tempclr_cli.core.errors import TempclrError


class Aligner:
    def __init__(self, model: str | None = None, pretrained: str | None = None, checkpoint: str | None = None,
                 device: str = "auto", seed: int = 0, fps: float = 1.0, clip_seconds: float = 1.0,
                 log: Callable[[str], None] = lambda _: None):
        from tempclr_cli.core.runtime import resolve_device, seed_everything

        seed_everything(seed)
        self.model, self.pretrained, self.seed = model, pretrained, seed
        self.fps, self.clip_seconds, self.log = fps, clip_seconds, log
        self.device = resolve_device(device)
        self.heads, self.trained_over = None, None
        if checkpoint:
            from tempclr_cli.core.models.heads import load_heads

            self.heads, meta = load_heads(checkpoint, "cpu")
            self.trained_over = EncoderSpec.from_meta(meta)
        self._encoders: dict[EncoderSpec, object] = {}

    def encoder(self, made_by: EncoderSpec | None):
        spec = choose_encoder(self.model, self.pretrained, self.seed, self.trained_over or made_by)
        if spec not in self._encoders:
            self.log(f"model {spec.model} ({spec.pretrained})")
            self._encoders[spec] = spec.load(self.device)
        return spec, self._encoders[spec]

    def align(self, video: str | Path, steps: list[str] | str | Path, background: bool = True,
              drop_cost: float | None = None) -> Alignment:
        """Locate each step of `steps` (in order; a list of sentences, or a steps file) in
        `video`, a video file or a `.npy`."""
        import torch

        from tempclr_cli.core.models.heads import apply_heads

        if isinstance(steps, (str, Path)):
            steps = read_steps(str(steps))
        video = Path(video)
        if not video.exists():
            raise TempclrError(f"{video}: no such file")
        if video.is_dir():
            raise TempclrError(f"{video}: is a folder; expected a video file or a .npy feature file")
        if video.suffix.lower() == ".npy":
            feats, starts, ends, recorded, duration, source = self._load_npy(video)
            spec, encoder = self.encoder(recorded)
        else:
            from tempclr_cli.core.encode.extract import ExtractConfig, encode_video

            spec, encoder = self.encoder(None)
            self.log(f"encoding {video}")
            cfg = ExtractConfig(fps=self.fps, clip_seconds=self.clip_seconds)
            feats, starts, ends, duration = encode_video(video, encoder, cfg)
            source = str(video)
        step_emb = encoder.encode_text(steps).cpu()
        if step_emb.shape[1] != feats.shape[1]:
            raise TempclrError(
                f"{video}: features have dim {feats.shape[1]} but {spec.model} text embeddings have {step_emb.shape[1]}; "
                "use the --model/--pretrained that made the features"
            )
        clips, step_emb = apply_heads(self.heads, torch.as_tensor(feats).cpu(), step_emb)
        return align_embeddings(step_emb, clips, steps, starts, ends, background, drop_cost, str(video), duration, source)

    def _load_npy(self, path: Path):
        """(features (T, D), starts, ends, the EncoderSpec recorded for them or None, duration or None,
        the source video recorded for them or "")."""
        import torch

        from tempclr_cli.core.data.features import load_matrix, store_of

        store, video_id = store_of(path, self.clip_seconds)
        row = store.row(video_id) if store else {}
        array, starts, ends = load_matrix(path, row, self.clip_seconds)
        spec = EncoderSpec.from_row(row) if row else None
        return torch.from_numpy(array), starts, ends, spec, row.get("duration"), row.get("source", "")


def align(video: str | Path, steps: list[str] | str | Path, model: str | None = None, pretrained: str | None = None,
          checkpoint: str | None = None, device: str = "auto", **options) -> Alignment:
    """One-shot `Aligner(model, pretrained, checkpoint, device).align(video, steps)`; `options`
    go to `Aligner.align` (background, drop_cost). Load an Aligner once for many videos."""
    return Aligner(model, pretrained, checkpoint, device).align(video, steps, **options)
