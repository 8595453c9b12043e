"""Exercise attempts kept on disk: any worker process serves any attempt, a restart keeps them.

Each attempt is a sandbox file under ``DATA/attempts/`` with a random name the server makes
(never derived from anything a client sends), encrypted with the server's attempt key
(``keys/attempts.key``, like ``clinic.db`` with its passphrase), and never served. Its
metadata (course, student, exercise, variant seed, the scenario setup fixed, which file) is a
row in the server's database, so a worker that did not start the attempt opens it from there;
the expected answer stays on the server (database and key folder), out of every client's reach.

Attempts start from an encrypted *template* of the variant's clinic, generated once per clinic
under ``DATA/attempts/templates/`` (with a cross-process lock, so concurrent workers generate it
once) and copied per attempt (a file copy: milliseconds). Every write to an attempt is a SQLite
transaction in its file (``synchronous=FULL``), so an acknowledged write survives SIGKILL, and
two workers updating the same resource of one attempt get one success and 412s, as in the clinic.

Layout::

    attempts/<32 hex>.db           one attempt's sandbox (encrypted), and a copy of its start
                                   state (setup done) that a reset copies again
    attempts/templates/<key>.db    the encrypted clinic attempts of one variant pool start from
    keys/attempts.key              the attempts' encryption and audit key (0600, never served)

>>> import tempfile
>>> from pathlib import Path
>>> d = Path(tempfile.mkdtemp())
>>> store = AttemptStore(d, key=bytes(32))
>>> store.find("nobody") is None
True
>>> store.close()
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ehr_sandbox.errors import NotFound, SandboxError

if TYPE_CHECKING:
    from ehr_sandbox.exercises.attempt import Derived
    from ehr_sandbox.exercises.model import Exercise
    from ehr_sandbox.exercises.variants import Variant
    from ehr_sandbox.sandbox import Sandbox
    from ehr_sandbox.session import Session

LOG = logging.getLogger("ehr_sandbox.server")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    attempt_id TEXT PRIMARY KEY,
    course TEXT NOT NULL,
    student TEXT NOT NULL,
    exercise_id TEXT NOT NULL,
    seed INTEGER NOT NULL,
    file TEXT NOT NULL,
    start_file TEXT NOT NULL,
    generation INTEGER NOT NULL DEFAULT 1,
    scenario TEXT NOT NULL,
    created TEXT NOT NULL,
    UNIQUE (course, student, exercise_id)
);
"""

FILE_NAME = "{}.db"
"""Attempt files are named by 32 random hex digits (never by client input)."""


@dataclass(frozen=True)
class AttemptRow:
    """One attempt's metadata as the server database keeps it."""

    attempt_id: str
    course: str
    student: str
    exercise_id: str
    seed: int
    file: str
    start_file: str
    generation: int
    scenario: dict[str, Any]


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock shared by the server's worker processes (``flock`` on ``path``).

    >>> import tempfile
    >>> from pathlib import Path
    >>> with file_lock(Path(tempfile.mkdtemp()) / "x.lock"):
    ...     pass
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def scenario_to_json(derived: Derived) -> dict[str, Any]:
    """The scenario setup fixed, JSON-ready (kept only in the server database)."""
    return {
        "facts": derived.facts,
        "answer": derived.answer,
        "protect": list(derived.protect),
        "mark": derived.mark.to_dict(),
        "budget": derived.budget,
    }


def scenario_from_json(data: dict[str, Any]) -> Derived:
    """Inverse of :func:`scenario_to_json`.

    >>> from ehr_sandbox.exercises.attempt import Derived
    >>> from ehr_sandbox.exercises.grading import SetupMark
    >>> d = Derived({"a": 1}, {"b": 2}, ("Patient/p",), SetupMark(3, 4), {"Observation|p": 2})
    >>> scenario_from_json(json.loads(json.dumps(scenario_to_json(d)))) == d
    True
    """
    from ehr_sandbox.exercises.attempt import Derived
    from ehr_sandbox.exercises.grading import SetupMark

    mark = data["mark"]
    return Derived(
        dict(data["facts"]),
        dict(data["answer"]),
        tuple(data["protect"]),
        SetupMark(int(mark["audit_seq"]), int(mark["versions"])),
        None if data.get("budget") is None else {str(k): int(v) for k, v in data["budget"].items()},
    )


class OpenAttempt:
    """An attempt's sandbox opened in this worker (one lock per attempt in this process)."""

    def __init__(self, row: AttemptRow, sandbox: Sandbox) -> None:
        self.row = row
        self.sandbox = sandbox
        self.lock = threading.RLock()
        self._session: Session | None = None
        self._people: dict[str, Session] = {}

    def session(self, role: str) -> Session:
        """The student's Session in this attempt (kept, so break-the-glass lasts across
        requests served by this worker)."""
        if self._session is None:
            self._session = self.sandbox.login(role)
        return self._session

    def person_session(self, login: str) -> Session:
        """The Session of one of the exercise's other people in this attempt (``login`` is a
        staff username or ``patient/<id>``, already checked against the exercise's declared
        people), kept like the student's."""
        if login not in self._people:
            if login.startswith("patient/"):
                self._people[login] = self.sandbox.login_patient(login.split("/", 1)[1])
            else:
                self._people[login] = self.sandbox.login(login)
        return self._people[login]


class AttemptStore:
    """Attempt files and their rows in the server database.

    Parameters
    ----------
    data : Path
        The server's data directory (``attempts/`` is made inside it).
    key : bytes
        The attempts' 32-byte key (the server keeps it in ``keys/attempts.key``).
    """

    def __init__(self, data: Path, *, key: bytes) -> None:
        self.folder = Path(data) / "attempts"
        self.templates = self.folder / "templates"
        self.templates.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        self._key = key
        self._con = sqlite3.connect(
            str(Path(data) / "server.db"), isolation_level=None, check_same_thread=False
        )
        self._con.execute("PRAGMA busy_timeout = 10000")
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute("PRAGMA synchronous=FULL")
        self._con.executescript(_SCHEMA)
        self._db_lock = threading.Lock()
        self._open: dict[str, OpenAttempt] = {}
        self._open_lock = threading.Lock()

    # ------------------------------------------------------------------ rows
    def _row(self, where: str, args: tuple[Any, ...]) -> AttemptRow | None:
        with self._db_lock:
            row = self._con.execute(
                "SELECT attempt_id, course, student, exercise_id, seed, file, start_file,"
                f" generation, scenario FROM attempts WHERE {where}",
                args,
            ).fetchone()
        if row is None:
            return None
        return AttemptRow(*row[:8], json.loads(row[8]))

    def find(self, attempt_id: str) -> AttemptRow | None:
        """The attempt with this id, or ``None``."""
        return self._row("attempt_id = ?", (str(attempt_id),))

    def find_for(self, course: str, student: str, exercise_id: str) -> AttemptRow | None:
        """A student's attempt at an exercise in a course, or ``None``."""
        return self._row(
            "course = ? AND student = ? AND exercise_id = ?", (course, student, exercise_id)
        )

    # ------------------------------------------------------------------ files
    def _path(self, name: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{32}\.db", name or ""):
            raise NotFound("no such attempt")  # only names this server made
        return self.folder / name

    def template(self, exercise: Exercise, variant: Variant) -> Path:
        """The encrypted clinic this variant's attempts start from (generated on first use,
        once across worker processes, in a child process so serving goes on meanwhile)."""
        from ehr_sandbox.exercises.clinics import clinic_seed

        settings = {
            "patients": exercise.patients,
            "seed": clinic_seed(exercise, variant),
            "reference_date": str(exercise.reference_date),
            "years": exercise.years,
            "population": exercise.population,
        }
        name = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:32]
        target = self.templates / f"{name}.db"
        if target.exists():
            return target
        with file_lock(self.templates / f"{name}.lock"):
            if target.exists():
                return target
            tmp = self.templates / f"{name}.{secrets.token_hex(4)}.tmp"
            job = {**settings, "path": str(tmp), "key": self._key.hex()}
            done = subprocess.run(
                [sys.executable, "-m", "ehr_sandbox.server.template_job"],
                input=json.dumps(job),  # the key goes through a pipe, never the command line
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0 or not tmp.is_file():
                LOG.error("generating an exercise clinic failed: %s", done.stderr[-2000:])
                tmp.unlink(missing_ok=True)
                raise SandboxError("the server could not prepare this exercise's clinic")
            os.replace(tmp, target)
        return target

    def copy_file(self, source: Path | str) -> str:
        """Copy a closed sandbox file (a template, or an attempt's start state, given by the
        name this server made) to a new attempt file; return the new file's name."""
        src = source if isinstance(source, Path) else self._path(source)
        name = FILE_NAME.format(secrets.token_hex(16))
        tmp = self.folder / (name + ".tmp")
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.folder / name)
        return name

    def snapshot(self, sandbox: Sandbox) -> str:
        """Write a consistent copy of an open attempt sandbox (SQLite backup) to a new file;
        return its name (an attempt's start state, copied again by a reset)."""
        name = FILE_NAME.format(secrets.token_hex(16))
        sandbox.snapshot(self.folder / name)
        os.chmod(self.folder / name, 0o600)
        return name

    def adopt(self, row: AttemptRow, sandbox: Sandbox) -> OpenAttempt:
        """Keep a sandbox this worker has open as the handle on ``row``'s file."""
        held = OpenAttempt(row, sandbox)
        with self._open_lock:
            self._open[row.attempt_id] = held
        return held

    def open_file(self, name: str) -> Sandbox:
        """Open an attempt file (by the name this server made)."""
        from ehr_sandbox.sandbox import Sandbox

        return Sandbox.open(self._path(name), key=self._key)

    def discard_file(self, name: str) -> None:
        """Delete an attempt file (and its SQLite side files)."""
        path = self._path(name)
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)

    # ------------------------------------------------------------------ attempts
    def add(
        self,
        *,
        course: str,
        student: str,
        exercise_id: str,
        seed: int,
        file: str,
        start_file: str,
        scenario: Derived,
    ) -> AttemptRow | None:
        """Record a new attempt; ``None`` when this student already has one (another worker
        started it at the same moment: use theirs)."""
        attempt_id = secrets.token_urlsafe(12)
        try:
            with self._db_lock:
                self._con.execute(
                    "INSERT INTO attempts (attempt_id, course, student, exercise_id, seed, file,"
                    " start_file, scenario, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        attempt_id,
                        course,
                        student,
                        exercise_id,
                        seed,
                        file,
                        start_file,
                        json.dumps(scenario_to_json(scenario)),
                        datetime.now(UTC).isoformat(),
                    ),
                )
        except sqlite3.IntegrityError:
            return None
        return self.find(attempt_id)

    def replace_file(self, row: AttemptRow, file: str) -> AttemptRow:
        """Point an attempt at a new file (a reset); the generation tells other workers to
        reopen it."""
        with self._db_lock:
            self._con.execute(
                "UPDATE attempts SET file = ?, generation = generation + 1 WHERE attempt_id = ?",
                (file, row.attempt_id),
            )
        found = self.find(row.attempt_id)
        if found is None:  # pragma: no cover - rows are never deleted
            raise NotFound("no such attempt")
        return found

    def opened(self, row: AttemptRow) -> OpenAttempt:
        """This worker's open handle on the attempt's current file (reopened after a reset
        made by any worker)."""
        with self._open_lock:
            held = self._open.get(row.attempt_id)
            if held is not None and held.row.generation == row.generation:
                return held
            fresh = OpenAttempt(row, self.open_file(row.file))
            self._open[row.attempt_id] = fresh
        if held is not None:
            with held.lock, contextlib.suppress(Exception):
                held.sandbox.release()
        return fresh

    def forget(self, attempt_id: str) -> None:
        """Drop this worker's handle on an attempt (after a reset it made)."""
        with self._open_lock:
            self._open.pop(attempt_id, None)

    def close(self) -> None:
        """Close every open attempt and the database connection."""
        with self._open_lock:
            for held in self._open.values():
                with contextlib.suppress(Exception):
                    held.sandbox.close()
            self._open.clear()
        self._con.close()
