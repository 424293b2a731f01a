"""S3D-G with the MIL-NCE text tower, trained on HowTo100M (Miech et al., CVPR 2020).

The encoder behind VideoCLIP's and TempCLR's features and most step-localisation work.
Module names follow the authors' `s3dg.py` (antoine77340/S3D_HowTo100M) so that the
released `s3d_howto100m.pth` loads with `strict=True`:

- video: a space-to-depth stem (`[B,3,T,H,W] -> [B,24,T/2,H/2,W/2]`, so T, H and W must be
  even), `conv1` with kernel [2,4,4] and a crop of the first row, column and frame (TF's
  SAME padding), gated separable-3D inception blocks, TF-SAME max pools (zero padding,
  ceil mode), a mean over T, H, W (`mixed_5c`, 1024-d) and `fc` to the 512-d joint space.
  Input in [0, 1], no mean or std.
- text: lower-case, split with `[\\w']+`, word i of the dictionary is token i + 1,
  unknown words dropped, zero-padded or cut to 16 tokens; `Embedding(66250, 300)`,
  `fc1` to 2048 with ReLU, max over all 16 positions (the padding's too), `fc2` to 512.
  A sentence with no known word is 16 zeros.
- Scores are raw dot products.

Every layer is plain PyTorch; BatchNorm eps is PyTorch's default (1e-5), as released.
"""

from __future__ import annotations

import re

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MAX_WORDS = 16
VOCAB = 66250  # rows of the released word table (the dictionary's words + 1 for token 0)
WORD_DIM = 300
_WORD = re.compile(r"[\w']+")


class STConv3D(nn.Module):
    """Conv3d + BN + ReLU; `separable`: a [1,k,k] spatial then a [k,1,1] temporal one."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int, int], stride=1, padding=0, separable: bool = False):
        super().__init__()
        self.separable = separable
        if separable:
            k, p = kernel[0], padding
            self.conv1 = nn.Conv3d(
                cin, cout, (1, kernel[1], kernel[2]), stride=(1, stride, stride), padding=(0, p, p), bias=False
            )
            self.bn1 = nn.BatchNorm3d(cout)
            self.conv2 = nn.Conv3d(cout, cout, (k, 1, 1), stride=(stride, 1, 1), padding=(p, 0, 0), bias=False)
            self.bn2 = nn.BatchNorm3d(cout)
        else:
            self.conv1 = nn.Conv3d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
            self.bn1 = nn.BatchNorm3d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(x))) if self.separable else x


class SelfGating(nn.Module):
    """x * sigmoid(fc(mean of x over T, H, W)), per channel (S3D-G's feature gating)."""

    def __init__(self, channels: int):
        super().__init__()
        self.fc = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc(x.mean(dim=(2, 3, 4))))[:, :, None, None, None] * x


class InceptionBlock(nn.Module):
    """Four gated branches: 1x1; 1x1 -> sep3; 1x1 -> sep3; maxpool3 -> 1x1; concatenated."""

    def __init__(self, cin: int, b0: int, b1a: int, b1b: int, b2a: int, b2b: int, b3: int):
        super().__init__()
        self.conv_b0 = STConv3D(cin, b0, (1, 1, 1))
        self.conv_b1_a = STConv3D(cin, b1a, (1, 1, 1))
        self.conv_b1_b = STConv3D(b1a, b1b, (3, 3, 3), padding=1, separable=True)
        self.conv_b2_a = STConv3D(cin, b2a, (1, 1, 1))
        self.conv_b2_b = STConv3D(b2a, b2b, (3, 3, 3), padding=1, separable=True)
        self.maxpool_b3 = nn.MaxPool3d(3, stride=1, padding=1)
        self.conv_b3_b = STConv3D(cin, b3, (1, 1, 1))
        self.gating_b0, self.gating_b1 = SelfGating(b0), SelfGating(b1b)
        self.gating_b2, self.gating_b3 = SelfGating(b2b), SelfGating(b3)
        self.output_dim = b0 + b1b + b2b + b3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.gating_b0(self.conv_b0(x)),
                self.gating_b1(self.conv_b1_b(self.conv_b1_a(x))),
                self.gating_b2(self.conv_b2_b(self.conv_b2_a(x))),
                self.gating_b3(self.conv_b3_b(self.maxpool_b3(x))),
            ],
            dim=1,
        )


class MaxPoolSame(nn.Module):
    """TF's SAME max pool as released: zero padding (inputs are >= 0 after ReLU), ceil mode."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]):
        super().__init__()
        pads = [(max(k - s, 0) // 2, max(k - s, 0) - max(k - s, 0) // 2) for k, s in zip(kernel, stride)]
        (t0, t1), (h0, h1), (w0, w1) = pads
        self.padding = (h0, h1, w0, w1, t0, t1)  # as released: W padded by H's amounts (kernels are square)
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(F.pad(x, self.padding), self.kernel, self.stride, ceil_mode=True)


# (b0, b1a, b1b, b2a, b2b, b3) of each inception block, as in S3D-G
_BLOCKS = {
    "mixed_3b": (64, 96, 128, 16, 32, 32),
    "mixed_3c": (128, 128, 192, 32, 96, 64),
    "mixed_4b": (192, 96, 208, 16, 48, 64),
    "mixed_4c": (160, 112, 224, 24, 64, 64),
    "mixed_4d": (128, 128, 256, 24, 64, 64),
    "mixed_4e": (112, 144, 288, 32, 64, 64),
    "mixed_4f": (256, 160, 320, 32, 128, 128),
    "mixed_5b": (256, 160, 320, 32, 128, 128),
    "mixed_5c": (384, 192, 384, 48, 128, 128),
}


class SentenceEmbedding(nn.Module):
    """The MIL-NCE text tower: word embeddings, fc1 + ReLU, max over the 16 positions, fc2."""

    def __init__(self, words: np.ndarray, dim: int = 512, vocab: int = VOCAB, hidden: int = 2048):
        super().__init__()
        self.word_embd = nn.Embedding(vocab, WORD_DIM)
        self.fc1 = nn.Linear(WORD_DIM, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.word_to_token = {str(w): i + 1 for i, w in enumerate(words)}

    def tokens(self, sentences: list[str]) -> torch.Tensor:
        """(n, 16) token ids: known words in order, zero-padded or cut to 16."""
        out = torch.zeros(len(sentences), MAX_WORDS, dtype=torch.long)
        for row, sentence in enumerate(sentences):
            ids = [self.word_to_token[w] for w in _WORD.findall(str(sentence).lower()) if w in self.word_to_token]
            ids = ids[:MAX_WORDS]
            out[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out

    def forward(self, sentences: list[str]) -> torch.Tensor:
        x = self.word_embd(self.tokens(sentences).to(self.fc1.weight.device))
        return self.fc2(F.relu(self.fc1(x)).amax(dim=1))  # (n, dim)


class S3D(nn.Module):
    """S3D-G video tower + MIL-NCE text tower; `forward(video)` -> video_embedding, mixed_5c."""

    def __init__(self, words: np.ndarray, dim: int = 512, vocab: int = VOCAB):
        super().__init__()
        self.conv1 = STConv3D(24, 64, (2, 4, 4), padding=(1, 2, 2))
        self.conv_2b = STConv3D(64, 64, (1, 1, 1))
        self.conv_2c = STConv3D(64, 192, (3, 3, 3), padding=1, separable=True)
        self.gating = SelfGating(192)
        self.maxpool_2a = MaxPoolSame((1, 3, 3), (1, 2, 2))
        self.maxpool_3a = MaxPoolSame((1, 3, 3), (1, 2, 2))
        self.maxpool_4a = MaxPoolSame((3, 3, 3), (2, 2, 2))
        self.maxpool_5a = MaxPoolSame((2, 2, 2), (2, 2, 2))
        cin = 192
        for name, widths in _BLOCKS.items():
            block = InceptionBlock(cin, *widths)
            self.add_module(name, block)
            cin = block.output_dim
        self.fc = nn.Linear(cin, dim)
        self.text_module = SentenceEmbedding(words, dim, vocab)

    @staticmethod
    def space_to_depth(x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, 8C, T/2, H/2, W/2), channel order (dt, dh, dw, c) as released."""
        B, C, T, H, W = x.shape
        x = x.view(B, C, T // 2, 2, H // 2, 2, W // 2, 2).permute(0, 3, 5, 7, 1, 2, 4, 6)
        return x.reshape(B, 8 * C, T // 2, H // 2, W // 2)

    def forward(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        """video [shape=(B, 3, T, H, W)] in [0, 1], T, H, W even -> video_embedding (B, 512), mixed_5c (B, 1024)."""
        if any(s % 2 for s in video.shape[2:]):
            raise ValueError(f"S3D needs even T, H, W; got {tuple(video.shape[2:])}")
        x = self.conv1(self.space_to_depth(video))[:, :, 1:, 1:, 1:]  # TF SAME padding
        x = self.gating(self.conv_2c(self.conv_2b(self.maxpool_2a(x))))
        x = self.mixed_3c(self.mixed_3b(self.maxpool_3a(x)))
        x = self.maxpool_4a(x)
        for name in ("mixed_4b", "mixed_4c", "mixed_4d", "mixed_4e", "mixed_4f"):
            x = getattr(self, name)(x)
        x = self.mixed_5c(self.mixed_5b(self.maxpool_5a(x)))
        pooled = x.mean(dim=(2, 3, 4))
        return {"video_embedding": self.fc(pooled), "mixed_5c": pooled}

    def encode_text(self, sentences: list[str]) -> torch.Tensor:
        """Sentences -> (n, 512) text embeddings, in the joint space (raw, not normalised)."""
        return self.text_module(sentences)


def read_dictionary(path) -> np.ndarray:
    """`s3d_dict.npy`: a NumPy array of words, read without pickles."""
    words = np.load(path, allow_pickle=False)
    if words.ndim != 1 or words.dtype.kind not in "US":
        raise ValueError(f"expected a 1-D array of words, got {words.dtype} {words.shape}")
    return words.astype(str)
