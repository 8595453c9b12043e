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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_notebooks_carry_their_outputs(path: Path):
    """The examples are committed executed (tools/run_notebooks.py), so a reader sees the
    tables and plots without running anything; no cell shows an error or a warning."""
    import json

    nb = json.loads(path.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(c.get("outputs") for c in code), "every code cell has its output"
    kinds = {k for c in code for o in c["outputs"] for k in o.get("data", {})}
    assert "text/html" in kinds  # tables
    for c in code:
        for o in c["outputs"]:
            assert o["output_type"] != "error"
            if o["output_type"] == "stream":
                assert o["name"] != "stderr", "".join(o["text"])


def test_the_instructor_notebook_shows_a_plot():
    import json

    nb = json.loads((EXAMPLES / "instructor_course.ipynb").read_text(encoding="utf-8"))
    images = [
        o
        for c in nb["cells"]
        if c["cell_type"] == "code"
        for o in c["outputs"]
        if "image/png" in o.get("data", {})
    ]
    assert len(images) == 1
