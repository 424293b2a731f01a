"""tempclr: temporal alignment of video (TempCLR and TCLR), as a CLI and a library.

The library face lives in `tempclr_cli.core` (no typer/rich imports there);
`tempclr_cli.commands` holds one thin CLI module per subcommand.
"""

__version__ = "0.1.0"
