"""``logprompt train`` and ``logprompt evaluate``."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the training commands to the ``logprompt`` app."""
