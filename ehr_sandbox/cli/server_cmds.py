"""CLI: ``ehr-sandbox serve`` starts the classroom server; ``ehr-sandbox server ...`` manages
its accounts (run on the server machine, as the server's own user).

>>> from typer.testing import CliRunner
>>> app = typer.Typer(); register(app)
>>> CliRunner().invoke(app, ["serve", "--help"]).exit_code
0
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

server_app = typer.Typer(help="Manage a classroom server's accounts.", no_args_is_help=True)

DataOption = Annotated[
    Path, typer.Option("--data", help="The server's data directory.", file_okay=False)
]

FACTORY_ENV = "EHR_SANDBOX_SERVER_CONFIG"
"""How ``serve --workers N`` hands its settings to each worker process."""


def serve(
    data: DataOption = Path("ehr-sandbox-data"),
    host: Annotated[
        str, typer.Option(help="Address to listen on (loopback by default).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8080,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes.", min=1, max=16)] = 1,
    patients: Annotated[int, typer.Option(help="Clinic size on first start.", min=1)] = 50,
    seed: Annotated[int, typer.Option(help="Clinic seed on first start.")] = 7,
    anchor: Annotated[
        Path | None,
        typer.Option(
            help="Append-only file, outside --data, for signed audit checkpoints "
            "(check with 'audit verify --anchor FILE').",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Start the classroom server: FHIR REST at /fhir, SMART sign-in, portal pages."""
    import json

    import uvicorn

    root = f"http://{host}:{port}"
    os.environ[FACTORY_ENV] = json.dumps(
        {
            "data": str(data),
            "root": root,
            "patients": patients,
            "seed": seed,
            "anchor": str(anchor) if anchor else None,
        }
    )
    factory()  # create the data directory and the clinic once, before workers start
    typer.echo(f"ehr-sandbox server at {root} (FHIR base {root}/fhir), data in {data}")
    first = first_instructor(data)
    if first is not None:
        typer.echo(
            "instructor account (shown only now):\n"
            f"  username: {first['username']}\n  password: {first['password']}\n"
            f"  client_id: {first['client_id']}\n  secret: {first['secret']}\n"
            f"sign in at {root}/login"
        )
    uvicorn.run(
        "ehr_sandbox.cli.server_cmds:factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
    )


def first_instructor(data: Path) -> dict[str, str] | None:
    """On a server's first start, create ``instructor:admin`` and return its credentials.

    Parameters
    ----------
    data : Path
        The server's data folder (its ``server.db`` holds the accounts).

    Returns
    -------
    dict or None
        ``username``, ``password``, ``client_id`` and ``secret`` (shown once), or None when an
        instructor account exists already.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> data = pathlib.Path(tempfile.mkdtemp())
    >>> creds = first_instructor(data)
    >>> creds["username"], sorted(creds)
    ('instructor:admin', ['client_id', 'password', 'secret', 'username'])
    >>> first_instructor(data) is None
    True
    """
    from ehr_sandbox.server.accounts import Accounts

    accounts = Accounts(Path(data) / "server.db")
    try:
        if accounts.has_kind("instructor"):
            return None
        cid, secret = accounts.issue("instructor:admin", kind="instructor")
        password = accounts.set_password("instructor:admin")
    finally:
        accounts.close()
    return {
        "username": "instructor:admin",
        "password": password,
        "client_id": cid,
        "secret": secret or "",
    }


def factory() -> object:
    """Build the ASGI app from :data:`FACTORY_ENV` (each uvicorn worker calls this)."""
    import json

    from ehr_sandbox.server import create_app

    cfg = json.loads(os.environ[FACTORY_ENV])
    return create_app(
        cfg["data"],
        root=cfg["root"],
        patients=cfg["patients"],
        seed=cfg["seed"],
        anchor=cfg.get("anchor"),
    )


@server_app.command("add-client")
def add_client(
    user: Annotated[str, typer.Option(help="Sandbox username, or patient/<id>.")],
    data: DataOption = Path("ehr-sandbox-data"),
) -> None:
    """Issue client credentials for a user; the secret is shown once."""
    from ehr_sandbox.server.state import ServerState

    state = ServerState(data, issuer="http://127.0.0.1")
    try:
        who = state.user(user)
        kind = "patient" if who.role == "patient" else "staff"
        cid, secret = state.accounts.issue(user, kind=kind)
    finally:
        state.close()
    typer.echo(f"client_id: {cid}\nsecret: {secret}\n(the secret is shown only now)")


@server_app.command("add-user")
def add_user(
    user: Annotated[str, typer.Option(help="Sandbox username, or patient/<id>.")],
    data: DataOption = Path("ehr-sandbox-data"),
) -> None:
    """Issue a browser sign-in password for a user; it is shown once."""
    from ehr_sandbox.server.state import ServerState

    state = ServerState(data, issuer="http://127.0.0.1")
    try:
        state.user(user)
        password = state.accounts.set_password(user)
    finally:
        state.close()
    typer.echo(f"username: {user}\npassword: {password}\n(the password is shown only now)")


@server_app.command("add-instructor")
def add_instructor(
    name: Annotated[str, typer.Option(help="The instructor's login name.")],
    data: DataOption = Path("ehr-sandbox-data"),
) -> None:
    """Create an instructor account (course administration); credentials are shown once."""
    import re

    from ehr_sandbox.errors import ValidationError
    from ehr_sandbox.server.accounts import Accounts

    if not re.fullmatch(r"[A-Za-z0-9._@-]{1,64}", name):
        raise ValidationError(
            "instructor", "name", "letters, digits and . _ @ - (up to 64)", found=name
        )
    data.mkdir(parents=True, exist_ok=True)
    accounts = Accounts(data / "server.db")
    try:
        cid, secret = accounts.issue(f"instructor:{name}", kind="instructor")
        password = accounts.set_password(f"instructor:{name}")
    finally:
        accounts.close()
    typer.echo(
        f"client_id: {cid}\nsecret: {secret}\nusername: instructor:{name}\npassword: {password}\n"
        "(shown only now)"
    )


def register(app: typer.Typer) -> None:
    """Add ``serve`` and the ``server`` group to the CLI.

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
    ['noop', 'serve', 'server']
    >>> sorted(typer.main.get_command(app).commands["server"].commands)
    ['add-client', 'add-instructor', 'add-user']
    """
    app.command("serve")(serve)
    app.add_typer(server_app, name="server")
