"""Catalogue section "Running reports": exercises 7-12 of EXERCISES.md.

The student runs the clinic's reports (``att.session.reports.run(...)``, custom SQL with
``att.session.reports.sql(...)``, or a ViewDefinition with ``att.session.run_view(...)``) and
hands in what the report answers with :func:`hand_in` (an audited action). The expected
answer is fixed at setup, as the student's role sees the clinic, and kept on the instructor's
side (never in the hand-in); the records it depends on are protected, so changing the chart
to fit an answer is caught as an answer-key change, and a report exercise expects no other
change to the record.

>>> from ehr_sandbox.exercises import get
>>> get("reports/day-schedule").role
'fd.smith'
>>> sorted(get("reports/immunizations-due").wrong_solutions)[:2]
['chart-doses', 'count-refused']
>>> money("12.5"), money(0.1 + 0.2)
('12.50', '0.30')
"""

from __future__ import annotations

# isort: off
# Each exercise module registers its exercise on import: keep these imports in catalogue order.
from ehr_sandbox.exercises.builtin.reports.common import hand_in, handed_in, money, normalised
from ehr_sandbox.exercises.builtin.reports.day_schedule import DAY_SCHEDULE
from ehr_sandbox.exercises.builtin.reports.immunizations_due import (
    IMMUNIZATIONS_DUE,
    SERIES as SERIES,
)
from ehr_sandbox.exercises.builtin.reports.billing_totals import BILLING_TOTALS
from ehr_sandbox.exercises.builtin.reports.quality_measure import (
    MEASURES as MEASURES,
    QUALITY_MEASURE,
)
from ehr_sandbox.exercises.builtin.reports.access_report import (
    ACCESS_REPORT,
    ACCESSORS as ACCESSORS,
)
from ehr_sandbox.exercises.builtin.reports.vitals_view import VITALS_VIEW
# isort: on

__all__ = [
    "ACCESS_REPORT",
    "BILLING_TOTALS",
    "DAY_SCHEDULE",
    "IMMUNIZATIONS_DUE",
    "QUALITY_MEASURE",
    "VITALS_VIEW",
    "hand_in",
    "handed_in",
    "money",
    "normalised",
]
