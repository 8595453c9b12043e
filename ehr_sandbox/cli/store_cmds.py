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


def _discard(sb, db: Path, created: bool) -> None:
    sb.close()
    if created:  # a failed import into a new file leaves no file behind
        for leftover in (db, *(db.with_name(db.name + s) for s in ("-wal", "-shm", ".key"))):
            leftover.unlink(missing_ok=True)


def _report_failure(failed, *, kept: bool, db: Path, created: bool) -> None:
    """Say exactly what went in and what did not: one line per problem, on stderr."""
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    for e in failed.errors:
        err.print(f"error: {e}", markup=False)
    for name, counts in failed.imported.items():
        total = sum(counts.values())
        if kept:
            err.print(f"imported: {name} ({total} resources)", markup=False)
        else:
            err.print(f"not kept: {name} ({total} resources were valid)", markup=False)
    for name, problems in failed.refused.items():
        err.print(f"not imported: {name} ({len(problems)} problems)", markup=False)
    if not kept:
        where = f"{db.name} was not created" if created else f"{db.name} is unchanged"
        err.print(f"error: nothing was imported; {where}", markup=False)
    else:
        err.print(
            f"error: {len(failed.refused)} of {len(failed.refused) + len(failed.imported)} "
            f"files not imported into {db.name}",
            markup=False,
        )


def staff_accounts(sb) -> None:
    """Give an imported clinic its staff accounts.

    The accounts come from the imported practice (Practitioner with a sandbox username and
    a PractitionerRole); when the data has none (e.g. Synthea), the default practice's
    staff are added, with their Practitioner and PractitionerRole records. A sandbox that
    has accounts already is left alone.

    Parameters
    ----------
    sb : Sandbox
        The clinic the data was imported into.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> sb = Sandbox.empty()
    >>> staff_accounts(sb)
    >>> "dr.patel" in [u.username for u in sb.users], sb.grader_session().exists("Practitioner/" + sb.user("dr.patel").practitioner_id)
    (True, True)
    """
    from ehr_sandbox.users import staff_from_practice

    if sb.users:
        return
    system = sb.system_session()
    found = [*system.resources("Practitioner"), *system.resources("PractitionerRole")]
    staff = staff_from_practice(found)
    if not staff:
        import synthetic

        practice = synthetic.practice_resources(reference_date=sb.reference_date)
        people = [r for r in practice if r["resourceType"] in ("Practitioner", "PractitionerRole")]
        staff = staff_from_practice(people)
        kept = {f"Practitioner/{u.practitioner_id}" for u in staff}
        people = [
            r
            for r in people
            if f"Practitioner/{r['id']}" in kept
            or (r.get("practitioner") or {}).get("reference") in kept
        ]
        for r in people:  # staff records without organization/location links
            r.pop("organization", None)
            r.pop("location", None)
            r.pop("healthcareService", None)
        from ehr_sandbox.records.writes import WriteRequest

        with system.atomic():  # the staff records keep their ids: the accounts point at them
            for r in people:
                system.write(WriteRequest("create", r, activity="import", keep_id=True))
    sb.set_staff(staff)


def _counts_table(title: str, counts: dict[str, int]) -> Table:
    table = Table(title=title)
    table.add_column("Resource type")
    table.add_column("Count", justify="right")
    for rtype, n in counts.items():
        table.add_row(rtype, str(n))
    table.add_row("[bold]total", f"[bold]{sum(counts.values())}")
    return table


def register(app: typer.Typer) -> None:
    """Add ``new``, ``import`` and ``export`` to ``app``.

    Parameters
    ----------
    app : typer.Typer
        The ``ehr-sandbox`` application (or any Typer app).

    Examples
    --------
    >>> import typer
    >>> app = typer.Typer(); _ = app.command("noop")(lambda: None)
    >>> register(app)
    >>> sorted(typer.main.get_command(app).commands)
    ['export', 'import', 'new', 'noop']
    """

    @app.command("new")
    def new_cmd(
        db: Path = typer.Argument(..., help="The new sandbox file, e.g. clinic.db."),
        patients: int = typer.Option(
            200, "--patients", "-n", min=0, help="Number of patients with histories."
        ),
        seed: int = typer.Option(7, "--seed", help="Random seed (same seed, same clinic)."),
        passphrase_env: str | None = typer.Option(
            None,
            "--passphrase-env",
            help="Encrypt the file with the passphrase in this environment variable.",
        ),
    ) -> None:
        """Create a staffed clinic file: practice, staff accounts, patients, this week's schedule.

        The same clinic as ``Sandbox.generate(patients, seed, path=...)``.
        """
        import os

        from ehr_sandbox.errors import ArgumentError
        from ehr_sandbox.sandbox import Sandbox

        passphrase = None
        if passphrase_env is not None:
            passphrase = os.environ.get(passphrase_env)
            if not passphrase:
                raise ArgumentError(
                    f"--passphrase-env: expected the name of a set environment variable "
                    f"holding the passphrase, but {passphrase_env} is unset or empty"
                )
        if db.exists():
            raise ArgumentError(f"{db.name} already exists; choose a new file name")
        sb = Sandbox.generate(patients=patients, seed=seed, path=db, passphrase=passphrase)
        try:
            staff = len(sb.users)
            system = sb.system_session()
            counts = {t: system.search(t).count() for t in ("Patient", "Appointment")}
        finally:
            sb.close()
        encrypted = " (encrypted)" if passphrase else ""
        typer.echo(
            f"created {db}{encrypted}: {counts['Patient']} patients, {staff} staff accounts, "
            f"{counts['Appointment']} appointments"
        )

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
        units: str = typer.Option(
            "refuse",
            "--units",
            help="A unit that names UCUM but is not UCUM: refuse its file, or as-text "
            "(keep it as unit text only).",
        ),
    ) -> None:
        """Import FHIR Bundles or Bulk NDJSON into a sandbox, all or nothing per file.

        Files may come in any order; each file (or group of files that refer to each other)
        applies wholly or not at all."""
        import warnings

        from ehr_sandbox.errors import DataQualityWarning, ImportFailed
        from ehr_sandbox.records.importing import UNIT_POLICIES

        if units not in UNIT_POLICIES:
            raise typer.BadParameter(
                f"expected one of {', '.join(UNIT_POLICIES)} (found {units!r})",
                param_hint="--units",
            )

        missing = [p.name for p in paths if not p.exists()]
        if missing:
            raise FileNotFoundError(f"nothing to import at {', '.join(missing)}")
        created = not db.exists()
        sb = _open_or_create(db, key, passphrase, create=True)
        failed: ImportFailed | None = None
        notes: list[warnings.WarningMessage] = []
        try:
            with warnings.catch_warnings(record=True) as notes:
                warnings.simplefilter("always", DataQualityWarning)
                counts = sb.system_session().import_([str(p) for p in paths], units=units)
        except ImportFailed as exc:
            failed = exc
            counts = {}
        except BaseException:
            _discard(sb, db, created)
            raise
        if failed is not None and (created or not failed.imported):
            _discard(sb, db, created)
            _report_failure(failed, kept=False, db=db, created=created)
            raise typer.Exit(2)
        if created:
            staff_accounts(sb)
        sb.close()
        if failed is not None:
            _report_failure(failed, kept=True, db=db, created=created)
            raise typer.Exit(2)
        Console().print(_counts_table(f"Imported into {db.name}", counts))
        for note in notes:
            if issubclass(note.category, DataQualityWarning):
                Console().print(f"note: {note.message}")

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
