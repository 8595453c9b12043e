"""Test-run settings for every test path (tests/, and the package doctests)."""

from __future__ import annotations

import os
import tempfile


def pytest_configure(config: object) -> None:
    """Keep the keys of sandboxes made during the run in a throwaway folder, not the user's."""
    os.environ.setdefault("EHR_SANDBOX_KEY_DIR", tempfile.mkdtemp(prefix="ehr-sandbox-keys-"))
