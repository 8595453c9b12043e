"""CLI: ``ehr-sandbox audit verify`` checks a sandbox's tamper-evident audit trail.

Exit codes: 0 the chain verifies, 1 it is broken (the first bad entry and the reason are
printed), 2 the sandbox could not be opened (one line on stderr, from the app's handler).

>>> from typer.testing import CliRunner
>>> app = typer.Typer(); register(app)
>>> CliRunner().invoke(app, ["audit", "verify", "--help"]).exit_code
0
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

audit_app = typer.Typer(help="Inspect and verify the audit trail.", no_args_is_help=True)

DbOption = Annotated[Path, typer.Option("--db", help="The sandbox database file.", dir_okay=False)]
KeyOption = Annotated[
    Path | None,
    typer.Option("--key", help="Key file of an encrypted sandbox (never kept beside the db)."),
]
PassOption = Annotated[
    str | None,
    typer.Option(
        "--passphrase", envvar="EHR_SANDBOX_PASSPHRASE", help="Passphrase of an encrypted sandbox."
    ),
]


def open_sandbox(db: Path, key: Path | None, passphrase: str | None) -> Any:
    """Open a sandbox file the way every command does (imported lazily: the CLI loads fast).

    >>> open_sandbox(Path("missing.db"), None, None)
    Traceback (most recent call last):
    ...
    FileNotFoundError: sandbox database 'missing.db' does not exist
    """
    if not db.is_file():
        raise FileNotFoundError(f"sandbox database {str(db)!r} does not exist")
    from ehr_sandbox.sandbox import Sandbox

    return Sandbox.open(db, key=key, passphrase=passphrase)


def close_quietly(sandbox: Any, *, read_only: bool = False) -> None:
    """Close a sandbox opened by a command, whatever state its audit trail is in.

    ``read_only`` releases the file without the sandbox's own close (which checkpoints the
    audit trail): verifying evidence should not write to it. An error while closing is
    swallowed (the file is still released), so it never masks the command's own result.

    Parameters
    ----------
    sandbox : Sandbox
        The sandbox to close.
    read_only : bool, default False
        Release without writing anything.

    Examples
    --------
    >>> class Box:
    ...     def __init__(self): self.calls = []
    ...     def close(self): self.calls.append("close"); raise RuntimeError("audit trail broken")
    ...     def release(self): self.calls.append("release")
    >>> a, b = Box(), Box()
    >>> close_quietly(a); close_quietly(b, read_only=True)
    >>> a.calls, b.calls
    (['close', 'release'], ['release'])
    """
    release = getattr(sandbox, "release", None)
    if read_only and callable(release):
        release()
        return
    try:
        sandbox.close()
    except Exception:  # closing must not mask the command's own result
        if callable(release):
            release()


AnchorOption = Annotated[
    Path | None,
    typer.Option(
        "--anchor",
        help="A checkpoint file kept outside the database (audit checkpoint --out FILE).",
        dir_okay=False,
    ),
]


def _read_anchor(path: Path) -> dict[str, Any]:
    """The checkpoint in an anchor file: one JSON checkpoint (``audit checkpoint --out``) or
    an append-only log of them, one per line (what ``serve --anchor`` publishes), whose latest
    checkpoint counts.

    >>> import tempfile, json
    >>> f = Path(tempfile.mkdtemp()) / "anchors.jsonl"
    >>> _ = f.write_text("".join(json.dumps({"seq": n}) + chr(10) for n in (3, 9)))
    >>> _read_anchor(f)["seq"]
    9
    """
    import json

    from ehr_sandbox.errors import AuditError

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"anchor file {str(path)!r} does not exist") from None
    except UnicodeDecodeError:
        text = ""
    found: list[dict[str, Any]] = []
    try:
        lines = [line for line in text.splitlines() if line.strip()]
        found = [json.loads(line) for line in lines] if len(lines) > 1 else [json.loads(text)]
    except ValueError:
        found = []
    found = [c for c in found if isinstance(c, dict) and isinstance(c.get("seq"), int)]
    if not found:
        raise AuditError(
            f"anchor {path.name!r}: expected the JSON checkpoint written by 'audit checkpoint' "
            "(or the checkpoint log written by 'serve --anchor')"
        )
    return max(found, key=lambda c: c["seq"])


def verify(
    db: DbOption,
    key: KeyOption = None,
    passphrase: PassOption = None,
    anchor: AnchorOption = None,
) -> None:
    """Verify the hash chain, MACs and signed checkpoints of the audit trail (and, with
    ``--anchor``, that the trail still reaches a checkpoint kept outside the database).
    \f

    Parameters
    ----------
    db : Path
        The sandbox file.
    key : Path, optional
        Key file of an encrypted sandbox.
    passphrase : str, optional
        Passphrase of an encrypted sandbox (or ``EHR_SANDBOX_PASSPHRASE``).
    anchor : Path, optional
        A checkpoint exported with ``audit checkpoint``.

    Raises
    ------
    typer.Exit
        Exit code 1 when the trail fails verification (the first bad entry is named).

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
    >>> main(["audit", "verify", *db])
    audit trail ok: 2 entries verified
    0
    """
    anchored = _read_anchor(anchor) if anchor is not None else None
    sandbox = open_sandbox(db, key, passphrase)
    try:
        result = sandbox.audit.verify(anchor=anchored)
    finally:
        close_quietly(sandbox, read_only=True)
    if result.ok:
        typer.echo(f"audit trail ok: {result.count} entries verified")
        return
    typer.echo(
        f"audit trail BROKEN at entry {result.first_bad}: {result.reason} "
        f"({result.count} entries verified before it)"
    )
    # SystemExit, not typer.Exit: click swallows Exit's code when run with standalone_mode=False.
    raise SystemExit(1)


def checkpoint(
    db: DbOption,
    out: Annotated[
        Path, typer.Option("--out", help="Where to write the checkpoint (outside the db's folder).")
    ],
    key: KeyOption = None,
    passphrase: PassOption = None,
) -> None:
    """Sign the end of the audit trail and export the checkpoint as an anchor file.
    \f

    Parameters
    ----------
    db : Path
        The sandbox file.
    out : Path
        Where to write the checkpoint (outside the database's folder).
    key, passphrase : optional
        The key file or passphrase of an encrypted sandbox.

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
    >>> main(["audit", "checkpoint", *db, "--out", str(keys / "anchor.json")])
    checkpoint at entry 2 written to anchor.json
    0
    >>> main(["audit", "verify", *db, "--anchor", str(keys / "anchor.json")])
    audit trail ok: 2 entries verified
    0
    """
    sandbox = open_sandbox(db, key, passphrase)
    try:
        cp = sandbox.export_checkpoint(out)
    finally:
        close_quietly(sandbox)
    typer.echo(f"checkpoint at entry {cp['seq']} written to {out.name}")


audit_app.command("verify")(verify)
audit_app.command("checkpoint")(checkpoint)


def register(app: typer.Typer) -> None:
    """Add the ``audit`` command group to ``app``.

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
    ['audit', 'noop']
    >>> sorted(typer.main.get_command(app).commands["audit"].commands)
    ['checkpoint', 'verify']
    """
    app.add_typer(audit_app, name="audit")
