"""``ehr-sandbox generate``: write a synthetic dataset (FHIR Bulk NDJSON or Bundles).

>>> from typer.testing import CliRunner
>>> from ehr_sandbox.cli.app import app
>>> CliRunner().invoke(app, ["generate", "--help"]).exit_code
0
>>> import tempfile
>>> args = ["generate", "-n", "1", "--years", "1", "--quiet", "--out", tempfile.mkdtemp()]
>>> CliRunner().invoke(app, args).exit_code
0
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from synthetic.errors import ArgumentError


def _parse_types(types: str | None) -> list[str] | None:
    if types is None:
        return None
    return [t.strip() for t in types.split(",") if t.strip()]


def generate(
    patients: Annotated[
        int, typer.Option("--patients", "-n", help="Number of patients to generate.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")],
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same bytes).")] = 0,
    format: Annotated[
        str, typer.Option("--format", help="ndjson (FHIR Bulk Data) or bundle.")
    ] = "ndjson",
    bundle_type: Annotated[
        str, typer.Option("--bundle-type", help="transaction or collection.")
    ] = "transaction",
    reference_date: Annotated[
        str, typer.Option("--reference-date", help="'Today' of the data, YYYY-MM-DD.")
    ] = "2026-01-01",
    years: Annotated[int, typer.Option("--years", help="Years of history per patient.")] = 10,
    population: Annotated[
        str, typer.Option("--population", help="Population preset.")
    ] = "family-practice",
    workers: Annotated[int, typer.Option("--workers", help="Worker processes.")] = 1,
    engine: Annotated[str, typer.Option("--engine", help="process or dask.")] = "process",
    types: Annotated[
        str | None,
        typer.Option("--types", help="Only these resource types, e.g. Patient,Observation."),
    ] = None,
    start: Annotated[int, typer.Option("--start", help="Index of the first patient.")] = 0,
    defects: Annotated[
        str | None,
        typer.Option(
            "--defects",
            help="Opt-in dirty data, e.g. duplicate_patients,unit_mixups,missing_data,transposed_dates.",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Generate synthetic patients and write them to a directory (NDJSON or Bundles).
    \f

    Parameters
    ----------
    patients : int
        Number of patients (``-n``).
    out : Path
        The output directory.
    seed : int, default 0
        Same seed, same bytes.
    format : {"ndjson", "bundle"}
    bundle_type : {"transaction", "collection"}
    reference_date : str
        "Today" of the data.
    years : int, default 10
        Years of history per patient.
    population : str
        The population preset.
    workers : int, default 1
        Worker processes (the output does not depend on it).

    Raises
    ------
    ArgumentError
        A setting out of range (the command exits with code 2 and one line on stderr).

    Examples
    --------
    >>> import contextlib, io, pathlib, tempfile
    >>> from ehr_sandbox.cli.app import main
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with contextlib.redirect_stdout(io.StringIO()) as shown:
    ...     code = main(["generate", "-n", "2", "--years", "1", "--seed", "1", "--quiet", "--out", str(d)])
    >>> code, len((d / "Patient.ndjson").read_text().splitlines()), "2 patients" in shown.getvalue()
    (0, 2, True)
    >>> main(["generate", "-n", "-1", "--out", str(d / "bad")])
    2
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    import synthetic

    if patients < 0:
        raise ArgumentError(f"patients: expected an integer >= 0, got {patients}")
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("generating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
        transient=True,
    )
    with progress:
        task = progress.add_task("patients", total=patients)
        summary = synthetic.write_dataset(
            out,
            patients,
            seed=seed,
            format=format,
            bundle_type=bundle_type,
            workers=workers,
            engine=engine,
            types=_parse_types(types),
            reference_date=reference_date,
            years=years,
            population=population,
            start=start,
            defects=_parse_types(defects),
            progress=lambda done: progress.update(task, completed=done),
        )
    table = Table(title=f"{summary.patients} patients -> {summary.out_dir}", show_edge=False)
    table.add_column("resource type")
    table.add_column("count", justify="right")
    for t, c in summary.resources.items():
        table.add_row(t, f"{c:,}")
    table.add_row("total", f"{summary.total:,}")
    out_console = Console()
    out_console.print(table)
    if summary.defects:
        out_console.print(f"{summary.defects:,} defects injected (defects-manifest.jsonl)")
    out_console.print(
        f"{summary.total:,} resources in {summary.seconds:.2f} s "
        f"({summary.rate:,.0f} resources/s, {summary.bytes / 1e6:.1f} MB)"
    )


def register(app: typer.Typer) -> None:
    """Add the ``generate`` command to ``app``.

    >>> app = typer.Typer()
    >>> register(app)
    >>> [c.name for c in app.registered_commands]
    ['generate']
    """
    app.command("generate")(generate)
