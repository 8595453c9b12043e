"""Clinical medical-assistant exercises (issue 16): rooming and intake, medication
administration, immunizations, specimens and CLIA-waived tests, diagnostics, refills,
admission, room turnover and sterilization, and the four specialties.

Every exercise works through the clinical workflows (:mod:`ehr_sandbox.workflows`), is graded
on the versions written since setup, and carries the framework's collateral-damage criterion.

>>> from ehr_sandbox import exercises
>>> "clinical/rooming-abnormal-bp" in {row["id"] for row in exercises.catalog()}
True
"""

from __future__ import annotations

from ehr_sandbox.exercises.builtin.clinical.intake import (
    MEDICATION_HISTORY,
    PEDIATRIC_INTAKE,
    ROOMING_ABNORMAL_BP,
)
from ehr_sandbox.exercises.builtin.clinical.labs import BLOOD_DRAW, POC_GLUCOSE_QC, RAPID_STREP
from ehr_sandbox.exercises.builtin.clinical.medication import (
    CATCH_UP_IMMUNIZATIONS,
    IM_INJECTION_DOSE,
)
from ehr_sandbox.exercises.builtin.clinical.orders import (
    DIRECT_ADMISSION,
    ECG_SPIROMETRY,
    REFILL_QUEUE,
)
from ehr_sandbox.exercises.builtin.clinical.rooms import FAILED_BI_RECALL, ROOM_TURNOVER
from ehr_sandbox.exercises.builtin.clinical.specialty import (
    CHIROPRACTIC_MEDICARE,
    DIABETIC_FOOT_EXAM,
    OPHTHALMIC_WORKUP,
    PRENATAL_28_WEEKS,
)
from ehr_sandbox.exercises.registry import register

CLINICAL = (
    ROOMING_ABNORMAL_BP,
    PEDIATRIC_INTAKE,
    MEDICATION_HISTORY,
    IM_INJECTION_DOSE,
    CATCH_UP_IMMUNIZATIONS,
    BLOOD_DRAW,
    POC_GLUCOSE_QC,
    RAPID_STREP,
    ECG_SPIROMETRY,
    REFILL_QUEUE,
    DIRECT_ADMISSION,
    ROOM_TURNOVER,
    FAILED_BI_RECALL,
    OPHTHALMIC_WORKUP,
    DIABETIC_FOOT_EXAM,
    PRENATAL_28_WEEKS,
    CHIROPRACTIC_MEDICARE,
)
"""The clinical exercises in catalogue order."""

__all__ = ["CLINICAL"]

for _exercise in CLINICAL:
    register(_exercise)
