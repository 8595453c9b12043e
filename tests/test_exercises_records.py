"""Exercises 1-6 (editing records) on real generated sandboxes.

For several students: the reference solution scores full marks, every wrong solution fails
the criterion it is meant to fail with the intended message, reset restores the start state
exactly, and two students get different variants.
"""

from __future__ import annotations

import pytest
from exercise_checks import AttemptCache, check_reference_and_wrong_solutions

from ehr_sandbox import exercises

# The trap harness (test_exercise_traps.py) runs every solution for 8 students; here one student
# also checks that reset restores the start state exactly.
STUDENTS = ("alice",)
RECORD_IDS = [row["id"] for row in exercises.catalog(topic="records")]

# Types the six exercises touch; reset must bring every one of them back exactly.
TOUCHED = ("Patient", "Coverage", "Observation", "DocumentReference", "Communication", "Provenance")


def _state(att) -> dict[str, set[tuple[str, str]]]:
    store = att.sandbox._store
    return {t: {(r["id"], r["meta"]["versionId"]) for r in store.iter_type(t)} for t in TOUCHED}


def test_the_six_record_exercises_are_catalogued():
    assert RECORD_IDS == [
        "records/entered-in-error",
        "records/correction",
        "records/amendment-request",
        "records/late-entry",
        "records/addendum",
        "records/registration-update",
    ]
    for ex_id in RECORD_IDS:
        ex = exercises.get(ex_id)
        assert ex.wrong_solutions, ex_id
        assert ex.competencies and ex.hints and ex.minutes > 0


_attempt = AttemptCache()


@pytest.mark.parametrize("student", STUDENTS)
@pytest.mark.parametrize("exercise_id", RECORD_IDS)
def test_reference_and_wrong_solutions(exercise_id: str, student: str):
    check_reference_and_wrong_solutions(_attempt(exercise_id, student), _state)


@pytest.mark.parametrize("exercise_id", RECORD_IDS)
def test_two_students_get_different_variants(exercise_id: str):
    a = _attempt(exercise_id, "alice")
    b = _attempt(exercise_id, "bob")
    assert a.facts != b.facts
    assert a.instructions != b.instructions
    assert exercises.start(exercise_id, "alice").facts == a.facts


def test_tampered_audit_trail_scores_zero():
    att = exercises.start("records/correction", "alice")
    att.exercise.solution.apply(att)
    assert att.check().passed
    con = att.sandbox._store.connection
    seq = con.execute("SELECT seq FROM audit_log ORDER BY seq LIMIT 1 OFFSET 3").fetchone()[0]
    con.execute("DELETE FROM audit_log WHERE seq = ?", (seq,))
    con.commit()
    result = att.check()
    assert result.tampered and result.score == 0 and not result.passed
    assert all("tampered" in c.feedback for c in result.criteria)


def test_attempt_saved_to_a_file_reopens_and_grades(tmp_path):
    att = exercises.start("records/late-entry", "carol")
    att.exercise.solution.apply(att)
    path = att.save(tmp_path / "carol.db")
    again = exercises.open_attempt(path)
    try:
        assert again.exercise.id == "records/late-entry" and again.student == "carol"
        assert again.facts == att.facts
        assert again.check().passed
        assert [r.passed for r in again.results] == [True]
    finally:
        again.sandbox.close()


def test_amendment_request_both_decisions():
    from ehr_sandbox.exercises.builtin.records import AMENDMENT_SCENARIOS
    from ehr_sandbox.exercises.variants import DEFAULT_SALT, Variant

    ex_id = "records/amendment-request"
    by_decision: dict[str, str] = {}
    for i in range(40):
        student = f"student{i}"
        scenario = Variant.of(DEFAULT_SALT, student, ex_id).pick(
            AMENDMENT_SCENARIOS, salt="scenario"
        )
        by_decision.setdefault(scenario["decision"], student)
    assert set(by_decision) == {"accept", "deny"}
    for decision, student in sorted(by_decision.items()):
        att = exercises.start(ex_id, student)
        assert att.facts["decision"] == decision
        assert ("accepted" if decision == "accept" else "denied") in att.instructions
        att.exercise.solution.apply(att)
        assert att.check().passed, decision
        att.reset()
        att.exercise.wrong_solutions["edit-note"].apply(att)
        assert not att.check().criterion("note not silently edited").passed


def test_file_backed_attempt_resets_to_its_start_state(tmp_path):
    path = tmp_path / "bob.db"
    att = exercises.start("records/correction", "bob", path=path)
    start_state = _state(att)
    att.exercise.solution.apply(att)
    assert att.check().passed
    att.reset()
    assert _state(att) == start_state and path.is_file()
    assert [r.passed for r in att.results] == [True]
    att.sandbox.close()
    reopened = exercises.open_attempt(path)
    try:
        assert not reopened.check().passed
        assert len(reopened.results) == 2
    finally:
        reopened.sandbox.close()
