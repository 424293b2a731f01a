"""Paragraph retrieval with sentences from a file of precomputed embeddings (`retrieve
--sentence-embeddings`), for features whose encoder tempclr has no text tower for.

`paragraph_retrieval.retrieve_paragraphs` reads the text tower from the store's encoder;
this is the same protocol (`prepare`, `paragraph_retrieval`) with the text tower of
`encode.sentence_embeddings.heads_and_text_encoder`. Once `retrieve_paragraphs` takes a
`sentence_embeddings` argument itself, this module goes.
"""

from __future__ import annotations

from pathlib import Path

from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.progress import Progress, silent


def retrieve_paragraphs_with_sentences(features, annotations, sentence_embeddings: str | Path, fmt: str = "youcook2",
                                       split: str = "validation", checkpoint: str | None = None,
                                       measures: list[str] = ("capavg", "dtw"), task: str = "paragraph-video",
                                       background: str = "removed", scorer: str = "corrected",
                                       similarity: str = "dot", strict: bool = False,
                                       progress: Progress = silent) -> dict:
    """`retrieve_paragraphs`' result, the captions embedded by `sentence_embeddings`."""
    from tempclr_cli.core.data.annotations import read_annotations
    from tempclr_cli.core.data.features import FeatureStore
    from tempclr_cli.core.encode.sentence_embeddings import heads_and_text_encoder, same_dim
    from tempclr_cli.core.eval.paragraph_retrieval import paragraph_retrieval, prepare

    store = FeatureStore(features)
    videos = [v for v in read_annotations(annotations, fmt) if split == "all" or v.subset == split]
    missing = [v.id for v in videos if v.steps and v.id not in store]
    if missing and strict:
        raise TempclrError(f"{len(missing)} annotated videos have no features in {features}: "
                           f"{', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}")
    heads, encode = heads_and_text_encoder(checkpoint, store, "cpu", sentence_embeddings)
    text, units, ids = prepare(videos, store, encode, heads, background, similarity, progress)
    same_dim(text.x.shape[-1], units.x.shape[-1], str(sentence_embeddings), features)  # before any product
    results = paragraph_retrieval(text, units, list(measures), task, background, scorer, progress)
    return {"videos": len(ids), "task": task, "background": background, "scorer": scorer, "similarity": similarity,
            "missing_features": missing, "results": results}

