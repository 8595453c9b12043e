"""Reference solutions work through the student's side of an attempt only.

A student on a classroom server has a RemoteAttempt: ``facts``, ``session`` (its ``now()`` for
the clock, its ``user``), ``exercise_id``, ``student`` (their id in the course, which hand-ins
name) and ``check()``; there is no sandbox to reach into. A
reference solution is what a student should write, so it must score full marks when handed
nothing more: the attempt below exposes only those names. (The session itself is the local
one: the workflows a solution calls branch on ``is_remote`` and may use its sandbox clock;
tests/server_fixture-based runs check the remote side.)
"""

from __future__ import annotations

from typing import Any

import pytest

from ehr_sandbox import exercises

IDS = [
    "records/amendment-request",
    "emr-ehr/medication-reconciliation",
    "emr-ehr/referral-loop",
    "emr-ehr/benefits-and-drawbacks",
    "front-office/financial-responsibility",
    "front-office/day-sheet",
]


class _StudentSide:
    """Only what a RemoteAttempt offers the student's code (no sandbox, exercise, user)."""

    __slots__ = ("exercise_id", "student", "facts", "session", "check")

    def __init__(self, att: Any) -> None:
        self.exercise_id = att.exercise_id
        self.student = att.student
        self.facts = att.facts
        self.session = att.session
        self.check = att.check


@pytest.mark.parametrize("exercise_id", IDS)
def test_reference_scores_full_marks_from_the_student_side(exercise_id: str) -> None:
    att = exercises.start(exercise_id, "remote-student")
    side = _StudentSide(att)
    for past_the_door in ("sandbox", "exercise", "user", "variant"):
        assert not hasattr(side, past_the_door)
    exercises.get(exercise_id).solution.apply(side)
    result = side.check()
    assert result.passed and result.score == result.max_score, result.feedback
