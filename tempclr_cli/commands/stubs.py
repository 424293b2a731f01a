"""Subcommands whose issues are still open: they say so and exit 1."""

from __future__ import annotations

from tempclr_cli.commands._common import command, not_implemented


@command
def localize() -> None:
    """Zero-shot action-step localisation on COIN / CrossTask layouts."""
    not_implemented("tempclr localize")
