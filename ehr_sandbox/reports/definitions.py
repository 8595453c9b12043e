"""Load the report catalogue: shared ViewDefinitions plus one folder per report.

Package data layout::

    ehr_sandbox/reports/views/<view>.json              ViewDefinitions (table name = file stem)
    ehr_sandbox/reports/catalog/<report>/report.toml   title, description, views, params, columns, plot
    ehr_sandbox/reports/catalog/<report>/report.sql    one DuckDB query over the view tables

An instructor adds a report by adding a folder; nothing here changes.

>>> "day_schedule" in report_names()
True
>>> load_report("day_schedule").views
['appointment', 'patient', 'practitioner']
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from ehr_sandbox.errors import ValidationError
from ehr_sandbox.views import compile_view

__all__ = [
    "ParamSpec",
    "ReportDefinition",
    "load_report",
    "load_view",
    "report_names",
    "view_names",
]

PARAM_TYPES = ("date", "string", "integer", "number", "boolean")


@dataclass(frozen=True)
class ParamSpec:
    """One report parameter: name, type, default (may be relative to the reference date).

    >>> ParamSpec("date", "date", "reference_date", "The day").required
    False
    """

    name: str
    type: str
    default: Any
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class ReportDefinition:
    """A catalogue entry as loaded from its folder.

    >>> load_report("ar_aging").title
    'A/R aging'
    """

    name: str
    title: str
    description: str
    views: list[str]
    params: list[ParamSpec]
    columns: list[str]
    sql: str
    plot: dict[str, Any] = field(default_factory=dict)


def _root() -> Any:
    return resources.files("ehr_sandbox.reports")


@cache
def view_names() -> tuple[str, ...]:
    """Names of the shared report views (each becomes a table of that name).

    >>> "patient" in view_names()
    True
    """
    folder = _root().joinpath("views")
    return tuple(
        sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json"))
    )


@cache
def _view_text(name: str) -> str:
    if name not in view_names():
        raise ValidationError(
            "reports", f"views.{name}", f"one of {', '.join(view_names())}", found=name
        )
    return _root().joinpath("views", f"{name}.json").read_text(encoding="utf-8")


def load_view(name: str) -> dict[str, Any]:
    """A shared view's ViewDefinition (a fresh dict each call).

    >>> load_view("patient")["resource"]
    'Patient'
    """
    return json.loads(_view_text(name))


@cache
def report_names() -> tuple[str, ...]:
    """Names of the catalogue's reports, sorted.

    >>> len(report_names()) >= 16
    True
    """
    folder = _root().joinpath("catalog")
    return tuple(sorted(p.name for p in folder.iterdir() if p.joinpath("report.toml").is_file()))


def _param(report: str, i: int, raw: Any) -> ParamSpec:
    where = f"catalog/{report}/report.toml"
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise ValidationError(where, f"params[{i}].name", "a parameter name", found=raw)
    ptype = raw.get("type", "string")
    if ptype not in PARAM_TYPES:
        raise ValidationError(
            where, f"params[{i}].type", f"one of {', '.join(PARAM_TYPES)}", found=ptype
        )
    return ParamSpec(
        raw["name"],
        ptype,
        raw.get("default"),
        str(raw.get("description", "")),
        bool(raw.get("required", False)),
    )


def _shared_sql(where: str, names: Any) -> str:
    """The shared SQL blocks a report's ``shared`` names (``reports/shared/<name>.sql``), in
    order, each ending where the report's own SQL goes on (one definition of, e.g., the
    ledger's transactions for every billing report)."""
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValidationError(where, "shared", "a list of shared SQL block names", found=names)
    parts = []
    for name in names:
        path = _root().joinpath("shared", f"{name}.sql")
        if not path.is_file():
            raise ValidationError(where, "shared", "names of files in reports/shared/", found=name)
        parts.append(path.read_text(encoding="utf-8").rstrip() + "\n")
    return "".join(parts)


@cache
def load_report(name: str) -> ReportDefinition:
    """Load and check one report definition (its views must compile).

    >>> load_report("nope")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ValidationError: reports: name: expected a catalogue report name (found 'nope'). Known reports: a1c_poor_control, ...
    """
    if name not in report_names():
        raise ValidationError(
            "reports",
            "name",
            "a catalogue report name",
            found=name,
            why=f"Known reports: {', '.join(report_names())}",
        )
    folder = _root().joinpath("catalog", name)
    where = f"catalog/{name}/report.toml"
    meta = tomllib.loads(folder.joinpath("report.toml").read_text(encoding="utf-8"))
    views = meta.get("views", [])
    if not isinstance(views, list) or not views:
        raise ValidationError(where, "views", "a non-empty list of view names", found=views)
    for v in views:
        compile_view(load_view(v))
    params = [_param(name, i, p) for i, p in enumerate(meta.get("params", []))]
    return ReportDefinition(
        name=name,
        title=str(meta.get("title", name)),
        description=str(meta.get("description", "")),
        views=list(views),
        params=params,
        columns=list(meta.get("columns", [])),
        sql=_shared_sql(where, meta.get("shared", []))
        + folder.joinpath("report.sql").read_text(encoding="utf-8").strip().rstrip(";"),
        plot=dict(meta.get("plot", {})),
    )
