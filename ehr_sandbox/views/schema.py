"""FHIR element cardinality and types, read from the project's FHIR models.

The DuckDB compiler needs to know, without looking at data, whether ``Patient.name`` is a list
(it is) and that ``HumanName.family`` is a string, so it can write a JSONPath such as
``$.name[*].family``. The models are reached only through :mod:`synthetic.fhir`.

>>> field_info("Patient", "name")
(True, 'HumanName')
>>> field_info("Patient", "birthDate")
(False, 'date')
>>> field_info("Patient", "nope") is None
True
"""

from __future__ import annotations

import typing
from functools import cache
from typing import Any

from synthetic.fhir import model_class

__all__ = ["field_info", "is_primitive", "value_kind"]

_PY_PRIMITIVES = {bool: "boolean", int: "integer", str: "string"}


def _unwrap(annotation: Any) -> tuple[bool, Any, list[Any]]:
    """(is_list, innermost type, Annotated metadata) of a pydantic field annotation."""
    is_list = False
    metadata: list[Any] = []
    t = annotation
    for _ in range(8):
        origin = typing.get_origin(t)
        args = typing.get_args(t)
        if origin is typing.Annotated:
            metadata.extend(args[1:])
            t = args[0]
        elif origin in (list, typing.List):  # noqa: UP006 - the models use typing.List
            is_list = True
            t = args[0]
        elif args and type(None) in args:  # Optional[X] / X | None
            rest = [a for a in args if a is not type(None)]
            t = rest[0]
        else:
            break
    return is_list, t, metadata


def _type_name(t: Any, metadata: list[Any]) -> str | None:
    for meta in metadata:
        name = type(meta).__name__
        if name and name[0].isupper():
            return name[0].lower() + name[1:]
    if t in _PY_PRIMITIVES:
        return _PY_PRIMITIVES[t]
    name = getattr(t, "__name__", "")
    if name == "Decimal":
        return "decimal"
    if name.endswith("Type") and name[:1].isupper():
        return name[: -len("Type")]
    return name or None


@cache
def field_info(type_name: str, field: str) -> tuple[bool, str] | None:
    """(is_list, FHIR type of the child) for ``type_name.field``, or None when unknown.

    >>> field_info("Observation", "valueQuantity")
    (False, 'Quantity')
    >>> field_info("Encounter", "class")
    (False, 'Coding')
    """
    try:
        cls = model_class(type_name)
    except KeyError:
        return None
    fields = getattr(cls, "model_fields", {})
    spec = fields.get(field)
    if spec is None:
        # Python keywords are renamed in the models (class -> class_fhir) but keep their alias.
        spec = next((f for f in fields.values() if f.alias == field), None)
    if spec is None or field == "fhir_comments" or field.endswith("__ext"):
        return None
    is_list, inner, metadata = _unwrap(spec.annotation)
    child = _type_name(inner, metadata)
    if child is None:
        return None
    return is_list, child


def is_primitive(type_name: str | None) -> bool:
    """True for FHIR primitive type names (lower-case first letter).

    >>> is_primitive("date"), is_primitive("HumanName"), is_primitive(None)
    (True, False, False)
    """
    return bool(type_name) and type_name[:1].islower()  # type: ignore[index]


def value_kind(type_name: str | None) -> str | None:
    """SQL value kind for a FHIR type: text, int, num, bool, json (complex) or None (unknown).

    >>> value_kind("positiveInt"), value_kind("decimal"), value_kind("code"), value_kind("Coding")
    ('int', 'num', 'text', 'json')
    """
    if not type_name:
        return None
    if type_name == "boolean":
        return "bool"
    if type_name in ("integer", "positiveInt", "unsignedInt", "integer64"):
        return "int"
    if type_name == "decimal":
        return "num"
    if is_primitive(type_name):
        return "text"
    return "json"
