"""Doing the task twice is not doing it right: duplicate records and second releases are
collateral damage, even where an exercise expects any number of records of a type."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ehr_sandbox import exercises
from ehr_sandbox.exercises import COLLATERAL
from ehr_sandbox.exercises.collateral import content_signature, duplicate_creates
from ehr_sandbox.exercises.model import DONE_TWICE

STAMP = st.datetimes().map(lambda d: d.replace(microsecond=0).isoformat() + "+00:00")
VALUE = st.one_of(st.integers(-1000, 1000), st.text(min_size=1, max_size=8).filter(str.isalpha))


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(STAMP, STAMP, st.text(min_size=1, max_size=6), st.text(min_size=1, max_size=6), VALUE)
def test_records_differing_only_in_ids_and_stamps_are_one_record(t1, t2, id1, id2, value):
    base = {"resourceType": "Observation", "subject": {"reference": "Patient/p"}}
    a = {**base, "id": id1, "effectiveDateTime": t1, "valueX": value, "meta": {"versionId": "1"}}
    b = {**base, "id": id2, "effectiveDateTime": t2, "valueX": value, "meta": {"versionId": "1"}}
    assert content_signature(a) == content_signature(b)
    if id1 != id2:
        assert duplicate_creates([a, b]) == [(f"Observation/{id2}", f"Observation/{id1}")]


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
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


def test_every_exercise_carries_the_done_twice_trap_unless_it_skips_it():
    for row in exercises.catalog():
        ex = exercises.get(row["id"])
        assert (DONE_TWICE in ex.wrong_solutions) == (DONE_TWICE not in ex.skip_traps), ex.id
        if DONE_TWICE not in ex.skip_traps:
            assert ex.wrong_solutions[DONE_TWICE].fails == COLLATERAL


def test_one_more_different_record_of_an_expected_type_loses_the_collateral_points():
    """downtime-day expects Observations on the two form patients, any number: a third,
    different reading (a wrong BP) used to score full marks."""
    from ehr_sandbox.exercises.builtin.common import blood_pressure

    att = exercises.start("front-office/downtime-day", "student-02")
    att.exercise.solution.apply(att)
    assert att.check().passed
    when = att.sandbox.clock.peek().isoformat()
    att.session.create(blood_pressure(f"Patient/{att.facts['a_id']}", 201, 119, when))
    result = att.check()
    crit = result.criterion(COLLATERAL)
    assert not result.passed and "more than the task needs" in crit.feedback
    att.sandbox.close()


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["Observation", "Task"]),
            st.sampled_from(["p", "q"]),
            st.sampled_from(["a", "b", "c"]),
            st.sampled_from(["1", "2"]),
        ),
        max_size=12,
    )
)
def test_create_counts_measures_creates_per_patient_and_changed_records(rows):
    from ehr_sandbox.exercises.attempt import CHANGED, create_counts

    versions = [
        {
            "resourceType": t,
            "id": i,
            ("subject" if t == "Observation" else "for"): {"reference": f"Patient/{p}"},
            "meta": {"versionId": v},
        }
        for t, p, i, v in rows
    ]
    counts = create_counts(versions)
    for t, p in {(t, p) for t, p, _, _ in rows}:
        want = sum(1 for r in rows if r[:2] == (t, p) and r[3] == "1")
        assert counts.get(f"{t}|{p}", 0) == want
    new = {f"{t}/{i}" for t, _, i, v in rows if v == "1"}
    changed = {f"{t}/{i}" for t, _, i, v in rows if v != "1"} - new
    assert {k[len(CHANGED) :] for k in counts if k.startswith(CHANGED)} == changed


def test_changing_an_existing_record_the_task_leaves_alone_loses_the_collateral_points():
    """no-show-recall expects Slot updates (booking fills one): blocking another free slot of
    the schedule used to score full marks."""
    att = exercises.start("front-office/no-show-recall", "student-03")
    system = att.sandbox.system_session()
    mark = system.change_mark()
    att.exercise.solution.apply(att)
    assert att.check().passed
    booked = {f"Slot/{v['id']}" for v in system.changes_since(mark) if v["resourceType"] == "Slot"}
    free = next(
        s
        for s in system.search("Slot").fetch()
        if s["status"] == "free" and f"Slot/{s['id']}" not in booked
    )
    att.session.update({**free, "status": "busy-unavailable"})
    result = att.check()
    crit = result.criterion(COLLATERAL)
    assert not result.passed and "a record the task does not change" in crit.feedback
    att.sandbox.close()


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(VALUE, VALUE)
def test_records_pointing_at_new_records_are_duplicates_only_if_those_say_the_same(v1, v2):
    """Two eligibility checks of two different new plans are two checks; a second batch whose
    message points at its own copy of the same reading is a duplicate."""
    one = {"resourceType": "Coverage", "id": "c1", "meta": {"versionId": "1"}, "valueX": v1}
    two = {"resourceType": "Coverage", "id": "c2", "meta": {"versionId": "1"}, "valueX": v2}
    ask = {"resourceType": "CoverageEligibilityRequest", "meta": {"versionId": "1"}}
    a = {**ask, "id": "r1", "insurance": [{"coverage": {"reference": "Coverage/c1"}}]}
    b = {**ask, "id": "r2", "insurance": [{"coverage": {"reference": "Coverage/c2"}}]}
    dups = duplicate_creates([one, two, a, b])
    assert (("CoverageEligibilityRequest/r2", "CoverageEligibilityRequest/r1") in dups) == (
        v1 == v2
    )
