"""Run a ViewDefinition with the DuckDB fast path or the Python reference evaluator.

``engine="auto"`` compiles to SQL when it can and silently falls back to the reference
evaluator for views outside the compiled subset (both give the same rows); ``"duckdb"`` insists
on SQL (a ViewDefinitionError says what could not be compiled); ``"python"`` always uses the
reference evaluator. DuckDB only uses its built-in JSON functions: nothing is ever installed.

>>> view = {"resource": "Patient", "select": [{"column": [{"name": "id", "path": "id"}]}]}
>>> run(view, [{"resourceType": "Patient", "id": "p1"}], engine="duckdb")
[{'id': 'p1'}]
"""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa

from ehr_sandbox.errors import ViewDefinitionError
from ehr_sandbox.views.definition import Column, SelectNode, ViewPlan, compile_view
from ehr_sandbox.views.reference import iter_rows
from ehr_sandbox.views.source import ResourceSource, dumps_resource
from ehr_sandbox.views.sql_compile import NotCompilable, compile_sql, sql_string

__all__ = ["ENGINES", "compiles", "run", "run_arrow", "view_sql"]

ENGINES = ("auto", "duckdb", "python")


def _plan(view: dict[str, Any] | ViewPlan) -> ViewPlan:
    return view if isinstance(view, ViewPlan) else compile_view(view)


def view_sql(view: dict[str, Any] | ViewPlan, source_relation: str = "resources") -> str:
    """The DuckDB SQL for a view (raises NotCompilable when it has none).

    >>> sql = view_sql({"resource": "Patient", "select": [{"column": [{"name": "g", "path": "gender"}]}]})
    >>> sql.split(" FROM ")[0]
    'SELECT t._s[1] AS "g"'
    """
    return compile_sql(_plan(view), source_relation)


def compiles(view: dict[str, Any] | ViewPlan) -> bool:
    """True when the fast path translates the whole view to SQL.

    >>> compiles({"resource": "Patient", "select": [{"column": [{"name": "b", "path": "birthDate.lowBoundary()"}]}]})
    False
    """
    try:
        view_sql(view)
    except NotCompilable:
        return False
    return True


def _relation(con: duckdb.DuckDBPyConnection, src: ResourceSource, resource_type: str) -> str:
    if src.files is not None:
        files = [str(p) for p in src.files_for(resource_type)]
        if not files:
            return "(SELECT CAST(NULL AS JSON) AS r WHERE FALSE)"
        listing = ", ".join(sql_string(f) for f in files)
        return f"(SELECT json AS r FROM read_ndjson_objects([{listing}]))"
    texts = [dumps_resource(r).decode() for r in src.resources(resource_type)]
    con.register("view_input", pa.table({"r": pa.array(texts, pa.string())}))
    return "(SELECT CAST(r AS JSON) AS r FROM view_input)"


def _duckdb_arrow(plan: ViewPlan, src: ResourceSource) -> pa.Table:
    # JSON is built into the wheel: never let DuckDB fetch or load an extension on its own.
    con = duckdb.connect(
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    )
    try:
        sql = compile_sql(plan, _relation(con, src, plan.resource))
        try:
            return con.sql(sql).to_arrow_table()
        except duckdb.Error as exc:
            message = str(exc).split("\n")[0]
            raise ViewDefinitionError(f"view {plan.name!r} failed in DuckDB: {message}") from None
    finally:
        con.close()


_ARROW_TYPES = {
    "boolean": pa.bool_(),
    "integer": pa.int64(),
    "positiveInt": pa.int64(),
    "unsignedInt": pa.int64(),
    "integer64": pa.int64(),
    "decimal": pa.float64(),
}


def _declared_type(column: Column) -> pa.DataType:
    base = _ARROW_TYPES.get(column.type or "", pa.string())
    return pa.list_(base) if column.collection else base


def _all_columns(node: SelectNode) -> list[Column]:
    cols = list(node.columns)
    for child in node.selects:
        cols.extend(_all_columns(child))
    if node.union:
        cols.extend(_all_columns(node.union[0]))
    return cols


def _python_arrow(plan: ViewPlan, src: ResourceSource) -> pa.Table:
    rows = list(iter_rows(plan, src.resources(plan.resource)))
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in plan.column_names]
    declared = _all_columns(plan.root)
    arrays = []
    for column, values in zip(declared, columns, strict=True):
        try:
            # The declared FHIR type keeps empty or all-null columns typed like the SQL engine's.
            arrays.append(pa.array(list(values), _declared_type(column) if column.type else None))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            try:
                arrays.append(pa.array(list(values)))
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                arrays.append(
                    pa.array([None if v is None else str(v) for v in values], pa.string())
                )
    return pa.Table.from_arrays(arrays, names=plan.column_names)


def _check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise ViewDefinitionError(
            f"engine: expected one of {', '.join(ENGINES)} (found {engine!r})"
        )


def run_arrow(view: dict[str, Any] | ViewPlan, source: Any, engine: str = "auto") -> pa.Table:
    """Run a view and return an Arrow table (columns in view order).

    >>> view = {"resource": "Patient", "select": [{"column": [{"name": "id", "path": "id"}]}]}
    >>> run_arrow(view, [{"resourceType": "Patient", "id": "p1"}]).column_names
    ['id']
    """
    _check_engine(engine)
    plan = _plan(view)
    src = ResourceSource.from_any(source)
    if engine == "python":
        return _python_arrow(plan, src)
    try:
        return _duckdb_arrow(plan, src)
    except NotCompilable as exc:
        if engine == "duckdb":
            raise ViewDefinitionError(
                f"view {plan.name!r}: the DuckDB engine cannot compile {exc}; use engine='auto' or 'python'"
            ) from None
        return _python_arrow(plan, src)


def run(view: dict[str, Any] | ViewPlan, source: Any, engine: str = "auto") -> list[dict[str, Any]]:
    """Run a view over ``source`` (dicts, a directory of NDJSON files, or one NDJSON file).

    >>> view = {"resource": "Patient", "select": [{"column": [{"name": "n", "path": "name.family", "collection": True}]}]}
    >>> run(view, [{"resourceType": "Patient", "name": [{"family": "A"}, {"family": "B"}]}])
    [{'n': ['A', 'B']}]
    """
    _check_engine(engine)
    plan = _plan(view)
    src = ResourceSource.from_any(source)
    if engine == "python":
        names = plan.column_names
        return [
            dict(zip(names, row, strict=True))
            for row in iter_rows(plan, src.resources(plan.resource))
        ]
    return run_arrow(plan, src, engine).to_pylist()
