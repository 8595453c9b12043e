"""Entry point of the ``ehr-sandbox`` command.

Each command group registers itself from its own module, so this file only wires them and
turns user errors into one clear line and a non-zero exit (never a traceback).

>>> from typer.testing import CliRunner
>>> CliRunner().invoke(app, ["--help"]).exit_code
0
"""

from __future__ import annotations

import sys

import typer

from ehr_sandbox.cli import (
    audit_cmds,
    class_cmds,
    demo,
    exercises_cmds,
    generate_cmds,
    privacy_cmds,
    server_cmds,
    store_cmds,
    views_cmds,
)
from ehr_sandbox.errors import SandboxError
from synthetic.errors import GenerationError

app = typer.Typer(
    name="ehr-sandbox",
    help="Synthetic FHIR patients and a teaching EHR with self-grading exercises.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _module in (
    demo,
    generate_cmds,
    store_cmds,
    views_cmds,
    exercises_cmds,
    audit_cmds,
    privacy_cmds,
    server_cmds,
    class_cmds,
):
    _module.register(app)

USER_ERRORS: tuple[type[BaseException], ...] = (
    SandboxError,
    GenerationError,
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)
"""Exceptions that mean the user asked for something wrong: one line, exit code 2."""


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (user errors print one line to stderr, exit 2)."""
    try:
        # non-standalone click returns a command's exit code instead of raising it
        returned = app(args=argv, standalone_mode=False)
    except SystemExit as exc:  # typer/click exits
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        print("aborted", file=sys.stderr)
        return 1
    except Exception as exc:  # click usage errors come through here in non-standalone mode
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        raise
    return returned if isinstance(returned, int) else 0


def run() -> None:
    """Console-script wrapper: exit with :func:`main`'s code."""
    sys.exit(main())
