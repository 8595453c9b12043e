"""Compile a FHIRPath syntax tree into nested Python closures (parse once, run per row).

Every compiled expression is a function ``fn(focus: list, env: Env) -> list``: FHIRPath
works on ordered collections, and an empty list is "no value". ``Env`` carries the view's
constants and the current ``%rowIndex`` so one compiled closure tree serves every row.

>>> fn = compile_expression("name.where(use = 'official').family", constants={})
>>> fn([{"name": [{"use": "official", "family": "Smith"}, {"family": "X"}]}], Env({}))
['Smith']
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from ehr_sandbox.errors import ViewDefinitionError
from ehr_sandbox.views import temporal
from ehr_sandbox.views.fhirpath_parser import FhirPathSyntaxError, Node, parse
from synthetic.systems import LOINC, SNOMED, UCUM

__all__ = ["CompileError", "Env", "Fn", "compile_expression", "compile_node", "singleton_bool"]

Fn = Callable[[list[Any], "Env"], list[Any]]

_PRIMITIVE_TYPES = {
    "boolean",
    "integer",
    "string",
    "decimal",
    "uri",
    "url",
    "canonical",
    "base64Binary",
    "instant",
    "date",
    "dateTime",
    "time",
    "code",
    "oid",
    "id",
    "markdown",
    "unsignedInt",
    "positiveInt",
    "uuid",
    "integer64",
}
_STRING_LIKE = _PRIMITIVE_TYPES - {
    "boolean",
    "integer",
    "decimal",
    "unsignedInt",
    "positiveInt",
    "integer64",
}
_INTEGER_LIKE = {"integer", "unsignedInt", "positiveInt", "integer64"}
# Type suffixes a choice element (value[x], effective[x], ...) can carry in FHIR R4 JSON.
_CHOICE_SUFFIXES = {t[:1].upper() + t[1:] for t in _PRIMITIVE_TYPES} | {
    "Address",
    "Age",
    "Annotation",
    "Attachment",
    "CodeableConcept",
    "Coding",
    "ContactDetail",
    "ContactPoint",
    "Contributor",
    "Count",
    "DataRequirement",
    "Distance",
    "Dosage",
    "Duration",
    "Expression",
    "HumanName",
    "Identifier",
    "Meta",
    "Money",
    "ParameterDefinition",
    "Period",
    "Quantity",
    "Range",
    "Ratio",
    "Reference",
    "RelatedArtifact",
    "SampledData",
    "Signature",
    "Timing",
    "TriggerDefinition",
    "UsageContext",
}


class CompileError(ViewDefinitionError):
    """An expression is syntactically valid but cannot mean anything here (unknown function,
    undefined constant, wrong argument count).

    >>> try:
    ...     compile_expression("%nope", constants={})
    ... except CompileError as exc:
    ...     print(exc)
    undefined constant %nope (the view defines: none)
    """


class Env:
    """Per-row evaluation state: constants (name -> list of values) and ``%rowIndex``.

    >>> Env({"x": [1]}).row_index
    0
    """

    __slots__ = ("constants", "row_index")

    def __init__(self, constants: dict[str, list[Any]], row_index: int = 0) -> None:
        self.constants = constants
        self.row_index = row_index


class EvaluationError(ViewDefinitionError):
    """A runtime FHIRPath error (e.g. ``single()`` on several items).

    >>> issubclass(EvaluationError, ValueError)
    True
    """


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float | Decimal) and not isinstance(v, bool)


def _exact(v: Any) -> Decimal | int:
    if isinstance(v, float):
        return Decimal(repr(v))
    return v


def _number_result(result: Decimal | int, *operands: Any) -> Any:
    # Arithmetic runs on exact decimals; the result keeps the representation of its inputs so
    # 0.1 + 0.2 gives 0.3 (not 0.30000000000000004) while staying a float for float data.
    if isinstance(result, int):
        return result
    if any(isinstance(o, Decimal) for o in operands):
        return result
    if any(isinstance(o, float) for o in operands):
        return float(result)
    return result


def singleton_bool(coll: list[Any]) -> bool | None:
    """FHIRPath singleton evaluation of a collection as a boolean (None = empty/unknown).

    >>> singleton_bool([]), singleton_bool([False]), singleton_bool(["x"])
    (None, False, True)
    """
    if not coll:
        return None
    if len(coll) > 1:
        raise EvaluationError(f"expected a single boolean, found {len(coll)} items")
    v = coll[0]
    return v if isinstance(v, bool) else True


def _values_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return _exact(a) == _exact(b)
    if isinstance(a, dict) or isinstance(b, dict):  # a frozen (dict subclass) part too
        return isinstance(a, dict) and isinstance(b, dict) and a == b
    if type(a) is not type(b) and not (isinstance(a, str) and isinstance(b, str)):
        return False
    return bool(a == b)


def _equal(left: list[Any], right: list[Any]) -> list[Any]:
    if not left or not right:
        return []
    if len(left) != len(right):
        return [False]
    return [all(_values_equal(a, b) for a, b in zip(left, right, strict=True))]


def _equivalent_value(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return " ".join(a.lower().split()) == " ".join(b.lower().split())
    return _values_equal(a, b)


def _equivalent(left: list[Any], right: list[Any]) -> list[Any]:
    if not left and not right:
        return [True]
    if len(left) != len(right):
        return [False]
    return [all(any(_equivalent_value(a, b) for b in right) for a in left)]


def _compare(op: str, left: list[Any], right: list[Any]) -> list[Any]:
    if not left or not right:
        return []
    if len(left) > 1 or len(right) > 1:
        raise EvaluationError(
            f"'{op}' expects single values, found {len(left)} and {len(right)} items"
        )
    a, b = left[0], right[0]
    if _is_number(a) and _is_number(b):
        a, b = _exact(a), _exact(b)
    elif not (isinstance(a, str) and isinstance(b, str)):
        return []
    if op == "<":
        return [a < b]
    if op == ">":
        return [a > b]
    if op == "<=":
        return [a <= b]
    return [a >= b]


def _arith(op: str, left: list[Any], right: list[Any]) -> list[Any]:
    if op == "&":
        ls = "" if not left else str(left[0])
        rs = "" if not right else str(right[0])
        return [ls + rs]
    if not left or not right:
        return []
    if len(left) > 1 or len(right) > 1:
        raise EvaluationError(f"'{op}' expects single values")
    a, b = left[0], right[0]
    if op == "+" and isinstance(a, str) and isinstance(b, str):
        return [a + b]
    if not (_is_number(a) and _is_number(b)):
        return []
    x, y = _exact(a), _exact(b)
    try:
        if op == "+":
            r: Any = x + y
        elif op == "-":
            r = x - y
        elif op == "*":
            r = x * y
        elif op == "/":
            if y == 0:
                return []
            r = Decimal(x) / Decimal(y)
            r = r.normalize() if r == r.to_integral_value() else r
            if isinstance(a, int) and isinstance(b, int):
                return [float(r)]
        elif op == "div":
            if y == 0:
                return []
            q = Decimal(x) / Decimal(y)
            return [int(q)]
        else:  # mod
            if y == 0:
                return []
            r = (
                Decimal(x) % Decimal(y)
                if not (isinstance(x, int) and isinstance(y, int))
                else x % y
            )
    except InvalidOperation:
        return []
    return [_number_result(r, a, b)]


def _logic(op: str, lf: Fn, rf: Fn) -> Fn:
    def run(focus: list[Any], env: Env) -> list[Any]:
        a = singleton_bool(lf(focus, env))
        if op == "and":
            if a is False:
                return [False]
            b = singleton_bool(rf(focus, env))
            if b is False:
                return [False]
            return [True] if a is True and b is True else []
        if op == "or":
            if a is True:
                return [True]
            b = singleton_bool(rf(focus, env))
            if b is True:
                return [True]
            return [False] if a is False and b is False else []
        if op == "implies":
            if a is False:
                return [True]
            b = singleton_bool(rf(focus, env))
            if b is True:
                return [True]
            if a is True:
                return [] if b is None else [b]
            return []
        b = singleton_bool(rf(focus, env))  # xor
        return [] if a is None or b is None else [a != b]

    return run


def _member(name: str) -> Callable[[list[Any]], list[Any]]:
    is_type_name = name[:1].isupper()
    prefix_len = len(name)

    def step(coll: list[Any]) -> list[Any]:
        out: list[Any] = []
        for item in coll:
            if not isinstance(item, dict):
                continue
            if is_type_name and item.get("resourceType") == name:
                out.append(item)
                continue
            v = item.get(name)
            if v is None:
                # A choice element (value[x]) is stored under a typed key such as valueQuantity.
                for key, choice in item.items():
                    if (
                        len(key) > prefix_len
                        and key.startswith(name)
                        and key[prefix_len:] in _CHOICE_SUFFIXES
                        and choice is not None
                    ):
                        v = choice
                        break
                else:
                    continue
            if isinstance(v, list):
                out.extend(x for x in v if x is not None)
            else:
                out.append(v)
        return out

    return step


def _keyed(key: str) -> Callable[[list[Any]], list[Any]]:
    def step(coll: list[Any]) -> list[Any]:
        out: list[Any] = []
        for item in coll:
            if isinstance(item, dict):
                v = item.get(key)
                if v is None:
                    continue
                if isinstance(v, list):
                    out.extend(x for x in v if x is not None)
                else:
                    out.append(v)
        return out

    return step


def _type_name(node: Node) -> str:
    if node[0] == "member":
        return str(node[1])
    if node[0] == "dot" and node[2][0] == "member":
        return _type_name(node[1]) + "." + str(node[2][1])
    raise CompileError("expected a type name such as Quantity or string")


def _bare_type(name: str) -> str:
    return name.split(".")[-1]


def _matches_type(value: Any, type_name: str) -> bool:
    t = _bare_type(type_name)
    low = t[:1].lower() + t[1:]
    if low == "boolean":
        return isinstance(value, bool)
    if low in _INTEGER_LIKE:
        return isinstance(value, int) and not isinstance(value, bool)
    if low == "decimal":
        return _is_number(value)
    if low in _STRING_LIKE:
        return isinstance(value, str)
    if t[:1].isupper():
        return isinstance(value, dict) and value.get("resourceType", t) == t
    return False


def _choice_key(member: str, type_name: str) -> str:
    t = _bare_type(type_name)
    return member + t[:1].upper() + t[1:]


def _value_type(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float | Decimal):
        return "decimal"
    if isinstance(value, str):
        return temporal.guess_temporal_type(value) or "string"
    return None


def _boundary(high: bool, static_type: str | None) -> Callable[[list[Any]], list[Any]]:
    def run(coll: list[Any]) -> list[Any]:
        out: list[Any] = []
        for v in coll:
            t = static_type or _value_type(v)
            if t in ("decimal", "integer") and _is_number(v):
                out.append(temporal.decimal_boundary(v, high=high))
            elif isinstance(v, str):
                if t == "date":
                    r = temporal.date_boundary(v, high=high)
                elif t == "time":
                    r = temporal.time_boundary(v, high=high)
                elif t in ("dateTime", "instant"):
                    r = temporal.datetime_boundary(v, high=high)
                else:
                    r = None
                if r is not None:
                    out.append(r)
        return out

    return run


def _reference_key(type_filter: str | None) -> Callable[[list[Any]], list[Any]]:
    def run(coll: list[Any]) -> list[Any]:
        out: list[Any] = []
        for ref in coll:
            text = ref.get("reference") if isinstance(ref, dict) else None
            if not isinstance(text, str) or "/" not in text:
                continue
            parts = text.split("/")
            if "_history" in parts:
                parts = parts[: parts.index("_history")]
            rtype, rid = parts[-2], parts[-1]
            if not rid or (type_filter is not None and rtype != type_filter):
                continue
            out.append(rid)
        return out

    return run


class _Compiler:
    def __init__(self, constants: dict[str, list[Any]]) -> None:
        self.constants = constants

    # Each compile method returns (closure, static FHIR type or None).
    def compile(self, node: Node) -> tuple[Fn, str | None]:
        kind = node[0]
        if kind == "lit":
            value, ltype = node[1], node[2]
            if ltype == "empty":
                return (lambda focus, env: []), None
            if ltype == "quantity":
                qty = {"value": value[0], "unit": value[1]}
                return (lambda focus, env: [qty]), "Quantity"
            const = [value]
            return (lambda focus, env: const), ltype
        if kind == "this":
            return (lambda focus, env: focus), None
        if kind == "index_var":
            return (lambda focus, env: [env.row_index]), "integer"
        if kind == "const":
            return self.constant(node[1])
        if kind == "member":
            step = _member(node[1])
            return (lambda focus, env: step(focus)), None
        if kind == "call":
            return self.call(node[1], node[2], None, None)
        if kind == "dot":
            return self.dot(node[1], node[2])
        if kind == "index":
            base, _ = self.compile(node[1])
            idx, _ = self.compile(node[2])

            def index(focus: list[Any], env: Env) -> list[Any]:
                coll = base(focus, env)
                pos = idx(focus, env)
                if not pos or not isinstance(pos[0], int):
                    return []
                i = pos[0]
                return [coll[i]] if 0 <= i < len(coll) else []

            return index, None
        if kind == "neg":
            inner, t = self.compile(node[1])

            def neg(focus: list[Any], env: Env) -> list[Any]:
                return [-v for v in inner(focus, env) if _is_number(v)]

            return neg, t
        if kind == "type_op":
            base, _ = self.compile(node[2])
            tname = node[3]
            if node[1] == "is":
                return (
                    lambda focus, env: [_matches_type(v, tname) for v in base(focus, env)][:1]
                ), "boolean"
            return (
                lambda focus, env: [v for v in base(focus, env) if _matches_type(v, tname)]
            ), tname
        if kind == "op":
            return self.operator(node[1], node[2], node[3])
        raise CompileError(f"unsupported expression node {kind}")

    def constant(self, name: str) -> tuple[Fn, str | None]:
        if name == "rowIndex":
            return (lambda focus, env: [env.row_index]), "integer"
        if name in ("resource", "rootResource", "context"):
            raise CompileError(
                f"%{name} is not supported in views; navigate from the resource instead"
            )
        if name == "ucum":
            const = [UCUM]
            return (lambda focus, env: const), "string"
        if name == "sct":
            const = [SNOMED]
            return (lambda focus, env: const), "string"
        if name == "loinc":
            const = [LOINC]
            return (lambda focus, env: const), "string"
        if name not in self.constants:
            known = ", ".join(sorted(self.constants)) or "none"
            raise CompileError(f"undefined constant %{name} (the view defines: {known})")
        return (lambda focus, env: env.constants[name]), None

    def operator(self, op: str, left: Node, right: Node) -> tuple[Fn, str | None]:
        lf, _ = self.compile(left)
        rf, _ = self.compile(right)
        if op in ("and", "or", "xor", "implies"):
            return _logic(op, lf, rf), "boolean"
        if op == "=":
            return (lambda focus, env: _equal(lf(focus, env), rf(focus, env))), "boolean"
        if op == "!=":

            def not_equal(focus: list[Any], env: Env) -> list[Any]:
                r = _equal(lf(focus, env), rf(focus, env))
                return [not r[0]] if r else []

            return not_equal, "boolean"
        if op == "~":
            return (lambda focus, env: _equivalent(lf(focus, env), rf(focus, env))), "boolean"
        if op == "!~":
            return (
                lambda focus, env: [not _equivalent(lf(focus, env), rf(focus, env))[0]]
            ), "boolean"
        if op in ("<", ">", "<=", ">="):
            return (lambda focus, env: _compare(op, lf(focus, env), rf(focus, env))), "boolean"
        if op in ("+", "-", "*", "/", "div", "mod", "&"):
            return (lambda focus, env: _arith(op, lf(focus, env), rf(focus, env))), None
        if op == "|":

            def union(focus: list[Any], env: Env) -> list[Any]:
                out: list[Any] = []
                for v in lf(focus, env) + rf(focus, env):
                    if not any(_values_equal(v, o) for o in out):
                        out.append(v)
                return out

            return union, None
        if op in ("in", "contains"):
            item_f, coll_f = (lf, rf) if op == "in" else (rf, lf)

            def member_of(focus: list[Any], env: Env) -> list[Any]:
                item = item_f(focus, env)
                if not item:
                    return []
                if len(item) > 1:
                    raise EvaluationError(f"'{op}' expects a single item")
                return [any(_values_equal(item[0], v) for v in coll_f(focus, env))]

            return member_of, "boolean"
        raise CompileError(f"unsupported operator {op!r}")

    def dot(self, left: Node, right: Node) -> tuple[Fn, str | None]:
        # value.ofType(Quantity) reads the typed key valueQuantity directly (choice types).
        if (
            right[0] == "call"
            and right[1] == "ofType"
            and len(right[2]) == 1
            and left[0] in ("member", "dot")
        ):
            last = left if left[0] == "member" else left[2]
            if last[0] == "member":
                tname = _type_name(right[2][0])
                key_step = _keyed(_choice_key(last[1], tname))
                if left[0] == "member":
                    return (lambda focus, env: key_step(focus)), _bare_type(tname)
                base, _ = self.compile(left[1])
                return (lambda focus, env: key_step(base(focus, env))), _bare_type(tname)
        base, base_type = self.compile(left)
        if right[0] == "member":
            step = _member(right[1])
            return (lambda focus, env: step(base(focus, env))), None
        if right[0] == "call":
            return self.call(right[1], right[2], base, base_type)
        if right[0] == "this":
            return base, base_type
        raise CompileError("expected a name or a function after '.'")

    def call(
        self, name: str, args: list[Node], base: Fn | None, base_type: str | None
    ) -> tuple[Fn, str | None]:
        src: Fn = base if base is not None else (lambda focus, env: focus)

        def nargs(*allowed: int) -> None:
            if len(args) not in allowed:
                want = " or ".join(str(a) for a in allowed)
                raise CompileError(f"{name}() takes {want} argument(s), found {len(args)}")

        def lifted(
            fn: Callable[[list[Any]], list[Any]], t: str | None = None
        ) -> tuple[Fn, str | None]:
            return (lambda focus, env: fn(src(focus, env))), t

        if name in ("where", "select", "all", "exists", "repeat") and args:
            nargs(1)
            crit, _ = self.compile(args[0])
            if name == "where":

                def where(focus: list[Any], env: Env) -> list[Any]:
                    return [v for v in src(focus, env) if singleton_bool(crit([v], env)) is True]

                return where, base_type
            if name == "select":

                def select(focus: list[Any], env: Env) -> list[Any]:
                    out: list[Any] = []
                    for v in src(focus, env):
                        out.extend(crit([v], env))
                    return out

                return select, None
            if name == "all":
                return (
                    lambda focus, env: [
                        all(singleton_bool(crit([v], env)) is True for v in src(focus, env))
                    ]
                ), "boolean"
            if name == "repeat":

                def repeat(focus: list[Any], env: Env) -> list[Any]:
                    out: list[Any] = []
                    todo = list(src(focus, env))
                    while todo:
                        nxt: list[Any] = []
                        for v in todo:
                            for child in crit([v], env):
                                out.append(child)
                                nxt.append(child)
                        todo = nxt
                    return out

                return repeat, None
            return (
                lambda focus, env: [
                    any(singleton_bool(crit([v], env)) is True for v in src(focus, env))
                ]
            ), "boolean"
        if name == "exists":
            nargs(0)
            return lifted(lambda c: [bool(c)], "boolean")
        if name == "empty":
            nargs(0)
            return lifted(lambda c: [not c], "boolean")
        if name == "count":
            nargs(0)
            return lifted(lambda c: [len(c)], "integer")
        if name == "first":
            nargs(0)
            return lifted(lambda c: c[:1], base_type)
        if name == "last":
            nargs(0)
            return lifted(lambda c: c[-1:], base_type)
        if name == "tail":
            nargs(0)
            return lifted(lambda c: c[1:], base_type)
        if name == "single":
            nargs(0)

            def single(c: list[Any]) -> list[Any]:
                if len(c) > 1:
                    raise EvaluationError(f"single() found {len(c)} items")
                return c

            return lifted(single, base_type)
        if name in ("skip", "take"):
            nargs(1)
            nf, _ = self.compile(args[0])

            def skip_take(focus: list[Any], env: Env) -> list[Any]:
                n = nf(focus, env)
                k = n[0] if n and isinstance(n[0], int) else 0
                c = src(focus, env)
                return c[k:] if name == "skip" else c[: max(k, 0)]

            return skip_take, base_type
        if name == "distinct":
            nargs(0)

            def distinct(c: list[Any]) -> list[Any]:
                out: list[Any] = []
                for v in c:
                    if not any(_values_equal(v, o) for o in out):
                        out.append(v)
                return out

            return lifted(distinct, base_type)
        if name == "not":
            nargs(0)

            def negate(c: list[Any]) -> list[Any]:
                b = singleton_bool(c)
                return [] if b is None else [not b]

            return lifted(negate, "boolean")
        if name in ("hasValue",):
            nargs(0)
            return lifted(lambda c: [len(c) == 1 and not isinstance(c[0], dict)], "boolean")
        if name in ("allTrue", "anyTrue", "allFalse", "anyFalse"):
            nargs(0)
            checks = {
                "allTrue": lambda c: all(v is True for v in c),
                "anyTrue": lambda c: any(v is True for v in c),
                "allFalse": lambda c: all(v is False for v in c),
                "anyFalse": lambda c: any(v is False for v in c),
            }
            check = checks[name]
            return lifted(lambda c: [check(c)], "boolean")
        if name == "join":
            nargs(0, 1)
            sep_f = self.compile(args[0])[0] if args else None

            def join(focus: list[Any], env: Env) -> list[Any]:
                sep = ""
                if sep_f is not None:
                    s = sep_f(focus, env)
                    sep = str(s[0]) if s else ""
                return [sep.join(str(v) for v in src(focus, env))]

            return join, "string"
        if name == "ofType":
            nargs(1)
            tname = _type_name(args[0])
            return lifted(lambda c: [v for v in c if _matches_type(v, tname)], _bare_type(tname))
        if name == "is":
            nargs(1)
            tname = _type_name(args[0])
            return lifted(lambda c: [_matches_type(c[0], tname)] if len(c) == 1 else [], "boolean")
        if name == "as":
            nargs(1)
            tname = _type_name(args[0])
            return lifted(lambda c: [v for v in c if _matches_type(v, tname)], _bare_type(tname))
        if name == "extension":
            nargs(1)
            url_f, _ = self.compile(args[0])

            def extension(focus: list[Any], env: Env) -> list[Any]:
                url = url_f(focus, env)
                if not url:
                    return []
                out: list[Any] = []
                for item in src(focus, env):
                    if isinstance(item, dict):
                        for ext in item.get("extension") or ():
                            if isinstance(ext, dict) and ext.get("url") == url[0]:
                                out.append(ext)
                return out

            return extension, "Extension"
        if name == "getResourceKey":
            nargs(0)
            return lifted(
                lambda c: [v["id"] for v in c if isinstance(v, dict) and "id" in v][:1], "string"
            )
        if name == "getReferenceKey":
            nargs(0, 1)
            tfilter = _bare_type(_type_name(args[0])) if args else None
            return lifted(_reference_key(tfilter), "string")
        if name in ("lowBoundary", "highBoundary"):
            nargs(0, 1)
            return lifted(_boundary(name == "highBoundary", base_type), base_type)
        if name in ("iif",):
            nargs(2, 3)
            cond, _ = self.compile(args[0])
            then_f, _ = self.compile(args[1])
            else_f = self.compile(args[2])[0] if len(args) == 3 else (lambda focus, env: [])

            def iif(focus: list[Any], env: Env) -> list[Any]:
                c = src(focus, env)
                return then_f(c, env) if singleton_bool(cond(c, env)) is True else else_f(c, env)

            return iif, None
        if name in ("union", "combine", "intersect", "exclude"):
            nargs(1)
            other_f, _ = self.compile(args[0])

            def setop(focus: list[Any], env: Env) -> list[Any]:
                a = src(focus, env)
                b = other_f(focus, env)
                if name == "combine":
                    return a + b
                if name == "intersect":
                    return [v for v in a if any(_values_equal(v, o) for o in b)]
                if name == "exclude":
                    return [v for v in a if not any(_values_equal(v, o) for o in b)]
                out: list[Any] = []
                for v in a + b:
                    if not any(_values_equal(v, o) for o in out):
                        out.append(v)
                return out

            return setop, None
        return self.string_or_conversion(name, args, src, nargs)

    def string_or_conversion(
        self, name: str, args: list[Node], src: Fn, nargs: Callable[..., None]
    ) -> tuple[Fn, str | None]:
        arg_fs = [self.compile(a)[0] for a in args]

        def one_string(focus: list[Any], env: Env) -> str | None:
            c = src(focus, env)
            if not c:
                return None
            if len(c) > 1:
                raise EvaluationError(f"{name}() expects a single item, found {len(c)}")
            return c[0] if isinstance(c[0], str) else None

        def arg(i: int, focus: list[Any], env: Env) -> Any:
            r = arg_fs[i](focus, env)
            return r[0] if r else None

        unary_string = {
            "upper": str.upper,
            "lower": str.lower,
            "length": len,
            "trim": str.strip,
            "toChars": list,
        }
        if name in unary_string:
            nargs(0)
            f = unary_string[name]

            def apply(focus: list[Any], env: Env) -> list[Any]:
                s = one_string(focus, env)
                if s is None:
                    return []
                r = f(s)
                return r if isinstance(r, list) else [r]

            return apply, "integer" if name == "length" else "string"
        if name in (
            "startsWith",
            "endsWith",
            "contains",
            "indexOf",
            "matches",
            "replace",
            "replaceMatches",
            "substring",
            "split",
        ):
            nargs(*{"replace": (2,), "replaceMatches": (2,), "substring": (1, 2)}.get(name, (1,)))
            import re

            def strfn(focus: list[Any], env: Env) -> list[Any]:
                s = one_string(focus, env)
                if s is None:
                    return []
                a0 = arg(0, focus, env)
                if a0 is None:
                    return []
                if name == "startsWith":
                    return [s.startswith(a0)]
                if name == "endsWith":
                    return [s.endswith(a0)]
                if name == "contains":
                    return [a0 in s]
                if name == "indexOf":
                    return [s.find(a0)]
                if name == "matches":
                    return [re.search(a0, s) is not None]
                if name == "split":
                    return s.split(a0)
                if name == "substring":
                    a1 = arg(1, focus, env) if len(arg_fs) > 1 else None
                    if a0 < 0 or a0 >= len(s):
                        return []
                    return [s[a0:] if a1 is None else s[a0 : a0 + a1]]
                a1 = arg(1, focus, env)
                if a1 is None:
                    return []
                if name == "replace":
                    return [s.replace(a0, a1)]
                return [re.sub(a0, a1, s)]

            return strfn, "boolean" if name in (
                "startsWith",
                "endsWith",
                "contains",
                "matches",
            ) else "string"
        if name in ("toString", "toInteger", "toDecimal", "toBoolean"):
            nargs(0)

            def convert(focus: list[Any], env: Env) -> list[Any]:
                c = src(focus, env)
                if len(c) != 1:
                    return []
                v = c[0]
                try:
                    if name == "toString":
                        if isinstance(v, bool):
                            return ["true" if v else "false"]
                        return [str(v)] if not isinstance(v, dict) else []
                    if name == "toInteger":
                        return [int(v)] if not isinstance(v, dict | float) else []
                    if name == "toDecimal":
                        return [Decimal(str(v))] if not isinstance(v, dict | bool) else []
                    if isinstance(v, bool):
                        return [v]
                    text = str(v).lower()
                    return (
                        [True]
                        if text in ("true", "t", "yes", "1")
                        else [False]
                        if text in ("false", "f", "no", "0")
                        else []
                    )
                except (ValueError, InvalidOperation):
                    return []

            return convert, None
        raise CompileError(f"unknown or unsupported function {name}()")


def compile_node(node: Node, constants: dict[str, list[Any]]) -> tuple[Fn, str | None]:
    """Compile a parsed node; return the closure and its static FHIR type when known.

    >>> fn, t = compile_node(parse("1 + 1"), {})
    >>> fn([], Env({})), t
    ([2], None)
    """
    return _Compiler(constants).compile(node)


def compile_expression(text: str, constants: dict[str, list[Any]]) -> Fn:
    """Parse and compile ``text``; raises FhirPathSyntaxError or CompileError.

    >>> compile_expression("a.b.join(',')", {})([{"a": [{"b": "x"}, {"b": "y"}]}], Env({}))
    ['x,y']
    """
    return compile_node(parse(text), constants)[0]


__all__ += ["EvaluationError", "FhirPathSyntaxError"]
