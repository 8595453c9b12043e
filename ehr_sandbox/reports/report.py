"""The result of running a report: the rows plus everything a student needs to see how.

>>> import pyarrow as pa
>>> r = Report("demo", "Demo", pa.table({"a": [1, 2]}), "SELECT 1", {}, {})
>>> r.to_pandas()["a"].tolist(), len(r)
([1, 2], 2)
"""

from __future__ import annotations

import html
from typing import Any

import pyarrow as pa

__all__ = ["Report"]

_HTML_ROWS = 50


class Report:
    """Rows of one report run, with the SQL it ran and the ViewDefinitions it used.

    ``name``, ``title``, ``sql`` (exactly the query DuckDB ran; parameters appear as ``$name``),
    ``views`` (table name -> ViewDefinition), ``params`` (the bound values), ``plot_spec``,
    ``confidentiality`` (v3-Confidentiality code: the highest label of the data it read).

    >>> import pyarrow as pa
    >>> Report("x", "X", pa.table({"v": ["<b>"]}), "SELECT", {}, {})._repr_html_().count("&lt;b&gt;")
    1
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
    ) -> None:
        self.name = name
        self.title = title
        self.sql = sql
        self.views = views
        self.params = params
        self.plot_spec = plot_spec or {}
        self.description = description
        self.confidentiality = "N"
        self._table = table

    @property
    def columns(self) -> list[str]:
        """Column names in order.

        >>> import pyarrow as pa
        >>> Report("x", "X", pa.table({"a": [1], "b": [2]}), "", {}, {}).columns
        ['a', 'b']
        """
        return list(self._table.column_names)

    def __len__(self) -> int:
        return self._table.num_rows

    def to_arrow(self) -> pa.Table:
        """The rows as an Arrow table.

        >>> import pyarrow as pa
        >>> Report("x", "X", pa.table({"a": [1]}), "", {}, {}).to_arrow().num_rows
        1
        """
        return self._table

    def to_pandas(self) -> Any:
        """The rows as a pandas DataFrame.

        >>> import pyarrow as pa
        >>> Report("x", "X", pa.table({"a": [1]}), "", {}, {}).to_pandas().shape
        (1, 1)
        """
        return self._table.to_pandas()

    def to_pylist(self) -> list[dict[str, Any]]:
        """The rows as a list of dicts.

        >>> import pyarrow as pa
        >>> Report("x", "X", pa.table({"a": [1]}), "", {}, {}).to_pylist()
        [{'a': 1}]
        """
        return self._table.to_pylist()

    def plot(self, ax: Any = None) -> Any:
        """Draw the report's plot (line for trends, bar for buckets) and return the Axes.

        Reports without a plot spec draw their first numeric column against the first column.

        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import pyarrow as pa
        >>> r = Report("x", "X", pa.table({"k": ["a", "b"], "v": [1.0, 2.0]}), "", {}, {}, {"kind": "bar", "x": "k", "y": ["v"]})
        >>> type(r.plot()).__name__
        'Axes'
        """
        import matplotlib.pyplot as plt
        import pandas as pd

        df = self.to_pandas()
        spec = dict(self.plot_spec)
        x = spec.get("x") or (df.columns[0] if len(df.columns) else None)
        ys = (
            spec.get("y")
            or [c for c in df.columns if c != x and pd.api.types.is_numeric_dtype(df[c])][:1]
        )
        if ax is None:
            _, ax = plt.subplots(figsize=(8, 4))
        kind = spec.get("kind", "line")
        if x is not None and ys and len(df):
            data = df[[x, *ys]].copy()
            for y in ys:
                # Money columns arrive as exact decimals; matplotlib needs floats.
                data[y] = pd.to_numeric(
                    data[y].map(lambda v: None if v is None else float(v)), errors="coerce"
                )
            if kind == "line":
                # ISO 8601 stated: pandas warns when it has to guess a date format
                converted = pd.to_datetime(data[x], errors="coerce", utc=True, format="ISO8601")
                if converted.notna().all():
                    data[x] = converted
                data = data.sort_values(x)
                for y in ys:
                    sub = data[[x, y]].dropna()
                    ax.plot(sub[x], sub[y], marker="o", label=y)
            else:
                data.plot(kind="bar", x=x, y=ys, ax=ax, legend=len(ys) > 1)
            if len(ys) > 1 and kind == "line":
                ax.legend()
        ax.set_title(spec.get("title", self.title))
        ax.set_xlabel(spec.get("xlabel", x or ""))
        if spec.get("ylabel"):
            ax.set_ylabel(spec["ylabel"])
        return ax

    def _repr_html_(self) -> str:
        esc = html.escape
        head = "".join(f"<th>{esc(str(c))}</th>" for c in self.columns)
        body = []
        for row in self._table.slice(0, _HTML_ROWS).to_pylist():
            cells = "".join(f"<td>{'' if v is None else esc(str(v))}</td>" for v in row.values())
            body.append(f"<tr>{cells}</tr>")
        params = ", ".join(f"{esc(k)}={esc(str(v))}" for k, v in self.params.items())
        more = f"<p>… {len(self) - _HTML_ROWS} more rows</p>" if len(self) > _HTML_ROWS else ""
        if self.plot_spec:
            from ehr_sandbox.display.reprs import report_plot_svg

            more += f"<figure class='ehr-report-plot'>{report_plot_svg(self)}</figure>"
        return (
            f"<div class='ehr-report'><h4>{esc(self.title)}</h4>"
            f"<p>{esc(self.description)}</p><p><small>{params} · {len(self)} rows</small></p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}</div>"
        )

    def __repr__(self) -> str:
        return f"Report({self.name!r}, rows={len(self)}, columns={self.columns})"
