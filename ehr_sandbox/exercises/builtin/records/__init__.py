"""Catalogue section "Editing records": exercises 1-6 of EXERCISES.md.

Each exercise edits the legal record through the Session's record-editing operations and is
graded on the record state *and* its Provenance (who did it, through which operation, with
which reason).

>>> from ehr_sandbox.exercises import get
>>> get("records/correction").role
'ma.garcia'
>>> sorted(get("records/entered-in-error").wrong_solutions)
['answer-key', 'done-twice', 'meaningless-reason', 'one-more-record', 'overwrite', 'owner-named-as-the-other-patient', 'reason-names-another-patient', 'status-edit', 'stray-chart-repaired']
"""

from __future__ import annotations

from ehr_sandbox.exercises.builtin.common import sandbox_now
from ehr_sandbox.exercises.builtin.records.addendum import ADDENDUM
from ehr_sandbox.exercises.builtin.records.amendment_request import (
    AMENDMENT_REQUEST,
)
from ehr_sandbox.exercises.builtin.records.amendment_request import (
    AMENDMENT_SCENARIOS as AMENDMENT_SCENARIOS,
)
from ehr_sandbox.exercises.builtin.records.correction import CORRECTION
from ehr_sandbox.exercises.builtin.records.entered_in_error import ENTERED_IN_ERROR
from ehr_sandbox.exercises.builtin.records.late_entry import LATE_ENTRY
from ehr_sandbox.exercises.builtin.records.registration_update import REGISTRATION_UPDATE
from ehr_sandbox.exercises.registry import register

__all__ = [
    "ADDENDUM",
    "AMENDMENT_REQUEST",
    "CORRECTION",
    "ENTERED_IN_ERROR",
    "LATE_ENTRY",
    "REGISTRATION_UPDATE",
    "sandbox_now",
]

# Register in catalogue order (EXERCISES.md numbering): the catalogue lists exercises in the
# order they were registered, so this tuple, not the import order above, sets it.
for _exercise in (
    ENTERED_IN_ERROR,
    CORRECTION,
    AMENDMENT_REQUEST,
    LATE_ENTRY,
    ADDENDUM,
    REGISTRATION_UPDATE,
):
    register(_exercise)
