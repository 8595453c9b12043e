"""``ehr-sandbox import`` and ``ehr-sandbox export``: move FHIR data in and out of a sandbox file.

Both run through a Session (the sandbox's own system account), so every write is validated,
labelled, given Provenance and audited like any other.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table


def _open_or_create(db: Path, key: Path | None, passphrase: str | None, create: bool):
    from ehr_sandbox.sandbox import Sandbox

    if db.exists():
        return Sandbox.open(db, key=key, passphrase=passphrase)
    if not create:
        raise FileNotFoundError(f"no sandbox file at {db.name!r}")
    return Sandbox.empty(db, key=key, passphrase=passphrase)


def _counts_table(title: str, counts: dict[str, int]) -> Table:
    table = Table(title=title)
    table.add_column("Resource type")
    table.add_column("Count", justify="right")
    for rtype, n in counts.items():
        table.add_row(rtype, str(n))
    table.add_row("[bold]total", f"[bold]{sum(counts.values())}")
    return table


def register(app: typer.Typer) -> None:
    """Add ``import`` and ``export`` to ``app``."""

    @app.command("import")
    def import_cmd(
        paths: list[Path] = typer.Argument(
            ..., help="Bundle .json files, .ndjson files or NDJSON directories."
        ),
        db: Path = typer.Option(
            ..., "--db", help="Sandbox file (created empty if it does not exist)."
        ),
        key: Path | None = typer.Option(None, "--key", help="Key file of an encrypted sandbox."),
        passphrase: str | None = typer.Option(
            None, "--passphrase", help="Passphrase of an encrypted sandbox."
        ),
    ) -> None:
        """Import FHIR Bundles or Bulk NDJSON; each file applies wholly or not at all."""
        missing = [p.name for p in paths if not p.exists()]
        if missing:
            raise FileNotFoundError(f"nothing to import at {', '.join(missing)}")
        created = not db.exists()
        sb = _open_or_create(db, key, passphrase, create=True)
        try:
            counts = sb.system_session().import_([str(p) for p in paths])
        except BaseException:
            sb.close()
            if created:  # a failed import into a new file leaves no file behind
                for leftover in (
                    db,
                    *(db.with_name(db.name + s) for s in ("-wal", "-shm", ".key")),
                ):
                    leftover.unlink(missing_ok=True)
            raise
        sb.close()
        Console().print(_counts_table(f"Imported into {db.name}", counts))

    @app.command("export")
    def export_cmd(
        db: Path = typer.Option(..., "--db", help="Sandbox file."),
        out: Path = typer.Option(..., "--out", help="Output directory."),
        format: str = typer.Option(
            "ndjson", "--format", help="ndjson (Bulk Data layout) or bundle."
        ),
        key: Path | None = typer.Option(None, "--key", help="Key file of an encrypted sandbox."),
        passphrase: str | None = typer.Option(
            None, "--passphrase", help="Passphrase of an encrypted sandbox."
        ),
    ) -> None:
        """Export a sandbox's resources as Bulk NDJSON or one Bundle per patient."""
        sb = _open_or_create(db, key, passphrase, create=False)
        try:
            counts = sb.system_session().export(str(out), format=format)
        finally:
            sb.close()
        Console().print(_counts_table(f"Exported to {out}", counts))
