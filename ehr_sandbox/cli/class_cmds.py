"""CLI: ``ehr-sandbox class ...`` administers a course on a running classroom server, as the
instructor (credentials from ``--client-id``/``--secret`` or ``EHR_SANDBOX_CLIENT_ID``/
``EHR_SANDBOX_SECRET``).

>>> from typer.testing import CliRunner
>>> app = typer.Typer(); register(app)
>>> CliRunner().invoke(app, ["class", "--help"]).exit_code
0
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

class_app = typer.Typer(
    help="Run a course on a classroom server (as its instructor).", no_args_is_help=True
)

UrlOption = Annotated[str, typer.Option("--url", help="The server's base URL.")]
IdOption = Annotated[
    str, typer.Option("--client-id", envvar="EHR_SANDBOX_CLIENT_ID", help="Instructor client id.")
]
SecretOption = Annotated[
    str, typer.Option("--secret", envvar="EHR_SANDBOX_SECRET", help="Instructor secret.")
]
CourseOption = Annotated[str, typer.Option("--course", help="The course id (from 'class create').")]


def _instructor(url: str, client_id: str, secret: str) -> Any:
    from ehr_sandbox.remote import connect

    return connect(url, client_id=client_id, secret=secret)


@class_app.command("create")
def create(
    name: Annotated[str, typer.Option(help="Course name.")],
    url: UrlOption = "http://127.0.0.1:8080",
    client_id: IdOption = "",
    secret: SecretOption = "",
) -> None:
    """Create a course; prints its id."""
    made = _instructor(url, client_id, secret).course_call("POST", "/course", {"name": name})
    typer.echo(f"course: {made['course']}")


@class_app.command("enroll")
def enroll(
    course: CourseOption,
    student: Annotated[str, typer.Option(help="Student id (e.g. a school login).")],
    url: UrlOption = "http://127.0.0.1:8080",
    client_id: IdOption = "",
    secret: SecretOption = "",
) -> None:
    """Enrol a student; prints their credentials once."""
    c = _instructor(url, client_id, secret).course_call(
        "POST", f"/course/{course}/students", {"id": student}
    )
    typer.echo(
        f"client_id: {c['client_id']}\nsecret: {c['secret']}\nusername: {c['username']}\n"
        f"password: {c['password']}\n(shown only now)"
    )


@class_app.command("assign")
def assign(
    course: CourseOption,
    exercise: Annotated[str, typer.Option(help="Exercise id from the catalogue.")],
    due: Annotated[str | None, typer.Option(help="Due date (YYYY-MM-DD).")] = None,
    max_attempts: Annotated[int | None, typer.Option(help="Submissions allowed.", min=1)] = None,
    url: UrlOption = "http://127.0.0.1:8080",
    client_id: IdOption = "",
    secret: SecretOption = "",
) -> None:
    """Assign an exercise with a due date and an attempt limit."""
    body: dict[str, Any] = {"exercise": exercise}
    if due:
        body["due"] = due
    if max_attempts:
        body["max_attempts"] = max_attempts
    a = _instructor(url, client_id, secret).course_call(
        "POST", f"/course/{course}/assignments", body
    )
    typer.echo(f"assigned {a.get('exercise_id', exercise)}")


@class_app.command("gradebook")
def gradebook(
    course: CourseOption,
    out: Annotated[Path, typer.Option(help="CSV file to write.", dir_okay=False)],
    format: Annotated[str, typer.Option(help="canvas or moodle.")] = "canvas",
    url: UrlOption = "http://127.0.0.1:8080",
    client_id: IdOption = "",
    secret: SecretOption = "",
) -> None:
    """Download the gradebook CSV (graded on the server)."""
    text = _instructor(url, client_id, secret).course_call(
        "GET", f"/course/{course}/gradebook?format={format}"
    )
    out.write_text(text if isinstance(text, str) else "", encoding="utf-8")
    typer.echo(f"wrote {out}")


def register(app: typer.Typer) -> None:
    """Add the ``class`` group to the CLI.

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
    ['class', 'noop']
    >>> sorted(typer.main.get_command(app).commands["class"].commands)
    ['assign', 'create', 'enroll', 'gradebook']
    """
    app.add_typer(class_app, name="class")
