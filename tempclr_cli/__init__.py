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

_API = {"Aligner": "tempclr_cli.core.align.aligner", "align": "tempclr_cli.core.align.aligner",
        "Alignment": "tempclr_cli.core.align.steps"}


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
