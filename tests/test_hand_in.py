"""Every section hands in through one writer (``record_hand_in``): the front office's and the
EMR/EHR section's ``hand_in``, the reports section's ``hand_in`` and the privacy section's
``submit`` leave an audit entry of one shape, read back by one reader (``hand_ins``)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ehr_sandbox import exercises
from ehr_sandbox.exercises.builtin import common
from ehr_sandbox.exercises.builtin.privacy import common as privacy
from ehr_sandbox.exercises.builtin.reports import common as reports
from ehr_sandbox.exercises.grading import event_detail, event_kind

WRITERS = [
    ("emr-ehr/benefits-and-drawbacks", common.hand_in, {"benefits": ["x"]}),
    ("reports/immunizations-due", reports.hand_in, {"patients": ["p2", "p1"]}),
    ("privacy/snooping-review", privacy.submit, ["3", "7"]),
]


@pytest.mark.parametrize(("exercise_id", "writer", "answer"), WRITERS)
def test_each_sections_hand_in_is_one_entry_of_one_shape(exercise_id, writer, answer):
    att = exercises.start(exercise_id, "dana")
    before = att.sandbox.audit.count()
    writer(att, answer)
    new = att.sandbox.audit.events()[before:]
    assert [event_kind(e) for e in new] == [common.HAND_IN]
    detail = event_detail(new[0])
    assert set(detail) == {"exercise", "student", "answer"}
    assert (detail["exercise"], detail["student"]) == (exercise_id, "dana")
    read = common.hand_ins(
        att.sandbox.audit.events(), exercise_id, student="dana", user=att.exercise.role
    )
    assert read == [detail["answer"]]
    assert common.hand_ins(att.sandbox.audit.events(), exercise_id, student="erin") == []


@settings(max_examples=15, deadline=None)
@given(st.lists(st.lists(st.text(max_size=8), max_size=3), min_size=1, max_size=4))
def test_the_last_hand_in_counts_and_reads_back_as_written(values):
    att = exercises.start("privacy/snooping-review", "dana")
    for v in values:
        privacy.submit(att, v)
    assert privacy.submitted(att.sandbox, "privacy/snooping-review", "dana") == values[-1]
    assert common.hand_ins(att.sandbox.audit.events(), "privacy/snooping-review") == values
