"""S3D MIL-NCE (HowTo100M) as an encoder: VideoCLIP's features, and its text tower.

`--model s3d-howto100m --pretrained PATH`: PATH is the authors' `s3d_howto100m.pth` with
`s3d_dict.npy` beside it, or a folder holding both. Frames are decoded as VideoCLIP's
extractor does (ffmpeg's fps=30, short side 224, centre crop; `media.decode.filter_frames`),
each second's 30 frames (the last second padded with black frames) give one
`video_embedding`, which extraction L2-normalises and stores as float16.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tempclr_cli.core.encode.registry import clip_facts, register_encoder
from tempclr_cli.core.errors import TempclrError

WEIGHTS_FILE, DICT_FILE = "s3d_howto100m.pth", "s3d_dict.npy"
WHERE = (
    "the two files linked from the authors' README, github.com/antoine77340/S3D_HowTo100M "
    f"({WEIGHTS_FILE} and {DICT_FILE})"
)


@dataclass
class S3DEncoder:
    """Frames arrive as whole seconds of 30; every frame gets its second's embedding."""

    model: object  # models.s3d.S3D
    device: object
    name: str
    pretrained: str
    seed: int = 0
    frames_per_clip = 30
    fps = 30.0
    image_size = 224
    dim = 512
    protocol = "videoclip"

    def encode_images(self, frames):
        """(n, 224, 224, 3) uint8 -> (n, 512) float32 video embeddings (not normalised)."""
        import torch

        from tempclr_cli.core.runtime import autocast

        x = torch.as_tensor(frames).to(self.device, non_blocking=True)
        n, F = x.shape[0], self.frames_per_clip
        if n % F:  # the last second padded with black frames, as released (`preprocessing.py` _zero_pad)
            x = torch.cat([x, x.new_zeros(F - n % F, *x.shape[1:])])
        clips = x.view(-1, F, *x.shape[1:]).permute(0, 4, 1, 2, 3).float().div_(255)  # (clips, 3, 30, S, S)
        with torch.inference_mode(), autocast(self.device):
            emb = self.model(clips)["video_embedding"].float()
        return emb.repeat_interleave(F, dim=0)[:n]

    def encode_text(self, sentences: list[str]):
        """Sentences -> (n, 512) float32 text embeddings (not normalised)."""
        import torch

        with torch.inference_mode():
            return self.model.encode_text(sentences).float()


def weight_files(pretrained: str | None) -> tuple[Path, Path]:
    """(weights, dictionary) from `--pretrained`: the .pth (dictionary beside it) or a folder with both."""
    if not pretrained or pretrained.lower() == "none":
        raise TempclrError(f"--model s3d-howto100m needs --pretrained PATH: {WHERE}; random weights are never used")
    path = Path(pretrained).expanduser()
    weights = path / WEIGHTS_FILE if path.is_dir() else path
    dictionary = weights.parent / DICT_FILE
    missing = [str(p) for p in (weights, dictionary) if not p.is_file()]
    if missing:
        raise TempclrError(
            f"--pretrained {pretrained}: missing {' and '.join(missing)}; S3D needs both {WHERE}, "
            "the dictionary beside the weights"
        )
    return weights, dictionary


def load_s3d_model(pretrained: str):
    """The S3D module with the released weights, loaded strictly (sizes read from the file)."""
    from tempclr_cli.core.checkpoint import load_strictly, read_weights
    from tempclr_cli.core.models.s3d import S3D, read_dictionary

    weights, dictionary = weight_files(pretrained)
    state = read_weights(weights, "S3D MIL-NCE weights")
    try:
        words = read_dictionary(dictionary)
    except Exception as e:  # noqa: BLE001 - an object array, a torn file: one clear refusal
        raise TempclrError(
            f"--pretrained {pretrained}: cannot read it safely ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''})"
        ) from None
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, dict) or "text_module.word_embd.weight" not in state or "fc.weight" not in state:
        raise TempclrError(f"{weights}: not an S3D MIL-NCE state dict (no text_module.word_embd.weight / fc.weight)")
    vocab, dim = state["text_module.word_embd.weight"].shape[0], state["fc.weight"].shape[0]
    return load_strictly(S3D(words, dim=dim, vocab=vocab), state, weights, "S3D").eval()


@register_encoder(
    "s3d-howto100m",
    "video-text",
    "S3D-G MIL-NCE on HowTo100M: VideoCLIP/TempCLR's features, "
    "1 s clips of 30 frames, and its word-embedding text tower (raw dot products)",
    "PATH (s3d_howto100m.pth + s3d_dict.npy)",
    **clip_facts(S3DEncoder),
)
def load_s3d(model: str, pretrained: str | None, device, seed: int = 0) -> S3DEncoder:
    net = load_s3d_model(pretrained)
    return S3DEncoder(net.to(device), device, model, str(pretrained), seed)
