"""Exercises 21-26 (EMR vs EHR) on real generated sandboxes: reference and wrong solutions."""

from __future__ import annotations

import pytest
from exercise_checks import check_reference_and_wrong_solutions

import ehr_sandbox.exercises.builtin.emr_ehr  # noqa: F401  (registers the exercises; see the module docs)
from ehr_sandbox import exercises

IDS = [
    "emr-ehr/medication-reconciliation",
    "emr-ehr/referral-loop",
    "emr-ehr/duplicate-test",
    "emr-ehr/missing-allergy",
    "emr-ehr/patient-matching",
    "emr-ehr/benefits-and-drawbacks",
]
# The trap harness (test_exercise_traps.py) runs every solution for 8 students (exercise 26
# included); one student here checks the recorded results and the feedback's shape.
CASES = [(ex, "alice") for ex in IDS if not ex.endswith("benefits-and-drawbacks")]


def test_the_six_exercises_are_catalogued():
    rows = exercises.catalog(topic="emr-ehr")
    assert [r["id"] for r in rows] == IDS
    for ex_id in IDS:
        ex = exercises.get(ex_id)
        assert ex.wrong_solutions and ex.hints and ex.competencies


@pytest.mark.parametrize(("exercise_id", "student"), CASES)
def test_reference_and_wrong_solutions(exercise_id: str, student: str):
    check_reference_and_wrong_solutions(exercises.start(exercise_id, student))


def test_students_get_different_patients():
    a = exercises.start("emr-ehr/missing-allergy", "alice")
    b = exercises.start("emr-ehr/missing-allergy", "bob")
    assert (a.facts["patient_name"], a.facts["ed_day"]) != (
        b.facts["patient_name"],
        b.facts["ed_day"],
    )


def test_outside_data_in_the_facts_names_its_source():
    att = exercises.start("emr-ehr/medication-reconciliation", "carol")
    assert att.facts["outside"]
    for res in att.facts["outside"]:
        assert res["meta"]["source"] == att.facts["source_url"]
        assert "outside" in {t["code"] for t in res["meta"]["tag"]}
    assert att.facts["source_name"] in att.instructions
