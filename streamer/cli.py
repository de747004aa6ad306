"""``logprompt stream``."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the streamer's commands to the ``logprompt`` app."""
