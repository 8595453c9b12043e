"""Vital-sign Observations (US Core vital-signs profiles, UCUM units).

>>> import random
>>> from synthetic.context import RecordContext
>>> ctx = RecordContext("p", random.Random(0))
>>> ctx.encounter, ctx.when = {"reference": "Encounter/e"}, "2025-01-02T09:00:00-05:00"
>>> o = vital(ctx, {"text": "Heart rate"}, "8867-4", 72, "/min")
>>> o["valueQuantity"]["value"], o["category"][0]["coding"][0]["code"]
(72, 'vital-signs')
>>> bp = blood_pressure(ctx, {"text": "BP"}, {"text": "Sys"}, {"text": "Dia"}, 120, 80)
>>> [c["valueQuantity"]["value"] for c in bp["component"]]
[120, 80]
"""

from __future__ import annotations

from typing import Any

from synthetic.builders.common import EXAM, VITAL_SIGNS, qty
from synthetic.context import RecordContext
from synthetic.frozen import FrozenDict
from synthetic.labels import meta

_META: dict[str, dict[str, Any]] = {}
ORDINALS: tuple[str, ...] = tuple(str(i) for i in range(4096))
"""``str(i)`` of the small ordinals, built once: ids numbered without a ``str()`` call."""
ORDINAL_LIMIT = len(ORDINALS)
_QTYS: dict[str, tuple[dict[Any, dict[str, Any]], dict[Any, dict[str, Any]]]] = {}
QTY_TABLE_LIMIT = 4096
"""Most values one quantity table remembers."""


def qty_tables(unit: str) -> tuple[dict[Any, dict[str, Any]], dict[Any, dict[str, Any]]]:
    """The (ints, floats) quantity tables of ``unit``: measured values to their shared
    ``qty(value, unit)``, for callers that look a value up in its table themselves (one dict
    lookup instead of a call); fill them with :func:`remember_qty`. 72 and 72.0 are equal keys
    but serialise differently, hence a table per type.

    >>> ints, floats = qty_tables("/min")
    >>> remember_qty(ints, 72, "/min") is ints[72] is qty_tables("/min")[0].get(72)
    True
    """
    tables = _QTYS.get(unit)
    if tables is None:
        tables = ({}, {})
        if len(_QTYS) < 256:
            _QTYS[unit] = tables
    return tables


def remember_qty(table: dict[Any, dict[str, Any]], value: Any, unit: str) -> dict[str, Any]:
    """``qty(value, unit)``, kept in ``table`` (one of :func:`qty_tables`; value of its type)
    when it is a shared (frozen) quantity and the table has room.

    >>> table: dict = {}
    >>> remember_qty(table, 36.6, "Cel") is table[36.6]
    True
    """
    q = qty(value, unit)
    if type(q) is FrozenDict and len(table) < QTY_TABLE_LIMIT:
        table[value] = q
    return q


def vital_meta(loinc: str) -> dict[str, Any]:
    """The ``meta`` of a vital sign Observation with code ``loinc`` (shared, see
    :func:`synthetic.labels.meta`; one cached lookup).

    >>> vital_meta("8867-4")["profile"]
    ['http://hl7.org/fhir/us/core/StructureDefinition/us-core-heart-rate']
    """
    m = _META.get(loinc)
    if m is None:
        m = meta(loinc)
        if len(_META) < 1024:
            _META[loinc] = m
    return m


def vital(
    ctx: RecordContext,
    code: dict[str, Any],
    loinc: str,
    value: float | int,
    unit: str,
    *,
    category: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A vital-sign (or other measured exam) Observation at the current encounter.

    >>> import random
    >>> c = RecordContext("p", random.Random(0)); c.encounter, c.when = {"reference": "Encounter/e"}, "t"
    >>> vital(c, {"text": "Body weight"}, "29463-7", 70.5, "kg")["id"]
    'p-obs-0'
    """
    # id inlined (same ids as ctx.new_id("obs"))
    m = vital_meta(loinc)
    counters = ctx.counters
    n = counters.get("obs", 0)
    counters["obs"] = n + 1
    return {
        "resourceType": "Observation",
        "id": f"{ctx.base}-obs-{n}",
        "meta": m,
        "status": "final",
        "category": category or VITAL_SIGNS,
        "code": code,
        "subject": ctx.subject,
        "encounter": ctx.encounter,
        "effectiveDateTime": ctx.when,
        "performer": ctx.performer,
        "valueQuantity": qty(value, unit),
    }


def blood_pressure(
    ctx: RecordContext,
    panel: dict[str, Any],
    systolic_code: dict[str, Any],
    diastolic_code: dict[str, Any],
    systolic: int,
    diastolic: int,
) -> dict[str, Any]:
    """The blood pressure panel (85354-9) with systolic and diastolic components in mm[Hg].

    >>> import random
    >>> c = RecordContext("p", random.Random(0)); c.encounter, c.when = {"reference": "Encounter/e"}, "t"
    >>> blood_pressure(c, {}, {}, {}, 118, 76)["component"][0]["valueQuantity"]["code"]
    'mm[Hg]'
    """
    return {
        "resourceType": "Observation",
        "id": ctx.new_id("obs"),
        "meta": meta("85354-9"),
        "status": "final",
        "category": VITAL_SIGNS,
        "code": panel,
        "subject": ctx.subject,
        "encounter": ctx.encounter,
        "effectiveDateTime": ctx.when,
        "performer": ctx.performer,
        "component": [
            {"code": systolic_code, "valueQuantity": qty(systolic, "mm[Hg]")},
            {"code": diastolic_code, "valueQuantity": qty(diastolic, "mm[Hg]")},
        ],
    }


def exam_observation(ctx: RecordContext, code: dict[str, Any], value: Any) -> dict[str, Any]:
    """An exam finding (specialty assessment) as a quantity, string or coded value.

    >>> import random
    >>> from synthetic.context import RecordContext
    >>> c = RecordContext("p", random.Random(0)); c.encounter, c.when = {"reference": "Encounter/e"}, "t"
    >>> exam_observation(c, {"text": "Visual acuity"}, "20/20")["valueString"]
    '20/20'
    """
    o: dict[str, Any] = {
        "resourceType": "Observation",
        "id": ctx.new_id("obs"),
        "meta": meta("exam"),
        "status": "final",
        "category": EXAM,
        "code": code,
        "subject": ctx.subject,
        "encounter": ctx.encounter,
        "effectiveDateTime": ctx.when,
        "performer": ctx.performer,
    }
    if isinstance(value, str):
        o["valueString"] = value
    elif isinstance(value, dict) and "coding" in value:
        o["valueCodeableConcept"] = value
    elif isinstance(value, dict):
        o["valueQuantity"] = value
    else:
        o["valueInteger"] = value
    return o
