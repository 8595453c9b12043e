"""Shared fixtures: where ../shared lives, and a skip when it is absent."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Keys of sandboxes made during the run go to a throwaway folder, not the user's key folder
# (the package doctests are collected after tests/, so this covers them too).
os.environ.setdefault("EHR_SANDBOX_KEY_DIR", tempfile.mkdtemp(prefix="ehr-sandbox-keys-"))

SHARED = Path(__file__).resolve().parents[2] / "shared"


def shared_path(*parts: str) -> Path:
    """Path inside ../shared, or skip the calling test with a clear reason when it is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(
            f"needs ../shared/{'/'.join(parts)} (the project's shared data folder), which is absent"
        )
    return p
