"""Free-text moment search: the `search` command's core.

A query is embedded with the text tower that matches the store (or looked up in a file of
precomputed sentence embeddings) and scored against every clip of the store, exactly: the
cosine of the query and each clip, read from the store's packed float16 matrix
(`data.packed`) a block of clips at a time. Moments are read off the scores:

1. seeds: the best-scoring clips of the whole store, best first;
2. a seed not inside a moment yet, and above its video's median score, starts one: the run
   of its video's clips around it that stay within a quarter of its height over that median
   (`EXTENT`), across dips of at most `GAP` clips. (At half height, on synthetic videos,
   moments took in the neighbouring steps that resemble the query: mean IoU 0.89 against 1.0
   for the best moment of the right video);
3. a run that reaches into a moment found before ends where that moment begins: it is a lower
   moment of its own;
4. moments rank by their peak clip's score, recomputed in float32 from the stored vector
   (the block products are float16: within 1e-4 of it); ties keep store order.

It sits beside paragraph retrieval: both rank a store's videos for sentences, and neither
aligns a step list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from tempclr_cli.core.data.packed import Packed, pack
from tempclr_cli.core.errors import TempclrError

EXTENT = 0.25  # a moment holds the clips above peak - EXTENT * (peak - its video's median score)
GAP = 1  # dips below that of at most this many clips stay inside the moment
BLOCK = 1 << 16  # clips per block of the product: 64 MiB of float16 at dim 512
MV_QUERIES = 8  # up to this many queries, one float16 matrix-vector product each (no float32 copy of the block);
#                 more, one float32 copy of the block and a matrix product (measured: benchmarks/search.py)
BATCH = 32  # queries scored per pass over the store: (BATCH, clips) float32 scores in memory


@dataclass(frozen=True)
class Moment:
    video: str
    start: float  # s
    end: float  # s
    score: float  # the cosine of the query and the moment's best clip

    def to_json(self) -> dict:
        return asdict(self)


def clip_scores(matrix: np.ndarray, queries, block: int = BLOCK):
    """(N, D) float16 unit clips, (Q, D) float32 unit queries -> (Q, N) float32 cosines, a
    block of `block` clips at a time, so a memory-mapped store is never copied whole."""
    import torch

    out = torch.empty(len(queries), len(matrix))
    half = queries.half()
    for lo in range(0, len(matrix), block):
        clips = torch.from_numpy(matrix[lo : lo + block])  # (C, D) float16, still the mapped pages
        if len(queries) <= MV_QUERIES:
            for q in range(len(queries)):  # accumulates in float32; the result is rounded to float16
                out[q, lo : lo + len(clips)] = torch.mv(clips, half[q])
        else:
            out[:, lo : lo + len(clips)] = (clips.float() @ queries.T).T
    return out.numpy()


def moment_runs(scores: np.ndarray, offsets: np.ndarray, top_k: int) -> list[tuple[int, int, int]]:
    """(N,) scores of a store's clips -> up to `top_k` moments as (first row, last row, peak row),
    best peak first (module docstring, steps 1-3); fewer when the store has fewer peaks."""
    seeds = max(64, 8 * top_k)
    while True:
        found = _runs(scores, offsets, _best(scores, seeds))
        if len(found) >= top_k or seeds >= len(scores):
            return found[:top_k]
        seeds *= 4  # the best clips all fell into fewer moments: look further down


def _best(scores: np.ndarray, k: int) -> np.ndarray:
    """The rows of the k best scores, best first (ties: lower row first)."""
    k = min(k, len(scores))
    rows = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    return rows[np.lexsort((rows, -scores[rows]))]


def _runs(scores: np.ndarray, offsets: np.ndarray, seeds: np.ndarray) -> list[tuple[int, int, int]]:
    videos = np.searchsorted(offsets, seeds, side="right") - 1
    moments: dict[int, list[tuple[int, int, int]]] = {}  # video -> its moments (first, last, peak), disjoint
    medians: dict[int, float] = {}
    for seed, v in zip(seeds.tolist(), videos.tolist()):
        mine = moments.setdefault(v, [])
        if any(lo <= seed <= hi for lo, hi, _ in mine):
            continue
        a, b = int(offsets[v]), int(offsets[v + 1])
        if v not in medians:
            medians[v] = float(np.median(scores[a:b]))
        if scores[seed] <= medians[v]:  # no peak: at or below what its video scores half the time
            continue
        lo, hi = _extent(scores[a:b], seed - a, scores[seed] - EXTENT * (scores[seed] - medians[v]))
        lo, hi = lo + a, hi + a
        for m_lo, m_hi, _ in mine:  # a lower run beside a moment ends where the moment begins
            lo, hi = (max(lo, m_hi + 1), hi) if m_hi < seed else (lo, min(hi, m_lo - 1))
        mine.append((lo, hi, seed))
    found = [m for mine in moments.values() for m in mine]
    return sorted(found, key=lambda m: (-scores[m[2]], m[2]))


def _extent(scores: np.ndarray, peak: int, floor: float) -> tuple[int, int]:
    """(T,) one video's scores -> the first and last clip of the run around `peak` that stays at
    or above `floor`, across dips of at most `GAP` clips."""
    above = np.flatnonzero(scores >= floor)  # holds the peak
    cuts = np.flatnonzero(np.diff(above) > GAP + 1)  # a dip too long to cross between above[k] and above[k + 1]
    k = int(np.searchsorted(above, peak))
    first = int(cuts[cuts < k].max(initial=-1)) + 1
    last = int(cuts[cuts >= k].min(initial=len(above) - 1))
    return int(above[first]), int(above[last])


class Searcher:
    """A store packed and mapped once, and the text tower that matches it: many queries, one load.

    `features`: a folder from `tempclr extract` / `tempclr index`, or one `.npy`;
    `sentence_embeddings`: a file of precomputed query vectors (`encode.sentence_embeddings`)
    instead of the recorded encoder's text tower."""

    def __init__(
        self,
        features: str | Path,
        sentence_embeddings: str | Path | None = None,
        device: str = "auto",
        clip_seconds: float = 1.0,
        log: Callable[[str], None] = lambda _: None,
    ):
        from tempclr_cli.core.encode.sentence_embeddings import text_encoder
        from tempclr_cli.core.runtime import resolve_device

        self.features, self.sentence_embeddings = features, sentence_embeddings
        self.store: Packed = pack(features, clip_seconds, log)
        self.encode = text_encoder(self.store.spec, sentence_embeddings, resolve_device(device), features)

    def search(self, queries: list[str], top_k: int = 10) -> list[list[Moment]]:
        """The `top_k` best moments of each query, best first."""
        from tempclr_cli.core.encode.sentence_embeddings import same_dim

        if top_k < 1:
            raise TempclrError(f"--top-k {top_k}: must be at least 1")
        blank = [k for k, q in enumerate(queries) if not q.strip()]
        if blank:
            raise TempclrError(f"query {blank[0] + 1} is empty: a query is a sentence describing the moment")
        emb = self.encode(queries).float()  # (Q, D) unit
        source = self.sentence_embeddings or f"the text tower of {self.store.spec.model}"
        same_dim(emb.shape[1], self.store.dim, str(source), self.features)
        out = []
        for lo in range(0, len(queries), BATCH):
            for q, scores in zip(emb[lo : lo + BATCH], clip_scores(self.store.matrix, emb[lo : lo + BATCH])):
                out.append(self._moments(scores, q.numpy(), top_k))
        return out

    def _moments(self, scores: np.ndarray, query: np.ndarray, top_k: int) -> list[Moment]:
        store = self.store
        found = []
        for lo, hi, peak in moment_runs(scores, store.offsets, top_k):
            exact = float(store.matrix[peak].astype(np.float32) @ query)
            video = store.videos[int(store.video_of(np.array([peak]))[0])]
            found.append(Moment(video, float(store.times[lo, 0]), float(store.times[hi, 1]), round(exact, 6)))
        return sorted(found, key=lambda m: -m.score)  # stable: float16 near-ties keep their order


def search(
    features: str | Path,
    queries: list[str],
    top_k: int = 10,
    sentence_embeddings: str | Path | None = None,
    device: str = "auto",
) -> list[list[Moment]]:
    """One-shot `Searcher(features, sentence_embeddings, device).search(queries, top_k)`."""
    return Searcher(features, sentence_embeddings, device).search(queries, top_k)
