"""Which encoder: the one a user names on the command line, or the one recorded with features.

`EncoderSpec` (kept with the feature store, `data.features`) is the (model, pretrained,
seed) triple that made a feature store or that a TempCLR heads checkpoint was trained
over; its text tower must embed the sentences compared with those features. The
encoders themselves are registered in `registry`.
"""

from __future__ import annotations

from pathlib import Path

from tempclr_cli.core.data.features import EncoderSpec
from tempclr_cli.core.encode.registry import load_encoder, text_encoder_of
from tempclr_cli.core.errors import TempclrError

__all__ = [
    "DEFAULT",
    "EncoderSpec",
    "choose_encoder",
    "encode_sentences",
    "heads_and_sentence_encoder",
    "load_encoder",
    "load_spec",
    "sentence_encoder",
]


def load_spec(spec: EncoderSpec, device):
    """The encoder a spec names, with its weights and seed, from the registry."""
    return load_encoder(spec.model, spec.pretrained, None, device, spec.seed)


DEFAULT = EncoderSpec("ViT-B-32", "openai")


def choose_encoder(
    model: str | None, pretrained: str | None, seed: int, made_by: EncoderSpec | None = None
) -> EncoderSpec:
    """The encoder to embed with: what the user named, else what made the features or trained
    the heads (`made_by`), else ViT-B-32 with OpenAI weights. `made_by`'s seed rebuilds its
    random towers; `seed` applies only when nothing is recorded."""
    base = made_by or EncoderSpec(DEFAULT.model, DEFAULT.pretrained, seed)
    return EncoderSpec(model or base.model, pretrained or base.pretrained, base.seed)


def sentence_encoder(spec: EncoderSpec, device):
    """A function sentences -> unit embeddings (N, D) on the CPU, from the text tower of
    `spec`; the tower loads once, on first use. Random towers ('none') are drawn from
    `spec.seed`, the seed that made the features."""
    import torch
    import torch.nn.functional as F

    text_encoder_of(spec.model)  # fails now, by name, for an encoder without a text tower
    loaded = {}

    def encode(sentences: list[str]) -> torch.Tensor:
        if "tower" not in loaded:
            loaded["tower"] = load_spec(spec, device)
        tower = loaded["tower"]
        chunks = [tower.encode_text(sentences[k : k + 256]).cpu() for k in range(0, len(sentences), 256)]
        return F.normalize(torch.cat(chunks), dim=-1)

    return encode


def encode_sentences(sentences: list[str], spec: EncoderSpec, cache: Path | None, device):
    """Unit sentence embeddings (N, D) from the text tower of `spec`, cached in `cache`."""
    from tempclr_cli.core.checkpoint import load_checkpoint, save_checkpoint

    key = {"model": spec.model, "pretrained": spec.pretrained, "seed": spec.seed, "sentences": sentences}
    if cache and cache.exists():
        stored = load_checkpoint(cache)
        if all(stored.get(k) == v for k, v in key.items()):
            return stored["embeddings"]
    emb = sentence_encoder(spec, device)(sentences)
    if cache:
        save_checkpoint(cache, {**key, "embeddings": emb})
    return emb


def heads_and_sentence_encoder(checkpoint, store, device="auto", sentence_embeddings=None, tokenizer=None):
    """Trained heads (None without a checkpoint) on `device`, and a function sentences -> unit
    embeddings from the text tower that matches them: the heads' own (VideoCLIP), the one the
    heads were trained over, else the one that made the features of `store`; or the vectors of
    `sentence_embeddings` (a file, `sentence_embeddings.SentenceEmbeddings`), for an encoder
    tempclr has no text tower for, which the error then asks for. `tokenizer`: VideoCLIP's BERT
    tokenizer folder (`models.videoclip.load_tokenizer`)."""
    from tempclr_cli.core.encode.sentence_embeddings import text_encoder
    from tempclr_cli.core.models.heads import load_heads
    from tempclr_cli.core.runtime import resolve_device

    device = resolve_device(device)
    heads, spec = None, None
    if checkpoint:
        heads, meta = load_heads(checkpoint, device, tokenizer=tokenizer)
        if heads.embeds_text:  # VideoCLIP / TempCLR's released network: its own BERT
            if sentence_embeddings is not None:
                raise TempclrError(
                    f"--checkpoint {checkpoint} embeds sentences with its own text tower; "
                    "--sentence-embeddings applies to heads trained over an encoder's features"
                )
            return heads, heads.encode_text
        spec = EncoderSpec.from_meta(meta)
    if sentence_embeddings is not None:
        return heads, text_encoder(None, sentence_embeddings, device)
    return heads, text_encoder(spec or store.encoder(), None, device, store.folder)
