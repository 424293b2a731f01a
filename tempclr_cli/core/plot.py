"""Figures (matplotlib, optional: `pip install 'tempclr[plot]'`), written atomically in the format
their suffix names (PNG, JPEG, SVG or PDF)."""

from __future__ import annotations

from pathlib import Path

from tempclr_cli.core import io
from tempclr_cli.core.errors import TempclrError


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise TempclrError("plots need matplotlib: pip install 'tempclr[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


FIGURE_FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".svg": "svg", ".pdf": "pdf"}


def figure_format(path: str | Path) -> str:
    """The format a figure's file name asks for; any other suffix is refused (before any work is
    done, by the command), never written as PNG bytes under a name that says otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in FIGURE_FORMATS:
        raise TempclrError(
            f"{path}: a figure is written as {', '.join(FIGURE_FORMATS)} (by its suffix), "
            f"not {suffix or 'a file without a suffix'}"
        )
    return FIGURE_FORMATS[suffix]


def _save(fig, path: str | Path, dpi: int) -> Path:
    """Write `fig` atomically in the format `path`'s suffix names, and close it."""
    plt = _pyplot()
    path = Path(path)
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, format=figure_format(path), dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path


def _short(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def alignment_plot(result, path: str | Path, truth: list[tuple[float, float]] | None = None) -> Path:
    """Step x time similarity heatmap, each step's predicted segment drawn on its row (red),
    boundaries dashed; with `truth` (annotated (start, end) per step), the annotated segment
    beside it (white, just above), so a reader sees at once where the two disagree."""
    plt = _pyplot()
    sim = result.similarity
    K, T = sim.shape
    fig, ax = plt.subplots(figsize=(min(16, max(6, T / 8)), 1.2 + 0.55 * K))
    image = ax.imshow(
        sim,
        aspect="auto",
        cmap="viridis",
        interpolation="nearest",
        extent=[result.clip_starts[0], result.clip_ends[-1], K + 0.5, 0.5],
    )
    for step in result.steps:
        ax.plot(
            [step.start, step.end],
            [step.index + 0.12] * 2,
            color="red",
            lw=4,
            solid_capstyle="butt",
            label="predicted" if step.index == 1 else None,
        )
        for t in (step.start, step.end):
            ax.axvline(t, color="white", ls="--", lw=0.7, alpha=0.6)
    for k, (start, end) in enumerate(truth or [], start=1):
        ax.plot(
            [start, end],
            [k - 0.18] * 2,
            color="white",
            lw=4,
            solid_capstyle="butt",
            label="annotated" if k == 1 else None,
        )
    if truth:
        ax.legend(
            loc="upper right",
            bbox_to_anchor=(1.0, -0.16),
            ncol=2,
            fontsize=8,
            facecolor="0.3",
            labelcolor="white",
            framealpha=1,
        )
    ax.set_yticks(range(1, K + 1), [f"{s.index}. {_short(s.text)}" for s in result.steps])
    ax.set_xlabel("time (s)")
    ax.set_title(Path(result.video).name or "alignment")
    if result.warning:  # the plot is what a person opens: the warning goes where they look first
        import textwrap

        fig.suptitle(
            "\n".join(textwrap.wrap("Warning: " + result.warning, 100)), color="darkred", fontsize=9, x=0.01, ha="left"
        )
    fig.colorbar(image, ax=ax, label="cosine similarity", pad=0.01)
    fig.tight_layout()
    return _save(fig, path, 120)


def confusion_plot(classes: list[str], confusion, path: str | Path, title: str = "confusion") -> Path:
    """Row-normalised confusion matrix (rows: true class, columns: predicted class)."""
    import numpy as np

    plt = _pyplot()
    counts = np.asarray(confusion, dtype=float)
    rates = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    n = len(classes)
    fig, ax = plt.subplots(figsize=(min(20, 2 + 0.35 * n), min(20, 1.5 + 0.35 * n)))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), [_short(c, 20) for c in classes], rotation=90)
    ax.set_yticks(range(n), [_short(c, 20) for c in classes])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="share of the class's test videos", pad=0.01)
    return _save(fig, path, 110)


def curve_plot(xs: list, series: dict[str, list[float]], path: str | Path, xlabel: str, ylabel: str) -> Path:
    """One line per series over xs (e.g. R@k against clips per video)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, ys in series.items():
        ax.plot(xs, ys, marker="o", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path, 110)
