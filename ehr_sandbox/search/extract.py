"""Index values extracted from a resource at write time, one function per parameter type.

A row is ``(param, s, x, sys, lo, hi, num)``:

- string: ``s`` normalized (case/accent-folded), ``x`` the exact text;
- token / uri: ``sys`` the system, ``s`` the code (or identifier/contact value);
- reference: ``s`` the target as ``Type/id``;
- date: ``[lo, hi)`` in epoch seconds;
- quantity / number: ``num`` the value, ``sys``/``s`` the unit system/code, ``x`` the unit text.

>>> obs = {"resourceType": "Observation", "id": "o1", "status": "final",
...        "subject": {"reference": "Patient/p1"},
...        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}}
>>> sorted(r for r in index_rows(obs) if r[0] in ("code", "patient"))
[('code', '8480-6', None, 'http://loinc.org', None, None, None), ('patient', 'Patient/p1', None, None, None, None, None)]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from functools import cache, lru_cache
from typing import Any

from ehr_sandbox.references import split_reference
from ehr_sandbox.search.registry import SearchParam, covering_param, params_for
from ehr_sandbox.search.values import date_range, normalize_string

Row = tuple[str, str | None, str | None, str | None, float | None, float | None, float | None]
"""One index row (without the resource's type and id)."""

Step = tuple[str, tuple[str, str] | None]


@cache
def _compile_path(path: str) -> tuple[Step, ...]:
    steps: list[Step] = []
    for part in path.split("."):
        if "[" in part:
            name, cond = part[:-1].split("[", 1)
            key, val = cond.split("=", 1)
            steps.append((name, (key, val)))
        else:
            steps.append((part, None))
    return tuple(steps)


def walk(node: Any, path: str) -> Iterator[Any]:
    """Every value at ``path`` below ``node`` (lists are flattened, filters applied).

    >>> list(walk({"telecom": [{"system": "phone", "value": "1"}, {"system": "email", "value": "a"}]},
    ...           "telecom[system=phone].value"))
    ['1']
    """
    current = [node]
    for name, cond in _compile_path(path):
        nxt: list[Any] = []
        for item in current:
            if not isinstance(item, dict):
                continue
            v = item.get(name)
            if v is None:
                continue
            for x in v if isinstance(v, list) else (v,):
                if cond is None or (isinstance(x, dict) and str(x.get(cond[0])) == cond[1]):
                    nxt.append(x)
        current = nxt
    return iter(current)


def _string_values(v: Any) -> Iterator[str]:
    if isinstance(v, str):
        yield v
    elif isinstance(v, dict):
        # HumanName and Address: every part is searchable on its own, as on FHIR servers
        for key in ("text", "family", "city", "district", "state", "postalCode", "country"):
            part = v.get(key)
            if isinstance(part, str):
                yield part
        for key in ("given", "prefix", "suffix", "line"):
            for part in v.get(key) or ():
                if isinstance(part, str):
                    yield part


def string_rows(param: str, v: Any) -> Iterator[Row]:
    """Rows of a string parameter.

    >>> list(string_rows("family", "Álvarez"))
    [('family', 'alvarez', 'Álvarez', None, None, None, None)]
    """
    for text in _string_values(v):
        yield (param, normalize_string(text), text, None, None, None, None)


def token_rows(param: str, v: Any) -> Iterator[Row]:
    """Rows of a token parameter (code, Coding, CodeableConcept, Identifier, ContactPoint, boolean).

    >>> list(token_rows("identifier", {"system": "urn:mrn", "value": "M1"}))
    [('identifier', 'M1', None, 'urn:mrn', None, None, None)]
    """
    if isinstance(v, bool):
        yield (param, "true" if v else "false", None, None, None, None, None)
    elif isinstance(v, str):
        yield (param, v, None, None, None, None, None)
    elif isinstance(v, dict):
        if "coding" in v or ("text" in v and "code" not in v and "value" not in v):
            for c in v.get("coding") or ():
                yield from token_rows(param, c)
        elif "code" in v:
            yield (param, str(v["code"]), None, v.get("system"), None, None, None)
        elif "value" in v:
            yield (param, str(v["value"]), None, v.get("system"), None, None, None)


def reference_rows(param: str, v: Any, targets: tuple[str, ...] = ()) -> Iterator[Row]:
    """Rows of a reference parameter, limited to ``targets`` when given.

    >>> list(reference_rows("subject", {"reference": "Group/g1"}, ("Patient",)))
    []
    """
    ref = v.get("reference") if isinstance(v, dict) else v if isinstance(v, str) else None
    if not isinstance(ref, str):
        return
    parts = split_reference(ref)
    if parts is None or (targets and parts[0] not in targets):
        return
    yield (param, f"{parts[0]}/{parts[1]}", None, None, None, None, None)


def date_rows(param: str, v: Any) -> Iterator[Row]:
    """Rows of a date parameter (date, dateTime, instant, Period).

    >>> list(date_rows("date", {"start": "2020-01-01"}))[0][4:6]
    (1577836800.0, inf)
    """
    if isinstance(v, str):
        rng = date_range(v)
        if rng:
            yield (param, None, None, None, rng[0], rng[1], None)
    elif isinstance(v, dict) and ("start" in v or "end" in v):
        start = date_range(v["start"]) if isinstance(v.get("start"), str) else None
        end = date_range(v["end"]) if isinstance(v.get("end"), str) else None
        lo = start[0] if start else -math.inf
        hi = end[1] if end else math.inf
        yield (param, None, None, None, lo, hi, None)


def quantity_rows(param: str, v: Any) -> Iterator[Row]:
    """Rows of a quantity (Quantity, Money, Age, ...) or number parameter.

    >>> list(quantity_rows("value-quantity", {"value": 120, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}))
    [('value-quantity', 'mm[Hg]', 'mmHg', 'http://unitsofmeasure.org', None, None, 120.0)]
    """
    if isinstance(v, bool):
        return
    if isinstance(v, int | float):
        yield (param, None, None, None, None, None, float(v))
    elif isinstance(v, dict) and isinstance(v.get("value"), int | float):
        code = v.get("code") or v.get("currency")
        yield (param, code, v.get("unit"), v.get("system"), None, None, float(v["value"]))


_BY_TYPE: dict[str, Callable[[str, Any], Iterator[Row]]] = {
    "string": string_rows,
    "token": token_rows,
    "uri": token_rows,
    "date": date_rows,
    "quantity": quantity_rows,
    "number": quantity_rows,
}


def param_rows(p: SearchParam, resource: dict[str, Any]) -> list[Row]:
    """Every index row of one parameter for ``resource``.

    >>> from ehr_sandbox.search.registry import lookup
    >>> param_rows(lookup("Patient", "gender"), {"resourceType": "Patient", "gender": "female"})
    [('gender', 'female', None, None, None, None, None)]
    """
    out: list[Row] = []
    for path in p.paths:
        for v in walk(resource, path):
            if p.type == "reference":
                out.extend(reference_rows(p.name, v, p.targets))
            elif p.type in _BY_TYPE:
                out.extend(_BY_TYPE[p.type](p.name, v))
    return out


@cache
def _indexed_params(resource_type: str) -> tuple[SearchParam, ...]:
    return tuple(p for p in params_for(resource_type).values() if p.type != "special")


def index_rows(resource: dict[str, Any]) -> list[Row]:
    """Every index row of ``resource`` across its type's parameters (``_id`` is not indexed).

    >>> len(index_rows({"resourceType": "Patient", "id": "p", "gender": "male", "birthDate": "2000"}))
    2
    """
    out: list[Row] = []
    for p in _indexed_params(resource.get("resourceType", "")):
        out.extend(param_rows(p, resource))
    return out


_Plan = tuple[tuple[SearchParam, tuple[tuple[Step, ...], ...], frozenset[str]], ...]


@cache
def _store_plan(resource_type: str, skip: frozenset[str]) -> _Plan:
    plan = []
    for p in _indexed_params(resource_type):
        if p.name in skip:
            continue
        covered = covering_param(resource_type, p.name)
        drop = frozenset(params_for(resource_type)[covered].targets) if covered else frozenset()
        plan.append((p, tuple(_compile_path(path) for path in p.paths), drop))
    return tuple(plan)


def _values(node: dict[str, Any], steps: tuple[Step, ...]) -> list[Any]:
    if len(steps) == 1 and steps[0][1] is None:
        v = node.get(steps[0][0])
        if v is None:
            return []
        return v if isinstance(v, list) else [v]
    current: list[Any] = [node]
    for name, cond in steps:
        nxt: list[Any] = []
        for item in current:
            if not isinstance(item, dict):
                continue
            v = item.get(name)
            if v is None:
                continue
            for x in v if isinstance(v, list) else (v,):
                if cond is None or (isinstance(x, dict) and str(x.get(cond[0])) == cond[1]):
                    nxt.append(x)
        current = nxt
    return current


def stored_rows(resource: dict[str, Any], skip: frozenset[str] = frozenset()) -> list[Row]:
    """The index rows a store writes for ``resource``: :func:`index_rows` without the
    parameters in ``skip`` and without a reference a narrower parameter already holds (see
    :func:`~ehr_sandbox.search.registry.covering_param`).

    >>> obs = {"resourceType": "Observation", "subject": {"reference": "Patient/p1"}}
    >>> [r[0] for r in index_rows(obs)], [r[0] for r in stored_rows(obs)]
    (['patient', 'subject'], ['patient'])
    """
    out: list[Row] = []
    for p, paths, drop in _store_plan(resource.get("resourceType", ""), skip):
        ptype = p.type
        for steps in paths:
            for v in _values(resource, steps):
                if ptype == "reference":
                    ref = v.get("reference") if isinstance(v, dict) else v
                    if not isinstance(ref, str):
                        continue
                    key = _reference_key(ref)
                    if key is None or (p.targets and key[0] not in p.targets) or key[0] in drop:
                        continue
                    out.append((p.name, key[1], None, None, None, None, None))
                elif ptype == "token" or ptype == "uri":
                    _token_into(p.name, v, out)
                elif ptype == "date" and isinstance(v, str):
                    rng = _date_range(v)
                    if rng:
                        out.append((p.name, None, None, None, rng[0], rng[1], None))
                else:
                    out.extend(_BY_TYPE[ptype](p.name, v))
    return out


_date_range = lru_cache(maxsize=1 << 16)(date_range)


def _token_into(name: str, v: Any, out: list[Row]) -> None:
    # token_rows without generators for the common shapes (a code, a Coding, a
    # CodeableConcept of Codings); anything else goes through token_rows itself
    if type(v) is str:
        out.append((name, v, None, None, None, None, None))
        return
    if type(v) is dict and "coding" in v:
        for c in v["coding"] or ():
            if type(c) is dict and "coding" not in c and "code" in c:
                out.append((name, str(c["code"]), None, c.get("system"), None, None, None))
            else:
                out.extend(token_rows(name, c))
        return
    out.extend(token_rows(name, v))


@lru_cache(maxsize=1 << 16)
def _reference_key(ref: str) -> tuple[str, str] | None:
    # (target type, "Type/id") of a literal reference; a clinic repeats the same few often
    parts = split_reference(ref)
    return None if parts is None else (parts[0], f"{parts[0]}/{parts[1]}")
