"""Clinical MA exercises (issue 16) through the shared trap harness.

Every exercise: setup succeeds for every student, doing nothing fails, the reference scores full
marks, and every wrong solution (typical mistake, harmful action, answer-key change) fails its
criterion for every student (8 here; ``EHR_SANDBOX_TRAP_STUDENTS=30`` for the full run).
The topics of issue 16 are each covered by at least one exercise.
"""

from __future__ import annotations

import pytest
from exercise_harness import assert_traps_hold, run_traps, trap_students

from ehr_sandbox import exercises
from ehr_sandbox.exercises.builtin.clinical import CLINICAL

IDS = [ex.id for ex in CLINICAL]
ISSUE_TOPICS = {
    "vital-signs", "medical-history", "patient-intake", "specimen-collection",
    "clia-waived-testing", "medication-administration", "refills", "diagnostic-tests",
    "hospital-admission", "exam-room-sterilization", "ophthalmic", "podiatric", "ob-gyn",
    "chiropractic",
}  # fmt: skip


def test_clinical_exercises_cover_every_topic_of_the_issue():
    covered = {t for ex in CLINICAL for t in ex.topics}
    assert covered >= ISSUE_TOPICS, sorted(ISSUE_TOPICS - covered)
    assert len(CLINICAL) >= 16
    for ex in CLINICAL:
        assert len(ex.wrong_solutions) >= 3 and ex.hints and ex.competencies
        assert {w.fails for w in ex.wrong_solutions.values()} & {"no collateral damage"}


@pytest.mark.parametrize("exercise_id", IDS)
def test_clinical_traps_hold(exercise_id):
    assert_traps_hold(run_traps(exercise_id, trap_students()))


def test_catalogue_lists_clinical_topics():
    rows = exercises.catalog(topic="ob-gyn")
    assert any(r["id"].startswith("clinical/") for r in rows)
