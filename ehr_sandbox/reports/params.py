"""Resolve and check report parameters (values are bound as SQL parameters, never formatted in).

Defaults may be relative to the sandbox's reference date, never to "today":
``reference_date``, ``reference_date-365d`` / ``+30d``, ``year_start``, ``year_end``.

>>> from datetime import date
>>> resolve_default("reference_date-1d", date(2026, 1, 1))
datetime.date(2025, 12, 31)
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

from ehr_sandbox.errors import ValidationError
from ehr_sandbox.reports.definitions import ParamSpec, ReportDefinition

__all__ = ["bind_params", "resolve_default"]

_RELATIVE = re.compile(r"^reference_date(?:([+-])(\d+)d)?$")


def resolve_default(default: Any, reference_date: date) -> Any:
    """Turn a default written in report.toml into a value.

    >>> resolve_default("year_start", date(2026, 5, 2)), resolve_default(7, date(2026, 5, 2))
    (datetime.date(2026, 1, 1), 7)
    """
    if not isinstance(default, str):
        return default
    m = _RELATIVE.match(default)
    if m:
        days = int(m.group(2) or 0)
        return reference_date + timedelta(days=-days if m.group(1) == "-" else days)
    if default == "year_start":
        return date(reference_date.year, 1, 1)
    if default == "year_end":
        return date(reference_date.year, 12, 31)
    return default


def _coerce(report: str, spec: ParamSpec, value: Any) -> Any:
    where = f"report {report}"
    if value is None:
        if spec.required:
            raise ValidationError(
                where, spec.name, f"a {spec.type} value (this parameter is required)", found=None
            )
        return None
    if spec.type == "date":
        if isinstance(value, datetime):
            return value.date().isoformat()
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, str):
            try:
                return date.fromisoformat(value).isoformat()
            except ValueError:
                pass
        raise ValidationError(
            where, spec.name, "a date (datetime.date or 'YYYY-MM-DD')", found=value
        )
    if spec.type == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ValidationError(where, spec.name, "an integer", found=value)
    if spec.type == "number":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ValidationError(where, spec.name, "a number", found=value)
    if spec.type == "boolean":
        if isinstance(value, bool):
            return value
        raise ValidationError(where, spec.name, "true or false", found=value)
    if isinstance(value, str):
        # A patient may be given as "Patient/abc" or "abc"; the views key patients by id.
        return (
            value.split("/", 1)[1]
            if spec.name == "patient" and value.startswith("Patient/")
            else value
        )
    raise ValidationError(where, spec.name, "a string", found=value)


def bind_params(
    definition: ReportDefinition, given: dict[str, Any], reference_date: date
) -> dict[str, Any]:
    """Values for every parameter of ``definition`` (defaults filled, types checked).

    >>> from ehr_sandbox.reports.definitions import load_report
    >>> bind_params(load_report("day_schedule"), {}, date(2026, 1, 5))
    {'date': '2026-01-05'}
    """
    known = {p.name for p in definition.params}
    unknown = sorted(set(given) - known)
    if unknown:
        expected = ", ".join(sorted(known)) or "no parameters"
        raise ValidationError(
            f"report {definition.name}",
            unknown[0],
            f"one of its parameters: {expected}",
            found=unknown[0],
        )
    out: dict[str, Any] = {}
    for spec in definition.params:
        value = (
            given[spec.name]
            if spec.name in given
            else resolve_default(spec.default, reference_date)
        )
        out[spec.name] = _coerce(definition.name, spec, value)
    return out
