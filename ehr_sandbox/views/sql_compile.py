"""Compile a ViewDefinition plan to one DuckDB SQL query over resources stored as JSON.

The query reads a relation with one JSON column ``r`` (one resource per row). Paths become
JSONPath lookups (``$.name[*].family``) using the FHIR model's cardinalities
(:mod:`ehr_sandbox.views.schema`); the resource's own paths are read in one batched
``json_extract`` so each document is parsed once. ``forEach`` becomes a lateral ``unnest``,
``repeat`` a recursive CTE and ``unionAll`` a lateral ``UNION ALL``. Anything outside the supported subset raises
:class:`NotCompilable`, and the caller falls back to the reference evaluator for the whole view,
so both engines always give the same answer.

>>> from ehr_sandbox.views.definition import compile_view
>>> sql = compile_sql(compile_view({"resource": "Patient", "select": [{"column": [{"name": "id", "path": "id"}]}]}), "src")
>>> "json_extract_string(src.r, ['$.id', '$.resourceType'])" in sql
True
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ehr_sandbox.views.definition import Column, SelectNode, ViewPlan
from ehr_sandbox.views.fhirpath_parser import Node
from ehr_sandbox.views.schema import field_info, value_kind
from synthetic.fhir import is_resource_type

__all__ = ["NotCompilable", "compile_sql", "quote_ident", "sql_string"]

_SQL_TYPE = {"text": "VARCHAR", "int": "BIGINT", "num": "DOUBLE", "bool": "BOOLEAN"}


class NotCompilable(Exception):
    """This view uses something the SQL compiler does not translate (internal: triggers the
    fallback to the reference evaluator).

    >>> str(NotCompilable("lowBoundary()"))
    'lowBoundary()'
    """


def sql_string(text: str) -> str:
    """A SQL string literal (single quotes doubled).

    >>> sql_string("O'Brien")
    "'O''Brien'"
    """
    return "'" + text.replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    """A quoted SQL identifier.

    >>> quote_ident("id")
    '"id"'
    """
    return '"' + name.replace('"', '""') + '"'


class PathBatch:
    """JSONPaths read from one JSON column in a single pass.

    DuckDB parses a JSON document once per ``json_extract(doc, [path, ...])`` call, against
    once per path for separate calls, so the resource's own paths are batched. Lists of paths
    cannot hold wildcards: a path such as ``$.name[*].family`` batches its head ``$.name`` and
    applies ``$[*].family`` to that small array.

    >>> b = PathBatch("t")
    >>> b.text_ref("$.id"), b.json_ref("$.name"), b.text_ref("$.id")
    ('t._s[1]', 't._j[1]', 't._s[1]')
    """

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self.text: list[str] = []
        self.json: list[str] = []

    def text_ref(self, path: str) -> str:
        """SQL reading ``path`` as text from the batched list.

        >>> PathBatch("t").text_ref("$.gender")
        't._s[1]'
        """
        if path not in self.text:
            self.text.append(path)
        return f"{self.alias}._s[{self.text.index(path) + 1}]"

    def json_ref(self, path: str) -> str:
        """SQL reading ``path`` as JSON from the batched list.

        >>> PathBatch("t").json_ref("$.name")
        't._j[1]'
        """
        if path not in self.json:
            self.json.append(path)
        return f"{self.alias}._j[{self.json.index(path) + 1}]"

    def columns(self, doc: str) -> str:
        """Extra select-list items computing the batched lists from ``doc``.

        >>> b = PathBatch("t")
        >>> _ = b.text_ref("$.id")
        >>> b.columns("src.r")
        ", json_extract_string(src.r, ['$.id']) AS _s"
        """
        out = ""
        if self.text:
            out += f", json_extract_string({doc}, [{', '.join(sql_string(p) for p in self.text)}]) AS _s"
        if self.json:
            out += f", json_extract({doc}, [{', '.join(sql_string(p) for p in self.json)}]) AS _j"
        return out


_LIST_TYPE = {
    "text": "VARCHAR[]",
    "json": "JSON[]",
    "int": "BIGINT[]",
    "num": "DOUBLE[]",
    "bool": "BOOLEAN[]",
}


@dataclass
class Q:
    """A compiled FHIRPath value: renders to SQL for a requested kind.

    ``many``: renders to a LIST (possibly empty) instead of a scalar (possibly NULL).
    ``ftype``: FHIR type of the items (drives navigation and the SQL type).
    ``base``/``jsonpath``: set while the value is still a plain path from a JSON scalar, so
    chains of steps fold into one JSONPath lookup.

    >>> Q(False, "code", base="x", jsonpath="$.gender").render("text")
    "json_extract_string(x, '$.gender')"
    """

    many: bool
    ftype: str | None
    render_fn: Callable[[str], str] | None = None
    base: str | None = None
    jsonpath: str | None = None
    is_root: bool = False
    batch: PathBatch | None = None

    @property
    def kind(self) -> str | None:
        """The SQL value kind of the items (text, int, num, bool, json) or None.

        >>> Q(False, "boolean").kind
        'bool'
        """
        return value_kind(self.ftype)

    def render(self, kind: str) -> str:
        """SQL of this value as ``kind`` (json, text, int, num, bool).

        >>> Q(True, "decimal", base="x", jsonpath="$.a[*].v").render("num")
        "TRY_CAST(json_extract(x, '$.a[*].v') AS DOUBLE[])"
        """
        if self.batch is not None and self.jsonpath is not None and self.jsonpath != "$":
            path = self.jsonpath
            star = path.find("[*]")
            if star < 0:
                if kind == "json":
                    return self.batch.json_ref(path)
                ref = self.batch.text_ref(path)
                return ref if kind == "text" else f"TRY_CAST({ref} AS {_SQL_TYPE[kind]})"
            head = self.batch.json_ref(path[:star])
            rest = Q(self.many, self.ftype, base=head, jsonpath="$" + path[star:]).render(kind)
            # A missing head is NULL, where the unbatched wildcard lookup gives an empty list.
            return f"coalesce({rest}, CAST([] AS {_LIST_TYPE[kind]}))"
        if self.base is not None and self.jsonpath is not None:
            if self.jsonpath == "$":
                if kind == "json":
                    return self.base
                if kind == "text":
                    return f"json_extract_string({self.base}, '$')"
                return f"TRY_CAST({self.base} AS {_SQL_TYPE[kind]})"
            if kind == "text":
                return f"json_extract_string({self.base}, {sql_string(self.jsonpath)})"
            extracted = f"json_extract({self.base}, {sql_string(self.jsonpath)})"
            if kind == "json":
                return extracted
            suffix = "[]" if self.many else ""
            return f"TRY_CAST({extracted} AS {_SQL_TYPE[kind]}{suffix})"
        assert self.render_fn is not None
        return self.render_fn(kind)


def _lit(sql: str, ftype: str) -> Q:
    return Q(False, ftype, render_fn=lambda kind: sql)


def _typed_literal(value: Any) -> Q:
    if isinstance(value, bool):
        return _lit("TRUE" if value else "FALSE", "boolean")
    if isinstance(value, int):
        return _lit(str(value), "integer")
    if isinstance(value, float | Decimal):
        return _lit(
            f"CAST({format(Decimal(repr(value)) if isinstance(value, float) else value, 'f')} AS DOUBLE)",
            "decimal",
        )
    if isinstance(value, str):
        return _lit(sql_string(value), "string")
    raise NotCompilable(f"constant of type {type(value).__name__}")


class _ExprCompiler:
    def __init__(
        self, constants: dict[str, list[Any]], row_index: str, names: itertools.count
    ) -> None:
        self.constants = constants
        self.row_index = row_index
        self.names = names

    def fresh(self, prefix: str) -> str:
        return f"{prefix}{next(self.names)}"

    def compile(self, node: Node, focus: Q) -> Q:
        kind = node[0]
        if kind == "lit":
            if node[2] in ("quantity", "empty"):
                raise NotCompilable(f"{node[2]} literal")
            if node[2] in ("date", "dateTime", "time"):
                return _lit(sql_string(node[1]), node[2])
            return _typed_literal(node[1])
        if kind == "this":
            return focus
        if kind == "const":
            if node[1] == "rowIndex":
                return _lit(self.row_index, "integer")
            values = self.constants.get(node[1])
            if values is None or len(values) != 1:
                raise NotCompilable(f"%{node[1]}")
            return _typed_literal(values[0])
        if kind == "member":
            return self.member(focus, node[1])
        if kind == "dot":
            left, right = node[1], node[2]
            if (
                right[0] == "call"
                and right[1] == "ofType"
                and len(right[2]) == 1
                and right[2][0][0] == "member"
            ):
                tname = right[2][0][1].split(".")[-1]
                if left[0] == "member":
                    return self.member(focus, left[1] + tname[:1].upper() + tname[1:])
                if left[0] == "dot" and left[2][0] == "member":
                    base = self.compile(left[1], focus)
                    return self.member(base, left[2][1] + tname[:1].upper() + tname[1:])
                raise NotCompilable("ofType() not directly after an element name")
            base = self.compile(left, focus)
            if right[0] == "member":
                return self.member(base, right[1])
            if right[0] == "call":
                return self.call(right[1], right[2], base)
            raise NotCompilable("unsupported invocation")
        if kind == "call":
            return self.call(node[1], node[2], focus)
        if kind == "index":
            base = self.compile(node[1], focus)
            idx = node[2]
            if idx[0] == "const" and len(self.constants.get(idx[1], [])) == 1:
                idx = ("lit", self.constants[idx[1]][0], "integer")
            if (
                idx[0] != "lit"
                or idx[2] != "integer"
                or isinstance(idx[1], bool)
                or not isinstance(idx[1], int)
            ):
                raise NotCompilable("indexer that is not an integer literal")
            n = idx[1]
            if not base.many:
                return base if n == 0 else _lit("NULL", base.ftype or "string")
            return Q(False, base.ftype, render_fn=lambda k: f"({base.render(k)})[{n + 1}]")
        if kind == "op":
            return self.operator(node[1], node[2], node[3], focus)
        raise NotCompilable(f"expression node {kind}")

    def member(self, focus: Q, name: str) -> Q:
        if focus.is_root and name == focus.ftype:
            return focus
        if focus.ftype is None or focus.kind != "json":
            raise NotCompilable(f"navigation to {name} from an unknown or primitive type")
        info = field_info(focus.ftype, name)
        if info is None:
            raise NotCompilable(f"{focus.ftype}.{name} is not a known element")
        is_list, child = info
        step = f".{name}" + ("[*]" if is_list else "")
        if focus.base is not None and focus.jsonpath is not None:
            return Q(
                focus.many or is_list,
                child,
                base=focus.base,
                jsonpath=focus.jsonpath + step,
                batch=focus.batch,
            )
        if not focus.many:
            src = focus.render("json")
            return Q(is_list, child, base=f"({src})", jsonpath="$" + step)
        var = self.fresh("x")
        lst = focus.render("json")

        def render(kind: str) -> str:
            inner = Q(is_list, child, base=var, jsonpath="$" + step).render(kind)
            if is_list:
                return f"flatten(list_transform({lst}, lambda {var}: {inner}))"
            return f"list_filter(list_transform({lst}, lambda {var}: {inner}), lambda {var}: {var} IS NOT NULL)"

        return Q(True, child, render_fn=render)

    def as_list(self, q: Q, kind: str) -> str:
        if q.many:
            return q.render(kind)
        v = self.fresh("s")
        return f"list_filter([{q.render(kind)}], lambda {v}: {v} IS NOT NULL)"

    def call(self, name: str, args: list[Node], src: Q) -> Q:
        if name == "where" and len(args) == 1:
            if src.kind != "json":
                raise NotCompilable("where() on primitive values")
            var = self.fresh("w")
            crit = self.compile(args[0], Q(False, src.ftype, base=var, jsonpath="$"))
            if crit.kind != "bool" or crit.many:
                raise NotCompilable("where() criteria that is not a boolean")
            cond = crit.render("bool")
            lst = self.as_list(src, "json")
            filtered = f"list_filter({lst}, lambda {var}: {cond})"
            return Q(
                True,
                src.ftype,
                render_fn=lambda k: filtered if k == "json" else _convert_list(filtered, k, self),
            )
        if name in ("exists", "empty") and not args:
            sql = (
                f"len({src.render('json')}) > 0"
                if src.many
                else f"({src.render('json')}) IS NOT NULL"
            )
            if name == "empty":
                sql = f"NOT ({sql})"
            return _lit(f"({sql})", "boolean")
        if name == "exists" and len(args) == 1:
            return self.call("exists", [], self.call("where", args, src))
        if name == "count" and not args:
            if src.many:
                return _lit(f"len({src.render('json')})", "integer")
            return _lit(f"(CASE WHEN ({src.render('json')}) IS NULL THEN 0 ELSE 1 END)", "integer")
        if name == "first" and not args:
            if not src.many:
                return src
            return Q(False, src.ftype, render_fn=lambda k: f"({src.render(k)})[1]")
        if name == "not" and not args:
            if src.kind != "bool" or src.many:
                raise NotCompilable("not() on a non-boolean")
            return _lit(f"(NOT ({src.render('bool')}))", "boolean")
        if name == "join" and len(args) <= 1:
            if src.kind != "text":
                raise NotCompilable("join() on non-text values")
            sep = "''"
            if args:
                if args[0][0] != "lit" or args[0][2] != "string":
                    raise NotCompilable("join() separator that is not a string literal")
                sep = sql_string(args[0][1])
            if src.many:
                return _lit(f"coalesce(array_to_string({src.render('text')}, {sep}), '')", "string")
            return _lit(f"coalesce({src.render('text')}, '')", "string")
        if name == "getResourceKey" and not args:
            if not src.is_root:
                raise NotCompilable("getResourceKey() below the resource")
            return Q(False, "id", base=src.base, jsonpath="$.id", batch=src.batch)
        if name == "getReferenceKey" and len(args) <= 1:
            if src.ftype != "Reference":
                raise NotCompilable("getReferenceKey() on something other than a Reference")
            type_filter = None
            if args:
                if args[0][0] != "member":
                    raise NotCompilable("getReferenceKey() type argument")
                type_filter = args[0][1].split(".")[-1]
            return self.reference_key(self.member(src, "reference"), type_filter)
        if name == "extension" and len(args) == 1:
            if args[0][0] != "lit" or args[0][2] != "string":
                raise NotCompilable("extension() url that is not a string literal")
            url = sql_string(args[0][1])
            var = self.fresh("e")
            if src.kind != "json" or src.ftype is None:
                raise NotCompilable("extension() on an unknown type")
            exts = self.member(src, "extension") if field_info(src.ftype, "extension") else None
            if exts is None:
                raise NotCompilable("extension() on an element without extensions")
            lst = exts.render("json")
            filtered = (
                f"list_filter({lst}, lambda {var}: json_extract_string({var}, '$.url') = {url})"
            )
            return Q(
                True,
                "Extension",
                render_fn=lambda k: filtered if k == "json" else _convert_list(filtered, k, self),
            )
        raise NotCompilable(f"function {name}()")

    def reference_key(self, ref: Q, type_filter: str | None) -> Q:
        def key_of(text_sql: str) -> str:
            # Fast path for the usual relative "Type/id"; a regex for absolute URLs and _history.
            simple_type = f"split_part({text_sql}, '/', 1)"
            simple_id = f"NULLIF(split_part({text_sql}, '/', 2), '')"
            cleaned = f"regexp_replace({text_sql}, '/_history/.*$', '')"
            full_type = f"regexp_extract({cleaned}, '([^/]+)/([^/]+)$', 1)"
            full_id = f"NULLIF(regexp_extract({cleaned}, '([^/]+)/([^/]+)$', 2), '')"
            if type_filter is None:
                simple, full = simple_id, full_id
            else:
                wanted = sql_string(type_filter)
                simple = f"(CASE WHEN {simple_type} = {wanted} THEN {simple_id} END)"
                full = f"(CASE WHEN {full_type} = {wanted} THEN {full_id} END)"
            return f"(CASE WHEN strlen({text_sql}) - strlen(replace({text_sql}, '/', '')) > 1 THEN {full} ELSE {simple} END)"

        if not ref.many:
            return Q(False, "string", render_fn=lambda k: key_of(ref.render("text")))
        var = self.fresh("k")
        lst = ref.render("text")
        return Q(
            True,
            "string",
            render_fn=lambda k: (
                f"list_filter(list_transform({lst}, lambda {var}: {key_of(var)}), lambda {var}: {var} IS NOT NULL)"
            ),
        )

    def operator(self, op: str, left_node: Node, right_node: Node, focus: Q) -> Q:
        left = self.compile(left_node, focus)
        right = self.compile(right_node, focus)
        if op in ("and", "or", "xor", "implies"):
            if left.kind != "bool" or right.kind != "bool" or left.many or right.many:
                raise NotCompilable(f"'{op}' on non-boolean operands")
            a, b = left.render("bool"), right.render("bool")
            sql = {
                "and": f"({a} AND {b})",
                "or": f"({a} OR {b})",
                "xor": f"({a} <> {b})",
                "implies": f"((NOT {a}) OR {b})",
            }[op]
            return _lit(sql, "boolean")
        if op in ("=", "!=", "<", ">", "<=", ">="):
            kind = _common_kind(left.kind, right.kind)
            if kind is None:
                raise NotCompilable(f"'{op}' between {left.ftype} and {right.ftype}")
            if left.many and right.many:
                raise NotCompilable(f"'{op}' between two collections")
            if (left.many or right.many) and op not in ("=", "!="):
                raise NotCompilable(f"'{op}' on a collection")
            if left.many or right.many:
                lst, one = (left, right) if left.many else (right, left)
                lsql = lst.render(kind)
                osql = one.render(kind)
                cmp = f"({lsql})[1] = {osql}" if lst is left else f"{osql} = ({lsql})[1]"
                sql = f"(CASE WHEN len({lsql}) = 0 OR ({osql}) IS NULL THEN NULL WHEN len({lsql}) = 1 THEN {cmp} ELSE FALSE END)"
                if op == "!=":
                    sql = f"(NOT {sql})"
                return _lit(sql, "boolean")
            sql_op = "<>" if op == "!=" else op
            return _lit(f"({left.render(kind)} {sql_op} {right.render(kind)})", "boolean")
        raise NotCompilable(f"operator {op!r}")


def _common_kind(a: str | None, b: str | None) -> str | None:
    if a is None or b is None or a == "json" or b == "json":
        return None
    if a == b:
        return a
    if {a, b} == {"int", "num"}:
        return "num"
    return None


def _convert_list(json_list: str, kind: str, compiler: _ExprCompiler) -> str:
    var = compiler.fresh("c")
    item = Q(False, None, base=var, jsonpath="$").render(kind)
    return f"list_transform({json_list}, lambda {var}: {item})"


class _ViewCompiler:
    def __init__(self, plan: ViewPlan) -> None:
        self.plan = plan
        self.names = itertools.count()
        self.aliases = itertools.count()

    def expr(self, row_index: str) -> _ExprCompiler:
        return _ExprCompiler(self.plan.constants, row_index, self.names)

    def column(self, col: Column, focus: Q, row_index: str) -> str:
        q = self.expr(row_index).compile(col.ast, focus)
        kind = q.kind
        if kind is None or kind == "json":
            raise NotCompilable(f"column {col.name} gives complex or untyped values")
        if col.collection:
            if q.many:
                return f"coalesce({q.render(kind)}, [])"
            v = f"v{next(self.names)}"
            return f"list_filter([{q.render(kind)}], lambda {v}: {v} IS NOT NULL)"
        if not q.many:
            return q.render(kind)
        lst = q.render(kind)
        message = sql_string(
            f"{col.where}: expected at most one value for column {col.name!r}; "
            'set "collection": true to keep them all'
        )
        return f"(CASE WHEN len({lst}) > 1 THEN error({message}) ELSE ({lst})[1] END)"

    def node(
        self, node: SelectNode, focus: Q, row_index: str, froms: list[str]
    ) -> list[tuple[str, str]]:
        if node.mode == "repeat":
            return self.repeat(node, focus, row_index, froms)
        if node.mode is None:
            return self.body(node, focus, row_index, froms)
        if node.mode == "forEachOrNull" and _has_inner_iteration(node):
            raise NotCompilable("forEachOrNull around a nested forEach")
        q = self.expr(row_index).compile(node.iterate[0][1], focus)
        if q.ftype is None:
            raise NotCompilable("forEach over untyped values")
        lst = (
            q.render("json")
            if q.many
            else f"list_filter([{q.render('json')}], lambda z: z IS NOT NULL)"
        )
        alias = f"f{next(self.aliases)}"
        # The item index is only computed when some column reads %rowIndex (it costs a pass).
        if _uses_row_index(node):
            sub = f"(SELECT unnest({lst}) AS v, generate_subscripts({lst}, 1) - 1 AS i)"
            idx = f"{alias}.i" if node.mode == "forEach" else f"coalesce({alias}.i, 0)"
        else:
            sub = f"(SELECT unnest({lst}) AS v)"
            idx = "NULL"
        if node.mode == "forEach":
            froms.append(f"CROSS JOIN LATERAL {sub} AS {alias}")
        else:
            froms.append(f"LEFT JOIN LATERAL {sub} AS {alias} ON TRUE")
        item = Q(False, q.ftype, base=f"{alias}.v", jsonpath="$")
        return self.body(node, item, idx, froms)

    def repeat(
        self, node: SelectNode, focus: Q, row_index: str, froms: list[str]
    ) -> list[tuple[str, str]]:
        # A recursive CTE per focus row collects every level; %rowIndex would need the
        # depth-first order, which the CTE does not give, so those views use the reference.
        if _uses_row_index(node):
            raise NotCompilable("%rowIndex inside repeat")
        expr = self.expr(row_index)
        first: list[Q] = []
        for _, ast, _ in node.iterate:
            # The paths name the child level (item, answer.item); at the top only some exist
            # on the focus type, and an element the type does not have is simply empty.
            try:
                first.append(expr.compile(ast, focus))
            except NotCompilable as exc:
                if "is not a known element" not in str(exc):
                    raise
        types = {q.ftype for q in first}
        item_type = next(iter(types), None)
        if len(types) != 1 or value_kind(item_type) != "json":
            raise NotCompilable("repeat over paths of different or primitive types")
        rec = f"r{next(self.aliases)}"
        item_q = Q(False, item_type, base=f"{rec}.v", jsonpath="$")
        again = [expr.compile(ast, item_q) for _, ast, _ in node.iterate]
        if {q.ftype for q in again} != {item_type}:
            raise NotCompilable("repeat paths that change type between levels")
        base = f"flatten([{', '.join(expr.as_list(q, 'json') for q in first)}])"
        step = f"flatten([{', '.join(expr.as_list(q, 'json') for q in again)}])"
        alias = f"f{next(self.aliases)}"
        froms.append(
            f"CROSS JOIN LATERAL (WITH RECURSIVE {rec}(v) AS (SELECT unnest({base}) "
            f"UNION ALL SELECT unnest({step}) FROM {rec}) SELECT v FROM {rec}) AS {alias}"
        )
        item = Q(False, item_type, base=f"{alias}.v", jsonpath="$")
        return self.body(node, item, "NULL", froms)

    def body(
        self, node: SelectNode, focus: Q, row_index: str, froms: list[str]
    ) -> list[tuple[str, str]]:
        cols = [(c.name, self.column(c, focus, row_index)) for c in node.columns]
        for child in node.selects:
            cols.extend(self.node(child, focus, row_index, froms))
        if node.union:
            alias = f"u{next(self.aliases)}"
            branches = []
            for branch in node.union:
                sub_froms: list[str] = []
                bcols = self.node(branch, focus, row_index, sub_froms)
                select_list = ", ".join(f"{sql} AS {quote_ident(n)}" for n, sql in bcols)
                branches.append(
                    f"SELECT {select_list} FROM (SELECT 1) AS _one {' '.join(sub_froms)}"
                )
            froms.append(f"CROSS JOIN LATERAL ({' UNION ALL '.join(branches)}) AS {alias}")
            cols.extend((n, f"{alias}.{quote_ident(n)}") for n in node.union[0].column_names)
        return cols

    def compile(self, source: str) -> str:
        plan = self.plan
        if not is_resource_type(plan.resource):
            raise NotCompilable(f"unknown resource type {plan.resource}")
        batch = PathBatch("t")
        root = Q(False, plan.resource, base="t.r", jsonpath="$", is_root=True, batch=batch)
        froms: list[str] = []
        cols: list[tuple[str, str]] = []
        for child in plan.root.selects:
            cols.extend(self.node(child, root, "0", froms))
        conditions = [f"{batch.text_ref('$.resourceType')} = {sql_string(plan.resource)}"]
        for _, ast, _ in plan.where:
            q = self.expr("0").compile(ast, root)
            if q.kind != "bool" or q.many:
                raise NotCompilable("where clause that is not statically boolean")
            conditions.append(f"({q.render('bool')}) IS TRUE")
        select_list = ", ".join(f"{sql} AS {quote_ident(n)}" for n, sql in cols)
        relation = f"(SELECT src.r{batch.columns('src.r')} FROM {source} AS src)"
        return (
            f"SELECT {select_list} FROM {relation} AS t {' '.join(froms)} "
            f"WHERE {' AND '.join(conditions)}"
        )


def _mentions_row_index(ast: Any) -> bool:
    if isinstance(ast, tuple):
        if ast[:2] == ("const", "rowIndex"):
            return True
        return any(_mentions_row_index(part) for part in ast)
    if isinstance(ast, list):
        return any(_mentions_row_index(part) for part in ast)
    return False


def _uses_row_index(node: SelectNode) -> bool:
    return any(_mentions_row_index(c.ast) for c in node.columns) or any(
        _uses_row_index(child) for child in node.selects + node.union
    )


def _has_inner_iteration(node: SelectNode) -> bool:
    return any(
        c.mode in ("forEach", "repeat") or _has_inner_iteration(c)
        for c in node.selects + node.union
    )


def compile_sql(plan: ViewPlan, source: str) -> str:
    """SQL computing the view over ``source`` (a relation with one JSON column ``r``).

    Raises NotCompilable when the view needs the reference evaluator.

    >>> from ehr_sandbox.views.definition import compile_view
    >>> compile_sql(compile_view({"resource": "Patient", "select": [{"column": [{"name": "a", "path": "birthDate.lowBoundary()"}]}]}), "s")
    Traceback (most recent call last):
    ...
    ehr_sandbox.views.sql_compile.NotCompilable: function lowBoundary()
    """
    return _ViewCompiler(plan).compile(source)
