"""Instructor side: a course with students, assignments, results, gradebook and competencies.

A course is saved as one JSON file (``course.save("course.json")``; ``Course.load``) so the
CLI can build the gradebook. The course, not the student's attempt, holds the course state:
the salt, submissions, attempt counts and hints taken. Results come from ``Attempt.submit()``
of attempts started with ``course=`` (recorded at once, **self-reported**: graded in the
student's process) or from hand-in files re-graded by :meth:`Course.collect` (**graded on the
instructor's side** from the re-derived scenario; a hand-in whose audit chain, variant or
setup state does not match is flagged, not graded). ``results_table()`` says which is which.

Clock: one clock throughout. By default a submission is stamped by the attempt's sandbox
clock (the same clock every record in it carries); pass ``clock=`` to use another (e.g. the
wall clock of a live class).

Gradebook rule: for each student and assignment, the best score among the results that count
(not late, unless ``include_late=True``; not flagged; self-reported results stop counting once
the instructor has re-graded that student's hand-in); late results are shown by
``gradebook(details=True)`` and a warning says how many were left out.

>>> from datetime import datetime, UTC
>>> c = Course("MA 101", salt="s3cret", clock=lambda: datetime(2026, 1, 5, tzinfo=UTC))
>>> c.enroll("alice", name="Alice Adams", email="alice@example.edu")
>>> _ = c.assign("records/correction", due="2026-01-10T23:59:00+00:00", max_attempts=2)
>>> c.attempts_used("alice", "records/correction")
0
>>> list(c.gradebook().columns)
['records/correction']
>>> hasattr(c.start, "__call__") and "salt" not in repr(c)
True
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ehr_sandbox.errors import ExerciseError, SandboxError
from ehr_sandbox.exercises.attempt import Result
from ehr_sandbox.exercises.variants import Variant

if TYPE_CHECKING:
    import pandas as pd

    from ehr_sandbox.exercises.attempt import Attempt

__all__ = ["Assignment", "Course", "Student"]

FORMAT_VERSION = 1


def _parse_due(due: datetime | date | str | None) -> datetime | None:
    if due is None:
        return None
    if isinstance(due, str):
        try:
            due = datetime.fromisoformat(due) if "T" in due else date.fromisoformat(due)
        except ValueError:
            raise ExerciseError(f"due: expected an ISO date or datetime (found {due!r})") from None
    if isinstance(due, datetime):
        if due.tzinfo is None:
            raise ExerciseError(
                f"due: expected a timezone-aware datetime, e.g. 2026-01-10T23:59:00+00:00 (found {due.isoformat()!r})"
            )
        return due
    if isinstance(due, date):
        # A bare date means "by the end of that day" (UTC).
        return datetime(due.year, due.month, due.day, 23, 59, 59, tzinfo=UTC)
    raise ExerciseError(f"due: expected a date, datetime or ISO string (found {due!r})")


@dataclass(frozen=True)
class Student:
    """An enrolled student; ``id`` is what variants are derived from (e.g. the LMS login).

    >>> Student("alice").display
    'alice'
    """

    id: str
    name: str = ""
    email: str = ""
    section: str = ""
    sis_id: str = ""
    lms_id: str = ""

    @property
    def display(self) -> str:
        """Name for gradebooks (the id when no name is known)."""
        return self.name or self.id


@dataclass(frozen=True)
class Assignment:
    """An exercise assigned in a course, with an optional due date, attempt limit and limit
    on practice checks (``max_checks``: every check is counted and shown to the instructor;
    past the limit ``check()`` is refused, as autograders cap how often hidden tests may be
    run).

    >>> Assignment("records/correction", due=None, max_attempts=3).max_attempts
    3
    """

    exercise_id: str
    due: datetime | None = None
    max_attempts: int | None = None
    title: str = ""
    max_checks: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**asdict(self), "due": self.due.isoformat() if self.due else None}


class Course:
    """A course: ``Course(name, salt)``, then ``enroll``, ``assign``, ``start``, ``gradebook``."""

    def __init__(
        self,
        name: str,
        salt: str,
        *,
        path: str | Path | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ExerciseError(f"course name: expected a non-empty string (found {name!r})")
        if not isinstance(salt, str) or len(salt) < 4:
            raise ExerciseError("course salt: expected a secret string of at least 4 characters")
        self.name = name
        self.salt = salt
        self.path = Path(path) if path is not None else None
        self._clock = clock
        self.students: dict[str, Student] = {}
        self.assignments: dict[str, Assignment] = {}
        self._results: list[dict[str, Any]] = []
        self._hints: dict[str, list[int]] = {}
        self._checks: dict[str, int] = {}

    def now(self, sandbox: Any = None) -> datetime:
        """The course clock: the ``clock`` given to the course, else the sandbox clock of the
        attempt being stamped (the documented default), else the wall clock (UTC).

        >>> from ehr_sandbox.sandbox import Sandbox
        >>> Course("c", "salt").now(Sandbox.empty()).year
        2026
        """
        if self._clock is not None:
            return self._clock()
        if sandbox is not None:
            clock = sandbox.clock
            return clock.peek() if hasattr(clock, "peek") else clock()
        return datetime.now(UTC)

    def hints_taken(self, student: str, exercise_id: str) -> int:
        """How many hints the course has recorded for this student and exercise."""
        return len(self._hints.get(f"{student}|{exercise_id}", []))

    def record_hint(self, student: str, exercise_id: str, index: int) -> None:
        """Record that a student took hint ``index`` (the course keeps the count, not the attempt)."""
        taken = self._hints.setdefault(f"{student}|{exercise_id}", [])
        if index not in taken:
            taken.append(int(index))
            self._autosave()

    def checks_used(self, student: str, exercise_id: str) -> int:
        """How many practice checks the course has recorded for this student and exercise.

        >>> c = Course("c", "salt")
        >>> c.record_check("ann", "records/correction")
        1
        >>> c.checks_used("ann", "records/correction"), c.checks_used("bob", "records/correction")
        (1, 0)
        """
        return int(self._checks.get(f"{student}|{exercise_id}", 0))

    def record_check(self, student: str, exercise_id: str) -> int:
        """Count one practice check (the course keeps the count: a reset does not undo it).

        Parameters
        ----------
        student : str
            The student's id.
        exercise_id : str
            The exercise checked.

        Returns
        -------
        int
            The student's checks of that exercise so far, this one included.

        Examples
        --------
        >>> c = Course("c", "salt")
        >>> c.record_check("ann", "records/correction"), c.record_check("ann", "records/correction")
        (1, 2)
        """
        key = f"{student}|{exercise_id}"
        self._checks[key] = int(self._checks.get(key, 0)) + 1
        self._autosave()
        return self._checks[key]

    # -- roster and assignments ---------------------------------------------------------
    def enroll(
        self,
        student: str,
        *,
        name: str = "",
        email: str = "",
        section: str = "",
        sis_id: str = "",
        lms_id: str = "",
    ) -> None:
        """Enroll a student (re-enrolling updates their details)."""
        if not isinstance(student, str) or not student.strip():
            raise ExerciseError(f"student: expected a non-empty id (found {student!r})")
        self.students[student] = Student(student, name, email, section, sis_id, lms_id)
        self._autosave()

    def enroll_many(self, students: Iterable[str | dict[str, str]]) -> None:
        """Enroll ids or dicts with ``id`` and optional name/email/section/sis_id/lms_id."""
        for s in students:
            if isinstance(s, str):
                self.enroll(s)
            else:
                data = dict(s)
                self.enroll(data.pop("id"), **data)

    def assign(
        self,
        exercise_id: str,
        *,
        due: datetime | date | str | None = None,
        max_attempts: int | None = None,
        max_checks: int | None = None,
    ) -> Assignment:
        """Assign an exercise (it must exist in the catalogue).

        >>> c = Course("c", "salt")
        >>> c.assign("records/correction", max_checks=0)
        Traceback (most recent call last):
        ...
        ehr_sandbox.errors.ExerciseError: max_checks: expected a positive integer or None (found 0)
        """
        from ehr_sandbox.exercises.registry import get

        ex = get(exercise_id)
        for field, value in (("max_attempts", max_attempts), ("max_checks", max_checks)):
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 1
            ):
                raise ExerciseError(
                    f"{field}: expected a positive integer or None (found {value!r})"
                )
        a = Assignment(exercise_id, _parse_due(due), max_attempts, ex.title, max_checks)
        self.assignments[exercise_id] = a
        self._autosave()
        return a

    def assignment(self, exercise_id: str) -> Assignment | None:
        """The assignment of ``exercise_id`` in this course, if any."""
        return self.assignments.get(exercise_id)

    def require_can_start(self, student: str, exercise_id: str) -> None:
        """Raise ExerciseError unless the student is enrolled and the exercise assigned."""
        if student not in self.students:
            raise ExerciseError(
                f"student: {student!r} is not enrolled in course {self.name!r}; enroll them with course.enroll({student!r})"
            )
        if exercise_id not in self.assignments:
            raise ExerciseError(
                f"exercise: {exercise_id!r} is not assigned in course {self.name!r}; assign it with course.assign({exercise_id!r})"
            )

    def start(self, exercise_id: str, student: str, **kwargs: Any) -> Attempt:
        """Start a student's attempt in this course (see ``exercises.start``)."""
        from ehr_sandbox.exercises.registry import start

        return start(exercise_id, student, course=self, **kwargs)

    def variant(self, student: str, exercise_id: str) -> Variant:
        """The student's variant (instructors can regenerate it with ``review``)."""
        return Variant.of(self.salt, student, exercise_id)

    def review(self, student: str, exercise_id: str) -> Attempt:
        """Regenerate a student's start state to look at it; nothing is recorded in the course."""
        from ehr_sandbox.exercises.attempt import Attempt
        from ehr_sandbox.exercises.registry import get

        self.require_can_start(student, exercise_id)
        return Attempt.create(get(exercise_id), self.variant(student, exercise_id))

    def show(self, student: str, exercise_id: str) -> str:
        """The student's instructions with their variant's names and values (for review)."""
        att = self.review(student, exercise_id)
        try:
            return att.instructions
        finally:
            att.sandbox.close()

    # -- results ------------------------------------------------------------------------------
    def attempts_used(self, student: str, exercise_id: str) -> int:
        """How many submissions the course has seen from this student for this exercise (the
        highest attempt number recorded, self-reported or re-graded)."""
        return max(
            (
                int(r.get("attempt", 1) or 1)
                for r in self._results
                if r["student"] == student and r["exercise_id"] == exercise_id
            ),
            default=0,
        )

    def record(self, result: Result | dict[str, Any]) -> bool:
        """Record a submission (ignored if already recorded, or if it is practice); returns True
        if it was new. Late is decided here from the submission's stamp and the due date."""
        data = (
            result.to_dict() if isinstance(result, Result) else Result.from_dict(result).to_dict()
        )
        if data.get("kind", "submission") != "submission":
            return False

        def key(r: dict[str, Any]) -> tuple[Any, ...]:
            return (
                r["student"],
                r["exercise_id"],
                r["attempt"],
                r["checked_at"],
                r.get("graded_by", "self"),
            )

        if any(key(r) == key(data) for r in self._results):
            return False
        a = self.assignments.get(data["exercise_id"])
        if a is not None and a.due is not None and data.get("checked_at"):
            data["late"] = bool(
                data.get("late") or datetime.fromisoformat(data["checked_at"]) > a.due
            )
        self._results.append(data)
        self._autosave()
        return True

    def collect(self, sources: Iterable[Any]) -> int:
        """Re-grade hand-ins on the instructor's side; returns how many results were new.

        ``sources`` are attempt files, attempts or sandboxes. For every attempt found in a
        source (enrolled student, assigned exercise) the scenario is re-derived from this
        course's secret, the student and the exercise (never read from the hand-in); the audit
        chain, the variant and the record as setup left it must match, or the hand-in is
        recorded as *flagged* with the reason and not graded. Results written into the hand-in
        are ignored. The submission time is the last ``submit()`` stamp on the hand-in's audit
        trail (else the course clock); hints are the most the course, the hand-in's metadata or
        its audit trail shows.
        """
        from ehr_sandbox.exercises import persistence

        new = 0
        for src in sources:
            opened = None
            if isinstance(src, str | Path):
                from ehr_sandbox.sandbox import Sandbox

                opened = sb = Sandbox.open(str(src))
            else:
                sb = getattr(src, "sandbox", src)
            try:
                metas = list((sb.state.get(persistence.ATTEMPT_KEY) or {}).values())
                for meta in metas:
                    if (
                        meta.get("student") in self.students
                        and meta.get("exercise_id") in self.assignments
                    ):
                        new += self.record(self._regrade(sb, meta))
            finally:
                if opened is not None:
                    opened.close()
        return new

    def _regrade(self, sb: Any, meta: dict[str, Any]) -> Result:
        import math

        from ehr_sandbox.exercises.attempt import (
            derive,
            grade_sandbox,
            hint_events,
            score_result,
            setup_digest,
        )
        from ehr_sandbox.exercises.clinics import fresh_clinic
        from ehr_sandbox.exercises.grading import event_detail, event_kind
        from ehr_sandbox.exercises.registry import get

        student, ex_id = meta["student"], meta["exercise_id"]
        exercise = get(ex_id)
        variant = self.variant(student, ex_id)
        submits = [
            e for e in sb.audit.events(user=exercise.role) if event_kind(e) == "exercise-submit"
        ]
        stamps = [
            d.get("at")
            for d in (event_detail(e) for e in submits)
            if isinstance(d, dict) and isinstance(d.get("at"), str)
        ]
        when = max(stamps) if stamps else self.now(sb).isoformat()
        attempt = max(1, len(submits))
        flag = ""
        verdict = sb.audit.verify()
        derived = None
        if not verdict.ok:
            flag = "the audit trail does not verify (the record was tampered with)"
        elif meta.get("seed") != variant.seed:
            flag = "the hand-in is not this student's variant in this course"
        else:
            reference = fresh_clinic(exercise, variant)
            try:
                derived = derive(exercise, reference, variant)
                if derived.facts != meta.get("facts") or derived.mark.to_dict() != meta.get("mark"):
                    flag = "the hand-in's facts do not match the student's variant"
                else:
                    try:
                        same = setup_digest(reference, derived.mark) == setup_digest(
                            sb, derived.mark
                        )
                    except SandboxError:
                        same = False
                    if not same:
                        flag = "the record as setup left it was changed outside the EHR"
            finally:
                reference.close()
        a = self.assignments[ex_id]
        if not flag and a.max_attempts is not None and attempt > a.max_attempts:
            flag = f"{attempt} submissions, more than the {a.max_attempts} allowed"
        extra = {
            "attempt": attempt,
            "checked_at": when,
            "late": bool(a.due is not None and datetime.fromisoformat(when) > a.due),
            "kind": "submission",
            "graded_by": "instructor",
            # the checks the hand-in's audit trail shows (a reset re-records earlier ones)
            "checks": sum(
                1 for e in sb.audit.events(user=exercise.role) if event_kind(e) == "exercise-check"
            ),
        }
        hints = max(
            len(meta.get("hints_used", [])),
            hint_events(sb, exercise.role),
            self.hints_taken(student, ex_id),
        )
        if flag or derived is None:
            return Result(
                ex_id,
                student,
                math.nan,
                exercise.max_score,
                False,
                [],
                tampered=not verdict.ok,
                hints_used=hints,
                flag=flag,
                **extra,
            )
        criteria, tampered = grade_sandbox(exercise, sb, derived, student)
        return score_result(exercise, student, criteria, tampered, hints_used=hints, **extra)

    def results(self, student: str | None = None, exercise_id: str | None = None) -> list[Result]:
        """Recorded results, oldest first, optionally filtered."""
        return [
            Result.from_dict(r)
            for r in self._results
            if (student is None or r["student"] == student)
            and (exercise_id is None or r["exercise_id"] == exercise_id)
        ]

    def _best(self, include_late: bool) -> dict[tuple[str, str], dict[str, Any]]:
        best: dict[tuple[str, str], dict[str, Any]] = {}
        # once the instructor has re-graded a student's hand-in, self-reported results no longer count
        regraded = {
            (r["student"], r["exercise_id"])
            for r in self._results
            if r.get("graded_by") == "instructor"
        }
        for r in self._results:
            if (r.get("late") and not include_late) or r.get("flag"):
                continue
            if (
                r.get("graded_by", "self") != "instructor"
                and (
                    r["student"],
                    r["exercise_id"],
                )
                in regraded
            ):
                continue
            k = (r["student"], r["exercise_id"])
            if k not in best or r["score"] > best[k]["score"]:
                best[k] = r
        return best

    # -- gradebook ----------------------------------------------------------------------------
    def gradebook(
        self,
        out: str | Path | None = None,
        *,
        format: Literal["canvas", "moodle"] = "canvas",
        include_late: bool = False,
        details: bool = False,
    ) -> pd.DataFrame:
        """Student x assignment points (best counted result; NaN = nothing counted yet).

        Late results are left out unless ``include_late=True``, and a one-line warning says how
        many were; ``details=True`` adds, per assignment, ``<id> late`` (a late result exists),
        ``<id> graded by`` (``instructor`` or ``self``) and ``<id> checks`` (practice checks
        recorded) columns (not written to the CSV).

        With ``out`` also writes a CSV that Canvas (``format="canvas"``: Student, ID, SIS User
        ID, SIS Login ID, Section, then one column per assignment) or Moodle (``"moodle"``:
        Username and Email address identifier columns, then one column per grade item) imports.
        """
        import pandas as pd

        best = self._best(include_late)
        ids = list(self.assignments)
        data = {
            ex_id: [
                best[(s, ex_id)]["score"] if (s, ex_id) in best else float("nan")
                for s in self.students
            ]
            for ex_id in ids
        }
        frame = pd.DataFrame(
            data, index=pd.Index(list(self.students), name="student"), columns=ids, dtype=float
        )
        late = [r for r in self._results if r.get("late") and not r.get("flag")]
        if late and not include_late:
            warnings.warn(
                f"gradebook: {len(late)} late result(s) left out (include_late=True counts them; "
                "details=True shows them)",
                UserWarning,
                stacklevel=2,
            )
        if out is not None:
            self._write_lms_csv(frame, Path(out), format)
        if details:
            for ex_id in ids:
                frame[f"{ex_id} late"] = [
                    any(
                        r.get("late")
                        for r in self._results
                        if (r["student"], r["exercise_id"]) == (s, ex_id)
                    )
                    for s in self.students
                ]
                frame[f"{ex_id} graded by"] = [
                    best[(s, ex_id)].get("graded_by", "self") if (s, ex_id) in best else ""
                    for s in self.students
                ]
                frame[f"{ex_id} checks"] = [self.checks_used(s, ex_id) for s in self.students]
        frame.attrs["late_left_out"] = 0 if include_late else len(late)
        return frame

    def results_table(self) -> pd.DataFrame:
        """Every recorded submission: student, exercise, attempt, time, score, passed, late,
        graded_by (``instructor`` = re-graded by :meth:`collect`; ``self`` = graded in the
        student's process), flag (why a hand-in was not graded) and checks (practice checks
        before that submission)."""
        import pandas as pd

        cols = [
            "student",
            "exercise_id",
            "attempt",
            "checked_at",
            "score",
            "max_score",
            "passed",
            "late",
            "graded_by",
            "flag",
            "checks",
        ]
        return pd.DataFrame(
            [
                {c: r.get(c, {"graded_by": "self", "checks": 0}.get(c, "")) for c in cols}
                for r in self._results
            ],
            columns=cols,
        )

    def _column_title(self, exercise_id: str) -> str:
        a = self.assignments[exercise_id]
        return f"{a.title} ({exercise_id})" if a.title else exercise_id

    def _write_lms_csv(self, frame: pd.DataFrame, out: Path, fmt: str) -> None:
        import pandas as pd

        people = [self.students[s] for s in frame.index]
        cols = {ex_id: self._column_title(ex_id) for ex_id in frame.columns}
        if fmt == "canvas":
            ident = pd.DataFrame(
                {
                    "Student": [p.display for p in people],
                    "ID": [p.lms_id for p in people],
                    "SIS User ID": [p.sis_id or p.id for p in people],
                    "SIS Login ID": [p.id for p in people],
                    "Section": [p.section for p in people],
                }
            )
        elif fmt == "moodle":
            ident = pd.DataFrame(
                {"Username": [p.id for p in people], "Email address": [p.email for p in people]}
            )
        else:
            raise ExerciseError(f"format: expected 'canvas' or 'moodle' (found {fmt!r})")
        grades = frame.rename(columns=cols).reset_index(drop=True)
        table = pd.concat([ident, grades], axis=1)
        out.parent.mkdir(parents=True, exist_ok=True)
        # Write beside the target and rename: a failed write never leaves half a gradebook.
        fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".csv.tmp")
        os.close(fd)
        try:
            table.to_csv(tmp, index=False, float_format="%g")
            os.replace(tmp, out)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def competency_report(self, *, include_late: bool = False) -> pd.DataFrame:
        """Student x competency -> demonstrated (passed a counted attempt of a tagged exercise)."""
        import pandas as pd

        from ehr_sandbox.exercises.registry import get

        tags = {ex_id: get(ex_id).competencies for ex_id in self.assignments}
        comps = sorted({c for cs in tags.values() for c in cs}, key=_competency_sort_key)
        shown = {(s, c): False for s in self.students for c in comps}
        for r in self._results:
            if (
                not r["passed"]
                or (r.get("late") and not include_late)
                or r["exercise_id"] not in tags
            ):
                continue
            for c in tags[r["exercise_id"]]:
                if (r["student"], c) in shown:
                    shown[(r["student"], c)] = True
        from ehr_sandbox.exercises.competencies import COMPETENCIES

        columns = pd.MultiIndex.from_tuples(
            [(c, COMPETENCIES[c].title if c in COMPETENCIES else "") for c in comps],
            names=["competency", "text"],
        )
        return pd.DataFrame(
            [[shown[(s, c)] for c in comps] for s in self.students],
            index=pd.Index(list(self.students), name="student"),
            columns=columns,
            dtype=bool,
        )

    # -- persistence --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form of the whole course."""
        return {
            "format": FORMAT_VERSION,
            "name": self.name,
            "salt": self.salt,
            "students": [asdict(s) for s in self.students.values()],
            "assignments": [a.to_dict() for a in self.assignments.values()],
            "results": self._results,
            "hints": self._hints,
            "checks": self._checks,
        }

    def save(self, path: str | Path | None = None) -> Path:
        """Write the course JSON (atomically) and remember the path for automatic saves."""
        target = Path(path) if path is not None else self.path
        if target is None:
            raise ExerciseError("course save: no path given and the course has none")
        self.path = target
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".json.tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(self.to_dict(), fh, indent=2, sort_keys=True)
        os.replace(tmp, target)
        return target

    def _autosave(self) -> None:
        if self.path is not None:
            self.save()

    @classmethod
    def load(cls, path: str | Path, *, clock: Callable[[], datetime] | None = None) -> Course:
        """Read a course JSON written by :meth:`save`."""
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ExerciseError(f"course: no course file at {p}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ExerciseError(f"course {p}: not a course JSON file ({exc})") from None
        if not isinstance(data, dict) or "salt" not in data or "assignments" not in data:
            raise ExerciseError(
                f"course {p}: not a course file (a course file is written by Course.save())"
            )
        if data.get("format") != FORMAT_VERSION:
            raise ExerciseError(
                f"course {p}: format: expected {FORMAT_VERSION} (found {data.get('format') if isinstance(data, dict) else data!r})"
            )
        try:
            c = cls(data["name"], data["salt"], clock=clock)
            c.students = {s["id"]: Student(**s) for s in data.get("students", [])}
            c.assignments = {
                a["exercise_id"]: Assignment(
                    a["exercise_id"],
                    _parse_due(a.get("due")),
                    a.get("max_attempts"),
                    a.get("title", ""),
                    a.get("max_checks"),
                )
                for a in data.get("assignments", [])
            }
            c._results = list(data.get("results", []))
            c._hints = {k: list(v) for k, v in dict(data.get("hints", {})).items()}
            c._checks = {k: int(v) for k, v in dict(data.get("checks", {})).items()}
        except (KeyError, TypeError) as exc:
            raise ExerciseError(f"course {p}: missing or malformed field {exc}") from None
        c.path = p
        return c

    def _repr_html_(self) -> str:
        from ehr_sandbox.display.reprs import course_html

        return course_html(self)

    def __repr__(self) -> str:
        return f"<Course {self.name!r}: {len(self.students)} students, {len(self.assignments)} assignments, {len(self._results)} results>"


def _competency_sort_key(code: str) -> tuple[int, str, int]:
    roman = {
        "I": 1,
        "II": 2,
        "III": 3,
        "IV": 4,
        "V": 5,
        "VI": 6,
        "VII": 7,
        "VIII": 8,
        "IX": 9,
        "X": 10,
        "XI": 11,
        "XII": 12,
    }
    parts = code.split(".")
    num = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else 0
    return (roman.get(parts[0], 99), parts[1] if len(parts) > 1 else "", num)
