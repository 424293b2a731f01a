"""Precomputed sentence embeddings as a text tower, for features whose encoder tempclr cannot run.

Features from another tool (EgoVLP, InternVideo, Omnivore + a text model, ...) compare with
sentences embedded by that tool's own text tower; tempclr has none of those. The user embeds
the sentences with it once and hands tempclr the vectors in one of these files
(`SENTENCE_FILES`, by suffix):

    .json   {"sentence": [float, ...], ...}              one object, sentence -> vector
    .npz    sentences (N,) str, embeddings (N, D) float   np.savez(f, sentences=..., embeddings=...)
    .npy    (N, D) float, with a .txt of the same stem    line k of the .txt is the sentence of row k

A sentence is looked up as written, surrounding white space ignored. `SentenceEmbeddings`
has the text side of a loaded encoder (`name`, `pretrained`, `seed`, `device`, `dim`,
`encode_text`), so it stands wherever a text tower does; `text_encoder` picks between it and
the registered tower of the encoder recorded with the features.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tempclr_cli.core import io
from tempclr_cli.core.data.features import EncoderSpec
from tempclr_cli.core.errors import TempclrError

HINT = (
    "--sentence-embeddings takes .json {sentence: [floats]}, .npz (sentences, embeddings) or .npy with a .txt beside it"
)


def _from_json(path: Path) -> tuple[list[str], list]:
    try:
        table = json.loads(io.read_text(path, "sentence embeddings file", "a .json file"))
    except ValueError as e:
        raise TempclrError(f"{path}: not JSON ({e}); {HINT}") from None
    if not isinstance(table, dict):
        raise TempclrError(f"{path}: expected one JSON object {{sentence: [floats]}}, got {type(table).__name__}")
    return list(table), list(table.values())


def _from_npz(path: Path) -> tuple[list[str], np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = {"sentences", "embeddings"} - set(z.files)
            if missing:
                raise TempclrError(
                    f"{path}: no array named {', '.join(sorted(missing))} (it holds {', '.join(z.files)})"
                )
            sentences, vectors = z["sentences"], z["embeddings"]
    except (OSError, ValueError, EOFError) as e:  # ValueError: pickled objects, which are never loaded
        raise TempclrError(f"{path}: not a readable .npz without pickles ({e})") from None
    if sentences.dtype.kind != "U":
        raise TempclrError(f"{path}: 'sentences' must hold strings, got {sentences.dtype}")
    if sentences.ndim != 1 or len(sentences) != len(vectors):
        raise TempclrError(f"{path}: {sentences.size} sentences but {len(vectors)} embeddings; row k is sentence k's")
    return sentences.tolist(), vectors


def _from_npy(path: Path) -> tuple[list[str], np.ndarray]:
    txt = path.with_suffix(".txt")
    lines = io.read_text(txt, f"the sentences of {path.name} (one a line)", "a text file").splitlines()
    try:
        vectors = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise TempclrError(f"{path}: not a readable .npy without pickles ({e})") from None
    if len(vectors) != len(lines):
        raise TempclrError(
            f"{path}: {len(vectors)} vectors but {txt} has {len(lines)} lines; line k is row k's sentence"
        )
    return lines, vectors


SENTENCE_FILES: dict[str, Callable[[Path], tuple[list[str], object]]] = {
    ".json": _from_json,
    ".npz": _from_npz,
    ".npy": _from_npy,
}


def _rows(path: Path, sentences: list[str], vectors: list) -> np.ndarray:
    """JSON's lists as one (N, D) array; a list that is not D numbers is named by its sentence."""
    for sentence, v in zip(sentences, vectors):
        if (
            not isinstance(v, list)
            or not v
            or not all(isinstance(x, (int, float)) and x is not True and x is not False for x in v)
        ):
            raise TempclrError(f"{path}: the vector of {sentence!r} is not a list of numbers")
        if len(v) != len(vectors[0]):
            raise TempclrError(
                f"{path}: the vector of {sentence!r} has {len(v)} numbers, the first one "
                f"{len(vectors[0])}: every sentence needs a vector of one dimension"
            )
    return np.array(vectors, dtype=np.float64)


def _matrix(path: Path, sentences: list[str], vectors) -> np.ndarray:
    """(N, D) float32 from what a reader gave, refusing ragged rows, other than numbers and NaN
    (the error names the sentence)."""
    if not sentences:
        raise TempclrError(f"{path}: holds no sentences")
    vectors = _rows(path, sentences, vectors) if isinstance(vectors, list) else vectors
    if vectors.ndim != 2 or vectors.dtype.kind not in "fiu":
        raise TempclrError(f"{path}: expected (sentences, dim) numbers, got shape {vectors.shape} of {vectors.dtype}")
    finite = np.isfinite(vectors).all(axis=1)
    if not finite.all():
        raise TempclrError(f"{path}: the vector of {sentences[int(np.argmin(finite))]!r} holds NaN or inf")
    return vectors.astype(np.float32)


class SentenceEmbeddings:
    """A text tower whose `encode_text` looks sentences up in a file (module docstring)."""

    seed, device = 0, "cpu"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        read = SENTENCE_FILES.get(self.path.suffix.lower())
        if read is None:
            raise TempclrError(f"{self.path}: unknown suffix; {HINT}")
        if not self.path.exists():
            raise TempclrError(f"{self.path}: sentence embeddings file not found")
        sentences, vectors = read(self.path)
        self.vectors = _matrix(self.path, sentences, vectors)  # (N, D)
        self.rows: dict[str, int] = {}
        for k, sentence in enumerate(sentences):
            key = sentence.strip()
            if key in self.rows and not np.array_equal(self.vectors[self.rows[key]], self.vectors[k]):
                raise TempclrError(f"{self.path}: {key!r} appears twice with different vectors")
            self.rows.setdefault(key, k)
        self.name, self.pretrained = "sentence-embeddings", str(self.path)

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def encode_text(self, sentences: list[str]):
        """(N, D) float32 tensor: each sentence's vector as stored (not normalised, as towers give them)."""
        import torch

        missing = [s for s in sentences if s.strip() not in self.rows]
        if missing:
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            raise TempclrError(
                f"{self.path}: no vector for {', '.join(repr(s) for s in missing[:3])}{more} "
                f"({len(self.rows)} sentences in the file): embed them with the features' text tower "
                "and add them"
            )
        return torch.from_numpy(self.vectors[[self.rows[s.strip()] for s in sentences]])


def text_encoder(spec: EncoderSpec | None, sentence_embeddings: str | Path | None, device, features="the features"):
    """A function sentences -> unit embeddings (N, D) on the CPU: from `sentence_embeddings`
    when given, else from the registered text tower of `spec` (the encoder that made
    `features`), which must exist; the error says which file to give otherwise."""
    import torch.nn.functional as F

    from tempclr_cli.core.encode.encoders import sentence_encoder
    from tempclr_cli.core.encode.registry import find_encoder

    if sentence_embeddings is not None:
        tower = SentenceEmbeddings(sentence_embeddings)
        return lambda sentences: F.normalize(tower.encode_text(sentences), dim=-1)
    if spec is None:
        raise TempclrError(
            f"{features}: no index.jsonl names the encoder that made them; give --sentence-embeddings "
            "FILE (the sentences embedded by that encoder's text tower)"
        )
    try:
        has_text = find_encoder(spec.model).text
    except TempclrError:
        has_text = False
    if not has_text:
        raise TempclrError(
            f"{features}: made by {spec.model}, and tempclr has no text tower for it: give "
            f"--sentence-embeddings FILE, the sentences embedded by {spec.model}'s own text tower ({HINT})"
        )
    return sentence_encoder(spec, device)


def same_dim(text_dim: int, features_dim: int, source: str, features) -> None:
    """Sentences and clips must live in one space: refuse two dimensions, naming both sides."""
    if text_dim != features_dim:
        raise TempclrError(
            f"{source} gives sentence vectors of dim {text_dim} but {features} have dim {features_dim}: "
            "sentences must be embedded by the text tower of the encoder that made the features"
        )
