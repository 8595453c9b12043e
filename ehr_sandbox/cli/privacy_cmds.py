"""CLI: ``ehr-sandbox deidentify`` writes a HIPAA Safe Harbor research export.

It goes through the only door: the sandbox is opened, the privacy officer (a role allowed to
export for research) logs in, and ``Session.deidentify`` checks, audits and writes the export.

>>> from typer.testing import CliRunner
>>> app = typer.Typer(); register(app)
>>> CliRunner().invoke(app, ["deidentify", "--help"]).exit_code
0
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ehr_sandbox.cli.audit_cmds import DbOption, KeyOption, PassOption, close_quietly, open_sandbox
from ehr_sandbox.errors import ArgumentError

RESEARCH_EXPORTER = "po.wilson"
"""The account the command runs as: the privacy officer may make research exports."""


def deidentify_cmd(
    db: DbOption,
    out: Annotated[
        Path, typer.Option("--out", help="Directory for the NDJSON export.", file_okay=False)
    ],
    key: KeyOption = None,
    passphrase: PassOption = None,
    user: Annotated[
        str, typer.Option("--user", help="Account to run the export as.")
    ] = RESEARCH_EXPORTER,
) -> None:
    """De-identify the sandbox's records (Safe Harbor) into Bulk NDJSON files in --out.
    \f

    Parameters
    ----------
    db : Path
        The sandbox file.
    out : Path
        A new or empty folder for the NDJSON files.
    key, passphrase : optional
        The key file or passphrase of an encrypted sandbox.
    user : str
        The account to run the export as (its role must allow research exports).

    Raises
    ------
    ArgumentError
        ``--out`` is not empty.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from ehr_sandbox.cli.app import main
    >>> from ehr_sandbox.crypto import MasterKey
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> d, keys = pathlib.Path(tempfile.mkdtemp()), pathlib.Path(tempfile.mkdtemp())
    >>> key = MasterKey.generate(); key.to_file(keys / "clinic.key")
    >>> Sandbox.generate(patients=1, seed=1, years=1, path=d / "clinic.db", key=key).close()
    >>> db = ["--db", str(d / "clinic.db"), "--key", str(keys / "clinic.key")]
    >>> main(["deidentify", *db, "--out", str(d / "research")])
    wrote 161 de-identified resources to ...
    0
    >>> main(["deidentify", *db, "--out", str(d / "other"), "--user", "fd.smith"])
    2
    >>> (d / "research" / "Patient.ndjson").exists(), (d / "other").exists() and any((d / "other").iterdir())
    (True, False)
    """
    if out.exists() and any(out.iterdir()):
        raise ArgumentError(
            f"--out: expected a new or empty directory, but {str(out)!r} holds files"
        )
    sandbox = open_sandbox(db, key, passphrase)
    try:
        session = sandbox.login(user)
        counts = session.deidentify(str(out))
    finally:
        close_quietly(sandbox)
    total = sum(counts.values())
    typer.echo(f"wrote {total} de-identified resources to {out}")
    for rtype, n in sorted(counts.items()):
        typer.echo(f"  {rtype}: {n}")


def register(app: typer.Typer) -> None:
    """Add the ``deidentify`` command to ``app``.

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
    ['deidentify', 'noop']
    """
    app.command("deidentify")(deidentify_cmd)
