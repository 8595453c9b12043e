"""The report catalogue of a classroom server: ``RemoteSession.reports``.

The same reading interface as a local ``session.reports`` (:class:`~ehr_sandbox.reports.Reports`):
``catalog()``, ``run(name, **params)``, ``sql(query, **params)``, ``view_table(name)`` and
``reference_date``. Every report runs **on the server**, as the student's own session there
(``POST /fhir/$report``), so it sees only what that session may see; the rows come back with
their exact types (an Arrow stream: decimals stay decimals, dates stay dates) as a
:class:`RemoteReport`, which is a :class:`~ehr_sandbox.reports.Report` (``name``, ``title``,
``columns``, ``sql``, ``views``, ``params``, ``to_pylist()``, ``to_pandas()``, ``to_arrow()``,
``plot()``...) that also says whether the server left rows out.

The server answers at most :data:`~ehr_sandbox.reports.wire.MAX_REPORT_ROWS` rows; a report with more comes back
``truncated=True`` (its ``total_rows`` is the full count) and with a :class:`ReportTruncated`
warning: never silently partial. Handing in a truncated report is refused.

>>> import pyarrow as pa
>>> r = RemoteReport("x", "X", pa.table({"a": [1]}), "SELECT 1 AS a", {}, {}, total_rows=1)
>>> r.truncated, r.to_pylist()
(False, [{'a': 1}])
"""

from __future__ import annotations

import warnings
from datetime import date
from typing import TYPE_CHECKING, Any

from ehr_sandbox.errors import ValidationError
from ehr_sandbox.reports.definitions import load_view, view_names
from ehr_sandbox.reports.report import Report

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["RemoteReport", "RemoteReports", "ReportTruncated"]


class ReportTruncated(UserWarning):
    """The server left rows of a report out (it answers at most ``MAX_REPORT_ROWS``)."""


class RemoteReport(Report):
    """A report run on a classroom server: a :class:`~ehr_sandbox.reports.Report` with
    ``truncated`` (the server left rows out) and ``total_rows`` (how many there were).

    >>> import pyarrow as pa
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     r = RemoteReport("x", "X", pa.table({"a": [1]}), "", {}, {}, total_rows=5)
    >>> r.truncated, len(r), r.total_rows, caught[0].category.__name__
    (True, 1, 5, 'ReportTruncated')
    >>> r
    RemoteReport('x', rows=1 of 5 (truncated by the server), columns=['a'])
    """

    def __init__(
        self,
        name: str,
        title: str,
        table: pa.Table,
        sql: str,
        views: dict[str, dict[str, Any]],
        params: dict[str, Any],
        plot_spec: dict[str, Any] | None = None,
        description: str = "",
        *,
        total_rows: int,
        confidentiality: str = "N",
    ) -> None:
        super().__init__(name, title, table, sql, views, params, plot_spec, description)
        self.confidentiality = confidentiality
        self.total_rows = int(total_rows)
        self.truncated = self.total_rows > table.num_rows
        if self.truncated:
            warnings.warn(
                f"report {name!r}: the server sent {table.num_rows} of {self.total_rows} rows; "
                "narrow it (parameters, WHERE or LIMIT) to see them all",
                ReportTruncated,
                stacklevel=3,
            )

    def __repr__(self) -> str:
        if self.truncated:
            return (
                f"RemoteReport({self.name!r}, rows={len(self)} of {self.total_rows} "
                f"(truncated by the server), columns={self.columns})"
            )
        return f"RemoteReport({self.name!r}, rows={len(self)}, columns={self.columns})"


class RemoteReports:
    """The report catalogue run on a classroom server as one remote session (made by
    ``RemoteSession.reports``).

    ``session`` needs ``_report_call(parameters) -> dict`` (the ``$report`` answer) and
    ``reference_date``.

    >>> class Fake:
    ...     reference_date = date(2026, 1, 1)
    >>> table = RemoteReports(Fake()).catalog()
    >>> "day_schedule" in set(table["name"])
    True
    """

    def __init__(self, session: Any) -> None:
        self.source = session

    @property
    def reference_date(self) -> date:
        """The server sandbox's reference date ("today" for report defaults)."""
        ref = self.source.reference_date
        return ref if isinstance(ref, date) else date.fromisoformat(str(ref)[:10])

    def catalog(self) -> pd.DataFrame:
        """The report catalogue (name, title, description, views, params with their defaults
        resolved against the server's reference date, columns, plot), as locally."""
        from ehr_sandbox.reports.runner import Reports

        return Reports(self).catalog()

    def resources(self, resource_type: str) -> list[dict[str, Any]]:
        """Never used: a catalogue needs no rows (reports run on the server)."""
        raise ValidationError(
            "RemoteReports", "resources", "reports to run on the server", found=resource_type
        )

    def run(self, name: str, **params: Any) -> RemoteReport:
        """Run catalogue report ``name`` on the server, as this session (unknown or mistyped
        parameters raise the same ValidationError as locally)."""
        return self._call({"name": name}, params)

    def sql(self, query: str, **params: Any) -> RemoteReport:
        """Run your own DuckDB SQL over the view tables, on the server, as this session."""
        return self._call({"sql": query}, params)

    def view_table(self, name: str) -> pa.Table:
        """The rows of one catalogue view over what this session may see (run on the
        server); a view with more rows than the server sends raises ValidationError."""
        if name not in view_names():
            raise ValidationError(
                "report view", "name", "one of " + ", ".join(view_names()), found=name
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ReportTruncated)
            rep = self.sql(f"SELECT * FROM {name}")
        if rep.truncated:
            raise ValidationError(
                "report view",
                name,
                f"at most {len(rep)} rows over HTTP",
                found=rep.total_rows,
                why="query it with reports.sql(...) and a WHERE or LIMIT",
            )
        return rep.to_arrow()

    def _call(self, what: dict[str, Any], params: dict[str, Any]) -> RemoteReport:
        from ehr_sandbox.reports.wire import read_arrow

        clash = sorted(set(params) & {"name", "sql", "_format"})
        if clash:
            raise ValidationError(
                "report", clash[0], "a report parameter (name, sql and _format are reserved)"
            )
        body = self.source._report_call({**what, **params, "_format": "arrow"})
        table = read_arrow(body["arrow"])
        views = {v: load_view(v) for v in body.get("views", [])}
        return RemoteReport(
            str(body["name"]),
            str(body.get("title", "")),
            table,
            str(body.get("sql", "")),
            views,
            dict(body.get("params") or {}),
            dict(body.get("plot") or {}),
            str(body.get("description", "")),
            total_rows=int(body.get("total", table.num_rows)),
            confidentiality=str(body.get("confidentiality", "N")),
        )

    def __repr__(self) -> str:
        return f"<RemoteReports of {self.source!r}>"
