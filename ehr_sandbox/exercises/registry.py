"""The exercise catalogue: register, look up, list, start and reopen attempts.

Built-in exercises live in ``ehr_sandbox.exercises.builtin.*`` modules and register
themselves when first needed; instructors add theirs with :func:`register` (a notebook cell)
or :func:`load_file` / :func:`load_folder` (``.py`` files in a course folder).

>>> from ehr_sandbox.exercises.model import _demo
>>> register(_demo(), replace=True).id
'demo/hello'
>>> get("demo/hello").title
'Say hello'
>>> unregister("demo/hello")
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ehr_sandbox.errors import ExerciseError
from ehr_sandbox.exercises.attempt import Attempt
from ehr_sandbox.exercises.model import Exercise
from ehr_sandbox.exercises.variants import DEFAULT_SALT, Variant

if TYPE_CHECKING:
    import pandas as pd

    from ehr_sandbox.exercises.course import Course

__all__ = [
    "BUILTIN_MODULES",
    "catalog",
    "get",
    "load_file",
    "load_folder",
    "open_attempt",
    "register",
    "start",
    "unregister",
]

BUILTIN_MODULES: tuple[str, ...] = (
    "ehr_sandbox.exercises.builtin.records",
    "ehr_sandbox.exercises.builtin.reports",
    "ehr_sandbox.exercises.builtin.privacy",
    "ehr_sandbox.exercises.builtin.emr_ehr",
    "ehr_sandbox.exercises.builtin.front_office",
    "ehr_sandbox.exercises.builtin.clinical",
)
"""Modules whose import registers the built-in exercises (later issues add theirs here)."""

_REGISTRY: dict[str, Exercise] = {}
_LOADED: set[str] = set()
_SECTIONS: dict[str, str] = {m.rsplit(".", 1)[1].replace("_", "-"): m for m in BUILTIN_MODULES}
"""Catalogue section (the part of an id before ``/``) -> the module registering it."""


_DONE: set[str] = set()
_load_lock = threading.RLock()


def _load(module: str) -> None:
    """Import a built-in section once. Thread-safe: the classroom server starts attempts side
    by side, and no thread may see a section half registered. Re-entrant: a module that
    registers its exercises comes back here for its own section."""
    if module in _DONE:
        return
    with _load_lock:
        if module in _LOADED:  # loaded meanwhile, or being loaded by this very thread
            return
        _LOADED.add(module)
        try:
            importlib.import_module(module)
        except BaseException:
            _LOADED.discard(module)
            raise
        _DONE.add(module)


def _ensure_section(exercise_id: object) -> None:
    """Load the built-in section an id belongs to (a fresh kernel imports only what it uses)."""
    if isinstance(exercise_id, str):
        module = _SECTIONS.get(exercise_id.split("/", 1)[0])
        if module is not None:
            _load(module)


def _ensure_builtins() -> None:
    for name in BUILTIN_MODULES:
        _load(name)


def register(exercise: Exercise, *, replace: bool = False) -> Exercise:
    """Add an exercise to the catalogue (``replace=True`` to redefine an id); returns it."""
    if not isinstance(exercise, Exercise):
        raise ExerciseError(f"register: expected an Exercise (found {type(exercise).__name__})")
    _ensure_section(exercise.id)  # a built-in of this id registers first (replace=True wins)
    if exercise.id in _REGISTRY and not replace and _REGISTRY[exercise.id] is not exercise:
        raise ExerciseError(
            f"register: exercise id {exercise.id!r} is already registered; pass replace=True to redefine it"
        )
    _REGISTRY[exercise.id] = exercise
    return exercise


def unregister(exercise_id: str) -> None:
    """Remove an exercise from the catalogue (no error if absent)."""
    _ensure_section(exercise_id)
    _REGISTRY.pop(exercise_id, None)


def get(exercise_id: str) -> Exercise:
    """The exercise with this id, or ExerciseError listing close ids.

    >>> get("records/no-such")
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ExerciseError: exercise id: no exercise 'records/no-such'; see exercises.catalog() (records/... ids: records/addendum, records/amendment-request, records/correction, records/entered-in-error, records/late-entry, records/registration-update)
    """
    _ensure_section(exercise_id)
    found = _REGISTRY.get(exercise_id) if isinstance(exercise_id, str) else None
    if found is not None:
        return found
    _ensure_builtins()
    try:
        return _REGISTRY[exercise_id]
    except KeyError:
        topic = exercise_id.split("/")[0] if isinstance(exercise_id, str) else ""
        near = sorted(i for i in _REGISTRY if i.split("/")[0] == topic)
        tail = f" ({topic}/... ids: {', '.join(near)})" if near else ""
        raise ExerciseError(
            f"exercise id: no exercise {exercise_id!r}; see exercises.catalog(){tail}"
        ) from None


def catalog(
    *, topic: str | None = None, as_frame: bool = False
) -> list[dict[str, Any]] | pd.DataFrame:
    """The catalogue as rows (id, title, topic, topics, competencies, minutes, role, max_score, exams,
    remote: whether it can be done on the classroom server).

    ``topic`` matches an exercise's section (``records``) or one of its seed ``topics``
    (``editing-records``).

    >>> rows = catalog(topic="records")
    >>> rows[0]["id"], len(rows) >= 6
    ('records/entered-in-error', True)
    """
    _ensure_builtins()
    rows = [
        ex.catalog_row()
        for ex in _REGISTRY.values()
        if topic is None or ex.topic == topic or topic in ex.topics
    ]
    if as_frame:
        import pandas as pd

        return pd.DataFrame(
            rows,
            columns=[
                "id",
                "title",
                "topic",
                "topics",
                "competencies",
                "minutes",
                "role",
                "max_score",
                "exams",
                "remote",
            ],
        )
    return rows


def start(
    exercise_id: str,
    student: str | None = None,
    *,
    course: Course | str | None = None,
    sandbox: Any = None,
    path: str | Path | None = None,
    salt: str | None = None,
    server: Any = None,
) -> Attempt:
    """Start ``student``'s variant of an exercise.

    Without ``sandbox`` the attempt builds its own small sandbox from the variant's seed
    (in memory, or in the file ``path`` so it can be checked later from the CLI). With a
    ``course`` the course's salt is used and the student must be enrolled and the exercise
    assigned; otherwise ``salt`` (default: the self-study salt).

    With ``server`` (a session from :func:`ehr_sandbox.connect` with a student's
    credentials) and ``course`` (the course id) the attempt is created **on the classroom
    server**: the same ``instructions``, ``facts``, ``session``, ``check()``, ``submit()``,
    ``hint()`` and ``reset()``, graded there (the student is the account's owner).
    """
    if server is not None:
        if not isinstance(course, str):
            raise ExerciseError("course: with server=, give the course id your instructor gave you")
        return server.start(exercise_id, course=course)
    if not isinstance(student, str) or not student:
        raise ExerciseError("student: expected your student id (e.g. start(id, 'alice'))")
    if isinstance(course, str):
        raise ExerciseError("course: a course id goes with server=; in-process give a Course")
    exercise = get(exercise_id)
    if course is not None:
        course.require_can_start(student, exercise_id)
        salt = course.salt
    variant = Variant.of(salt or DEFAULT_SALT, student, exercise_id)
    return Attempt.create(exercise, variant, sandbox=sandbox, path=path, course=course)


def open_attempt(
    path: str | Path,
    *,
    course: Course | None = None,
    key: Any = None,
    passphrase: str | None = None,
    exercise_id: str | None = None,
    student: str | None = None,
) -> Attempt:
    """Reopen an attempt saved in a sandbox file (``start(..., path=)`` or ``att.save()``).

    When the file holds several attempts, ``exercise_id`` and ``student`` say which one.
    """
    from ehr_sandbox.exercises import persistence
    from ehr_sandbox.sandbox import Sandbox

    p = Path(path)
    if not p.is_file():
        raise ExerciseError(f"db: no sandbox file at {p}")
    sandbox = Sandbox.open(str(p), key=key, passphrase=passphrase)
    try:
        meta = persistence.load_attempt_meta(sandbox, exercise_id, student)
    except ExerciseError:
        sandbox.close()
        raise
    if meta is None:
        sandbox.close()
        who = f" by {student}" if student else ""
        what = exercise_id or "any exercise"
        raise ExerciseError(
            f"db: {p} holds no attempt at {what}{who} (start one with exercises.start(..., path=))"
        )
    return Attempt.from_sandbox(
        sandbox, get(meta["exercise_id"]), course=course, path=str(p), student=meta["student"]
    )


def load_file(path: str | Path, *, replace: bool = True) -> list[Exercise]:
    """Run an instructor's ``.py`` file and register every Exercise defined at its top level."""
    p = Path(path)
    if not p.is_file() or p.suffix != ".py":
        raise ExerciseError(f"exercise file: expected an existing .py file (found {p})")
    name = f"ehr_sandbox_course_exercises_{abs(hash(str(p.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, p)
    if spec is None or spec.loader is None:
        raise ExerciseError(f"exercise file: cannot load {p}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except ExerciseError:
        raise
    except Exception as exc:
        raise ExerciseError(f"exercise file {p}: {type(exc).__name__}: {exc}") from None
    found = [v for v in vars(module).values() if isinstance(v, Exercise)]
    if not found:
        raise ExerciseError(f"exercise file {p}: defines no Exercise at top level")
    return [register(ex, replace=replace) for ex in found]


def load_folder(folder: str | Path) -> list[Exercise]:
    """Register the exercises of every ``.py`` file in a course folder (sorted by name)."""
    d = Path(folder)
    if not d.is_dir():
        raise ExerciseError(f"exercise folder: expected a directory (found {d})")
    out: list[Exercise] = []
    for f in sorted(d.glob("*.py")):
        out.extend(load_file(f))
    return out
