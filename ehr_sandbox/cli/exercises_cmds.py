"""``ehr-sandbox exercises ...`` and ``ehr-sandbox gradebook``: the exercise catalogue from a shell.

Workflow for scripted work: ``exercises start ID --student S --db alice.db`` writes the
student's variant to a sandbox file and prints the instructions; the student works on that
file (``exercises.open_attempt("alice.db")`` in Python); ``exercises check ID --student S --db
alice.db`` gives practice feedback (exit 0 when passed, 1 when not, 2 for a user error, never
counted); ``exercises submit ...`` hands the file in. The instructor runs ``exercises check ...
--course c.json``, which re-grades the hand-in on the instructor's side (scenario re-derived from
the course secret) and records it. ``gradebook --course c.json --out grades.csv`` writes the LMS CSV.

>>> from typer.testing import CliRunner
>>> from ehr_sandbox.cli.app import app
>>> CliRunner().invoke(app, ["exercises", "list"]).exit_code
0
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ehr_sandbox.errors import ExerciseError


def load_course(path: Path):
    """Load a course file, saying plainly when the file is not one (e.g. a FHIR resource).

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "notfhir.json"
    >>> _ = f.write_text('{"resourceType": "Patient", "id": "a"}')
    >>> load_course(f)
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ExerciseError: course: notfhir.json is not a course file (it holds a FHIR Patient); give the JSON file written by Course.save
    """
    import json

    from ehr_sandbox.exercises import Course

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None  # Course.load names the problem (missing file, bad JSON)
    if data is not None and not (
        isinstance(data, dict) and "format" in data and "assignments" in data
    ):
        what = (
            f"a FHIR {data['resourceType']}"
            if isinstance(data, dict) and isinstance(data.get("resourceType"), str)
            else f"a JSON {type(data).__name__}"
        )
        raise ExerciseError(
            f"course: {path.name} is not a course file (it holds {what}); "
            "give the JSON file written by Course.save"
        )
    return Course.load(path)


def _list(topic: str | None) -> None:
    from ehr_sandbox import exercises

    rows = exercises.catalog(topic=topic)
    if not rows:
        raise ExerciseError(f"topic: no exercises in topic {topic!r}")
    width = max(len(r["id"]) for r in rows)
    for r in rows:
        typer.echo(
            f"{r['id']:<{width}}  {r['minutes']:>3} min  {r['title']}  [{', '.join(r['competencies'])}]"
        )


def _show(exercise_id: str, student: str | None, course_file: Path | None) -> None:
    from ehr_sandbox import exercises
    from ehr_sandbox.exercises.competencies import describe, exam_areas

    ex = exercises.get(exercise_id)
    typer.echo(f"{ex.id}: {ex.title}")
    if ex.summary and not student:
        typer.echo(f"{ex.summary} (example: names and values vary per student)")
    elif not student:
        typer.echo("Names and values vary per student.")
    typer.echo(
        f"topic: {ex.topic}; topics: {', '.join(ex.topics) or '-'}; about {ex.minutes} min; "
        f"work as: {ex.role}; max score: {ex.max_score:g}"
    )
    typer.echo("competencies: " + "; ".join(describe(c) for c in ex.competencies))
    typer.echo("prepares for: " + ", ".join(exam_areas(ex.competencies)))
    typer.echo("criteria:")
    for c in ex.criteria:
        typer.echo(f"  - {c.name} ({c.points:g}): {c.why}")
    if student:
        course = load_course(course_file) if course_file else None
        att = (
            exercises.start(exercise_id, student)
            if course is None
            else course.review(student, exercise_id)
        )
        typer.echo("")
        typer.echo(f"{student}'s variant:")
        typer.echo(att.instructions)
        att.sandbox.close()
    else:
        typer.echo("(pass --student S to see one student's variant with its values)")


def _start(exercise_id: str, student: str, db: Path, course_file: Path | None) -> None:
    from ehr_sandbox import exercises

    course = load_course(course_file) if course_file else None
    att = exercises.start(exercise_id, student, course=course, path=db)
    att.sandbox.close()
    typer.echo(att.instructions)
    typer.echo("")
    typer.echo(f"Saved to {db}. Open it with: exercises.open_attempt({str(db)!r})")


def _check(exercise_id: str, student: str, db: Path, course_file: Path | None) -> bool:
    """Without a course: practice feedback. With ``--course``: the instructor re-grades the
    hand-in from the re-derived scenario (``Course.collect``) and records it."""
    from ehr_sandbox import exercises

    if course_file:
        course = load_course(course_file)
        course.collect([db])
        done = course.results(student, exercise_id)
        if not done:
            raise ExerciseError(
                f"db: {db} holds no attempt at {exercise_id} by {student} for course {course.name!r}"
            )
        result = done[-1]
        if result.flag:
            typer.echo(f"{exercise_id} — {student}: not graded: {result.flag}")
            return False
        typer.echo(result.feedback)
        return result.passed
    att = exercises.open_attempt(db, exercise_id=exercise_id, student=student)
    try:
        result = att.check()
    finally:
        att.sandbox.close()
    typer.echo(result.feedback)
    return result.passed


def _submit(exercise_id: str, student: str, db: Path) -> bool:
    """Hand in the work saved in a sandbox file: graded (self-reported), stamped by the attempt's
    clock and marked on its audit trail, which the instructor's ``check --course`` reads."""
    from ehr_sandbox import exercises

    att = exercises.open_attempt(db, exercise_id=exercise_id, student=student)
    try:
        result = att.submit()
    finally:
        att.sandbox.close()
    typer.echo(result.feedback)
    typer.echo(f"submitted {db} (attempt {result.attempt}); your instructor re-grades it")
    return result.passed


def _gradebook(course_file: Path, out: Path | None, fmt: str, include_late: bool) -> None:
    if fmt not in ("canvas", "moodle"):
        raise ExerciseError(f"format: expected 'canvas' or 'moodle' (found {fmt!r})")
    import warnings

    course = load_course(course_file)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = course.gradebook(out=out, format=fmt, include_late=include_late)  # type: ignore[arg-type]
    typer.echo(frame.to_string())
    for w in caught:
        typer.echo(f"warning: {w.message}", err=True)
    if out is not None:
        typer.echo(f"wrote {out} ({fmt})")


def register(app: typer.Typer) -> None:
    """Add ``exercises`` (list, show, start, check, submit) and ``gradebook`` to ``app``.

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
    ['exercises', 'gradebook', 'noop']
    >>> sorted(typer.main.get_command(app).commands["exercises"].commands)
    ['check', 'list', 'show', 'start', 'submit']
    """
    group = typer.Typer(
        help="Self-grading exercises: list, show, start, check (practice) and submit.",
        no_args_is_help=True,
    )

    @group.command("list")
    def list_cmd(
        topic: Annotated[str | None, typer.Option(help="Only this topic (e.g. records).")] = None,
    ) -> None:
        """List the exercise catalogue."""
        _list(topic)

    @group.command("show")
    def show_cmd(
        exercise_id: Annotated[str, typer.Argument(help="Exercise id, e.g. records/correction.")],
        student: Annotated[
            str | None, typer.Option(help="Also render this student's variant of the instructions.")
        ] = None,
        course: Annotated[
            Path | None, typer.Option(help="Course JSON file (its salt decides the variant).")
        ] = None,
    ) -> None:
        """Describe one exercise (criteria, competencies; a student's instructions)."""
        _show(exercise_id, student, course)

    @group.command("start")
    def start_cmd(
        exercise_id: Annotated[str, typer.Argument(help="Exercise id.")],
        student: Annotated[str, typer.Option(help="Student id.")],
        db: Annotated[Path, typer.Option(help="New sandbox file for the attempt.")],
        course: Annotated[Path | None, typer.Option(help="Course JSON file.")] = None,
    ) -> None:
        """Create a student's attempt in a sandbox file and print the instructions."""
        _start(exercise_id, student, db, course)

    @group.command("check")
    def check_cmd(
        exercise_id: Annotated[str, typer.Argument(help="Exercise id.")],
        student: Annotated[str, typer.Option(help="Student id.")],
        db: Annotated[Path, typer.Option(help="The attempt's sandbox file.")],
        course: Annotated[
            Path | None,
            typer.Option(help="Course JSON file: re-grade on the instructor's side and record it."),
        ] = None,
    ) -> None:
        """Grade the work saved in a sandbox file (exit 0 passed, 1 not passed)."""
        if not _check(exercise_id, student, db, course):
            raise typer.Exit(1)

    @group.command("submit")
    def submit_cmd(
        exercise_id: Annotated[str, typer.Argument(help="Exercise id.")],
        student: Annotated[str, typer.Option(help="Student id.")],
        db: Annotated[Path, typer.Option(help="The attempt's sandbox file.")],
    ) -> None:
        """Hand in the work saved in a sandbox file (counted; exit 0 passed, 1 not passed)."""
        if not _submit(exercise_id, student, db):
            raise typer.Exit(1)

    app.add_typer(group, name="exercises")

    @app.command("gradebook")
    def gradebook_cmd(
        course: Annotated[Path, typer.Option(help="Course JSON file.")],
        out: Annotated[Path | None, typer.Option(help="Write an LMS-importable CSV here.")] = None,
        format: Annotated[str, typer.Option(help="canvas or moodle.")] = "canvas",
        include_late: Annotated[
            bool, typer.Option(help="Count results submitted after the due date.")
        ] = False,
    ) -> None:
        """Show a course's gradebook; write it as a Canvas or Moodle CSV."""
        _gradebook(course, out, format, include_late)
