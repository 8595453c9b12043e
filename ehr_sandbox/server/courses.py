"""Courses on the server: enrolment, assignments, attempts, grading and the gradebook.

The course (its secret salt, roster, attempt counts, hints and submissions) and every attempt's
sandbox live in the server's data directory (course files, encrypted attempt files, rows in the
server database), so every worker process serves every attempt and a restart loses none;
students reach an attempt only through an access token bound to it, and ``check``/``submit``
run here. A student's code cannot change a grade: there
is nothing of the grader, the answer or the course within its reach.
"""

from __future__ import annotations

import contextlib
import functools
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ehr_sandbox.errors import AccessDenied, ExerciseError, NotFound
from ehr_sandbox.exercises.course import Course
from ehr_sandbox.server.attempts import (
    AttemptRow,
    AttemptStore,
    OpenAttempt,
    file_lock,
    scenario_from_json,
)

if TYPE_CHECKING:
    from ehr_sandbox.exercises.attempt import Attempt, Result
    from ehr_sandbox.server.accounts import Accounts
    from ehr_sandbox.session import Session

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
        with self._held():
            return super().record(data)

    def record_hint(self, student: str, exercise_id: str, index: int) -> None:
        """Record a hint taken, in the course file as the workers share it."""
        with self._held():
            super().record_hint(student, exercise_id, index)

    def record_check(self, student: str, exercise_id: str) -> int:
        """Count a practice check, in the course file as the workers share it (under its
        lock, so concurrent checks are each counted once).

        Parameters
        ----------
        student, exercise_id : str
            Who checked which exercise.

        Returns
        -------
        int
            The checks so far, this one included.

        Examples
        --------
        >>> c = ServerCourse("c", "salt")
        >>> c.record_check("ann", "records/correction"), c.checks_used("ann", "records/correction")
        (1, 1)
        """
        with self._held():
            return super().record_check(student, exercise_id)

    def _held(self) -> contextlib.AbstractContextManager[Any]:
        """The course file's lock (re-reading it), when the server hosts this course."""
        guard = getattr(self, "guard", None)
        return guard() if guard is not None else contextlib.nullcontext()

    def reload(self) -> None:
        """Read the course file again (another worker process may have changed it); the
        object stays the same, so attempts holding it see the new state."""
        if self.path is not None:
            fresh = ServerCourse.load(self.path, clock=wall_clock)
            vars(self).update(vars(fresh))


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


@dataclass
class HostedAttempt:
    """One student's attempt at one exercise, held by the server (rebuilt per request from
    the attempt's file and its row in the server database)."""

    attempt_id: str
    course: str
    student: str
    attempt: Attempt
    handle: OpenAttempt

    @property
    def session(self) -> Session:
        """The student's Session in this attempt (this worker's, kept across requests)."""
        return self.handle.session(self.attempt.exercise.role)

    def person_login(self, *, username: str | None = None, patient: str | None = None) -> str:
        """The sandbox login of one of the exercise's declared people (a staff username, or
        ``patient/<id>`` of the patient the attempt's facts name); :class:`AccessDenied` for
        anyone else, naming who may be logged in as."""
        from ehr_sandbox.exercises.people import person_login

        att = self.attempt
        return person_login(att.exercise, att.facts, username=username, patient=patient)

    def session_as(self, username: str) -> Session:
        """The Session an attempt token for ``username`` stands for: the student's own (the
        exercise's role), or one of the exercise's declared people, checked again here (a
        token names its user; nobody else is served in this attempt)."""
        if username == self.attempt.exercise.role:
            return self.session
        if username.startswith("patient/"):
            login = self.person_login(patient=username.split("/", 1)[1])
        else:
            login = self.person_login(username=username)
        return self.handle.person_session(login)


class CourseHost:
    """All courses of a server and their attempts.

    Course state is a JSON file per course (``courses/<id>.json``), re-read when another worker
    process changed it and changed only under a lock shared by the workers; attempts are files
    under ``attempts/`` with their rows in the server database (:class:`AttemptStore`).

    Parameters
    ----------
    folder : Path
        Where course files are kept (inside the server's data directory).
    accounts : Accounts
        The server's client registry (students and instructors get accounts).
    attempts : AttemptStore, optional
        Where attempts are kept (default: beside ``folder``, with a key made for it).

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

    def __init__(
        self, folder: Path, accounts: Accounts, attempts: AttemptStore | None = None
    ) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.accounts = accounts
        self.attempt_files = attempts or AttemptStore(
            self.folder.parent, key=secrets.token_bytes(32)
        )
        self._courses: dict[str, ServerCourse] = {}
        self._stamps: dict[str, tuple[int, int, int] | None] = {}
        self._lock = threading.RLock()
        self._slug_locks: dict[str, threading.RLock] = {}
        self._depth: dict[str, int] = {}

    # ------------------------------------------------------------------ course files
    @property
    def courses(self) -> dict[str, ServerCourse]:
        """Every course on the server, by id (as the files are now)."""
        with self._lock:
            for path in sorted(self.folder.glob("*.json")):
                if SLUG.match(path.stem):
                    self._current(path.stem)
            return dict(self._courses)

    def _current(self, slug: str) -> ServerCourse | None:
        path = self.folder / f"{slug}.json"
        stamp = _stamp(path)
        if stamp is None:
            return None
        with self._lock:
            course = self._courses.get(slug)
            if course is None:
                loaded = ServerCourse.load(path, clock=wall_clock)
                course = self._guarded(slug, loaded)  # type: ignore[arg-type]
                self._courses[slug] = course
            elif self._stamps.get(slug) != stamp:
                course.reload()
            self._stamps[slug] = stamp
            return course  # type: ignore[return-value]

    @contextlib.contextmanager
    def changing(self, slug: str) -> Iterator[ServerCourse]:
        """The course, locked against every worker process and re-read, to change it (its
        own saves write the file). Re-entrant in a thread; other courses are not held up."""
        course = self.course(slug)
        with self._lock:
            lock = self._slug_locks.setdefault(slug, threading.RLock())
        with lock, contextlib.ExitStack() as stack:
            outer = self._depth.get(slug, 0) == 0
            if outer:
                stack.enter_context(file_lock(self.folder / f".{slug}.lock"))
                course = self._current(slug) or course
            self._depth[slug] = self._depth.get(slug, 0) + 1
            try:
                yield course
            finally:
                self._depth[slug] -= 1
                if outer:
                    self._stamps[slug] = _stamp(self.folder / f"{slug}.json")

    def _guarded(self, slug: str, course: ServerCourse) -> ServerCourse:
        course.guard = functools.partial(self.changing, slug)
        return course

    # ------------------------------------------------------------------ administration
    def create(self, name: str) -> ServerCourse:
        """A new course with a fresh secret salt (kept only on the server)."""
        slug = slugify(name)
        with self._lock, file_lock(self.folder / ".courses.lock"):
            if (self.folder / f"{slug}.json").exists():
                raise ExerciseError(f"course {name!r} already exists (id {slug!r})")
            course = ServerCourse(name, secrets.token_urlsafe(24), clock=wall_clock)
            course.save(self.folder / f"{slug}.json")
            self._courses[slug] = self._guarded(slug, course)
            self._stamps[slug] = _stamp(self.folder / f"{slug}.json")
        return course

    def course(self, slug: str) -> ServerCourse:
        """The course with id ``slug`` (:class:`NotFound` otherwise)."""
        course = self._current(slug) if SLUG.match(slug or "") else None
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
        username = f"student:{slug}:{student}"
        with self.changing(slug) as course:
            course.enroll(student, **details)
        cid, secret = self.accounts.issue(username, kind="student")
        password = self.accounts.set_password(username)
        return {
            "client_id": cid,
            "secret": secret or "",
            "username": username,
            "password": password,
        }

    def assign(
        self,
        slug: str,
        exercise_id: str,
        *,
        due: Any = None,
        max_attempts: Any = None,
        max_checks: Any = None,
    ) -> Any:
        """Assign an exercise; its attempts' clinics are prepared in the background.

        An exercise that can be done only in a sandbox on the student's own machine
        (``Exercise.local_only``) is refused, with its reason: no student could finish it here.
        """
        from ehr_sandbox.exercises.registry import get

        exercise = get(exercise_id)
        if exercise.local_only:
            raise ExerciseError(
                f"exercise: {exercise_id} can be done only in a local sandbox, not on the "
                f"classroom server: {exercise.local_only} (hand it out for students' own "
                "machines: ehr_sandbox.exercises.start)"
            )
        with self.changing(slug) as course:
            assignment = course.assign(
                exercise_id, due=due, max_attempts=max_attempts, max_checks=max_checks
            )
        self.prepare(exercise, course)
        return assignment

    def prepare(self, exercise: Any, course: ServerCourse) -> list[threading.Thread]:
        """Generate the encrypted clinics an exercise's attempts start from, all at once in
        background threads (each waits on a child process), so the first starts need not."""
        from ehr_sandbox.exercises.variants import Variant

        by_clinic: dict[int, Variant] = {}
        for n in range(exercise.clinics * 16):
            v = Variant(f"prepare-{n}", exercise.id, n)
            by_clinic.setdefault(v.seed % exercise.clinics, v)

        def work(v: Variant) -> None:
            with contextlib.suppress(Exception):
                self.attempt_files.template(exercise, v)

        threads = [
            threading.Thread(target=work, args=(v,), daemon=True, name="prepare-clinic")
            for v in by_clinic.values()
        ]
        for t in threads:
            t.start()
        return threads

    # ------------------------------------------------------------------ attempts
    def _hosted(self, row: AttemptRow) -> HostedAttempt:
        from ehr_sandbox.exercises import persistence
        from ehr_sandbox.exercises.attempt import Attempt
        from ehr_sandbox.exercises.registry import get
        from ehr_sandbox.exercises.variants import Variant

        handle = self.attempt_files.opened(row)
        exercise = get(row.exercise_id)
        with handle.lock:
            meta = persistence.load_attempt_meta(handle.sandbox, row.exercise_id, row.student)
        meta = meta or {}
        attempt = Attempt(
            exercise,
            Variant(row.student, row.exercise_id, int(row.seed)),
            handle.sandbox,
            scenario_from_json(row.scenario),
            course=self.course(row.course),
            hints_used=list(meta.get("hints_used", [])),
            owns_sandbox=False,
        )
        return HostedAttempt(row.attempt_id, row.course, row.student, attempt, handle)

    def start(self, slug: str, student: str, exercise_id: str) -> HostedAttempt:
        """Start (or resume) the student's attempt at an assigned exercise."""
        from ehr_sandbox.exercises.attempt import Attempt, derive
        from ehr_sandbox.exercises.registry import get

        row = self.attempt_files.find_for(slug, student, exercise_id)
        if row is not None:
            return self._hosted(row)
        course = self.course(slug)
        course.require_can_start(student, exercise_id)
        exercise = get(exercise_id)
        variant = course.variant(student, exercise_id)
        file = self.attempt_files.copy_file(self.attempt_files.template(exercise, variant))
        sandbox = self.attempt_files.open_file(file)
        start_file: str | None = None
        try:
            derived = derive(exercise, sandbox, variant)
            Attempt.create(exercise, variant, sandbox=sandbox, course=course, derived=derived)
            start_file = self.attempt_files.snapshot(sandbox)  # the start state stays, for resets
            row = self.attempt_files.add(
                course=slug,
                student=student,
                exercise_id=exercise_id,
                seed=variant.seed,
                file=file,
                start_file=start_file,
                scenario=derived,
            )
        except BaseException:
            sandbox.close()
            for name in (file, start_file):
                if name is not None:
                    self.attempt_files.discard_file(name)
            raise
        if row is None:  # another worker started it at the same moment: theirs counts
            sandbox.close()
            self.attempt_files.discard_file(file)
            self.attempt_files.discard_file(start_file)
            row = self.attempt_files.find_for(slug, student, exercise_id)
            if row is None:  # pragma: no cover - rows are never deleted
                raise NotFound("no such attempt")
        else:
            self.attempt_files.adopt(row, sandbox)
        return self._hosted(row)

    def attempt(self, attempt_id: str, student: str) -> HostedAttempt:
        """The attempt ``attempt_id`` if it belongs to ``student`` (else :class:`NotFound`)."""
        row = self.attempt_files.find(attempt_id or "")
        if row is None or row.student != student:
            raise NotFound("no such attempt")
        return self._hosted(row)

    def reset(self, hosted: HostedAttempt) -> None:
        """Back to the variant's start: a new copy of the attempt's start state; results and
        hints stay."""
        att = hosted.attempt
        row = self.attempt_files.find(hosted.attempt_id)
        if row is None:  # pragma: no cover - rows are never deleted
            raise NotFound("no such attempt")
        file = self.attempt_files.copy_file(row.start_file)
        sandbox = self.attempt_files.open_file(file)
        try:
            att.reset(into=sandbox)
        except BaseException:
            sandbox.close()
            self.attempt_files.discard_file(file)
            raise
        sandbox.close()
        self.attempt_files.replace_file(row, file)
        self.attempt_files.forget(hosted.attempt_id)
        hosted.handle.sandbox.release()
        self.attempt_files.discard_file(row.file)

    @contextlib.contextmanager
    def acting_on(self, hosted: HostedAttempt) -> Iterator[None]:
        """One check, submission or hint of this attempt at a time across the worker processes, with
        the course re-read once the attempt is held (so its counts are current)."""
        with file_lock(self.attempt_files.folder / f"{hosted.handle.row.start_file}.lock"):
            self.course(hosted.course)  # re-read if another worker changed it
            yield

    def for_review(self, slug: str, student: str, exercise_id: str) -> HostedAttempt | None:
        """The student's attempt (for the instructor's review), if they started one."""
        row = self.attempt_files.find_for(slug, student, exercise_id)
        return self._hosted(row) if row is not None else None


def student_of(username: str) -> tuple[str, str]:
    """``(course id, student id)`` of a student account's username.

    >>> student_of("student:ma-101:alice")
    ('ma-101', 'alice')
    """
    parts = username.split(":", 2)
    if len(parts) != 3 or parts[0] != "student":
        raise AccessDenied("this account is not a student's account")
    return parts[1], parts[2]
