"""Every exercise that can be done on the classroom server is doable there: each reference
solution, run by a student through a remote session (the same script as locally), scores full
marks. An exercise that can be done only in a local sandbox (``Exercise.local_only``: it works
on files of the student's machine) is refused when an instructor assigns it on the server, with
its reason. The exercise's other people are logged in as through the attempt (``att.login``,
``att.login_patient``), on both sides.

A reference solution is what a student should write, so it may use only what a student has on
both sides: the attempt's facts, role and instructions, and its session. One real server on
loopback for the module, one course assigning the whole remote catalogue, one student (about a
minute: marked slow).
"""

from __future__ import annotations

import pytest

from ehr_sandbox.errors import ExerciseError
from ehr_sandbox.exercises.registry import catalog, get
from tests.server_fixture import course_with_students, running_server

pytestmark = pytest.mark.slow

ROWS = catalog()
REMOTE = [row["id"] for row in ROWS if row["remote"]]
LOCAL_ONLY = [row["id"] for row in ROWS if not row["remote"]]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(the server, an instructor's remote session, a course assigning every remote exercise,
    the enrolled student's remote session)."""
    data = tmp_path_factory.mktemp("server")
    with running_server(data) as app:
        admin, course, (student,) = course_with_students(
            app, data, "Every exercise", REMOTE, ["ana"]
        )
        yield app, admin, course, student


def test_the_catalogue_is_the_whole_set():
    # the parametrisations below cover every registered exercise, not a hand-picked list, and
    # local-only stays the exception (a ratchet: 55 of 57 exercises ran remotely when it was set)
    assert len(REMOTE) + len(LOCAL_ONLY) == len(ROWS) >= 57
    assert len(REMOTE) >= 55
    assert all(get(e).local_only.strip() for e in LOCAL_ONLY)


@pytest.mark.parametrize("exercise", REMOTE)
def test_reference_solution_scores_full_marks_remotely(server, exercise):
    _app, _admin, course, student = server
    att = student.start(exercise, course=course)
    get(exercise).solution.apply(att)
    result = att.check()
    assert result.passed, result.feedback()
    assert result.score == result.max_score


@pytest.mark.parametrize("exercise", LOCAL_ONLY)
def test_a_local_only_exercise_is_not_assigned_on_the_server(server, exercise):
    _app, admin, course, student = server
    with pytest.raises(ExerciseError) as err:
        admin.course_call("POST", f"/course/{course}/assignments", {"exercise": exercise})
    assert "only in a local sandbox" in str(err.value)
    assert get(exercise).local_only in str(err.value)
    with pytest.raises(ExerciseError):  # and so no student can start it there
        student.start(exercise, course=course)
