"""Catalogue section "EMR vs EHR": exercises 21-26 of EXERCISES.md.

The attempt's sandbox is the student's own organization. What the *other* organizations
hold arrives the way the exchange delivers it (see :mod:`ehr_sandbox.network.exchange`):
resources that keep their source in ``meta.source``, listed in ``att.facts["outside"]``.
Graders check that outside data is filed *with* its source and never silently retyped as
local data, that orders are not duplicated, that allergies are coded, that only true
duplicates are linked, and (26) that the student measured both modes with the scenario.

>>> from ehr_sandbox.exercises import get
>>> get("emr-ehr/missing-allergy").role
'dr.patel'
>>> {"answer-key", "wrong-direction", "twin-into-original"} <= set(
...     get("emr-ehr/patient-matching").wrong_solutions)
True
"""

from __future__ import annotations

from ehr_sandbox.exercises.builtin.common import hand_in
from ehr_sandbox.exercises.builtin.emr_ehr.benefits_and_drawbacks import (
    BENEFITS_AND_DRAWBACKS,
    scenario_for,
)
from ehr_sandbox.exercises.builtin.emr_ehr.duplicate_test import DUPLICATE_TEST
from ehr_sandbox.exercises.builtin.emr_ehr.medication_reconciliation import (
    MEDICATION_RECONCILIATION,
)
from ehr_sandbox.exercises.builtin.emr_ehr.missing_allergy import MISSING_ALLERGY
from ehr_sandbox.exercises.builtin.emr_ehr.patient_matching import PATIENT_MATCHING
from ehr_sandbox.exercises.builtin.emr_ehr.referral_loop import REFERRAL_LOOP, receive_consult_note
from ehr_sandbox.exercises.registry import register

__all__ = [
    "BENEFITS_AND_DRAWBACKS",
    "DUPLICATE_TEST",
    "MEDICATION_RECONCILIATION",
    "MISSING_ALLERGY",
    "PATIENT_MATCHING",
    "REFERRAL_LOOP",
    "hand_in",
    "receive_consult_note",
    "scenario_for",
]

# Register in catalogue order (EXERCISES.md numbering): the catalogue lists exercises in the
# order they were registered, so this tuple, not the import order above, sets it.
for _exercise in (
    MEDICATION_RECONCILIATION,
    REFERRAL_LOOP,
    DUPLICATE_TEST,
    MISSING_ALLERGY,
    PATIENT_MATCHING,
    BENEFITS_AND_DRAWBACKS,
):
    register(_exercise)
