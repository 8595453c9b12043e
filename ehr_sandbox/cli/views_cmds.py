"""CLI commands ``ehr-sandbox view run`` and ``ehr-sandbox view sql`` (SQL on FHIR views).

``view run VIEW.json --data DIR`` runs a ViewDefinition over a directory of FHIR Bulk Data
NDJSON files and prints a table, or writes CSV/Parquet with ``--out``. ``view sql VIEW.json``
prints the DuckDB SQL the view compiles to. Bad input raises ViewDefinitionError or
FileNotFoundError, which ``app.main`` prints as one line.

>>> from typer.testing import CliRunner
>>> from ehr_sandbox.cli.app import app
>>> CliRunner().invoke(app, ["view", "--help"]).exit_code
0
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ehr_sandbox.errors import ViewDefinitionError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["load_view_file", "register", "write_table"]

_MAX_PRINTED_ROWS = 200


def load_view_file(path: Path) -> dict[str, Any]:
    """Read a ViewDefinition JSON file (FileNotFoundError / ViewDefinitionError on bad input).

    >>> load_view_file(Path("/no/such/view.json"))
    Traceback (most recent call last):
    ...
    FileNotFoundError: view file not found: /no/such/view.json
    """
    if not path.is_file():
        raise FileNotFoundError(f"view file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ViewDefinitionError(f"{path}: expected a ViewDefinition in JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ViewDefinitionError(f"{path}: expected a JSON object (found {type(data).__name__})")
    return data


def _flatten_lists(table: pa.Table) -> pa.Table:
    # CSV has no list type: collection columns are written as JSON arrays.
    import pyarrow as pa

    columns = []
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
            col = pa.array(
                [None if v is None else json.dumps(v, default=str) for v in col.to_pylist()],
                pa.string(),
            )
        columns.append(col)
    return pa.Table.from_arrays(columns, names=table.column_names)


def write_table(table: pa.Table, out: Path) -> None:
    """Write ``table`` as CSV or Parquet, chosen by the file suffix.

    >>> import pyarrow as pa
    >>> write_table(pa.table({"a": [1]}), Path("x.xlsx"))
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ViewDefinitionError: --out: expected a file name ending in .csv or .parquet (found 'x.xlsx')
    """
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ViewDefinitionError(
            f"--out: expected a file name ending in .csv or .parquet (found {out.name!r})"
        )
    if not out.parent.is_dir():
        raise FileNotFoundError(f"output folder not found: {out.parent}")
    tmp = out.with_name(out.name + ".partial")
    try:
        if suffix == ".csv":
            import pyarrow.csv as pacsv

            pacsv.write_csv(_flatten_lists(table), tmp)
        else:
            import pyarrow.parquet as pq

            pq.write_table(table, tmp)
        tmp.replace(out)  # no half-written result file on failure
    finally:
        if tmp.exists():
            tmp.unlink()


def _print_table(table: pa.Table) -> None:
    from rich.console import Console
    from rich.table import Table

    shown = table.slice(0, _MAX_PRINTED_ROWS)
    grid = Table(*table.column_names, title=f"{table.num_rows} rows")
    for row in shown.to_pylist():
        grid.add_row(*("" if v is None else str(v) for v in row.values()))
    console = Console()
    console.print(grid)
    if table.num_rows > _MAX_PRINTED_ROWS:
        console.print(
            f"... {table.num_rows - _MAX_PRINTED_ROWS} more rows (use --out to write them all)"
        )


def register(app: typer.Typer) -> None:
    """Add the ``view`` command group to ``app``.

    >>> from typer.testing import CliRunner
    >>> demo = typer.Typer()
    >>> register(demo)
    >>> "run" in CliRunner().invoke(demo, ["view", "--help"]).output
    True
    """
    view_app = typer.Typer(
        help="Run SQL on FHIR v2 ViewDefinitions over NDJSON data.", no_args_is_help=True
    )

    @view_app.command("run")
    def run_cmd(
        view: Annotated[Path, typer.Argument(help="ViewDefinition JSON file.")],
        data: Annotated[
            Path,
            typer.Option("--data", help="Directory of FHIR Bulk Data NDJSON files (or one file)."),
        ],
        out: Annotated[
            Path | None, typer.Option("--out", help="Write the rows to a .csv or .parquet file.")
        ] = None,
        engine: Annotated[
            str, typer.Option("--engine", help="auto (DuckDB, falling back), duckdb or python.")
        ] = "auto",
    ) -> None:
        """Run VIEW over the NDJSON files in --data; print the rows or write them to --out."""
        from ehr_sandbox.views import run_arrow

        definition = load_view_file(view)
        if not data.exists():
            raise FileNotFoundError(f"data not found: {data}")
        table = run_arrow(definition, data, engine=engine)
        if out is None:
            _print_table(table)
        else:
            write_table(table, out)
            typer.echo(f"wrote {table.num_rows} rows to {out}")

    @view_app.command("sql")
    def sql_cmd(view: Annotated[Path, typer.Argument(help="ViewDefinition JSON file.")]) -> None:
        """Print the DuckDB SQL a view compiles to (or why it runs on the reference evaluator)."""
        from ehr_sandbox.views import compile_view, view_sql
        from ehr_sandbox.views.sql_compile import NotCompilable

        plan = compile_view(load_view_file(view))
        try:
            typer.echo(view_sql(plan, "resources"))
        except NotCompilable as exc:
            typer.echo(
                f"-- not compiled to SQL ({exc}); this view runs on the Python reference evaluator"
            )

    app.add_typer(view_app, name="view")
