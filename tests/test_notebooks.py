"""Every example notebook executes top to bottom (each asserts its own outcomes in a cell)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))


def _kernel_or_skip() -> None:
    nbclient = pytest.importorskip(
        "nbclient", reason="nbclient is not installed (pip install ehr-sandbox[notebook])"
    )
    del nbclient
    from jupyter_client.kernelspec import KernelSpecManager

    if "python3" not in KernelSpecManager().find_kernel_specs():
        pytest.skip("no 'python3' Jupyter kernel is installed (pip install ipykernel)")


def test_the_walkthrough_notebook_exists():
    assert (EXAMPLES / "student_walkthrough.ipynb") in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _kernel_or_skip()
    # The kernel runs in a scratch directory; let it import the checkout even when the project
    # is not installed (CI installs it, a fresh clone may not have).
    root = str(EXAMPLES.parent)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    )
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    # Run in a scratch directory so notebooks that write files leave nothing behind.
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors
