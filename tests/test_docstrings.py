"""Every public function, class and method carries a docstring with a runnable example.

The house style asks for a numpydoc docstring with an Examples section (a doctest, ``>>>``)
on every public function. Much older code predates the rule, so this is a ratchet: the items
still lacking an example are listed, one ``module:qualname`` a line and sorted, in
``tests/docstring_debt.txt``. The test fails when

* a public item has no example and is not listed (new code must carry one), or
* a listed item now has an example, or no longer exists (the list only shrinks: delete the
  line when you pay the debt).

What counts as a public item (found by reading the source, nothing is imported):

* a module-level function or class whose name does not start with ``_``, in a module whose
  dotted path has no ``_``-prefixed part (``__init__`` aside); module-level ``if``/``try``
  blocks are looked into, function bodies are not;
* a method of a public class (and a public class nested in one), dunder and ``_private``
  methods aside. Properties count as methods: they are part of the API a student reads, and
  a one-line ``>>>`` shows what they hold.
* not counted: ``@overload`` stubs (the implementation carries the docs), and members a
  library generates or only calls itself: pydantic validators/serializers
  (``@field_validator``, ``@model_validator``, ...). Generated dataclass/pydantic members
  (``__init__``, ``__eq__``, fields) are not in the source, so they never appear.

The examples themselves run in CI: ``pyproject.toml`` adds ``--doctest-modules`` and lists
``ehr_sandbox`` and ``synthetic`` in ``testpaths``, so a plain ``pytest`` collects them.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ehr_sandbox", "synthetic")
DEBT = Path(__file__).resolve().parent / "docstring_debt.txt"

# Decorators whose functions a library calls (or which are typing-only stubs): not public API.
_SKIP_DECORATORS = frozenset(
    {
        "overload",
        "field_validator",
        "model_validator",
        "validator",
        "root_validator",
        "field_serializer",
        "model_serializer",
        "computed_field",
    }
)

_Def = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def _decorator_names(node: _Def) -> set[str]:
    """The last dotted part of each decorator (``@typing.overload`` -> ``overload``)."""
    names = set()
    for dec in node.decorator_list:
        target = dec.func if isinstance(dec, ast.Call) else dec
        if isinstance(target, ast.Attribute):
            names.add(target.attr)
        elif isinstance(target, ast.Name):
            names.add(target.id)
    return names


def _has_example(node: _Def) -> bool:
    doc = ast.get_docstring(node, clean=False)
    return doc is not None and ">>>" in doc


def _module_body(stmts: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Module-level statements, looking into ``if``/``try`` blocks (not into functions)."""
    for stmt in stmts:
        if isinstance(stmt, ast.If):
            yield from _module_body(stmt.body)
            yield from _module_body(stmt.orelse)
        elif isinstance(stmt, ast.Try):
            for block in (stmt.body, stmt.orelse, stmt.finalbody):
                yield from _module_body(block)
            for handler in stmt.handlers:
                yield from _module_body(handler.body)
        else:
            yield stmt


def public_items(source: str) -> Iterator[tuple[str, bool]]:
    """``(qualname, has_example)`` for each public item of one module's source.

    >>> src = "def f():\\n    '''>>> f()'''\\nclass C:\\n    def m(self): pass\\n"
    >>> list(public_items(src))
    [('f', True), ('C', False), ('C.m', False)]
    """

    def walk(stmts: Iterator[ast.stmt], prefix: str) -> Iterator[tuple[str, bool]]:
        for node in stmts:
            if not isinstance(node, _Def) or node.name.startswith("_"):
                continue
            if _decorator_names(node) & _SKIP_DECORATORS:
                continue
            qualname = prefix + node.name
            yield qualname, _has_example(node)
            if isinstance(node, ast.ClassDef):
                yield from walk(iter(node.body), qualname + ".")

    yield from walk(_module_body(ast.parse(source).body), "")


def _module_name(path: Path) -> str | None:
    """Dotted name of a public module, or None for a private one (``_x.py``, ``_pkg/``)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    if any(part.startswith("_") for part in parts):
        return None
    return ".".join(parts)


@cache
def scan() -> dict[str, bool]:
    """Every public item of the packages, ``module:qualname`` -> has an example (read once)."""
    found: dict[str, bool] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = _module_name(path)
            if module is None:
                continue
            for qualname, ok in public_items(path.read_text(encoding="utf-8")):
                found[f"{module}:{qualname}"] = ok
    return found


def _debt() -> list[str]:
    lines = DEBT.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


# --- the detector itself -------------------------------------------------------------------


def test_the_scanner_finds_public_items_and_their_examples() -> None:
    src = '''
def shown():
    """Doc.

    >>> shown()
    """

def plain():
    """Doc without an example."""

def _hidden():
    pass

class Thing:
    """A thing.

    >>> Thing()
    """

    def __init__(self):
        pass

    def method(self):
        pass

    async def amethod(self):
        """>>> 1"""

    @property
    def size(self):
        """The size."""

    @typing.overload
    def over(self, x: int) -> int: ...

    @field_validator("x")
    def check(cls, v):
        return v

    def _private(self):
        pass

    class Inner:
        pass

class _Private:
    def method(self):
        pass

if True:
    def conditional():
        pass

def outer():
    def nested():
        pass
'''
    assert dict(public_items(src)) == {
        "shown": True,
        "plain": False,
        "Thing": True,
        "Thing.method": False,
        "Thing.amethod": True,
        "Thing.size": False,
        "Thing.Inner": False,
        "conditional": False,
        "outer": False,
    }


def test_private_modules_are_skipped() -> None:
    assert _module_name(ROOT / "ehr_sandbox" / "session.py") == "ehr_sandbox.session"
    assert _module_name(ROOT / "ehr_sandbox" / "store" / "__init__.py") == "ehr_sandbox.store"
    assert _module_name(ROOT / "ehr_sandbox" / "_x.py") is None
    assert _module_name(ROOT / "ehr_sandbox" / "_p" / "y.py") is None


# --- the ratchet ---------------------------------------------------------------------------


def test_the_debt_file_is_sorted_and_unique() -> None:
    debt = _debt()
    assert debt == sorted(set(debt)), "keep tests/docstring_debt.txt sorted, one item a line"


def test_new_public_items_have_a_runnable_example() -> None:
    listed = set(_debt())
    missing = sorted(name for name, ok in scan().items() if not ok and name not in listed)
    assert missing == [], (
        "these public items need a docstring with a runnable example (>>>), numpydoc style "
        "(Parameters, Returns, Raises, Examples):\n" + "\n".join(missing)
    )


def test_the_debt_list_only_shrinks() -> None:
    found = scan()
    paid = sorted(name for name in _debt() if found.get(name) is True)
    gone = sorted(name for name in _debt() if name not in found)
    assert (paid, gone) == ([], []), (
        "delete these lines from tests/docstring_debt.txt "
        f"(now documented: {paid}; no longer exist: {gone})"
    )
