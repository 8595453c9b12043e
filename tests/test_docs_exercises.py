"""The Python blocks of docs/exercises.md run as written (the tutorial is a real exercise)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "exercises.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_the_page_has_the_tutorial():
    assert len(BLOCKS) >= 3 and any("Exercise(" in b for b in BLOCKS)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_docs_block_runs(index):
    namespace: dict = {}
    exec(compile(BLOCKS[index], f"docs/exercises.md[{index}]", "exec"), namespace)
    assert len(namespace) > 1  # the block ran to its end and defined what it shows
