"""Competency tags (MAERB/CAAHEP 2015 psychomotor items) and certification exam areas, as data.

Exercises are tagged with the competency codes they demonstrate; the course's competency
report and the catalogue read the titles and exam areas from here. Titles are short labels of
the MAERB 2015 Core Curriculum items (check the MAERB document for the full wording); exam
areas are the broad content areas of each certification's published outline.

>>> COMPETENCIES["X.P.3"].title
'Document patient care accurately in the medical record'
>>> "CMA" in exam_areas(["X.P.3"])
True
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ehr_sandbox.errors import ExerciseError

__all__ = ["COMPETENCIES", "EXAMS", "Competency", "describe", "exam_areas", "require_known"]

EXAMS: dict[str, str] = {
    "CMA": "Certified Medical Assistant (AAMA)",
    "RMA": "Registered Medical Assistant (AMT)",
    "CCMA": "Certified Clinical Medical Assistant (NHA)",
    "CMAA": "Certified Medical Administrative Assistant (NHA)",
    "NCMA": "National Certified Medical Assistant (NCCT)",
}
"""Certification exams an exercise can prepare for."""


@dataclass(frozen=True)
class Competency:
    """One MAERB/CAAHEP 2015 competency with the exam content areas it maps to.

    >>> c = COMPETENCIES["VI.P.6"]
    >>> (c.code, c.domain)
    ('VI.P.6', 'Administrative Functions')
    """

    code: str
    title: str
    domain: str
    exams: tuple[tuple[str, str], ...]  # (exam key, content area)


_LAW = (
    ("CMA", "General: Medical Law and Regulatory Guidelines"),
    ("RMA", "General Medical Assisting Knowledge: Legal and Ethical"),
    ("CCMA", "Medical Law and Ethics"),
    ("CMAA", "Compliance"),
    ("NCMA", "General Medical Assisting: Law and Ethics"),
)
_RECORDS = (
    ("CMA", "Administrative: Establishing the Patient Medical Record"),
    ("RMA", "Administrative Medical Assisting: Medical Records"),
    ("CCMA", "Administrative Assisting"),
    ("CMAA", "Patient Intake"),
    ("NCMA", "Medical Office Procedures"),
)
_CLINICAL = (
    ("CMA", "Clinical: Patient Intake and Documentation of Care"),
    ("RMA", "Clinical Medical Assisting"),
    ("CCMA", "Clinical Patient Care"),
    ("NCMA", "Clinical Procedures"),
)
_SCHEDULING = (
    ("CMA", "Administrative: Scheduling Appointments"),
    ("RMA", "Administrative Medical Assisting: Scheduling"),
    ("CCMA", "Patient Care Coordination and Education"),
    ("CMAA", "Scheduling"),
    ("NCMA", "Medical Office Procedures"),
)
_BILLING = (
    ("CMA", "Administrative: Practice Finances"),
    ("RMA", "Administrative Medical Assisting: Insurance, Billing and Coding"),
    ("CCMA", "Administrative Assisting"),
    ("CMAA", "Office Logistics"),
    ("NCMA", "Medical Office Procedures: Insurance and Coding"),
)
_COMMUNICATION = (
    ("CMA", "General: Communication"),
    ("RMA", "General Medical Assisting Knowledge: Communication"),
    ("CCMA", "Communication and Customer Service"),
    ("CMAA", "Patient Education"),
    ("NCMA", "General Medical Assisting: Communication"),
)
_LAB = (
    ("CMA", "Clinical: Collecting and Processing Specimens"),
    ("RMA", "Clinical Medical Assisting: Laboratory Procedures"),
    ("CCMA", "Clinical Patient Care"),
    ("NCMA", "Phlebotomy and Laboratory Procedures"),
)
_SAFETY = (
    ("CMA", "Clinical: Infection Control"),
    ("RMA", "Clinical Medical Assisting: Asepsis"),
    ("CCMA", "Clinical Patient Care"),
    ("NCMA", "Clinical Procedures: Infection Control"),
)


def _c(code: str, title: str, domain: str, exams: tuple[tuple[str, str], ...]) -> Competency:
    return Competency(code, title, domain, exams)


COMPETENCIES: dict[str, Competency] = {
    c.code: c
    for c in (
        _c(
            "I.P.1",
            "Measure and record vital signs",
            "Anatomy, Physiology and Pharmacology",
            _CLINICAL,
        ),
        _c(
            "I.P.2",
            "Perform ECG, venipuncture, capillary puncture, pulmonary function testing",
            "Anatomy, Physiology and Pharmacology",
            _LAB,
        ),
        _c(
            "I.P.3",
            "Perform patient screening using established protocols",
            "Anatomy, Physiology and Pharmacology",
            _CLINICAL,
        ),
        _c(
            "I.P.4",
            "Verify the rules of medication administration",
            "Anatomy, Physiology and Pharmacology",
            _CLINICAL,
        ),
        _c(
            "I.P.7",
            "Administer parenteral (excluding IV) medications",
            "Anatomy, Physiology and Pharmacology",
            _CLINICAL,
        ),
        _c(
            "I.P.10",
            "Perform a quality control measure",
            "Anatomy, Physiology and Pharmacology",
            _LAB,
        ),
        _c(
            "I.P.11",
            "Collect specimens and perform CLIA-waived tests",
            "Anatomy, Physiology and Pharmacology",
            _LAB,
        ),
        _c(
            "II.P.2",
            "Differentiate between normal and abnormal test results",
            "Applied Mathematics",
            _CLINICAL,
        ),
        _c(
            "II.P.3",
            "Maintain lab test results using flow sheets",
            "Applied Mathematics",
            _CLINICAL,
        ),
        _c("III.P.5", "Perform sterilization procedures", "Infection Control", _SAFETY),
        _c(
            "V.P.7",
            "Document telephone messages accurately",
            "Concepts of Effective Communication",
            _COMMUNICATION,
        ),
        _c(
            "V.P.8",
            "Compose professional correspondence utilizing electronic technology",
            "Concepts of Effective Communication",
            _COMMUNICATION,
        ),
        _c(
            "V.P.10",
            "Facilitate referrals to community resources",
            "Concepts of Effective Communication",
            _COMMUNICATION,
        ),
        _c(
            "V.P.11",
            "Report relevant information concisely and accurately",
            "Concepts of Effective Communication",
            _COMMUNICATION,
        ),
        _c(
            "VI.P.1",
            "Manage appointment schedule using established priorities",
            "Administrative Functions",
            _SCHEDULING,
        ),
        _c("VI.P.2", "Schedule a patient procedure", "Administrative Functions", _SCHEDULING),
        _c("VI.P.3", "Create a patient's medical record", "Administrative Functions", _RECORDS),
        _c("VI.P.4", "Organize a patient's medical record", "Administrative Functions", _RECORDS),
        _c("VI.P.6", "Utilize an EMR", "Administrative Functions", _RECORDS),
        _c(
            "VI.P.7",
            "Input patient data utilizing a practice management system",
            "Administrative Functions",
            _RECORDS,
        ),
        _c(
            "VII.P.1",
            "Perform accounts receivable procedures (charges, payments, adjustments)",
            "Basic Practice Finances",
            _BILLING,
        ),
        _c(
            "VII.P.3",
            "Obtain accurate patient billing information",
            "Basic Practice Finances",
            _BILLING,
        ),
        _c(
            "VIII.P.1",
            "Interpret information on an insurance card",
            "Third Party Reimbursement",
            _BILLING,
        ),
        _c(
            "VIII.P.2",
            "Verify eligibility for services including documentation",
            "Third Party Reimbursement",
            _BILLING,
        ),
        _c("VIII.P.4", "Complete an insurance claim form", "Third Party Reimbursement", _BILLING),
        _c("IX.P.1", "Perform procedural coding", "Procedural and Diagnostic Coding", _BILLING),
        _c("IX.P.2", "Perform diagnostic coding", "Procedural and Diagnostic Coding", _BILLING),
        _c(
            "IX.P.3",
            "Utilize medical necessity guidelines",
            "Procedural and Diagnostic Coding",
            _BILLING,
        ),
        _c(
            "X.P.2",
            "Apply HIPAA rules regarding privacy and release of information",
            "Legal Implications",
            _LAW,
        ),
        _c(
            "X.P.3",
            "Document patient care accurately in the medical record",
            "Legal Implications",
            _LAW + _RECORDS,
        ),
        _c("X.P.4", "Apply the Patient's Bill of Rights", "Legal Implications", _LAW),
        _c(
            "X.P.7",
            "Complete an incident report related to an error in patient care",
            "Legal Implications",
            _LAW,
        ),
        _c(
            "XI.P.2",
            "Demonstrate appropriate response(s) to ethical issues",
            "Ethical and Professional Considerations",
            _LAW,
        ),
    )
}
"""The competency codes exercises may be tagged with."""


def require_known(codes: Iterable[str]) -> tuple[str, ...]:
    """Return ``codes`` as a tuple, or raise ExerciseError naming an unknown code.

    >>> require_known(["X.P.3"])
    ('X.P.3',)
    >>> require_known(["X.P.99"])
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ExerciseError: competencies: unknown competency code 'X.P.99'; expected one of the MAERB 2015 codes in ehr_sandbox.exercises.competencies.COMPETENCIES
    """
    out = tuple(codes)
    for code in out:
        if code not in COMPETENCIES:
            raise ExerciseError(
                f"competencies: unknown competency code {code!r}; expected one of the MAERB 2015 "
                "codes in ehr_sandbox.exercises.competencies.COMPETENCIES"
            )
    return out


def exam_areas(codes: Iterable[str]) -> dict[str, list[str]]:
    """Exam -> sorted content areas covered by the given competency codes.

    >>> exam_areas(["VI.P.1"])["CMAA"]
    ['Scheduling']
    """
    areas: dict[str, set[str]] = {}
    for code in require_known(codes):
        for exam, area in COMPETENCIES[code].exams:
            areas.setdefault(exam, set()).add(area)
    return {exam: sorted(areas[exam]) for exam in EXAMS if exam in areas}


def describe(code: str) -> str:
    """One line naming a competency, for feedback and reports.

    >>> describe("X.P.3")
    'MAERB X.P.3 (Document patient care accurately in the medical record)'
    """
    require_known([code])
    return f"MAERB {code} ({COMPETENCIES[code].title})"
