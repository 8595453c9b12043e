"""The reference evaluator: run a compiled ViewDefinition over resources in Python.

It is the oracle for the DuckDB fast path and the engine for small data. Rows are built as
tuples (cross products of the select tree) and turned into dicts once at the end.

>>> rows = evaluate(
...     {"resource": "Patient", "select": [{"column": [{"name": "id", "path": "id"}]},
...      {"forEach": "name", "column": [{"name": "family", "path": "family"}]}]},
...     [{"resourceType": "Patient", "id": "p1", "name": [{"family": "A"}, {"family": "B"}]}],
... )
>>> rows
[{'id': 'p1', 'family': 'A'}, {'id': 'p1', 'family': 'B'}]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ehr_sandbox.errors import ViewDefinitionError
from ehr_sandbox.views.definition import Column, SelectNode, ViewPlan, compile_view
from ehr_sandbox.views.fhirpath_compile import Env, EvaluationError

__all__ = ["evaluate", "evaluate_plan", "iter_rows"]


def _column_value(col: Column, focus: list[Any], env: Env) -> Any:
    try:
        result = col.fn(focus, env)
    except EvaluationError as exc:
        raise ViewDefinitionError(
            f"{col.where}.path: could not evaluate {col.path!r}: {exc}"
        ) from None
    if col.collection:
        return list(result)
    if len(result) > 1:
        raise ViewDefinitionError(
            f"{col.where}: expected at most one value for column {col.name!r} "
            f'(found {len(result)}); set "collection": true to keep them all'
        )
    return result[0] if result else None


def _iterate(node: SelectNode, focus: list[Any], env: Env) -> list[Any]:
    if node.mode == "repeat":
        out: list[Any] = []

        def visit(items: list[Any]) -> None:
            for item in items:
                for _, _, fn in node.iterate:
                    for child in fn([item], env):
                        out.append(child)
                        visit([child])

        visit(focus)
        return out
    return node.iterate[0][2](focus, env)


def _node_rows(node: SelectNode, focus: list[Any], env: Env) -> list[tuple[Any, ...]]:
    if node.mode is None:
        return _body_rows(node, focus, env)
    items = _iterate(node, focus, env)
    saved = env.row_index
    rows: list[tuple[Any, ...]] = []
    for i, item in enumerate(items):
        env.row_index = i
        rows.extend(_body_rows(node, [item], env))
    if not items and node.mode == "forEachOrNull":
        env.row_index = 0
        rows = _body_rows(node, [], env) or [(None,) * len(node.column_names)]
    env.row_index = saved
    return rows


def _body_rows(node: SelectNode, focus: list[Any], env: Env) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = [tuple(_column_value(c, focus, env) for c in node.columns)]
    for child in node.selects:
        child_rows = _node_rows(child, focus, env)
        if not child_rows:
            return []
        rows = [r + c for r in rows for c in child_rows]
    if node.union:
        union_rows: list[tuple[Any, ...]] = []
        for branch in node.union:
            union_rows.extend(_node_rows(branch, focus, env))
        rows = [r + u for r in rows for u in union_rows]
    return rows


def _passes(plan: ViewPlan, resource: dict[str, Any], env: Env) -> bool:
    for i, (path, _, fn) in enumerate(plan.where):
        try:
            result = fn([resource], env)
        except EvaluationError as exc:
            raise ViewDefinitionError(
                f"where[{i}].path: could not evaluate {path!r}: {exc}"
            ) from None
        if not result:
            return False
        if len(result) > 1 or not isinstance(result[0], bool):
            raise ViewDefinitionError(
                f"where[{i}].path: expected a boolean expression (found {path!r} giving "
                f"{type(result[0]).__name__} values for {resource.get('resourceType')}/{resource.get('id')})"
            )
        if result[0] is not True:
            return False
    return True


def iter_rows(plan: ViewPlan, resources: Iterable[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
    """Yield the view's rows as tuples in ``plan.column_names`` order.

    >>> plan = compile_view({"resource": "Patient", "select": [{"column": [{"name": "id", "path": "id"}]}]})
    >>> list(iter_rows(plan, [{"resourceType": "Patient", "id": "a"}, {"resourceType": "Observation", "id": "b"}]))
    [('a',)]
    """
    env = Env(plan.constants)
    rtype = plan.resource
    for resource in resources:
        if not isinstance(resource, dict) or resource.get("resourceType") != rtype:
            continue
        if plan.where and not _passes(plan, resource, env):
            continue
        env.row_index = 0
        yield from _body_rows(plan.root, [resource], env)


def evaluate_plan(plan: ViewPlan, resources: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of a compiled plan as dicts (keys in column order).

    >>> plan = compile_view({"resource": "Patient", "select": [{"column": [{"name": "n", "path": "name.count()"}]}]})
    >>> evaluate_plan(plan, [{"resourceType": "Patient", "name": [{}, {}]}])
    [{'n': 2}]
    """
    names = plan.column_names
    return [dict(zip(names, row, strict=True)) for row in iter_rows(plan, resources)]


def evaluate(view: dict[str, Any], resources: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run a ViewDefinition over FHIR resources (dicts) with the Python reference evaluator.

    Resources of other types are skipped; an invalid view raises ViewDefinitionError.

    >>> evaluate({"resource": "Patient", "select": [{"column": [{"name": "g", "path": "gender"}]}]},
    ...          [{"resourceType": "Patient", "gender": "female"}])
    [{'g': 'female'}]
    """
    return evaluate_plan(compile_view(view), resources)
