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
    assert not hasattr(att.variant, "salt") and "course-secret" not in repr(att.variant)
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
    att.submit()
    att.reset()
    greet.solution.apply(att)
    assert att.submit().attempt == 2
    with pytest.raises(ExerciseError, match="attempt limit reached: alice has used 2 of 2"):
        att.submit()
    # a new attempt object (fresh sandbox) is refused too: the course keeps the count
    with pytest.raises(ExerciseError, match="attempt limit"):
        _attempt(course, "alice").submit()
    assert len(course.results("alice")) == 2


def test_late_results_are_flagged_and_left_out_of_the_gradebook(course, greet):
    att = _attempt(course, "bob")
    greet.solution.apply(att)
    course.clock.now = T0 + timedelta(days=3)
    result = att.submit()
    assert result.late and result.passed
    with pytest.warns(UserWarning, match="1 late result"):
        book = course.gradebook()
    assert pd.isna(book.loc["bob", "demo/greet"])
    assert course.gradebook(details=True).loc["bob", "demo/greet late"]
    assert course.results_table().loc[0, "late"]
    assert course.gradebook(include_late=True).loc["bob", "demo/greet"] == result.score


def test_gradebook_keeps_the_best_counted_score(course, greet):
    att = _attempt(course, "alice")
    first = att.submit()
    greet.solution.apply(att)
    second = att.submit()
    assert first.score < second.score
    book = course.gradebook()
    assert list(book.index) == ["alice", "bob"] and list(book.columns) == ["demo/greet"]
    assert book.loc["alice", "demo/greet"] == second.score
    assert pd.isna(book.loc["bob", "demo/greet"])


def test_canvas_csv_columns(course, greet, tmp_path):
    att = _attempt(course, "alice")
    greet.solution.apply(att)
    score = att.submit().score
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
    att.submit()
    _attempt(course, "bob").submit()
    report = course.competency_report()
    assert set(report.columns.get_level_values("competency")) == set(greet.competencies)
    # the competency's text is shown, not only its code
    assert "Document patient care accurately" in " ".join(report.columns.get_level_values("text"))
    assert report.loc["alice"].all()
    assert not report.loc["bob"].any()


def test_course_round_trips_through_json(course, greet, tmp_path):
    att = _attempt(course, "alice")
    greet.solution.apply(att)
    att.submit()
    path = course.save(tmp_path / "course.json")
    again = Course.load(path, clock=course.clock)
    assert again.name == course.name and again.salt == course.salt
    assert again.assignments == course.assignments
    assert again.students == course.students
    pd.testing.assert_frame_equal(again.gradebook(), course.gradebook())
    # results recorded after loading are saved automatically to the same file
    att2 = again.start("demo/greet", "bob", sandbox=FakeSandbox())
    att2.submit()
    assert len(Course.load(path).results("bob")) == 1


def test_practice_checks_never_count(course, greet):
    att = _attempt(course, "alice")
    for _ in range(5):
        assert att.check().kind == "practice"
    assert course.attempts_used("alice", "demo/greet") == 0 and not course.results("alice")
    greet.solution.apply(att)
    assert att.submit().attempt == 1


def test_submit_takes_no_time_from_the_student_and_course_is_read_only(course, greet):
    att = _attempt(course, "alice")
    with pytest.raises(TypeError):
        att.submit(at=T0)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        att.check(at=T0)  # type: ignore[call-arg]
    with pytest.raises(AttributeError):
        att.course = None  # type: ignore[misc]
    att.submit()
    att.submit()
    with pytest.raises(ExerciseError, match="attempt limit"):
        att.submit()


def test_course_keeps_hints_taken(course, greet):
    att = _attempt(course, "alice")
    att.hint()
    assert "costs 1 point" in att.hint() and att.hint_cost() == 1
    assert "Say 'Hello" in att.hint(accept_cost=True)
    att.hints_used.clear()  # clearing the attempt's own list does not remove the penalty
    greet.solution.apply(att)
    result = att.submit()
    assert result.hints_used == 2 and result.hint_penalty == 1


def test_default_course_clock_is_the_sandbox_clock(greet):
    c = Course("MA 102", salt="course-secret")
    c.enroll("alice")
    c.assign("demo/greet", due="2026-02-01")
    att = c.start("demo/greet", "alice", sandbox=FakeSandbox())
    greet.solution.apply(att)
    result = att.submit()
    assert result.checked_at.startswith("2026-01-01") and not result.late


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
    fhir = tmp_path / "notfhir.json"
    fhir.write_text('{"resourceType": "Patient"}')
    with pytest.raises(ExerciseError, match="not a course file"):
        Course.load(fhir)
