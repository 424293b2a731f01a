"""When does each step happen? Ordered step localisation in one video.

Steps (sentences) and clips are compared by cosine similarity; the clips are split
into one contiguous segment per step, in the steps' order, minimising the total
cost `1 - similarity` (`segment.segment`). With background on, a clip may belong to no
step at a fixed drop cost (Drop-DTW), so long stretches that match nothing stay
unassigned. The automatic drop cost is the Otsu threshold (1-D two-means) of each
clip's best step cost: clips split into "close to some step" and "close to none".
Drop-DTW's own choice, a fixed quantile of all costs, depends on the number of
steps and recovered boundaries less reliably in our tests; pass a number to fix it.
"""

from __future__ import annotations

import csv
import math
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tempclr_cli.core.errors import TempclrError
from tempclr_cli.core.io import read_text
from tempclr_cli.core.media import subtitles


@dataclass
class StepTiming:
    index: int  # 1-based, as a person counts steps
    text: str
    start: float  # seconds
    end: float
    score: float  # mean cosine similarity of the step's clips


@dataclass
class Alignment:
    """Where each step happens in one video: `steps` (index, text, start, end, score) and
    the outputs people and programs read (JSON, CSV, SRT, WebVTT, an HTML review page)."""

    video: str  # what was aligned: a video file or a .npy
    duration: float
    steps: list[StepTiming]
    similarity: np.ndarray = field(repr=False)  # (K, T)
    clip_starts: list[float] = field(repr=False, default_factory=list)
    clip_ends: list[float] = field(repr=False, default_factory=list)
    source: str = ""  # the video file behind it (for .npy: its index.jsonl row's source), if known

    separation: float | None = None  # `order_separation`: does the text tell the steps apart? (None: not measured)
    time_separation: float | None = None  # `time_separation`: does the video, shifted in time, fit worse?

    @property
    def separated(self) -> bool:
        return self.warning is None

    @property
    def warning(self) -> str | None:
        """Why these times may follow the steps' order rather than the video (None: no reason to think so).
        Every output a person opens carries it: stderr, JSON, CSV, the review page, WebVTT, the plot."""
        reasons = [
            f"{what} fit as well ({name} {value:.2f} < {SEPARATION_FLOOR})"
            for what, name, value in (
                ("shuffled step lists", "separation", self.separation),
                ("the clips shifted in time", "time separation", self.time_separation),
            )
            if value is not None and value < SEPARATION_FLOOR
        ]
        if not reasons:
            return None
        return (
            f"the text hardly tells the steps apart: {' and '.join(reasons)}, so the times follow the steps' "
            "order, not the video"
        )

    def to_dict(self) -> dict:
        return {
            "video": self.video,
            "duration": self.duration,
            "separation": self.separation,
            "time_separation": self.time_separation,
            "warning": self.warning,
            "steps": [asdict(s) for s in self.steps],
        }

    def render(self, fmt: str, page: str | None = None, embed_video: bool = False) -> str:
        """The text of one file format of `FORMATS` (`page`, `embed_video`: see to_html)."""
        from tempclr_cli.core.align.formats import FORMATS

        return FORMATS[fmt](self, page, embed_video)

    def to_html(self, page: str | None = None, embed_video: bool = False) -> str:
        """A self-contained review page (`review.review_html`); `page`: where it will be saved."""
        from tempclr_cli.core.align.review import review_html

        return review_html(self, page, embed_video)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["index", "start", "end", "score", "text", "separation", "time_separation"])
        writer.writerows(
            [s.index, s.start, s.end, s.score, s.text, self.separation, self.time_separation] for s in self.steps
        )
        return buf.getvalue()

    def to_srt(self) -> str:
        return subtitles.srt(self._cues())

    def to_vtt(self) -> str:
        return subtitles.vtt(self._cues(), note=self.warning)

    def _cues(self) -> list[tuple[float, float, str]]:
        return [(s.start, s.end, s.text) for s in self.steps]


def read_steps(source: str, stdin_text: str | None = None) -> list[str]:
    """One step a line; blank lines and `#` comments are ignored. `-` means stdin."""
    if source == "-":
        text = stdin_text or ""
    else:
        text = read_text(
            source, "steps file", "a text file with one step a line (or - for stdin)", "; save the steps as UTF-8"
        )
    steps = [line.strip() for line in text.splitlines()]
    steps = [s for s in steps if s and not s.startswith("#")]
    if not steps:
        raise TempclrError(f"{source}: no steps (one step a line; blank lines and # comments are ignored)")
    return steps


def read_timed_steps(path: str, video_id: str | None = None) -> list[tuple[float, float, str]]:
    """Steps with times, (start, end, text) in order, from a tempclr align JSON, an SRT or
    WebVTT file, or YouCookII-style annotations (one video's entry, or a database of them,
    picked by `video_id` when it holds more than one)."""
    text = read_text(path, "reference steps file", "a JSON, SRT or VTT file of timed steps")
    if not text.lstrip().startswith(("{", "[")):
        cues = subtitles.parse(text)
        if not cues:
            raise TempclrError(f"{path}: no timed cues (expected SRT or WebVTT, or a JSON of steps)")
        return cues
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise TempclrError(f"{path}: invalid JSON ({e.msg} at line {e.lineno})") from None
    if isinstance(data, dict) and isinstance(data.get("database"), dict):
        db = data["database"]
        if video_id not in db and len(db) != 1:
            raise TempclrError(f"{path}: {len(db)} videos in the database and none is {video_id!r}")
        data = db.get(video_id) or next(iter(db.values()))
    if isinstance(data, dict) and "annotations" in data:  # YouCookII: the one parser of data.annotations
        from tempclr_cli.core.data.annotations import read_entry

        return [(s.start, s.end, s.text) for s in read_entry(Path(path), video_id or "-", data).steps]
    try:
        return [(float(s["start"]), float(s["end"]), str(s["text"])) for s in data["steps"]]
    except (KeyError, TypeError, IndexError, ValueError):
        raise TempclrError(
            f"{path}: expected tempclr align JSON ({{'steps': [{{'start', 'end', 'text'}}]}}) or "
            "YouCookII annotations ({'annotations': [{'segment', 'sentence'}]})"
        ) from None


def auto_drop_cost(cost) -> float:
    """Otsu threshold of the clip-wise minimum cost. cost [shape=(K, T)], a tensor or a `segment.CostRows`."""
    import torch

    from tempclr_cli.core.align.segment import CostRows

    if isinstance(cost, CostRows):
        K = cost.shape[0]
        clip_min = torch.stack(
            [cost.rows(k, min(K, k + STEP_BLOCK)).min(dim=0).values for k in range(0, K, STEP_BLOCK)]
        ).min(0)
    else:
        clip_min = cost.min(dim=0)
    best = torch.sort(clip_min.values).values.double()
    n = best.numel()
    if n < 2:
        return float(best[0])
    csum = best.cumsum(0)
    i = torch.arange(1, n, dtype=best.dtype)  # size of the low group
    mean_lo = csum[:-1] / i
    mean_hi = (csum[-1] - csum[:-1]) / (n - i)
    between = i * (n - i) * (mean_hi - mean_lo) ** 2  # maximal where within-group spread is minimal
    k = int(between.argmax())
    return float((mean_lo[k] + mean_hi[k]) / 2)


def align(
    step_emb,
    clip_emb,
    steps: list[str],
    clip_starts: list[float],
    clip_ends: list[float],
    background: bool = True,
    drop_cost: float | None = None,
    video: str = "",
    duration: float | None = None,
    source: str = "",
) -> Alignment:
    """Locate each step. step_emb [shape=(K, D)], clip_emb [shape=(T, D)], any scale.

    `drop_cost` (with background) defaults to `auto_drop_cost`; `duration` (the video's
    length, default: the last clip's end) is what the result reports.
    """
    import torch

    from tempclr_cli.core.align.segment import CostRows, segment

    # float32 similarities (features are stored in float16); the segmentation sums them in float64, row by row
    text = torch.nn.functional.normalize(torch.as_tensor(step_emb).float(), dim=-1)
    clips = torch.nn.functional.normalize(torch.as_tensor(clip_emb).float(), dim=-1)
    K, T = text.shape[0], clips.shape[0]
    if K > T:
        raise TempclrError(
            f"{K} steps but the video has only {T} clips: each step needs at least one clip "
            f"(sample more: --fps {max(2, math.ceil(K / T))} on the video, or extract with it)"
        )
    whole = K * T <= ALIGN_CELLS
    sim = text @ clips.T if whole else None  # (K, T)
    cost = 1 - sim if whole else CostRows((K, T), lambda k0, k1: 1 - text[k0:k1] @ clips.T)
    if background and drop_cost is None:
        drop_cost = auto_drop_cost(cost)
    seg = segment(cost, drop_cost=drop_cost if background else None)
    if whole:
        return alignment_of(seg, sim, steps, clip_starts, clip_ends, video, duration, source)
    scores = [float((text[k] @ clips[s : e + 1].T).mean()) for k, (s, e) in enumerate(zip(seg.starts, seg.ends))]
    return alignment_of(
        seg, _column_means(text, clips), steps, clip_starts, clip_ends, video, duration, source, scores=scores
    )


ALIGN_CELLS = 2**25  # steps x clips above which the similarities are never held whole (128 MB in float32)
PREVIEW_COLUMNS = 4096  # the heatmap's columns past ALIGN_CELLS: means of consecutive clips
STEP_BLOCK = 256  # steps whose similarities are computed at once past ALIGN_CELLS


def _column_means(text, clips):
    """The (K, at most PREVIEW_COLUMNS) similarity heatmap of a long video with many steps, each
    column the mean over consecutive clips, computed a block of steps at a time."""
    import torch

    T = clips.shape[0]
    group = math.ceil(T / PREVIEW_COLUMNS)
    ids = torch.arange(T) // group
    counts = torch.bincount(ids).to(clips.dtype)
    blocks = [
        torch.zeros(len(b), len(counts), dtype=clips.dtype).index_add_(1, ids, b @ clips.T) / counts
        for b in text.split(STEP_BLOCK)
    ]
    return torch.cat(blocks)


SEPARATION_CELLS = 20_000_000  # steps x clips above which separation is not measured (its DPs cost that much each)
SEPARATION_FLOOR = 0.9  # below it, the given order or time fits no better than 10% of the alternatives
SEPARATION_TIE = 1e-5  # fits closer than this are equal: similarities are float32, and a BLAS may round identical
# columns differently (30 identical clips gave separation 0.6 on an AMD EPYC with an exact comparison)


def _fit(sim, order=None, shift: int = 0) -> float:
    """How well the steps fit the video: segment as `align` does (no background) and average each
    step's mean similarity over its clips. `order`: the steps' order; `shift`: the clips rotated
    by that many places. sim [shape=(K, T)] float64."""
    import torch

    from tempclr_cli.core.align.segment import segment

    rows = sim if order is None else sim[order]
    rows = torch.roll(rows, shift, dims=1) if shift else rows
    seg = segment(1 - rows)
    K = rows.shape[0]
    return float(sum(rows[k, s : e + 1].mean() for k, (s, e) in enumerate(zip(seg.starts, seg.ends))) / K)


def _share_worse(sim, variants: list[dict]) -> float:
    """The share of `variants` (keyword arguments of `_fit`) that fit worse than the given steps
    and clips, by more than SEPARATION_TIE: ties count against."""
    true = _fit(sim)
    return round(sum(_fit(sim, **v) < true - SEPARATION_TIE for v in variants) / max(1, len(variants)), 4)


def _tries(K: int, T: int, tries: int) -> int | None:
    """How many alternatives to segment (each is a whole DP): fewer for long videos with many
    steps, None past SEPARATION_CELLS."""
    return None if K * T > SEPARATION_CELLS else max(2, min(tries, SEPARATION_CELLS // (K * T)))


def order_separation(sim, tries: int = 20, seed: int = 0) -> float | None:
    """Does the text tell the steps apart? The share of shuffled step orders that fit the video
    worse than the given order. 1: the given order beats every shuffle; near 0: shuffles fit
    as well (every step's similarity row is the same, or the text is noise to the encoder: the
    times then follow the order alone). With few steps there are few orders (3 steps: 5), so
    `time_separation` is measured beside it. sim [shape=(K, T)]; with one step, or one clip per
    step, there is nothing to test (1); past SEPARATION_CELLS (5,000 steps over 4,000 clips) it
    is not measured (None)."""
    import itertools

    import torch

    K, T = sim.shape
    if K < 2 or T <= K:
        return 1.0
    if (tries := _tries(K, T, tries)) is None:
        return None
    if math.factorial(K) - 1 <= tries:
        orders = [torch.tensor(p) for p in itertools.permutations(range(K))][1:]
    else:
        gen = torch.Generator().manual_seed(seed)
        orders = [
            o for o in (torch.randperm(K, generator=gen) for _ in range(tries)) if not torch.equal(o, torch.arange(K))
        ]
    return _share_worse(torch.as_tensor(np.asarray(sim, dtype=np.float64)), [{"order": o} for o in orders])


def time_separation(sim, tries: int = 20, seed: int = 0) -> float | None:
    """Does the video fit the steps better than itself shifted in time? The share of circular
    shifts of the clips (by a quarter to three quarters of the video) whose best segmentation
    fits worse. A shift keeps what makes neighbouring clips alike, so text that is noise to the
    encoder fits a shifted video as well as the real one (about half the shifts fit worse),
    whatever the number of steps; text that finds its steps loses them when the video moves.
    sim [shape=(K, T)]; 1 where there is nothing to test, None past SEPARATION_CELLS."""
    import torch

    K, T = sim.shape
    if K < 2 or T <= K:
        return 1.0
    if (tries := _tries(K, T, tries)) is None:
        return None
    shifts = range(max(1, round(T / 4)), min(T - 1, round(3 * T / 4)) + 1)
    gen = torch.Generator().manual_seed(seed)
    picks = (
        shifts
        if len(shifts) <= tries
        else sorted(int(shifts[i]) for i in torch.randperm(len(shifts), generator=gen)[:tries])
    )
    return _share_worse(torch.as_tensor(np.asarray(sim, dtype=np.float64)), [{"shift": int(r)} for r in picks])


def alignment_of(
    seg,
    sim,
    steps: list[str],
    clip_starts: list[float],
    clip_ends: list[float],
    video: str = "",
    duration: float | None = None,
    source: str = "",
    scores: list[float] | None = None,
) -> Alignment:
    """The Alignment of a segmentation (`segment.segment`): each step's span in seconds, scored
    by its mean similarity. sim [shape=(K, T)] is also the review page's heatmap. A caller
    whose heatmap is coarser than the clips (past ALIGN_CELLS) gives the `scores`; the
    separation is not measured then (it is not past SEPARATION_CELLS either). Separation is
    measured over the stretch the steps cover: footage before the first and after the last
    (an intro, an outro, background) would otherwise be folded into the first and last steps
    and let a shifted video fit as well as the real one."""
    separations = (None, None)
    if scores is None:
        stretch = sim[:, seg.starts[0] : seg.ends[-1] + 1]
        stretch = stretch if stretch.shape[1] > stretch.shape[0] else sim  # nothing to shift within K clips
        separations = (order_separation(stretch), time_separation(stretch))
    scores = scores or [float(sim[k, s : e + 1].mean()) for k, (s, e) in enumerate(zip(seg.starts, seg.ends))]
    timings = [
        StepTiming(
            index=k + 1, text=steps[k], start=float(clip_starts[s]), end=float(clip_ends[e]), score=round(scores[k], 4)
        )
        for k, (s, e) in enumerate(zip(seg.starts, seg.ends))
    ]
    return Alignment(
        video,
        float(duration or clip_ends[-1]),
        timings,
        sim.numpy(),
        list(clip_starts),
        list(clip_ends),
        source,
        *separations,
    )
