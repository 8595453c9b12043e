"""Small shared pieces of FHIR JSON (codings, quantities, categories), built once.

>>> from synthetic.systems import LOINC
>>> cc(LOINC, "8867-4", "Heart rate")
{'coding': [{'system': 'http://loinc.org', 'code': '8867-4', 'display': 'Heart rate'}], 'text': 'Heart rate'}
>>> qty(72, "/min")
{'value': 72, 'unit': '/min', 'system': 'http://unitsofmeasure.org', 'code': '/min'}
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from synthetic.frozen import FrozenDict, freeze
from synthetic.systems import (
    CONDITION_CATEGORY,
    CONDITION_CLINICAL,
    CONDITION_VER_STATUS,
    OBSERVATION_CATEGORY,
    UCUM,
    V2_0074,
    V3_ACT_CODE,
    V3_OBSERVATION_INTERPRETATION,
)

OBS_CATEGORY = OBSERVATION_CATEGORY
CONDITION_VER = CONDITION_VER_STATUS
V3_ACTCODE = V3_ACT_CODE
INTERPRETATION = V3_OBSERVATION_INTERPRETATION


def coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    """A Coding dict.

    >>> coding(UCUM, "kg")
    {'system': 'http://unitsofmeasure.org', 'code': 'kg'}
    """
    c = {"system": system, "code": code}
    if display:
        c["display"] = display
    return c


def cc(
    system: str, code: str, display: str | None = None, text: str | None = None
) -> dict[str, Any]:
    """A CodeableConcept with one coding (text = ``text`` or the display).

    >>> from synthetic.systems import SNOMED
    >>> cc(SNOMED, "1", "x", text="y")["text"]
    'y'
    """
    out: dict[str, Any] = {"coding": [coding(system, code, display)]}
    if text or display:
        out["text"] = text or display
    return out


# shared quantities by unit, then by value (72 and 72.0 are equal keys but serialise
# differently: ints and floats have their own tables); at most _QTY_LIMIT in all
_QTY_INT: dict[str, dict[float | int, dict[str, Any]]] = {}
_QTY_FLOAT: dict[str, dict[float | int, dict[str, Any]]] = {}
_QTY_LIMIT = 100_000
_qty_count = 0


def qty(value: float | int, unit: str) -> dict[str, Any]:
    """A UCUM Quantity (``unit`` is the UCUM code and the human unit).

    Measured values repeat a lot (a heart rate of 72/min...), so quantities are shared from a
    bounded cache: fewer objects to build and free (frozen: see :mod:`synthetic.frozen`).

    >>> qty(1.5, "kg")["value"], qty(1.5, "kg") is qty(1.5, "kg")
    (1.5, True)
    >>> qty(0.0, "kg")["value"], qty(-0.0, "kg")["value"]
    (0.0, -0.0)
    """
    global _qty_count
    t = type(value)
    # 0.0 and -0.0 are one key but serialise differently: a zero float is never shared
    table = _QTY_INT if t is int else _QTY_FLOAT if t is float and value else None
    by_value = None if table is None else table.get(unit)
    q = None if by_value is None else by_value.get(value)
    if q is None:
        if table is None or _qty_count >= _QTY_LIMIT:
            return {"value": value, "unit": unit, "system": UCUM, "code": unit}
        if by_value is None:
            by_value = table[unit] = {}
        q = by_value[value] = FrozenDict(value=value, unit=unit, system=UCUM, code=unit)
        _qty_count += 1
    return q


def qty_tables(unit: str) -> tuple[dict[Any, dict[str, Any]], dict[Any, dict[str, Any]]]:
    """:func:`qty`'s own (ints, floats) tables of ``unit``: value -> shared quantity.

    For hot loops that look a value up themselves (one dict lookup, no call) and call
    :func:`qty` on a miss, which fills the table (within its bound). A unit's tables are made
    on first use (units come from content, so there are few).

    >>> ints, floats = qty_tables("/min")
    >>> ints.get(72) or qty(72, "/min")
    {'value': 72, 'unit': '/min', 'system': 'http://unitsofmeasure.org', 'code': '/min'}
    >>> ints[72] is qty(72, "/min"), 72 in floats
    (True, False)
    """
    ints = _QTY_INT.get(unit)
    if ints is None:
        ints = _QTY_INT[unit] = {}
    floats = _QTY_FLOAT.get(unit)
    if floats is None:
        floats = _QTY_FLOAT[unit] = {}
    return ints, floats


class SharedRefs(dict):  # type: ignore[type-arg]
    """Reference text -> its shared (frozen) Reference dict, at most 10,000 of them (past that,
    a new plain dict each time).

    :func:`shared_ref` is this table's ``__getitem__``: a reference already made costs one
    dict lookup in C, no Python call.

    >>> refs = SharedRefs(); refs["Location/main"] is refs["Location/main"]
    True
    """

    __slots__ = ()

    def __missing__(self, reference: str) -> dict[str, str]:
        if len(self) >= 10_000:
            return {"reference": reference}
        r = self[reference] = FrozenDict(reference=reference)
        return r


_REFS = SharedRefs()
shared_ref: Callable[[str], dict[str, str]] = _REFS.__getitem__
"""A Reference to a shared practice resource (clinician, room, organisation), the same dict
every time (a bounded cache, see :class:`SharedRefs`; frozen: see :mod:`synthetic.frozen`).

>>> shared_ref("Location/main") is shared_ref("Location/main")
True
"""


_USD: dict[tuple[float | int, bool], dict[str, Any]] = {}


def usd(value: float | int) -> dict[str, Any]:
    """A USD Money of exactly ``value``, shared from a bounded cache (amounts repeat: fees,
    copays, shares of them; frozen: see :mod:`synthetic.frozen`).

    >>> usd(25.0), usd(25.0) is usd(25.0), usd(25)
    ({'value': 25.0, 'currency': 'USD'}, True, {'value': 25, 'currency': 'USD'})
    """
    if not value:  # 0, 0.0 and -0.0 serialise differently: never shared
        return {"value": value, "currency": "USD"}
    key = (value, type(value) is int)
    m = _USD.get(key)
    if m is None:
        if len(_USD) >= 50_000:
            return {"value": value, "currency": "USD"}
        m = _USD[key] = FrozenDict(value=value, currency="USD")
    return m


_CENTS: dict[float, dict[str, Any]] = {}


def usd_cents(value: float) -> dict[str, Any]:
    """``usd(round(value, 2))``: a USD Money rounded to the cent (shared, see :func:`usd`).

    Rounding is the costly part and amounts repeat, so float amounts are looked up in a
    bounded cache first (an int rounds to an int, which serialises differently: not cached).

    >>> usd_cents(12.344), usd_cents(7), usd_cents(0.001)
    ({'value': 12.34, 'currency': 'USD'}, {'value': 7, 'currency': 'USD'}, {'value': 0.0, 'currency': 'USD'})
    """
    if type(value) is not float:
        return usd(round(value, 2))
    m = _CENTS.get(value)
    if m is None:
        m = usd(round(value, 2))
        if type(m) is FrozenDict and len(_CENTS) < 50_000:  # a zero is never shared
            _CENTS[value] = m
    return m


def money(value: float) -> dict[str, Any]:
    """A USD Money with two decimals (shared, see :func:`usd`).

    >>> money(12.345)
    {'value': 12.35, 'currency': 'USD'}
    """
    return usd_cents(value + 1e-9)


@cache
def category(system: str, code: str, display: str) -> list[dict[str, Any]]:
    """A shared one-element category list.

    >>> category(OBS_CATEGORY, "exam", "Exam")[0]["coding"][0]["code"]
    'exam'
    """
    return freeze([{"coding": [coding(system, code, display)]}])  # type: ignore[no-any-return]


VITAL_SIGNS = category(OBS_CATEGORY, "vital-signs", "Vital Signs")
LABORATORY = category(OBS_CATEGORY, "laboratory", "Laboratory")
SOCIAL_HISTORY = category(OBS_CATEGORY, "social-history", "Social History")
EXAM = category(OBS_CATEGORY, "exam", "Exam")
SURVEY = category(OBS_CATEGORY, "survey", "Survey")
PROBLEM_LIST = category(CONDITION_CATEGORY, "problem-list-item", "Problem List Item")
ENCOUNTER_DX = category(CONDITION_CATEGORY, "encounter-diagnosis", "Encounter Diagnosis")
LAB_REPORT = category(V2_0074, "LAB", "Laboratory")
ACTIVE = freeze(cc(CONDITION_CLINICAL, "active", "Active"))
RESOLVED = freeze(cc(CONDITION_CLINICAL, "resolved", "Resolved"))
CONFIRMED = freeze(cc(CONDITION_VER, "confirmed", "Confirmed"))
AMBULATORY = freeze(coding(V3_ACTCODE, "AMB", "ambulatory"))
INTERP = {
    "H": freeze([cc(INTERPRETATION, "H", "High")]),
    "L": freeze([cc(INTERPRETATION, "L", "Low")]),
    "N": freeze([cc(INTERPRETATION, "N", "Normal")]),
}
