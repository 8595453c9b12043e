"""Validate a SQL on FHIR v2 ViewDefinition and turn it into a compiled plan.

The plan is a tree of :class:`SelectNode` mirroring the view's ``select`` structure, with every
FHIRPath expression parsed (for the DuckDB compiler) and compiled to closures (for the
reference evaluator) exactly once. Every problem raises :class:`ViewDefinitionError` naming the
JSON path inside the view and what was expected.

>>> plan = compile_view({"resource": "Patient", "select": [{"column": [{"name": "id", "path": "id"}]}]})
>>> plan.resource, plan.column_names
('Patient', ['id'])
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ehr_sandbox.errors import ViewDefinitionError
from ehr_sandbox.views.fhirpath_compile import CompileError, Fn, compile_node
from ehr_sandbox.views.fhirpath_parser import FhirPathSyntaxError, Node, parse

__all__ = ["Column", "SelectNode", "ViewPlan", "compile_view"]

_COLUMN_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_SELECT_KEYS = {"column", "select", "forEach", "forEachOrNull", "repeat", "unionAll", "description"}
_COLUMN_KEYS = {"name", "path", "collection", "type", "description", "tag"}


@dataclass
class Column:
    """One output column: its name, FHIRPath, whether it is a collection and its declared type.

    >>> Column("id", "id", ("member", "id"), lambda f, e: f, None, False, "id").name
    'id'
    """

    name: str
    path: str
    ast: Node
    fn: Fn
    static_type: str | None
    collection: bool
    type: str | None
    where: str = ""


@dataclass
class SelectNode:
    """A ``select`` element: columns, nested selects, a unionAll and an optional iteration.

    ``mode`` is None, "forEach", "forEachOrNull" or "repeat"; ``iterate`` holds the parsed and
    compiled iteration expressions (several for repeat).

    >>> SelectNode(where="select[0]").column_names
    []
    """

    where: str
    columns: list[Column] = field(default_factory=list)
    selects: list[SelectNode] = field(default_factory=list)
    union: list[SelectNode] = field(default_factory=list)
    mode: str | None = None
    iterate: list[tuple[str, Node, Fn]] = field(default_factory=list)
    column_names: list[str] = field(default_factory=list)


@dataclass
class ViewPlan:
    """A validated, compiled ViewDefinition.

    >>> compile_view({"resource": "Patient", "select": [{"column": [{"name": "a", "path": "id"}]}]}).name
    'view'
    """

    resource: str
    root: SelectNode
    where: list[tuple[str, Node, Fn]]
    constants: dict[str, list[Any]]
    column_names: list[str]
    name: str
    view: dict[str, Any]


_NOTHING = object()


def _fail(where: str, expected: str, found: Any = _NOTHING, why: str = "") -> ViewDefinitionError:
    msg = f"{where}: expected {expected}"
    if found is not _NOTHING:
        shown = found if not isinstance(found, str) or len(found) < 80 else found[:77] + "..."
        msg += f" (found {shown!r})"
    if why:
        msg += f": {why}"
    return ViewDefinitionError(msg)


class _Builder:
    def __init__(self, constants: dict[str, list[Any]]) -> None:
        self.constants = constants

    def expression(self, where: str, text: Any) -> tuple[Node, Fn, str | None]:
        if not isinstance(text, str) or not text.strip():
            raise _fail(where, "a FHIRPath expression (a non-empty string)", text)
        try:
            ast = parse(text)
            fn, static_type = compile_node(ast, self.constants)
        except (FhirPathSyntaxError, CompileError) as exc:
            raise _fail(where, "a valid FHIRPath expression", text, str(exc)) from None
        return ast, fn, static_type

    def select(self, where: str, spec: Any) -> SelectNode:
        if not isinstance(spec, dict):
            raise _fail(where, "an object with column/select/forEach/unionAll", spec)
        unknown = set(spec) - _SELECT_KEYS
        if unknown:
            raise _fail(where, f"only the keys {sorted(_SELECT_KEYS)}", sorted(unknown)[0])
        node = SelectNode(where=where)
        modes = [k for k in ("forEach", "forEachOrNull", "repeat") if k in spec]
        if len(modes) > 1:
            raise _fail(where, "at most one of forEach, forEachOrNull, repeat", modes)
        if modes:
            node.mode = modes[0]
            if node.mode == "repeat":
                paths = spec["repeat"]
                if not isinstance(paths, list) or not paths:
                    raise _fail(
                        f"{where}.repeat", "a non-empty list of FHIRPath expressions", paths
                    )
                for i, p in enumerate(paths):
                    ast, fn, _ = self.expression(f"{where}.repeat[{i}]", p)
                    node.iterate.append((p, ast, fn))
            else:
                ast, fn, _ = self.expression(f"{where}.{node.mode}", spec[node.mode])
                node.iterate.append((spec[node.mode], ast, fn))
        columns = spec.get("column", [])
        if not isinstance(columns, list):
            raise _fail(f"{where}.column", "a list of columns", columns)
        for i, col in enumerate(columns):
            node.columns.append(self.column(f"{where}.column[{i}]", col))
        selects = spec.get("select", [])
        if not isinstance(selects, list):
            raise _fail(f"{where}.select", "a list of select objects", selects)
        node.selects = [self.select(f"{where}.select[{i}]", s) for i, s in enumerate(selects)]
        union = spec.get("unionAll", [])
        if not isinstance(union, list):
            raise _fail(f"{where}.unionAll", "a list of select objects", union)
        node.union = [self.select(f"{where}.unionAll[{i}]", s) for i, s in enumerate(union)]
        if node.union:
            first = node.union[0].column_names
            for branch in node.union[1:]:
                if branch.column_names != first:
                    raise _fail(
                        branch.where,
                        f"the same columns in the same order as the first unionAll branch {first}",
                        branch.column_names,
                    )
        names = [c.name for c in node.columns]
        for s in node.selects:
            names.extend(s.column_names)
        if node.union:
            names.extend(node.union[0].column_names)
        node.column_names = names
        if not names and not node.selects and not node.union:
            raise _fail(where, "at least one column, select or unionAll", spec)
        return node

    def column(self, where: str, spec: Any) -> Column:
        if not isinstance(spec, dict):
            raise _fail(where, "an object with name and path", spec)
        unknown = set(spec) - _COLUMN_KEYS
        if unknown:
            raise _fail(where, f"only the keys {sorted(_COLUMN_KEYS)}", sorted(unknown)[0])
        name = spec.get("name")
        if not isinstance(name, str) or not _COLUMN_NAME.match(name):
            raise _fail(
                f"{where}.name",
                "a column name of letters, digits and _ starting with a letter",
                name,
            )
        collection = spec.get("collection", False)
        if not isinstance(collection, bool):
            raise _fail(f"{where}.collection", "true or false", collection)
        ctype = spec.get("type")
        if ctype is not None and not isinstance(ctype, str):
            raise _fail(f"{where}.type", "a FHIR type name", ctype)
        ast, fn, static_type = self.expression(f"{where}.path", spec.get("path"))
        return Column(name, spec["path"], ast, fn, static_type, collection, ctype, where)


def _constants(view: dict[str, Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    raw = view.get("constant", [])
    if not isinstance(raw, list):
        raise _fail("constant", "a list of {name, value[x]}", raw)
    for i, c in enumerate(raw):
        if not isinstance(c, dict) or not isinstance(c.get("name"), str):
            raise _fail(f"constant[{i}].name", "a constant name", c)
        values = [k for k in c if k.startswith("value") and len(k) > 5]
        if len(values) != 1:
            raise _fail(
                f"constant[{i}]", f"exactly one value[x] for constant {c['name']!r}", sorted(c)
            )
        if c["name"] in out:
            raise _fail(f"constant[{i}].name", "a unique constant name", c["name"])
        out[c["name"]] = [c[values[0]]]
    return out


def compile_view(view: Any) -> ViewPlan:
    """Validate ``view`` and compile it; raises ViewDefinitionError naming the bad path.

    >>> compile_view({"select": []})
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ViewDefinitionError: resource: expected a FHIR resource type name such as 'Patient' (found None)
    """
    if not isinstance(view, dict):
        raise _fail("view", "a ViewDefinition JSON object", type(view).__name__)
    resource = view.get("resource")
    if not isinstance(resource, str) or not resource[:1].isupper():
        raise _fail("resource", "a FHIR resource type name such as 'Patient'", resource)
    selects = view.get("select")
    if not isinstance(selects, list) or not selects:
        raise _fail("select", "a non-empty list of select objects", selects)
    builder = _Builder(_constants(view))
    root = SelectNode(where="view")
    root.selects = [builder.select(f"select[{i}]", s) for i, s in enumerate(selects)]
    names: list[str] = []
    for s in root.selects:
        names.extend(s.column_names)
    root.column_names = names
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise _fail("select", "unique column names", n)
        seen.add(n)
    wheres = view.get("where", [])
    if not isinstance(wheres, list):
        raise _fail("where", "a list of {path}", wheres)
    compiled_where: list[tuple[str, Node, Fn]] = []
    for i, w in enumerate(wheres):
        if not isinstance(w, dict):
            raise _fail(f"where[{i}]", "an object with a path", w)
        ast, fn, _ = builder.expression(f"where[{i}].path", w.get("path"))
        compiled_where.append((w["path"], ast, fn))
    name = view.get("name") if isinstance(view.get("name"), str) else "view"
    return ViewPlan(resource, root, compiled_where, builder.constants, names, name, view)
