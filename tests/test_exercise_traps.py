"""Traps in every variant: every registered exercise, reference and every wrong solution, for
8 students in CI (``EHR_SANDBOX_TRAP_STUDENTS=30`` for the full run reported in the notes)."""

from __future__ import annotations

import pytest
from exercise_harness import assert_traps_hold, run_traps, trap_students

from ehr_sandbox import exercises
from ehr_sandbox.exercises import COLLATERAL, TOPICS

ALL_IDS = [row["id"] for row in exercises.catalog()]


@pytest.mark.parametrize("exercise_id", ALL_IDS)
def test_every_exercise_declares_topics_collateral_and_three_wrong_solutions(exercise_id):
    ex = exercises.get(exercise_id)
    assert ex.topics and set(ex.topics) <= set(TOPICS)
    assert ex.criteria[-1].name == COLLATERAL
    assert len(ex.wrong_solutions) >= 3, sorted(ex.wrong_solutions)


@pytest.mark.parametrize("exercise_id", ALL_IDS)
def test_traps_hold_for_every_student(exercise_id):
    assert_traps_hold(run_traps(exercise_id, trap_students()))


def test_catalog_has_a_topics_column():
    frame = exercises.catalog(as_frame=True)
    assert "topics" in frame.columns
    assert exercises.catalog(topic="editing-records")
