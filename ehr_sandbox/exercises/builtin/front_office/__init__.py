"""Front-office exercises (issue 15): scheduling, registration and insurance, coding and claims,
payments and the day sheet, fee schedules, the portal inbox and keeping the EHR running.

Each module defines one exercise; they are registered here in catalogue order. Every exercise
works through :mod:`ehr_sandbox.workflows`.
"""

from __future__ import annotations

from ehr_sandbox.exercises.builtin.front_office.accounts import ACCOUNTS
from ehr_sandbox.exercises.builtin.front_office.code_visit import CODE_VISIT
from ehr_sandbox.exercises.builtin.front_office.day_sheet import DAY_SHEET
from ehr_sandbox.exercises.builtin.front_office.downtime import DOWNTIME
from ehr_sandbox.exercises.builtin.front_office.fee_schedule import FEE_SCHEDULE
from ehr_sandbox.exercises.builtin.front_office.financial_responsibility import (
    FINANCIAL_RESPONSIBILITY,
)
from ehr_sandbox.exercises.builtin.front_office.insurance_cards import INSURANCE_CARDS
from ehr_sandbox.exercises.builtin.front_office.modified_wave import MODIFIED_WAVE
from ehr_sandbox.exercises.builtin.front_office.new_patient_mpi import NEW_PATIENT_MPI
from ehr_sandbox.exercises.builtin.front_office.no_show_recall import NO_SHOW_RECALL
from ehr_sandbox.exercises.builtin.front_office.portal_triage import PORTAL_TRIAGE
from ehr_sandbox.exercises.builtin.front_office.post_era import POST_ERA
from ehr_sandbox.exercises.builtin.front_office.scrub_claim import SCRUB_CLAIM
from ehr_sandbox.exercises.builtin.front_office.work_denial import WORK_DENIAL
from ehr_sandbox.exercises.registry import register

__all__ = ["FRONT_OFFICE"]

FRONT_OFFICE = (
    MODIFIED_WAVE,
    NO_SHOW_RECALL,
    NEW_PATIENT_MPI,
    INSURANCE_CARDS,
    FINANCIAL_RESPONSIBILITY,
    CODE_VISIT,
    SCRUB_CLAIM,
    POST_ERA,
    WORK_DENIAL,
    DAY_SHEET,
    FEE_SCHEDULE,
    PORTAL_TRIAGE,
    ACCOUNTS,
    DOWNTIME,
)

for _exercise in FRONT_OFFICE:
    register(_exercise)
