"""CLI commands: privacy_cmds (filled in by the feature that owns it)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to app."""
