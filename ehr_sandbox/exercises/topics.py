"""The seed topics every course can filter the catalogue by (EXERCISES.md "Topics").

>>> "editing-records" in TOPICS
True
>>> require_topics(("reports", "emr-vs-ehr"))
('reports', 'emr-vs-ehr')
"""

from __future__ import annotations

from collections.abc import Iterable

from ehr_sandbox.errors import ExerciseError

__all__ = ["TOPICS", "require_topics"]

TOPICS: tuple[str, ...] = (
    "scheduling",
    "vital-signs",
    "editing-records",
    "billing",
    "coding",
    "medical-history",
    "specimen-collection",
    "medication-administration",
    "exam-room-sterilization",
    "patient-intake",
    "hospital-admission",
    "diagnostic-tests",
    "clia-waived-testing",
    "patient-portal",
    "refills",
    "insurance-claims",
    "fee-schedules",
    "privacy-security",
    "ehr-benefits-drawbacks",
    "reports",
    "ehr-maintenance",
    "emr-vs-ehr",
    "patient-access",
    "ophthalmic",
    "podiatric",
    "ob-gyn",
    "chiropractic",
)
"""Topic names, in the order EXERCISES.md lists them."""


def require_topics(topics: Iterable[str]) -> tuple[str, ...]:
    """The topics as a tuple; ExerciseError naming any that is not a seed topic.

    >>> require_topics(["billing", "bills"])
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ExerciseError: topics: 'bills' is not a seed topic (expected one of: scheduling, vital-signs, editing-records, billing, coding, medical-history, specimen-collection, medication-administration, exam-room-sterilization, patient-intake, hospital-admission, diagnostic-tests, clia-waived-testing, patient-portal, refills, insurance-claims, fee-schedules, privacy-security, ehr-benefits-drawbacks, reports, ehr-maintenance, emr-vs-ehr, patient-access, ophthalmic, podiatric, ob-gyn, chiropractic)
    """
    if isinstance(topics, str):
        topics = (topics,)
    out = tuple(topics)
    for t in out:
        if t not in TOPICS:
            raise ExerciseError(
                f"topics: {t!r} is not a seed topic (expected one of: {', '.join(TOPICS)})"
            )
    return out
