"""Entry point of the ``ehr-sandbox`` command.

Each command group registers itself from its own module, so this file only wires them and
turns user errors into one clear line and a non-zero exit (never a traceback).

>>> from typer.testing import CliRunner
>>> CliRunner().invoke(build_app(), ["--help"]).exit_code
0
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer

from ehr_sandbox.errors import SandboxError
from synthetic.errors import GenerationError

MODULES = (
    "demo",
    "generate_cmds",
    "store_cmds",
    "views_cmds",
    "exercises_cmds",
    "audit_cmds",
    "privacy_cmds",
    "server_cmds",
    "class_cmds",
)
"""The command modules of ``ehr_sandbox.cli``, in the order ``--help`` lists them."""

COMMANDS: dict[str, str] = {
    "demo": "demo",
    "generate": "generate_cmds",
    "new": "store_cmds",
    "import": "store_cmds",
    "export": "store_cmds",
    "view": "views_cmds",
    "exercises": "exercises_cmds",
    "gradebook": "exercises_cmds",
    "audit": "audit_cmds",
    "deidentify": "privacy_cmds",
    "serve": "server_cmds",
    "server": "server_cmds",
    "class": "class_cmds",
}
"""Which module registers each top-level command: a run imports only the one it needs (a
fresh ``ehr-sandbox generate`` does not load the EHR, views or the server)."""


def _version(value: bool) -> None:
    if value:
        from ehr_sandbox import __version__

        typer.echo(f"ehr-sandbox {__version__}")
        raise typer.Exit(0)


def _root(
    version: bool = typer.Option(
        False,
        "--version",
        help="Show the version and exit.",
        is_eager=True,
        callback=_version,
    ),
) -> None:
    """Synthetic FHIR patients and a teaching EHR with self-grading exercises."""


def build_app(modules: tuple[str, ...] = MODULES) -> typer.Typer:
    """The command line with the commands of ``modules`` (every command by default).

    Parameters
    ----------
    modules
        Names of modules in ``ehr_sandbox.cli`` whose ``register(app)`` adds commands.

    Returns
    -------
    typer.Typer
        The application.

    Examples
    --------
    >>> [c.name for c in build_app(("generate_cmds",)).registered_commands]
    ['generate']
    """
    new = typer.Typer(
        name="ehr-sandbox",
        help="Synthetic FHIR patients and a teaching EHR with self-grading exercises.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    new.callback()(_root)
    for name in modules:
        importlib.import_module(f"ehr_sandbox.cli.{name}").register(new)
    return new


_FULL: list[typer.Typer] = []


def __getattr__(name: str) -> Any:
    """``app`` (every command) is built on first use (PEP 562).

    >>> __getattr__("nothing")
    Traceback (most recent call last):
    ...
    AttributeError: module 'ehr_sandbox.cli.app' has no attribute 'nothing'
    """
    if name == "app":
        if not _FULL:
            _FULL.append(build_app())
        return _FULL[0]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _app_for(argv: list[str]) -> typer.Typer:
    """Only the module of the command asked for; every command for help or a typo."""
    command = next((a for a in argv if not a.startswith("-")), None)
    module = COMMANDS.get(command) if command is not None else None
    if module is None or "--help" in argv[:1] or "--version" in argv:
        return __getattr__("app")  # type: ignore[no-any-return]
    return build_app((module,))


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


def _click_exception_class() -> type[Exception]:
    """The ``ClickException`` base class of whichever click typer runs on.

    typer up to 0.15 uses the ``click`` package; newer typer vendors its own copy
    (``typer._click``) and no longer installs click. ``typer.BadParameter`` exists in both,
    so its class hierarchy names the right base without importing either by name.

    >>> _click_exception_class().__name__
    'ClickException'
    """
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


_CLICK_EXCEPTION = _click_exception_class()


def _one_line(message: str) -> str:
    """Collapse a (possibly multi-line) message into one line."""
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code.

    Usage errors (unknown command or option, a missing or malformed value) and user errors
    print one line, ``error: ...``, to stderr and return 2; never a traceback.

    Parameters
    ----------
    argv
        Arguments without the program name; ``None`` reads ``sys.argv``.

    Returns
    -------
    int
        0 on success, 1 when a command reports failure, 2 for a usage or user error.

    Examples
    --------
    >>> main(["--no-such-option"])
    2
    """
    try:
        # non-standalone click returns a command's exit code instead of raising it
        args = sys.argv[1:] if argv is None else list(argv)
        returned = _app_for(args)(args=args, prog_name="ehr-sandbox", standalone_mode=False)
    except SystemExit as exc:  # typer/click exits
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except USER_ERRORS as exc:
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        print("aborted", file=sys.stderr)
        return 1
    except _CLICK_EXCEPTION as exc:  # usage errors (non-standalone mode raises them)
        print(f"error: {_one_line(exc.format_message())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("aborted", file=sys.stderr)
        return 130
    return returned if isinstance(returned, int) else 0


def run() -> None:
    """Console-script wrapper: exit with :func:`main`'s code.

    The ``ehr-sandbox`` command runs this; it reads ``sys.argv``.

    Raises
    ------
    SystemExit
        Always, with :func:`main`'s exit code (0 on success, 2 for a user error).

    Examples
    --------
    >>> import sys
    >>> saved, sys.argv = sys.argv, ["ehr-sandbox", "--no-such-option"]
    >>> try:
    ...     run()
    ... except SystemExit as e:
    ...     print("exit", e.code)
    exit 2
    >>> sys.argv = saved
    """
    sys.exit(main())
