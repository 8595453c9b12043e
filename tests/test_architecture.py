"""The layout shows the architecture, and imports keep to it (docs/contracts.md "Layers"):
``synthetic`` never imports ``ehr_sandbox``; the pure layers of the EHR (store, search,
bundles, validation, crypto, audit, access, references, errors) never import the Session or
anything built on it, not even inside a function; and no two modules import each other at
module level (no import cycles). Pure AST: nothing is imported to check."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ehr_sandbox", "synthetic")

PURE = (
    "ehr_sandbox.store",
    "ehr_sandbox.search",
    "ehr_sandbox.bundles",
    "ehr_sandbox.validation",
    "ehr_sandbox.crypto",
    "ehr_sandbox.audit",
    "ehr_sandbox.access",
    "ehr_sandbox.references",
    "ehr_sandbox.errors",
)
"""Layers below the Session (the only door): they know nothing of who uses them."""

ABOVE_THE_DOOR = (
    "ehr_sandbox.session",
    "ehr_sandbox.sandbox",
    "ehr_sandbox.search_set",
    "ehr_sandbox.records",
    "ehr_sandbox.workflows",
    "ehr_sandbox.reports",
    "ehr_sandbox.views",
    "ehr_sandbox.network",
    "ehr_sandbox.deid",
    "ehr_sandbox.exercises",
    "ehr_sandbox.display",
    "ehr_sandbox.cli",
    "ehr_sandbox.server",
)


def _in(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


MODULES = _modules()


def imports_of(path: Path, *, module_level: bool) -> set[str]:
    """The project modules ``path`` imports (at module level only, or anywhere)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if module_level else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in MODULES else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if _in(m, PACKAGES)}


def test_the_checks_see_what_they_look_for() -> None:
    assert _in("ehr_sandbox.search.query", PURE) and not _in("ehr_sandbox.search_set", PURE)
    assert len(MODULES) > 300
    assert "ehr_sandbox.access.roles" in imports_of(
        MODULES["ehr_sandbox.session"], module_level=False
    )


def test_the_generator_never_imports_the_ehr() -> None:
    bad = {
        m: sorted(t for t in imports_of(p, module_level=False) if _in(t, ("ehr_sandbox",)))
        for m, p in MODULES.items()
        if _in(m, ("synthetic",))
    }
    assert not {m: t for m, t in bad.items() if t}


def test_pure_layers_never_reach_above_the_door() -> None:
    bad = {
        m: sorted(t for t in imports_of(p, module_level=False) if _in(t, ABOVE_THE_DOOR))
        for m, p in MODULES.items()
        if _in(m, PURE)
    }
    assert not {m: t for m, t in bad.items() if t}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Import cycles of ``graph`` (module -> modules it imports), each as a path."""
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                cycles.append([*path[path.index(t) :], t])
            elif t not in state:
                visit(t, [*path, t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    return cycles


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_at_module_level() -> None:
    graph = {
        m: {t for t in imports_of(p, module_level=True) if t in MODULES and t != m}
        for m, p in MODULES.items()
    }
    cycles = find_cycles(graph)
    assert not cycles, cycles[:5]
