"""tempclr: temporal alignment of video (TempCLR and TCLR), as a CLI and a library.

The library face lives in `tempclr_cli.core` (no typer/rich imports there);
`tempclr_cli.commands` holds one thin CLI module per subcommand. The alignment API is
here too, imported on first use:

    import tempclr_cli
    aligner = tempclr_cli.Aligner(model="ViT-B-32", pretrained="openai")   # loads once
    result = aligner.align("cooking.mp4", ["crack the eggs", "whisk", "fry"])
    result.steps[0].start, result.to_srt(), result.to_html("review.html")
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    """The public names of `tempclr_cli.core` (its one table, `core._PUBLIC`), imported on first use."""
    import importlib

    public = importlib.import_module("tempclr_cli.core")._PUBLIC  # not `from tempclr_cli import core`: asks this hook
    if name in public:  # from its module, not from core: `tempclr_cli.align` is the function, core.align a package
        return getattr(importlib.import_module(public[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
