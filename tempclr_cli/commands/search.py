"""`tempclr search FEATURES QUERY`: the moments of a feature store that a sentence describes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from tempclr_cli.commands._common import (
    Device,
    Json,
    Quiet,
    SentenceEmbeddings,
    Verbose,
    command,
    log,
    stdout_is_terminal,
)
from tempclr_cli.core.errors import TempclrError


@command
def search(
    features: Annotated[
        Path, typer.Argument(help="Features folder (from `tempclr extract` or `tempclr index`) or one video's .npy.")
    ],
    query: Annotated[Optional[str], typer.Argument(help="What happens in the moment, in words.")] = None,
    queries: Annotated[
        Optional[Path],
        typer.Option(help="A text file of queries, one a line, answered with one load of the store (JSON lines out)."),
    ] = None,
    top_k: Annotated[int, typer.Option("--top-k", help="Moments per query.", min=1)] = 10,
    sentence_embeddings: SentenceEmbeddings = None,
    json_: Json = False,
    device: Device = "auto",
    verbose: Verbose = False,
    quiet: Quiet = False,
) -> None:
    """Find the moments a sentence describes, across a store's videos.

    The query is embedded with the text tower of the encoder that made the features (as
    index.jsonl records it) and compared with every clip. A moment is the run of clips
    around a peak that stay within a quarter of its height over the video's median
    score; moments rank by their best clip's cosine. The store is packed once into one float16 matrix
    beside its index (index.search.*) and repacked when the index changes.

    Output: a table on a terminal, else (or with --json) a JSON list of {video, start,
    end, score}, best first; with --queries, one JSON line {query, moments} a query.

    Examples:

    \b
      tempclr search feats/ "crack the eggs into a bowl" --top-k 5
      tempclr search feats/ --queries questions.txt > answers.jsonl
      tempclr search ego4d/ "open the fridge" --sentence-embeddings q.json
    """
    from tempclr_cli.core.eval.search import Searcher

    asked = _queries(query, queries)
    searcher = Searcher(features, sentence_embeddings, device, log=lambda m: log(m, quiet))
    log(f"{len(searcher.store.videos)} videos, {len(searcher.store.matrix)} clips", quiet)
    results = searcher.search(asked, top_k)
    table = stdout_is_terminal() and not json_
    for text, moments in zip(asked, results):
        if table:
            _table(text, moments)
        elif queries is None:
            print(json.dumps([m.to_json() for m in moments]))
        else:
            print(json.dumps({"query": text, "moments": [m.to_json() for m in moments]}), flush=True)


def _queries(query: Optional[str], path: Optional[Path]) -> list[str]:
    """The one query, or the lines of --queries (blank lines skipped)."""
    if (query is None) == (path is None):
        raise TempclrError("give a QUERY or --queries FILE (one of the two)")
    if path is None:
        return [query]
    from tempclr_cli.core.io import read_text

    found = [line.strip() for line in read_text(path, "queries file", "a text file, one query a line").splitlines()]
    found = [q for q in found if q]
    if not found:
        raise TempclrError(f"--queries {path}: holds no query (one a line)")
    return found


def _table(query: str, moments) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(query))
    for name, justify in (("#", "right"), ("video", "left"), ("start", "right"), ("end", "right"), ("score", "right")):
        table.add_column(name, justify=justify, overflow="fold")
    for k, m in enumerate(moments, 1):
        table.add_row(str(k), escape(m.video), f"{m.start:.1f}", f"{m.end:.1f}", f"{m.score:.3f}")
    Console().print(table)
