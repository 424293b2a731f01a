"""VideoCLIP's network (MMPT's `MMFusionSeparate`), over HF transformers' `BertModel`.

TempCLR's released checkpoints are this network fine-tuned; VideoCLIP's is it pre-trained.
Module names follow MMPT so their weights load strictly (`video_encoder.*`, `text_encoder.*`):

- video (`MMBertForEncoder`): `videomlp` = Linear(512 -> H), GELU, LayerNorm (eps 1e-5),
  Linear(H -> H) on each second's S3D feature; a BERT (6 layers as released) over
  `[CLS] + video tokens (padded to max_video_len = 32) + [SEP]`, [CLS] and [SEP] embedded from
  the word table, positions `0..L` then `max_video_len + 1` for [SEP], token types 0,
  attention mask `[1, vmask, 1]` (`mmfusion.py` `forward_video`, `mm.py` `MMBertEmbeddings`).
- text: a plain BERT (bert-base-uncased) over `[CLS] + word pieces[:61] + [SEP] + padding`
  (`processor.py` `_build_text_seq`, with the second token of its `[CLS, SEP]` prefix dropped
  as `forward_text` does), positions 0.., token types 0.
- pooling: the masked mean of the last layer over every token after [CLS], the trailing [SEP]
  included; per-second video embeddings are `hidden[:, 1:1+L]`.
- similarity: raw dot products, no projection, no temperature.

Sizes (hidden, layers, vocabulary, positions) are read from the weights; attention heads =
hidden / 64, as in every BERT.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

MAX_VIDEO_LEN = 32  # seconds of S3D features per video pass (`max_video_len`)
MAX_LEN = 96  # `max_len`: video + text budget of the released processors; text gets 96 - 32 - 3 = 61 pieces


@dataclass(frozen=True)
class VideoCLIPConfig:
    hidden: int = 768
    video_layers: int = 6
    text_layers: int = 12
    intermediate: int = 3072
    vocab: int = 30522
    positions: int = 512
    input_dim: int = 512  # S3D's video_embedding
    max_video_len: int = MAX_VIDEO_LEN

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> "VideoCLIPConfig":
        """The sizes of a MMFusionSeparate state dict (keys without the `mmmodel.` prefix)."""

        def layers(prefix: str) -> int:
            found = {int(k[len(prefix) :].split(".")[0]) for k in state if k.startswith(prefix)}
            return max(found) + 1 if found else 0

        word = state["text_encoder.embeddings.word_embeddings.weight"]
        return cls(
            hidden=word.shape[1],
            video_layers=layers("video_encoder.bert.encoder.layer."),
            text_layers=layers("text_encoder.encoder.layer."),
            intermediate=state["text_encoder.encoder.layer.0.intermediate.dense.weight"].shape[0],
            vocab=word.shape[0],
            positions=state["text_encoder.embeddings.position_embeddings.weight"].shape[0],
            input_dim=state["video_encoder.videomlp.linear1.weight"].shape[1],
        )

    def to_dict(self) -> dict:
        return asdict(self)

    def bert(self, layers: int):
        from transformers import BertConfig

        return BertConfig(
            vocab_size=self.vocab,
            hidden_size=self.hidden,
            num_hidden_layers=layers,
            num_attention_heads=max(1, self.hidden // 64),
            intermediate_size=self.intermediate,
            max_position_embeddings=self.positions,
            type_vocab_size=2,
            layer_norm_eps=1e-12,
            hidden_act="gelu",
        )


class VideoTokenMLP(nn.Module):
    """Each S3D feature -> one video token: linear1, GELU, LayerNorm, linear2 (`mm.py:32-46`)."""

    def __init__(self, input_dim: int, hidden: int):
        super().__init__()
        self.linear1 = nn.Linear(input_dim, hidden)
        self.LayerNorm = nn.LayerNorm(hidden)
        self.linear2 = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.LayerNorm(nn.functional.gelu(self.linear1(x))))


class VideoEncoder(nn.Module):
    """`MMBertForEncoder`: video tokens through a BERT, framed by [CLS] and [SEP]."""

    def __init__(self, cfg: VideoCLIPConfig):
        super().__init__()
        from transformers import BertModel

        self.max_video_len = cfg.max_video_len
        self.videomlp = VideoTokenMLP(cfg.input_dim, cfg.hidden)
        self.bert = BertModel(cfg.bert(cfg.video_layers))

    def forward(self, feats: torch.Tensor, mask: torch.Tensor, cls_sep: torch.Tensor) -> torch.Tensor:
        """feats [shape=(B, L, 512)], mask (B, L) bool, cls_sep: the two token ids -> hidden (B, L + 2, H)."""
        B, L = mask.shape
        words = self.bert.embeddings.word_embeddings(cls_sep.to(feats.device))  # (2, H)
        tokens = torch.cat([words[0].expand(B, 1, -1), self.videomlp(feats), words[1].expand(B, 1, -1)], dim=1)
        positions = torch.cat([torch.arange(L + 1), torch.tensor([self.max_video_len + 1])]).to(feats.device)
        ones = mask.new_ones(B, 1)
        out = self.bert(
            inputs_embeds=tokens,
            attention_mask=torch.cat([ones, mask, ones], 1).long(),
            token_type_ids=torch.zeros(B, L + 2, dtype=torch.long, device=feats.device),
            position_ids=positions.expand(B, -1),
        )
        return out.last_hidden_state


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of hidden (B, T, H) over the tokens where mask (B, T) is set."""
    weights = mask.to(hidden.dtype) / mask.sum(1, keepdim=True).to(hidden.dtype)
    return torch.bmm(hidden.transpose(1, 2), weights.unsqueeze(2)).squeeze(-1)


class VideoCLIP(nn.Module):
    """`MMFusionSeparate`: `video(feats, mask)` and `text(ids, mask)` give pooled embeddings in
    one space (raw dot products); `video_tokens` the per-second ones."""

    def __init__(self, cfg: VideoCLIPConfig, cls_id: int = 101, sep_id: int = 102):
        super().__init__()
        from transformers import BertModel

        self.cfg = cfg
        self.video_encoder = VideoEncoder(cfg)
        self.text_encoder = BertModel(cfg.bert(cfg.text_layers))
        self.register_buffer("cls_sep", torch.tensor([cls_id, sep_id]), persistent=False)

    def video_hidden(self, feats: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L, 512) S3D features, L <= max_video_len -> the last layer (B, L + 2, H)."""
        if mask is None:
            mask = torch.ones(feats.shape[:2], dtype=torch.bool, device=feats.device)
        return self.video_encoder(feats, mask, self.cls_sep)

    def video(self, feats: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Pooled video embedding (B, H): the mean over the video tokens and [SEP]."""
        if mask is None:
            mask = torch.ones(feats.shape[:2], dtype=torch.bool, device=feats.device)
        ones = mask.new_ones(mask.shape[0], 1)
        return masked_mean(self.video_hidden(feats, mask), torch.cat([~ones, mask, ones], 1))

    def video_tokens(self, feats: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Per-second embeddings (B, L, H): `hidden[:, 1:1+L]` (localisation, alignment)."""
        return self.video_hidden(feats, mask)[:, 1 : 1 + feats.shape[1]]

    def text(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Pooled text embedding (B, H) of `[CLS] pieces [SEP] pad` ids (B, T): the mean after [CLS]."""
        hidden = self.text_encoder(
            input_ids=ids, attention_mask=mask.long(), token_type_ids=torch.zeros_like(ids)
        ).last_hidden_state
        return masked_mean(hidden, torch.cat([torch.zeros_like(mask[:, :1]), mask[:, 1:]], 1))


def text_batch(
    pieces: list[list[int]],
    cls_id: int,
    sep_id: int,
    pad_id: int,
    max_len: int = MAX_LEN,
    max_video_len: int = MAX_VIDEO_LEN,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and mask (B, max_len - max_video_len - 1) as `_build_text_seq` builds them and
    `forward_text` reads them: [CLS], at most max_len - max_video_len - 3 pieces, [SEP], padding."""
    keep = max_len - max_video_len - 3
    width = keep + 2
    ids = torch.full((len(pieces), width), pad_id, dtype=torch.long)
    mask = torch.zeros(len(pieces), width, dtype=torch.bool)
    for row, p in enumerate(pieces):
        seq = [cls_id, *p[:keep], sep_id]
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = True
    return ids, mask


# --- the released checkpoint files -------------------------------------------------------------


# Globals a fairseq checkpoint may name besides tensors: its config objects. Each is read into an
# inert stand-in (it keeps the fields, runs no code); any other global is refused by name.
def read_released(path) -> dict[str, torch.Tensor]:
    """The weights of a VideoCLIP / TempCLR checkpoint: a fairseq file (`model` with `mmmodel.`
    keys, beside `args`/`cfg` and optimizer state), its `tempclr convert` safetensors, or a
    plain state dict. Read with `weights_only`; config objects become inert stand-ins."""
    from pathlib import Path

    from tempclr_cli.core.checkpoint import identify, read_fairseq, read_weights
    from tempclr_cli.core.errors import TempclrError

    path = Path(path)
    if identify(path) == "safetensors":
        return read_weights(path, "a VideoCLIP / TempCLR conversion")
    ckpt = read_fairseq(path)
    state = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not any(k.startswith(("mmmodel.", "video_encoder.")) for k in state):
        raise TempclrError(f"{path}: not a VideoCLIP / TempCLR checkpoint (no mmmodel.* weights)")
    return {k.removeprefix("mmmodel."): v for k, v in state.items() if isinstance(v, torch.Tensor)}


def load_videoclip(path, tokenizer_ids: tuple[int, int] = (101, 102), released: dict | None = None) -> VideoCLIP:
    """VideoCLIP (or a TempCLR fine-tune) with its released weights, loaded strictly: the
    transformers-3 `position_ids` buffers may be absent or present, any other missing or
    unexpected key is an error that names it. Weights are float32 after loading (fp16 on disk).
    `released`: the file's weights when the caller has read them already (`read_released`)."""
    from tempclr_cli.core.checkpoint import load_strictly
    from tempclr_cli.core.errors import TempclrError

    released = read_released(path) if released is None else released
    state = {k: v.float() for k, v in released.items() if not k.endswith("position_ids")}
    try:
        model = VideoCLIP(VideoCLIPConfig.from_state(state), *tokenizer_ids)
    except KeyError as e:
        raise TempclrError(f"{path}: missing {e.args[0]}, so its sizes cannot be read") from None
    return load_strictly(model, state, path, "VideoCLIP").eval()


LAYERNORM_ONLY = "LayerNorm"  # TempCLR's layernorm_* runs train parameters whose name.split(".")[-2] is this


def layernorm_parameters(model: nn.Module) -> list[str]:
    """The parameters TempCLR's `layernorm_only` fine-tuning trains (`alignretritask.py:21-26`)."""
    return [n for n, _ in model.named_parameters() if n.split(".")[-2] == LAYERNORM_ONLY]


# --- as TempCLR heads: what align, retrieve and localize apply over S3D features ---------------

WINDOW, STRIDE = 32, 16  # localisation windows (`configs/test_crosstask_zs.yaml`: sliding_window_size, sliding_window)


class VideoCLIPHeads(nn.Module):
    """VideoCLIP (or a TempCLR checkpoint) where tempclr applies trained heads: `video` gives
    per-second embeddings, each the mean over the 32-s windows (every 16 s) that cover the
    second, as the released localisation does (`predictor.py:277-301`; a dot product is linear,
    so averaging embeddings averages the logits); `segment` pools one segment (at most 32 s)
    through the video encoder, as the released retrieval does; `encode_text` is the BERT text
    tower. Outputs are raw (no normalisation): the release scores raw dot products."""

    raw = True  # apply_*_head pass inputs through unnormalised
    embeds_text = True  # sentences are embedded here, not by the features' encoder
    segment_pooling = "network"  # retrieval pools each annotated segment through the video encoder, as released

    def __init__(self, model: VideoCLIP, tokenizer):
        super().__init__()
        self.model, self.tokenizer = model, tokenizer

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def input_dim(self) -> int:
        return self.model.cfg.input_dim

    @torch.no_grad()
    def video(self, feats: torch.Tensor, padding=None) -> torch.Tensor:
        """(1, T, 512) S3D features of one video -> (1, T, H) per-second embeddings."""
        x, T = feats[0], feats.shape[1]
        out, count = x.new_zeros(T, self.model.cfg.hidden), x.new_zeros(T, 1)
        for s in range(0, T, STRIDE):
            e = min(s + WINDOW, T)
            out[s:e] += self.model.video_tokens(x[None, s:e])[0]
            count[s:e] += 1
            if e == T:  # a window that reaches the end stops the loop, as released
                break
        return (out / count)[None]

    @torch.no_grad()
    def segment(self, feats: torch.Tensor) -> torch.Tensor:
        """(t, 512) features of one segment, t <= 32 -> its pooled embedding (H,), on the CPU."""
        return self.model.video(feats[None, : self.model.cfg.max_video_len].to(self.device))[0].cpu()

    def text(self, sentences: torch.Tensor) -> torch.Tensor:
        return sentences  # already embedded by `encode_text`

    @torch.no_grad()
    def encode_text(self, sentences: list[str]) -> torch.Tensor:
        """Sentences -> pooled BERT embeddings (K, H), word pieces as the released processors cut them."""
        pieces = [self.tokenizer(s, add_special_tokens=False)["input_ids"] for s in sentences]
        ids, mask = text_batch(
            pieces, self.tokenizer.cls_token_id, self.tokenizer.sep_token_id, self.tokenizer.pad_token_id
        )
        return self.model.text(ids.to(self.device), mask.to(self.device)).cpu()


TOKENIZER_HELP = (
    "bert-base-uncased's tokenizer (vocab.txt) is needed: put the folder beside the checkpoint as "
    "'tokenizer/', give it with --tokenizer DIR (or TEMPCLR_BERT_TOKENIZER=DIR), or fill the Hugging Face cache "
    "on a connected machine "
    "(python -c \"from transformers import AutoTokenizer; AutoTokenizer.from_pretrained('bert-base-uncased')\")"
)


def load_tokenizer(checkpoint, folder=None):
    """bert-base-uncased's tokenizer: `folder` (the --tokenizer a user named), a `tokenizer/`
    folder beside the checkpoint, else the Hugging Face cache (never downloaded here: a clear
    error instead)."""
    from pathlib import Path

    from transformers import BertTokenizerFast

    from tempclr_cli.core.errors import TempclrError

    if folder and not (Path(folder) / "vocab.txt").is_file():
        raise TempclrError(f"--tokenizer {folder}: no vocab.txt there; {TOKENIZER_HELP}")
    for candidate in (folder, Path(checkpoint).parent / "tokenizer"):
        if candidate and (Path(candidate) / "vocab.txt").is_file():
            return BertTokenizerFast.from_pretrained(str(candidate), local_files_only=True)
    try:
        tokenizer = BertTokenizerFast.from_pretrained("bert-base-uncased", local_files_only=True)
    except OSError:
        raise TempclrError(TOKENIZER_HELP) from None
    if len(tokenizer) < 1000:  # transformers 5 builds an empty-vocabulary tokenizer when nothing is cached
        raise TempclrError(TOKENIZER_HELP)
    return tokenizer


def load_videoclip_heads(path, tokenizer_folder=None) -> VideoCLIPHeads:
    """A released VideoCLIP / TempCLR checkpoint (or its conversion) as heads over S3D features;
    `tokenizer_folder`: see `load_tokenizer`."""
    from tempclr_cli.core.errors import TempclrError

    released = read_released(path)  # the checkpoint first: a torn or foreign file is named before the tokenizer
    tokenizer = load_tokenizer(path, tokenizer_folder)
    model = load_videoclip(path, (tokenizer.cls_token_id, tokenizer.sep_token_id), released)
    if len(tokenizer) != model.cfg.vocab:
        raise TempclrError(
            f"{path}: its word table has {model.cfg.vocab} rows but the tokenizer has {len(tokenizer)} "
            f"words; {TOKENIZER_HELP}"
        )
    return VideoCLIPHeads(model, tokenizer).eval()


def is_released(path) -> bool:
    """Whether `path` is a VideoCLIP / TempCLR release (or a conversion), not a tempclr run's checkpoint;
    told by its content (`checkpoint.identify`), which also refuses a missing or foreign file by name."""
    from tempclr_cli.core.checkpoint import identify

    return identify(path) in ("fairseq", "safetensors")


def convert(path, out) -> dict:
    """A released VideoCLIP / TempCLR checkpoint -> safetensors (weights only, dtype kept), after
    checking it loads strictly; written atomically. Returns {"out", "tensors", "parameters", "bytes"}."""
    from pathlib import Path

    from safetensors.torch import save_file

    from tempclr_cli.core import io

    load_videoclip(path)  # refuses a file that would not load
    state = {k: v.contiguous() for k, v in read_released(path).items() if not k.endswith("position_ids")}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with io.atomic_path(out) as tmp:
        save_file(state, str(tmp), metadata={"format": "tempclr.videoclip", "source": Path(path).name})
    return {
        "out": str(out),
        "tensors": len(state),
        "parameters": sum(v.numel() for v in state.values()),
        "bytes": out.stat().st_size,
    }
