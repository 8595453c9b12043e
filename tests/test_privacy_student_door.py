"""The privacy exercises' reference solutions are what a student writes: they work through the
student's side of the door only, so they run unchanged against a classroom server.

Each reference solution here is handed a view of its attempt that has only what a student
has on both sides (the attempt's public API a RemoteAttempt has too, and the methods of a
RemoteSession), and is then graded by the real attempt. Reaching the attempt's sandbox, its
variant or the exercise's definition raises AttributeError, as it does remotely.

Not here, because the exercise has a step the student's own session cannot take: role-policy
(probing as the front-desk hire), break-the-glass (the review as the privacy officer),
restriction (the patient signs the restriction) and encryption-keys (a database file on the
machine the sandbox runs on).
"""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from ehr_sandbox import exercises
from ehr_sandbox.exercises.builtin.privacy import work_dir
from ehr_sandbox.exercises.builtin.privacy.deidentification import folder_tag
from ehr_sandbox.remote import RemoteSession

STUDENT_ATTEMPT = frozenset(
    {"facts", "session", "role", "instructions", "check", "submit", "hint", "exercise_id"}
    | {"student"}
)
"""What a student's attempt offers on both sides of the door."""

LOCAL_ONLY_USED = frozenset({"deidentify"})
"""Session methods these reference solutions use that stay local: the Safe Harbor export
writes a folder on the machine the sandbox runs on (tests/test_remote_parity.py gives the
reason), so the de-identification exercise is done in-process; it still must not reach past
the student's session."""

DOOR_READY = [
    "privacy/minimum-necessary",
    "privacy/release-of-information",
    "privacy/deidentification",
    "privacy/snooping-review",
]
STUDENTS = ["door-a", "door-b"]


def session_door() -> frozenset[str]:
    """The public names of a RemoteSession, and the local-only ones listed above."""
    return frozenset(n for n in dir(RemoteSession) if not n.startswith("_")) | LOCAL_ONLY_USED


class StudentSide:
    """``inner`` seen from the student's side: only ``allowed`` names pass."""

    def __init__(self, inner: Any, allowed: frozenset[str], what: str) -> None:
        self._inner, self._allowed, self._what = inner, allowed, what

    def __getattr__(self, name: str) -> Any:
        if name not in self._allowed:
            raise AttributeError(f"a student's {self._what} has no {name!r}")
        value = getattr(self._inner, name)
        if name == "session":
            return StudentSide(value, session_door(), "session")
        return value


def _clean_research_folders(student: str) -> None:
    """This test's own folders only (a module-wide clean-up on one xdist worker would remove
    a folder another worker is grading)."""
    for folder in work_dir().glob(f"*{folder_tag(student)}"):
        shutil.rmtree(folder, ignore_errors=True)


def test_the_student_side_refuses_what_lies_past_the_door():
    att = exercises.start("privacy/snooping-review", STUDENTS[0])
    side = StudentSide(att, STUDENT_ATTEMPT, "attempt")
    for name in ("sandbox", "variant", "exercise"):
        with pytest.raises(AttributeError):
            getattr(side, name)
    with pytest.raises(AttributeError):
        side.session.sandbox  # noqa: B018
    assert side.exercise_id == "privacy/snooping-review"
    assert side.session.user.username == att.session.user.username


@pytest.mark.parametrize("student", STUDENTS)
@pytest.mark.parametrize("ex_id", DOOR_READY)
def test_reference_solution_scores_full_marks_from_the_students_side(ex_id, student):
    att = exercises.start(ex_id, student)
    try:
        exercises.get(ex_id).solution.apply(StudentSide(att, STUDENT_ATTEMPT, "attempt"))
        result = att.check()
    finally:
        if ex_id == "privacy/deidentification":
            _clean_research_folders(student)
    assert result.passed and result.score == result.max_score, result.feedback
