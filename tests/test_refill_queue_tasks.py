"""The refill queue's requests stand while their Task is open for the provider: one concept of
an open Task (``clinical.common.TASK_OPEN``) for every clinical grader."""

from __future__ import annotations

import pytest

from ehr_sandbox import exercises
from ehr_sandbox.exercises.builtin.clinical.common import TASK_OPEN

EXERCISE = "clinical/refill-queue"
ROUTED = "every request routed"
STATUSES = ("draft", "requested", "received", "accepted", "ready", "in-progress", "on-hold",
            "completed", "cancelled")  # fmt: skip


@pytest.mark.parametrize("status", STATUSES)
def test_a_refill_request_counts_as_routed_only_while_its_task_is_open(status):
    att = exercises.start(EXERCISE, f"student-{status}")
    exercises.get(EXERCISE).solution.apply(att)
    assert att.check().criterion(ROUTED).passed
    s = att.session
    patient = att.facts["patient_ref"]
    tasks = [t for t in s.search("Task", patient=patient).fetch() if t.get("focus")]
    assert len(tasks) == 3
    for t in tasks:
        s.update({**t, "status": status})
    # a draft was never sent; on hold / completed / cancelled are off the provider's list
    assert att.check().criterion(ROUTED).passed == (status in TASK_OPEN)
