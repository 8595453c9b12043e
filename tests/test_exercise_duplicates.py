"""Doing the task twice is not doing it right: duplicate records and second releases are
collateral damage, even where an exercise expects any number of records of a type."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ehr_sandbox import exercises
from ehr_sandbox.exercises import COLLATERAL
from ehr_sandbox.exercises.collateral import content_signature, duplicate_creates
from ehr_sandbox.exercises.model import DONE_TWICE

STAMP = st.datetimes().map(lambda d: d.replace(microsecond=0).isoformat() + "+00:00")
VALUE = st.one_of(st.integers(-1000, 1000), st.text(min_size=1, max_size=8).filter(str.isalpha))


@given(STAMP, STAMP, st.text(min_size=1, max_size=6), st.text(min_size=1, max_size=6), VALUE)
def test_records_differing_only_in_ids_and_stamps_are_one_record(t1, t2, id1, id2, value):
    base = {"resourceType": "Observation", "subject": {"reference": "Patient/p"}}
    a = {**base, "id": id1, "effectiveDateTime": t1, "valueX": value, "meta": {"versionId": "1"}}
    b = {**base, "id": id2, "effectiveDateTime": t2, "valueX": value, "meta": {"versionId": "1"}}
    assert content_signature(a) == content_signature(b)
    if id1 != id2:
        assert duplicate_creates([a, b]) == [(f"Observation/{id2}", f"Observation/{id1}")]


@given(VALUE, VALUE)
def test_records_with_different_content_are_not_duplicates(v1, v2):
    base = {"resourceType": "Observation", "meta": {"versionId": "1"}}
    a, b = {**base, "id": "a", "valueX": v1}, {**base, "id": "b", "valueX": v2}
    assert (content_signature(a) == content_signature(b)) == (v1 == v2)
    assert bool(duplicate_creates([a, b])) == (v1 == v2)


def test_later_versions_are_not_creates():
    o = {"resourceType": "Observation", "id": "a", "valueX": 1}
    assert (
        duplicate_creates([{**o, "meta": {"versionId": "1"}}, {**o, "meta": {"versionId": "2"}}])
        == []
    )


@pytest.mark.parametrize(
    "exercise_id",
    ["clinical/rooming-abnormal-bp", "front-office/portal-triage", "privacy/minimum-necessary"],
)
def test_the_task_done_twice_loses_the_collateral_points(exercise_id):
    att = exercises.start(exercise_id, "student-02")
    ex = att.exercise
    ex.solution.apply(att)
    assert att.check().passed
    ex.solution.apply(att)  # the same charting / reply / disclosure again
    result = att.check()
    crit = result.criterion(COLLATERAL)
    assert not result.passed and not crit.passed
    assert "twice" in crit.feedback
    att.sandbox.close()


def test_every_exercise_carries_the_done_twice_trap_unless_it_says_why_not():
    for row in exercises.catalog():
        ex = exercises.get(row["id"])
        assert (DONE_TWICE in ex.wrong_solutions) == ex.duplicate_trap, ex.id
        if ex.duplicate_trap:
            assert ex.wrong_solutions[DONE_TWICE].fails == COLLATERAL
