"""Courses on the server: enrolment, assignments, attempts, grading and the gradebook.

The course (its secret salt, roster, attempt counts, hints and submissions) and every attempt's
sandbox live in the server process; students reach an attempt only through an access token
bound to it, and ``check``/``submit`` run here. A student's code cannot change a grade: there
is nothing of the grader, the answer or the course within its reach.
"""

from __future__ import annotations

import re
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ehr_sandbox.errors import AccessDenied, ExerciseError, NotFound
from ehr_sandbox.exercises.course import Course

if TYPE_CHECKING:
    from ehr_sandbox.exercises.attempt import Attempt, Result
    from ehr_sandbox.server.accounts import Accounts

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
"""Course ids: lowercase letters, digits and dashes."""


def slugify(name: str) -> str:
    """A course id from its name.

    >>> slugify("MA 101 — Fall 2026")
    'ma-101-fall-2026'
    """
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63]
    if not slug:
        raise ExerciseError(f"course name {name!r}: needs at least one letter or digit")
    return slug


def wall_clock() -> datetime:
    """The server's course clock: real time (a hosted class runs on the calendar)."""
    return datetime.now(UTC)


class ServerCourse(Course):
    """A course whose submissions are graded on the server (``graded_by="server"``)."""

    def record(self, result: Result | dict[str, Any]) -> bool:
        """Record a submission made on this server, marked as graded by the server."""
        from ehr_sandbox.exercises.attempt import Result

        data = result.to_dict() if isinstance(result, Result) else dict(result)
        data["graded_by"] = "server"
        return super().record(data)


@dataclass
class HostedAttempt:
    """One student's attempt at one exercise, held by the server."""

    attempt_id: str
    course: str
    student: str
    attempt: Attempt


class CourseHost:
    """All courses of a server and the attempts in progress.

    Parameters
    ----------
    folder : Path
        Where course files are kept (inside the server's data directory).
    accounts : Accounts
        The server's client registry (students and instructors get accounts).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from ehr_sandbox.server.accounts import Accounts
    >>> d = Path(tempfile.mkdtemp())
    >>> host = CourseHost(d / "courses", Accounts(d / "server.db"))
    >>> host.create("MA 101").name
    'MA 101'
    >>> sorted(host.courses)
    ['ma-101']
    """

    def __init__(self, folder: Path, accounts: Accounts) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.accounts = accounts
        self.courses: dict[str, ServerCourse] = {}
        for path in sorted(self.folder.glob("*.json")):
            course = ServerCourse.load(path, clock=wall_clock)
            self.courses[path.stem] = course  # type: ignore[assignment]
        self.attempts: dict[str, HostedAttempt] = {}
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ administration
    def create(self, name: str) -> ServerCourse:
        """A new course with a fresh secret salt (kept only on the server)."""
        slug = slugify(name)
        with self._lock:
            if slug in self.courses:
                raise ExerciseError(f"course {name!r} already exists (id {slug!r})")
            course = ServerCourse(name, secrets.token_urlsafe(24), clock=wall_clock)
            course.save(self.folder / f"{slug}.json")
            self.courses[slug] = course
        return course

    def course(self, slug: str) -> ServerCourse:
        """The course with id ``slug`` (:class:`NotFound` otherwise)."""
        course = self.courses.get(slug) if SLUG.match(slug or "") else None
        if course is None:
            raise NotFound(f"no course {slug!r} on this server")
        return course

    def enroll(self, slug: str, student: str, **details: str) -> dict[str, str]:
        """Enroll a student; issue their credentials (shown once, stored hashed).

        Returns
        -------
        dict
            ``client_id`` and ``secret`` (scripts) and ``username``/``password`` (browser).
        """
        if not re.fullmatch(r"[A-Za-z0-9._@-]{1,64}", student or ""):
            raise ExerciseError(
                f"student id {student!r}: letters, digits and . _ @ - only (up to 64)"
            )
        course = self.course(slug)
        username = f"student:{slug}:{student}"
        with self._lock:
            course.enroll(student, **details)
            cid, secret = self.accounts.issue(username, kind="student")
            password = self.accounts.set_password(username)
        return {
            "client_id": cid,
            "secret": secret or "",
            "username": username,
            "password": password,
        }

    # ------------------------------------------------------------------ attempts
    def start(self, slug: str, student: str, exercise_id: str) -> HostedAttempt:
        """Start (or resume) the student's attempt at an assigned exercise."""
        course = self.course(slug)
        with self._lock:
            for hosted in self.attempts.values():
                if (hosted.course, hosted.student, hosted.attempt.exercise.id) == (
                    slug,
                    student,
                    exercise_id,
                ):
                    return hosted
            attempt = course.start(exercise_id, student)
            hosted = HostedAttempt(secrets.token_urlsafe(12), slug, student, attempt)
            self.attempts[hosted.attempt_id] = hosted
        return hosted

    def attempt(self, attempt_id: str, student: str) -> HostedAttempt:
        """The attempt ``attempt_id`` if it belongs to ``student`` (else :class:`NotFound`)."""
        hosted = self.attempts.get(attempt_id or "")
        if hosted is None or hosted.student != student:
            raise NotFound("no such attempt")
        return hosted

    def for_review(self, slug: str, student: str, exercise_id: str) -> HostedAttempt | None:
        """The attempt in progress of a student (for the instructor's review), if any."""
        for hosted in self.attempts.values():
            if (hosted.course, hosted.student, hosted.attempt.exercise.id) == (
                slug,
                student,
                exercise_id,
            ):
                return hosted
        return None


def student_of(username: str) -> tuple[str, str]:
    """``(course id, student id)`` of a student account's username.

    >>> student_of("student:ma-101:alice")
    ('ma-101', 'alice')
    """
    parts = username.split(":", 2)
    if len(parts) != 3 or parts[0] != "student":
        raise AccessDenied("this account is not a student's account")
    return parts[1], parts[2]
