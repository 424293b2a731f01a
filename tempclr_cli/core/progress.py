"""How long-running core functions report progress without knowing about terminals.

A `Progress` is a factory: `progress(description, total)` opens one task (total None
when unknown) and returns its `advance(n)` function. The CLI passes one backed by
rich's progress bars; library callers pass nothing and get `silent`.
"""

from __future__ import annotations

from collections.abc import Callable

Advance = Callable[[int], None]
Progress = Callable[[str, "int | None"], Advance]


def silent(description: str, total: int | None = None) -> Advance:
    return lambda n=1: None
