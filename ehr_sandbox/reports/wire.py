"""A report over HTTP: the ``$report`` answer the classroom server sends and the remote
session reads (one format, both sides).

At most :data:`MAX_REPORT_ROWS` rows travel as JSON, and ``truncated``/``total`` say how many
there were; with ``_format=arrow`` the same rows also travel as a base64 Arrow IPC stream, so
the remote report keeps their exact types (decimals, dates).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MAX_REPORT_ROWS", "read_arrow", "report_body"]

MAX_REPORT_ROWS = 10_000
"""Most rows of a report (or a ViewDefinition run) the server answers over HTTP."""


def report_body(rep: Any, *, arrow: bool = False) -> dict[str, Any]:
    """A report run (a :class:`~ehr_sandbox.reports.Report`) as the ``$report`` answer: at most
    :data:`MAX_REPORT_ROWS` rows as JSON (``truncated`` and ``total`` say how many there
    were), how it was made (title, description, SQL, bound params, view names, plot,
    confidentiality) and, with ``arrow``, the same rows as a base64 Arrow IPC stream.

    >>> import pyarrow as pa
    >>> from ehr_sandbox.reports import Report
    >>> body = report_body(Report("x", "X", pa.table({"a": [1, 2]}), "SELECT", {}, {}), arrow=True)
    >>> body["rows"], body["truncated"], body["total"], read_arrow(body["arrow"]).num_rows
    ([{'a': 1}, {'a': 2}], False, 2, 2)
    """
    table = rep.to_arrow()
    kept = table.slice(0, MAX_REPORT_ROWS)
    body = {
        "name": rep.name,
        "title": rep.title,
        "description": rep.description,
        "sql": rep.sql,
        "params": json.loads(json.dumps(rep.params, default=str)),
        "views": list(rep.views),
        "plot": rep.plot_spec,
        "confidentiality": rep.confidentiality,
        "columns": rep.columns,
        "rows": json.loads(json.dumps(kept.to_pylist(), default=str)),
        "total": table.num_rows,
        "truncated": table.num_rows > MAX_REPORT_ROWS,
    }
    if arrow:
        import base64

        import pyarrow as pa

        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, kept.schema) as writer:
            writer.write_table(kept)
        body["arrow"] = base64.b64encode(sink.getvalue().to_pybytes()).decode("ascii")
    return body


def read_arrow(text: str) -> Any:
    """The Arrow table of a ``$report`` answer's ``arrow`` field (see :func:`report_body`).

    >>> import pyarrow as pa
    >>> from ehr_sandbox.reports import Report
    >>> read_arrow(report_body(Report("x", "X", pa.table({"a": [1]}), "", {}, {}), arrow=True)["arrow"]).column_names
    ['a']
    """
    import base64

    import pyarrow as pa

    return pa.ipc.open_stream(base64.b64decode(text)).read_all()
