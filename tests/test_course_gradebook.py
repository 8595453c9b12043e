"""Course side on a stand-in sandbox: roster, attempt limit, due dates, gradebook CSV, competencies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from exercise_fakes import FakeSandbox, greet_exercise

from ehr_sandbox import exercises
from ehr_sandbox.errors import ExerciseError
from ehr_sandbox.exercises import Course

T0 = datetime(2026, 1, 5, 12, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def greet():
    ex = exercises.register(greet_exercise(), replace=True)
    yield ex
    exercises.unregister(ex.id)


@pytest.fixture
def course(greet, tmp_path):
    clock = Clock()
    c = Course("MA 101", salt="course-secret", clock=clock)
    c.enroll("alice", name="Alice Adams", email="alice@example.edu", section="A", sis_id="S1")
    c.enroll("bob", name="Bob Brown", email="bob@example.edu", section="B")
    c.assign("demo/greet", due=T0 + timedelta(days=2), max_attempts=2)
    c.clock = clock
    return c


def _attempt(course, student):
    return course.start("demo/greet", student, sandbox=FakeSandbox())


def test_course_salt_decides_the_variant(course, greet):
    att = _attempt(course, "alice")
    assert att.variant.salt == "course-secret"
    assert att.variant == course.variant("alice", "demo/greet")
    assert (
        att.variant.seed
        != exercises.start("demo/greet", "alice", sandbox=FakeSandbox()).variant.seed
    )


def test_only_enrolled_students_and_assigned_exercises(course):
    with pytest.raises(ExerciseError, match="not enrolled"):
        _attempt(course, "mallory")
    c2 = Course("Other", salt="other-salt")
    c2.enroll("alice")
    with pytest.raises(ExerciseError, match="not assigned"):
        c2.start("demo/greet", "alice", sandbox=FakeSandbox())


def test_attempt_limit_is_enforced_even_across_resets(course, greet):
    att = _attempt(course, "alice")
    att.check()
    att.reset()
    greet.solution.apply(att)
    assert att.check().attempt == 2
    with pytest.raises(ExerciseError, match="attempt limit reached: alice has used 2 of 2"):
        att.check()
    # a new attempt object (fresh sandbox) is refused too: the course keeps the count
    with pytest.raises(ExerciseError, match="attempt limit"):
        _attempt(course, "alice").check()
    assert len(course.results("alice")) == 2


def test_late_results_are_flagged_and_left_out_of_the_gradebook(course, greet):
    att = _attempt(course, "bob")
    greet.solution.apply(att)
    course.clock.now = T0 + timedelta(days=3)
    result = att.check()
    assert result.late and result.passed
    book = course.gradebook()
    assert pd.isna(book.loc["bob", "demo/greet"])
    assert course.gradebook(include_late=True).loc["bob", "demo/greet"] == result.score


def test_gradebook_keeps_the_best_counted_score(course, greet):
    att = _attempt(course, "alice")
    first = att.check()
    greet.solution.apply(att)
    second = att.check()
    assert first.score < second.score
    book = course.gradebook()
    assert list(book.index) == ["alice", "bob"] and list(book.columns) == ["demo/greet"]
    assert book.loc["alice", "demo/greet"] == second.score
    assert pd.isna(book.loc["bob", "demo/greet"])


def test_canvas_csv_columns(course, greet, tmp_path):
    att = _attempt(course, "alice")
    greet.solution.apply(att)
    score = att.check().score
    out = tmp_path / "grades.csv"
    course.gradebook(out=out, format="canvas")
    table = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(table.columns[:5]) == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert list(table.columns[5:]) == [f"{greet.title} (demo/greet)"]
    alice = table[table["SIS Login ID"] == "alice"].iloc[0]
    assert (
        alice["Student"] == "Alice Adams"
        and alice["SIS User ID"] == "S1"
        and alice["Section"] == "A"
    )
    assert float(alice[f"{greet.title} (demo/greet)"]) == score
    assert table[table["SIS Login ID"] == "bob"].iloc[0][f"{greet.title} (demo/greet)"] == ""


def test_moodle_csv_columns(course, greet, tmp_path):
    out = tmp_path / "moodle.csv"
    course.gradebook(out=out, format="moodle")
    table = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(table.columns) == ["Username", "Email address", f"{greet.title} (demo/greet)"]
    assert set(table["Email address"]) == {"alice@example.edu", "bob@example.edu"}
    with pytest.raises(ExerciseError, match="format"):
        course.gradebook(out=tmp_path / "x.csv", format="blackboard")
    assert not (tmp_path / "x.csv").exists()


def test_competency_report(course, greet):
    att = _attempt(course, "alice")
    greet.solution.apply(att)
    att.check()
    _attempt(course, "bob").check()
    report = course.competency_report()
    assert set(report.columns) == set(greet.competencies)
    assert report.loc["alice"].all()
    assert not report.loc["bob"].any()


def test_course_round_trips_through_json(course, greet, tmp_path):
    att = _attempt(course, "alice")
    greet.solution.apply(att)
    att.check()
    path = course.save(tmp_path / "course.json")
    again = Course.load(path, clock=course.clock)
    assert again.name == course.name and again.salt == course.salt
    assert again.assignments == course.assignments
    assert again.students == course.students
    pd.testing.assert_frame_equal(again.gradebook(), course.gradebook())
    # results recorded after loading are saved automatically to the same file
    att2 = again.start("demo/greet", "bob", sandbox=FakeSandbox())
    att2.check()
    assert len(Course.load(path).results("bob")) == 1


def test_collect_records_results_from_attempt_sandboxes_once(course, greet):
    outside = exercises.start("demo/greet", "alice", sandbox=FakeSandbox(), salt=course.salt)
    greet.solution.apply(outside)
    outside.check(at=T0)
    assert course.collect([outside]) == 1
    assert course.collect([outside]) == 0
    assert course.gradebook().loc["alice", "demo/greet"] == greet.max_score


def test_bad_course_input_is_refused(greet, tmp_path):
    with pytest.raises(ExerciseError, match="salt"):
        Course("X", salt="")
    c = Course("X", salt="salty")
    with pytest.raises(ExerciseError, match="max_attempts"):
        c.assign("demo/greet", max_attempts=0)
    with pytest.raises(ExerciseError, match="timezone-aware"):
        c.assign("demo/greet", due=datetime(2026, 1, 1))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ExerciseError, match="not a course JSON"):
        Course.load(bad)
