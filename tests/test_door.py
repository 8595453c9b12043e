"""The Session is the only door, by construction: nothing outside ``store/`` reaches the store.

Static: no module of the package outside ``ehr_sandbox/store/`` imports the store package or
touches a ``store``/``_store`` attribute, except the two modules that *are* the door
(``sandbox.py`` builds the store and hands it to each ``Session``; ``session.py`` reads and
writes it under the policy). Nothing calls a private ``_write``. Dynamic: no public attribute
of a Sandbox, a Session or the objects they expose leads to a Store.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ehr_sandbox.sandbox import Sandbox
from ehr_sandbox.store import Store

PACKAGE = Path(__file__).resolve().parents[1] / "ehr_sandbox"
DOOR = {"sandbox.py", "session.py"}


def _modules() -> list[Path]:
    return [
        p
        for p in sorted(PACKAGE.rglob("*.py"))
        if p.relative_to(PACKAGE).parts[0] != "store" and str(p.relative_to(PACKAGE)) not in DOOR
    ]


def _touches(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if mod == "ehr_sandbox.store" or mod.startswith("ehr_sandbox.store."):
                found.append(f"line {node.lineno}: from {mod} import ...")
            if mod == "ehr_sandbox" and any(a.name == "store" for a in node.names):
                found.append(f"line {node.lineno}: from ehr_sandbox import store")
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "ehr_sandbox.store" or a.name.startswith("ehr_sandbox.store."):
                    found.append(f"line {node.lineno}: import {a.name}")
        elif isinstance(node, ast.Attribute) and node.attr in ("store", "_store", "_write"):
            found.append(f"line {node.lineno}: .{node.attr}")
    return found


def test_the_door_scan_sees_a_store_touch() -> None:
    """The scanner itself works (so an empty result below means something)."""
    bad = ast.parse(
        "from ehr_sandbox.store import Store\nx = sandbox.store.read('Patient', 'a')\ns._write(r)\n"
    )
    assert len(_touches(bad)) == 3


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_outside_store_touches_the_store(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert _touches(tree) == [], f"{path.relative_to(PACKAGE)} reaches the store directly"


def _public_values(obj: object) -> list[tuple[str, object]]:
    out = []
    for name in dir(obj):
        if name.startswith("_"):
            continue
        try:
            value = getattr(obj, name)
        except Exception:  # noqa: BLE001 - a property that refuses is not a route
            continue
        if not callable(value) or isinstance(value, Store):
            out.append((name, value))
    return out


def test_no_public_attribute_leads_to_the_store() -> None:
    sb = Sandbox.generate(patients=2, seed=5, years=1)
    session = sb.login("dr.patel")
    seen: set[int] = set()
    frontier: list[tuple[str, object]] = [("sandbox", sb), ("session", session)]
    for _ in range(3):  # attributes of attributes, three levels deep
        nxt = []
        for path, obj in frontier:
            if id(obj) in seen or isinstance(obj, str | int | float | bytes | type(None)):
                continue
            seen.add(id(obj))
            assert not isinstance(obj, Store), f"{path} is the store"
            nxt += [(f"{path}.{n}", v) for n, v in _public_values(obj)]
        frontier = nxt
