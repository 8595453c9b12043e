"""A grader fails every wrong or harmful solution, for every exercise: generic cheats built
from the exercise's own reference (``tests/generic_cheats.py``: undo, hand-in stuffing,
another variant's facts, another patient) never score full marks, while the reference alone
does, in the same run. One student per exercise in CI, chosen from the exercise id;
``EHR_SANDBOX_CHEAT_STUDENTS=30`` runs 30."""

from __future__ import annotations

import pytest
from generic_cheats import cheat_students, run_battery

from ehr_sandbox import exercises

ALL_IDS = [row["id"] for row in exercises.catalog()]

MUTATIONS = ("undo", "stuff-text", "stuff-shape", "other-variant", "another-patient")

OPEN: dict[str, dict[str, str]] = {
    "records/amendment-request": {
        "other-fact:received_day": "only when another student's request day is this note's "
        "visit day (student-18 of 30): a reply giving that day reads as naming the note, which "
        "it may; the grader cannot tell the two apart without requiring the request's day "
        "(open)",
    },
    "privacy/minimum-necessary": {
        "other-fact:patient_id": "the reference driven with another patient finds no "
        "Condition of the encounter and discloses the claim and encounter only: the grader "
        "requires those two, not what was recorded for the encounter that the instructions "
        "ask for (seen with wider runs; left to the privacy exercises' owner)",
        "another-patient": "the same: the claim and its encounter without their diagnoses",
    },
    "front-office/financial-responsibility": {
        "other-fact:check_number": "a cash or card payment recorded with a number as its "
        "identifier (another student's check number): the grader reads the identifier only "
        "for a check, and a cash receipt's number is the clinic's to choose (seen with wider "
        "runs; low harm, left open)",
    },
}
"""Generic cheats known to score full marks, each with why it is left open (reported)."""

UNDO_CAUGHT_ONLY_AS_COLLATERAL: dict[str, str] = {}
"""Exercises whose own criteria still pass once the work is withdrawn (the undo fails only the
collateral-damage criterion): known, left open, reported. Every other exercise must fail one of
its own criteria when the work is undone."""


@pytest.mark.parametrize("exercise_id", ALL_IDS)
def test_generic_cheats_never_score_full_marks(exercise_id):
    for student in cheat_students(exercise_id):
        b = run_battery(exercise_id, student)
        assert b.reference_full, f"{exercise_id} {student}: the reference does not score full marks"
        assert not b.crashed, f"{exercise_id} {student}: the grader raised: {b.crashed}"
        for m in MUTATIONS:  # every mutation ran, or says why it could not
            assert m in b.ran or b.skipped.get(m), (exercise_id, m, b.ran, b.skipped)
        assert any(m in b.ran for m in ("stuff-text", "stuff-shape"))
        known = OPEN.get(exercise_id, {})
        escaped = {m: b.ran[m] for m in b.full_marks if m not in known}
        assert not escaped, f"{exercise_id} {student}: cheats scored full marks: {escaped}"
        if exercise_id not in UNDO_CAUGHT_ONLY_AS_COLLATERAL:
            assert "undo" not in b.only_collateral, (
                f"{exercise_id} {student}: with the work withdrawn, every criterion of the task "
                "itself still passes (only the collateral-damage criterion fails)"
            )


def test_battery_students_differ_between_exercises():
    assert len({cheat_students(i)[0] for i in ALL_IDS}) > 10
