"""House rules a new maintainer can rely on: no module imports another's underscore names."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ehr_sandbox", "synthetic", "bench", "tools", "tests")


def _private_imports(source: str) -> list[tuple[int, str, str]]:
    """Every ``from X import _name`` (dunder names and ``__future__`` aside)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append((node.lineno, node.module or ".", alias.name))
    return found


def test_the_detector_fires() -> None:
    assert _private_imports(
        "from a.b import _hidden, shown\nfrom __future__ import annotations"
    ) == [(1, "a.b", "_hidden")]
    assert _private_imports("from a import __version__\nimport a._b") == []


def test_no_module_imports_another_modules_underscore_names() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: from {module} import {name}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, module, name in _private_imports(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
