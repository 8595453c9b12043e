"""Run catalogue reports (and custom SQL) over a data source in DuckDB.

The source is anything with ``.resources(resource_type) -> Iterable[dict]`` and
``.reference_date``; the Session passes itself (already policy-filtered and masked), so a report
never sees rows or fields its user may not. An optional ``.audit_events()`` feeds the
``audit_event`` view. Each view runs once per ``Reports`` object (over a Session: once per
report run, so what the session may see now decides) and is registered in DuckDB as
an Arrow table named after the view; the report's SQL joins them with its parameters bound as
SQL parameters.

>>> from datetime import date
>>> class Source:
...     reference_date = date(2026, 1, 5)
...     def resources(self, resource_type):
...         return [{"resourceType": "Patient", "id": "p1", "gender": "female"}] if resource_type == "Patient" else []
>>> reports = Reports(Source())
>>> reports.sql("SELECT id, gender FROM patient").to_pylist()
[{'id': 'p1', 'gender': 'female'}]
"""

from __future__ import annotations

import re
import threading
from datetime import date
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from ehr_sandbox.access.labels import CONFIDENTIALITY_ORDER, highest_confidentiality
from ehr_sandbox.errors import AccessDenied, ValidationError
from ehr_sandbox.reports.definitions import load_report, load_view, report_names, view_names
from ehr_sandbox.reports.params import bind_params, resolve_default
from ehr_sandbox.reports.report import Report

if TYPE_CHECKING:
    import pandas as pd
from ehr_sandbox.views import run_arrow

__all__ = ["Reports"]

_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_SAFE_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}

QUERY_SECONDS = 20.0
"""Longest a report query may run before it is interrupted."""

QUERY_MEMORY = "1GB"
"""DuckDB memory limit of a report query."""

QUERY_ROWS = 200_000
"""Most rows a report query may return."""


class Reports:
    """The report catalogue bound to one data source.

    >>> from datetime import date
    >>> class Empty:
    ...     reference_date = date(2026, 1, 1)
    ...     def resources(self, resource_type):
    ...         return []
    >>> len(Reports(Empty()).run("day_schedule"))
    0
    """

    def __init__(self, source: Any, *, engine: str = "auto") -> None:
        if not hasattr(source, "resources"):
            raise ValidationError(
                "Reports",
                "source",
                "an object with .resources(resource_type)",
                found=type(source).__name__,
            )
        self.source = source
        self.engine = engine
        self._tables: dict[str, pa.Table] = {}
        self._labels: dict[str, str] = {}

    @property
    def reference_date(self) -> date:
        """The source's reference date ("today" for defaults), as a date.

        >>> class S:
        ...     reference_date = "2026-01-05"
        ...     def resources(self, t):
        ...         return []
        >>> Reports(S()).reference_date
        datetime.date(2026, 1, 5)
        """
        ref = getattr(self.source, "reference_date", None)
        if isinstance(ref, date):
            return ref
        if isinstance(ref, str):
            return date.fromisoformat(ref[:10])
        raise ValidationError("Reports", "source.reference_date", "a date", found=ref)

    def catalog(self) -> pd.DataFrame:
        """The report catalogue as a table (like ``exercises.catalog()``): one row per report
        with name, title, description, views, params (with resolved defaults), columns, plot.

        >>> from datetime import date
        >>> class S:
        ...     reference_date = date(2026, 1, 1)
        ...     def resources(self, t):
        ...         return []
        >>> table = Reports(S()).catalog()
        >>> type(table).__name__, "day_schedule" in set(table["name"])
        ('DataFrame', True)
        >>> entry = table.set_index("name").loc["day_schedule"]
        >>> entry["params"][0]["name"], entry["params"][0]["default"]
        ('date', '2026-01-01')
        """
        out = []
        for name in report_names():
            d = load_report(name)
            params = []
            for p in d.params:
                default = resolve_default(p.default, self.reference_date)
                params.append(
                    {
                        "name": p.name,
                        "type": p.type,
                        "default": default.isoformat() if isinstance(default, date) else default,
                        "required": p.required,
                        "description": p.description,
                    }
                )
            out.append(
                {
                    "name": d.name,
                    "title": d.title,
                    "description": d.description,
                    "views": list(d.views),
                    "params": params,
                    "columns": list(d.columns),
                    "plot": dict(d.plot),
                }
            )
        import pandas as pd

        return pd.DataFrame(
            out, columns=["name", "title", "description", "views", "params", "columns", "plot"]
        )

    def view_table(self, name: str) -> pa.Table:
        """The rows of one catalogue view over the source (computed once, then reused; over
        a Session, decided again on every call).

        >>> from datetime import date
        >>> class S:
        ...     reference_date = date(2026, 1, 1)
        ...     def resources(self, t):
        ...         return []
        >>> Reports(S()).view_table("patient").num_rows
        0
        """
        # A Session decides each access when it happens: its rows are asked for again on
        # every call (its own cache keeps that cheap), so rows a break-the-glass, a Consent or
        # a relationship let through once never outlast it in a Reports object kept around.
        if name not in self._tables or hasattr(self.source, "report_view"):
            view = load_view(name)
            can_read = getattr(self.source, "can_read", None)
            if callable(can_read) and not can_read(view["resource"]):
                raise AccessDenied(
                    f"this report needs {view['resource']} resources, which you may not read; "
                    "ask a user whose role can see them to run it"
                )
            if view["resource"] == "AuditEvent" and hasattr(self.source, "audit_events"):
                rows = list(self.source.audit_events())
            elif hasattr(self.source, "report_view"):  # a Session: its cached, policy-filtered rows
                self._tables[name], self._labels[name] = self.source.report_view(
                    view, engine=self.engine
                )
                return self._tables[name]
            else:
                rows = list(self.source.resources(view["resource"]))
            self._tables[name] = run_arrow(view, rows, engine=self.engine)
            self._labels[name] = highest_confidentiality(rows)
        return self._tables[name]

    def _execute(self, sql: str, view_list: list[str], params: dict[str, Any]) -> pa.Table:
        con = duckdb.connect(config=_SAFE_CONFIG)
        try:
            for v in view_list:
                con.register(v, self.view_table(v))
            # Report SQL (also a student's own) sees only the registered view tables: no files,
            # no network, no extension installs, and it cannot switch that back on.
            con.execute("SET enable_external_access = false")
            con.execute(f"SET memory_limit = '{QUERY_MEMORY}'")
            con.execute("SET lock_configuration = true")
            used = {m.group(1) for m in _PARAM.finditer(sql)}
            bound = {k: v for k, v in params.items() if k in used}
            missing = sorted(used - set(bound))
            if missing:
                raise ValidationError(
                    "report SQL",
                    f"${missing[0]}",
                    "a parameter the report defines",
                    found=missing[0],
                )
            timer = threading.Timer(QUERY_SECONDS, con.interrupt)
            timer.start()
            try:
                table = (
                    con.sql(sql, params=bound).to_arrow_table()
                    if bound
                    else con.sql(sql).to_arrow_table()
                )
            except duckdb.Error as exc:
                why = str(exc).split("\n")[0]
                if "interrupt" in why.lower():
                    why = f"the query ran longer than {QUERY_SECONDS:g} s and was stopped"
                raise ValidationError(
                    "report SQL", "query", "a DuckDB query over the view tables", why=why
                ) from None
            finally:
                timer.cancel()
            if table.num_rows > QUERY_ROWS:
                raise ValidationError(
                    "report SQL",
                    "query",
                    f"at most {QUERY_ROWS} rows",
                    found=table.num_rows,
                    why="narrow it with WHERE or LIMIT",
                )
            return table
        finally:
            con.close()

    def run(self, name: str, **params: Any) -> Report:
        """Run catalogue report ``name`` with its parameters (unknown or mistyped ones raise).

        >>> from datetime import date
        >>> class S:
        ...     reference_date = date(2026, 1, 1)
        ...     def resources(self, t):
        ...         return []
        >>> Reports(S()).run("day_schedule", date="2026-01-02").params
        {'date': '2026-01-02'}
        """
        definition = load_report(name)
        bound = bind_params(definition, params, self.reference_date)
        table = self._execute(definition.sql, definition.views, bound)
        if definition.columns and table.column_names != definition.columns:
            raise ValidationError(
                f"catalog/{name}/report.sql",
                "columns",
                f"the documented columns {definition.columns}",
                found=table.column_names,
            )
        views = {v: load_view(v) for v in definition.views}
        return self._labelled(
            Report(
                name,
                definition.title,
                table,
                definition.sql,
                views,
                bound,
                definition.plot,
                definition.description,
            )
        )

    def sql(self, query: str, **params: Any) -> Report:
        """Run your own SQL over the catalogue's view tables (``patient``, ``observation``, ...).

        Only the views the query names are computed. Parameters are bound as ``$name``.

        >>> from datetime import date
        >>> class S:
        ...     reference_date = date(2026, 1, 1)
        ...     def resources(self, t):
        ...         return []
        >>> Reports(S()).sql("SELECT count(*) AS n FROM condition WHERE clinical_status = $s", s="active").to_pylist()
        [{'n': 0}]
        """
        if not isinstance(query, str) or not query.strip():
            raise ValidationError(
                "report SQL", "query", "a SQL SELECT over the view tables", found=query
            )
        used = [v for v in view_names() if re.search(rf"\b{re.escape(v)}\b", query)]
        table = self._execute(query.strip().rstrip(";"), used, params)
        views = {v: load_view(v) for v in used}
        return self._labelled(Report("custom", "Custom query", table, query, views, dict(params)))

    def _labelled(self, report: Report) -> Report:
        # A report carries the highest confidentiality of the data its views read (PRIVACY.md).
        labels = [self._labels.get(v, "N") for v in report.views]
        report.confidentiality = max(labels, key=CONFIDENTIALITY_ORDER.index, default="N")
        return report
