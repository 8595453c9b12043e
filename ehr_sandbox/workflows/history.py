"""Medical history at intake: past medical and surgical, family, social, screening questionnaires.

* past medical history -> ``Condition`` (ICD-10-CM, verification ``provisional`` until the
  provider confirms it), past surgical history -> ``Procedure`` (completed, text);
* family history -> ``FamilyMemberHistory`` (v3-RoleCode relationship, ICD-10-CM condition,
  onset age);
* social history -> ``Observation`` (tobacco 72166-2 with a SNOMED value; sexual history under
  the sandbox's local code ``sexual-history`` of :data:`SOCIAL_HISTORY_SYSTEM` - LOINC has no
  single sexual-history observation code and 76690-7 is sexual orientation - which the content
  labels ``SEX`` so it is restricted like other sensitive data);
* PHQ-2, PHQ-9 and AUDIT-C -> ``QuestionnaireResponse`` (items by LOINC code) plus the total
  score Observation ``derivedFrom`` it; a positive screen routes a Task to the provider (PHQ-9
  item 9 > 0 is urgent).

>>> phq_score([1, 2])
3
>>> audit_c_positive(3, "female"), audit_c_positive(3, "male")
(True, False)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ehr_sandbox.workflows.base import Rule, write
from ehr_sandbox.workflows.care import (
    SNOMED,
    category,
    coding,
    demo_session,
    identify,
    loinc_concept,
    mrn_of,
    now_text,
    provider_of,
    read_patient,
    refuse,
    require_identified,
    routed_task,
    user_ref,
    write_entries,
)
from synthetic.systems import (
    CONDITION_CATEGORY,
    CONDITION_CLINICAL,
    CONDITION_VER_STATUS,
    ICD10CM,
    LOINC_QUESTION_WEB,
    LOINC_WEB,
    SANDBOX_SOCIAL_HISTORY,
    UCUM,
    V3_ROLE_CODE,
)

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

__all__ = [
    "ANSWERS",
    "FAMILY",
    "SCREEN",
    "SOCIAL",
    "ScreenResult",
    "audit_c_positive",
    "demo_session",
    "identify",
    "mrn_of",
    "phq_score",
    "phq9_severity",
    "record_family_history",
    "record_past_condition",
    "record_sexual_history",
    "record_surgical_history",
    "record_tobacco_use",
    "screen",
]

ICD10 = ICD10CM
SOCIAL_HISTORY_SYSTEM = SANDBOX_SOCIAL_HISTORY
"""The sandbox's local code system for social-history items (``codes/social_history.csv``)."""
SEXUAL_HISTORY_DISPLAY = "Sexual history (sandbox local code)"
ROLE_CODE = V3_ROLE_CODE
RELATIONSHIPS = {
    "FTH": "father",
    "MTH": "mother",
    "BRO": "brother",
    "SIS": "sister",
    "SON": "son",
    "DAU": "daughter",
    "PGRFTH": "paternal grandfather",
    "PGRMTH": "paternal grandmother",
    "MGRFTH": "maternal grandfather",
    "MGRMTH": "maternal grandmother",
    "MAUNT": "maternal aunt",
    "PAUNT": "paternal aunt",
    "MUNCLE": "maternal uncle",
    "PUNCLE": "paternal uncle",
}
TOBACCO = {
    "449868002": "Smokes tobacco daily",
    "77176002": "Smoker",
    "8517006": "Ex-smoker",
    "266919005": "Never smoked tobacco",
    "266927001": "Tobacco smoking consumption unknown",
}

FAMILY = Rule(
    "history.family",
    "a family history entry names the relative (v3-RoleCode) and the condition (ICD-10-CM)",
    "HL7 FHIR FamilyMemberHistory; US Surgeon General family history initiative",
)
SOCIAL = Rule(
    "history.social",
    "tobacco use is coded (SNOMED CT smoking status) and sexual history is recorded as its own "
    "sensitive observation",
    "US Core Smoking Status; HL7 DS4P (SEX sensitivity)",
)
HISTORY = Rule(
    "history.condition",
    "a past condition or operation names what and when (onset or year)",
    "documentation standards",
)
ANSWERS = Rule(
    "history.screen-answers",
    "a screening questionnaire is scored only when every item is answered within its scale",
    "PHQ-9 (Kroenke 2001); PHQ-2 (Kroenke 2003); AUDIT-C (Bush 1998; USPSTF 2018)",
)
SCREEN: dict[str, dict[str, Any]] = {
    "phq-2": {
        "panel": "55757-9",
        "total": "55758-7",
        "items": ["44250-9", "44255-8"],
        "max": 3,
        "positive": 3,
    },
    "phq-9": {
        "panel": "44249-1",
        "total": "44261-6",
        "items": [
            "44250-9",
            "44255-8",
            "44259-0",
            "44254-1",
            "44251-7",
            "44258-2",
            "44252-5",
            "44253-3",
            "44260-8",
        ],
        "max": 3,
        "positive": 10,
    },
    "audit-c": {
        "panel": "72109-2",
        "total": "75626-2",
        "items": ["68518-0", "68519-8", "68520-6"],
        "max": 4,
        "positive": 4,
    },
}
"""Instrument -> LOINC panel, total-score and item codes, item scale maximum, positive cut-off
(PHQ-2 >= 3; PHQ-9 >= 10 moderate; AUDIT-C >= 4 men, >= 3 women)."""


def phq_score(answers: list[int]) -> int:
    """Sum of PHQ item scores.

    Examples
    --------
    >>> phq_score([0, 1, 2, 3, 0, 0, 0, 0, 0])
    6
    """
    return int(sum(answers))


def phq9_severity(score: int) -> str:
    """PHQ-9 severity band (Kroenke 2001).

    Examples
    --------
    >>> [phq9_severity(s) for s in (3, 7, 12, 17, 22)]
    ['minimal', 'mild', 'moderate', 'moderately severe', 'severe']
    """
    for cut, band in ((20, "severe"), (15, "moderately severe"), (10, "moderate"), (5, "mild")):
        if score >= cut:
            return band
    return "minimal"


def audit_c_positive(score: int, sex: str) -> bool:
    """AUDIT-C positive screen: >= 4 for men, >= 3 for women (and others).

    Examples
    --------
    >>> audit_c_positive(4, "male")
    True
    """
    return score >= (4 if sex == "male" else 3)


def record_past_condition(
    session: Session, patient: str, icd10: str, display: str, onset: str
) -> dict[str, Any]:
    """Past medical history item as a ``Condition`` for the provider to confirm.

    Examples
    --------
    >>> s = demo_session()
    >>> p = s.search("Patient").first()
    >>> ref = identify(s, p["id"], birth_date=p["birthDate"], mrn=mrn_of(p))
    >>> record_past_condition(s, ref, "J45.909", "Unspecified asthma, uncomplicated", "2010")["verificationStatus"]["coding"][0]["code"]
    'provisional'
    """
    ref = require_identified(session, patient, "Condition")
    if not onset:
        raise refuse(HISTORY, "Condition", "onsetDateTime", "when it started (year)", onset)
    cond = {
        "resourceType": "Condition",
        "clinicalStatus": coding(CONDITION_CLINICAL, "active", "Active"),
        "verificationStatus": coding(
            CONDITION_VER_STATUS,
            "provisional",
            "Provisional",
        ),
        "category": [
            coding(
                CONDITION_CATEGORY,
                "problem-list-item",
                "Problem List Item",
            )
        ],
        "code": coding(ICD10, icd10, display),
        "subject": {"reference": ref},
        "onsetDateTime": onset,
        "recordedDate": now_text(session),
        "recorder": user_ref(session),
        "note": [{"text": "Reported by the patient at intake; for provider review"}],
    }
    return write(session, cond, operation="history.past-condition")


def record_surgical_history(
    session: Session, patient: str, operation: str, year: str
) -> dict[str, Any]:
    """Past surgical history item as a completed ``Procedure`` (text as the patient reports it).

    Examples
    --------
    >>> s = demo_session()
    >>> p = s.search("Patient").first()
    >>> ref = identify(s, p["id"], birth_date=p["birthDate"], mrn=mrn_of(p))
    >>> record_surgical_history(s, ref, "appendectomy", "2004")["performedDateTime"]
    '2004'
    """
    ref = require_identified(session, patient, "Procedure")
    if not operation or not year:
        raise refuse(HISTORY, "Procedure", "code/performed", "the operation and the year", year)
    proc = {
        "resourceType": "Procedure",
        "status": "completed",
        "code": {"text": operation},
        "subject": {"reference": ref},
        "performedDateTime": str(year),
        "recorder": user_ref(session),
        "note": [{"text": "Past surgical history reported by the patient at intake"}],
    }
    return write(session, proc, operation="history.surgical")


def record_family_history(
    session: Session,
    patient: str,
    relationship: str,
    icd10: str,
    display: str,
    *,
    onset_age: int | None = None,
    deceased: bool = False,
) -> dict[str, Any]:
    """A relative's condition as ``FamilyMemberHistory``.

    Parameters
    ----------
    relationship : str
        v3-RoleCode (``FTH``, ``MTH``, ``BRO``, ``SIS``, ``MGRMTH``...).
    icd10, display : str
        The relative's condition (ICD-10-CM).
    onset_age : int, optional
        Age of the relative at onset (years).

    Raises
    ------
    RuleRefused
        ``history.family`` for an unknown relationship code.

    Examples
    --------
    >>> s = demo_session()
    >>> p = s.search("Patient").first()
    >>> ref = identify(s, p["id"], birth_date=p["birthDate"], mrn=mrn_of(p))
    >>> f = record_family_history(s, ref, "FTH", "I21.9", "Acute myocardial infarction, unspecified", onset_age=52)
    >>> f["relationship"]["coding"][0]["code"], f["condition"][0]["onsetAge"]["value"]
    ('FTH', 52)
    >>> record_family_history(s, ref, "dad", "I10", "Essential (primary) hypertension")
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: FamilyMemberHistory: relationship: expected a v3-RoleCode such as FTH, MTH, BRO, SIS, SON, DAU, PGRFTH (found 'dad'). Refused by rule history.family: a family history entry names the relative (v3-RoleCode) and the condition (ICD-10-CM) [HL7 FHIR FamilyMemberHistory; US Surgeon General family history initiative]
    """
    ref = require_identified(session, patient, "FamilyMemberHistory")
    if relationship not in RELATIONSHIPS:
        raise refuse(
            FAMILY,
            "FamilyMemberHistory",
            "relationship",
            "a v3-RoleCode such as " + ", ".join(list(RELATIONSHIPS)[:7]),
            relationship,
        )
    cond: dict[str, Any] = {"code": coding(ICD10, icd10, display)}
    if onset_age is not None:
        cond["onsetAge"] = {
            "value": onset_age,
            "unit": "a",
            "system": UCUM,
            "code": "a",
        }
    fmh: dict[str, Any] = {
        "resourceType": "FamilyMemberHistory",
        "status": "completed",
        "patient": {"reference": ref},
        "date": now_text(session),
        "relationship": coding(ROLE_CODE, relationship, RELATIONSHIPS[relationship]),
        "condition": [cond],
    }
    if deceased:
        fmh["deceasedBoolean"] = True
    return write(session, fmh, operation="history.family")


def record_tobacco_use(session: Session, patient: str, status: str) -> dict[str, Any]:
    """Tobacco smoking status (LOINC 72166-2) with its SNOMED CT value.

    Examples
    --------
    >>> s = demo_session()
    >>> p = s.search("Patient").first()
    >>> ref = identify(s, p["id"], birth_date=p["birthDate"], mrn=mrn_of(p))
    >>> record_tobacco_use(s, ref, "8517006")["valueCodeableConcept"]["text"]
    'Ex-smoker'
    """
    ref = require_identified(session, patient, "Observation")
    if status not in TOBACCO:
        raise refuse(
            SOCIAL,
            "Observation (72166-2)",
            "valueCodeableConcept",
            "a SNOMED CT smoking status: " + ", ".join(TOBACCO),
            status,
        )
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "category": category("social-history"),
        "code": loinc_concept("72166-2"),
        "subject": {"reference": ref},
        "effectiveDateTime": now_text(session),
        "valueCodeableConcept": coding(SNOMED, status, TOBACCO[status]),
    }
    return write(session, obs, operation="history.tobacco")


def record_sexual_history(session: Session, patient: str, text: str) -> dict[str, Any]:
    """Sexual history as its own social-history Observation (local code ``sexual-history``).

    The content's sensitivity rules label it ``SEX`` and restricted (``R``), so only roles
    cleared for restricted data write or see it: the provider takes the sexual history; an MA
    (ceiling ``N``) is refused with :class:`~ehr_sandbox.errors.AccessDenied`.

    Examples
    --------
    >>> p = demo_session().search("Patient").first()
    >>> doc = demo_session(provider_of(p).split("prac-")[1])
    >>> ref = identify(doc, p["id"], birth_date=p["birthDate"], mrn=mrn_of(p))
    >>> o = record_sexual_history(doc, ref, "one partner in the past year; condoms sometimes")
    >>> sorted(c["code"] for c in o["meta"]["security"])
    ['R', 'SEX']
    >>> ma = demo_session()
    >>> _ = identify(ma, p["id"], birth_date=p["birthDate"], mrn=mrn_of(p))
    >>> record_sexual_history(ma, ref, "no new partners")
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.AccessDenied: this Observation is labelled R (restricted); medical_assistant may see up to N; this needs a role whose ceiling allows it
    """
    ref = require_identified(session, patient, "Observation")
    if not text or len(str(text).split()) < 2:
        raise refuse(
            SOCIAL, "Observation (sexual-history)", "valueString", "the history taken", text
        )
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "category": category("social-history"),
        "code": coding(SOCIAL_HISTORY_SYSTEM, "sexual-history", SEXUAL_HISTORY_DISPLAY),
        "subject": {"reference": ref},
        "effectiveDateTime": now_text(session),
        "valueString": str(text),
    }
    return write(session, obs, operation="history.sexual")


@dataclass
class ScreenResult:
    """A scored screen: the QuestionnaireResponse, the total-score Observation, a Task if positive.

    Parameters
    ----------
    response : dict
        The QuestionnaireResponse.
    score : dict
        The total-score Observation.
    total : int
        The total score.
    positive : bool
        Whether the total reaches the screen's cut-off.
    task : dict, optional
        The follow-up Task to the provider (positive screens only).

    Examples
    --------
    >>> r = ScreenResult({"resourceType": "QuestionnaireResponse"}, {"resourceType": "Observation"}, 12, True,
    ...                  {"resourceType": "Task", "status": "requested"})
    >>> r.positive, r.task["status"]
    (True, 'requested')
    """

    response: dict[str, Any]
    score: dict[str, Any]
    total: int
    positive: bool
    task: dict[str, Any] | None = None


def screen(
    session: Session,
    patient: str,
    instrument: str,
    answers: list[int],
    *,
    provider: str | None = None,
) -> ScreenResult:
    """Score PHQ-2, PHQ-9 or AUDIT-C and record it (QuestionnaireResponse + total Observation).

    Parameters
    ----------
    instrument : str
        ``"phq-2"``, ``"phq-9"`` or ``"audit-c"``.
    answers : list of int
        Item scores in order (PHQ 0-3, AUDIT-C 0-4).

    Raises
    ------
    RuleRefused
        ``history.screen-answers`` for a missing item or a score off the scale.

    Examples
    --------
    >>> s = demo_session()
    >>> p = s.search("Patient").first()
    >>> ref = identify(s, p["id"], birth_date=p["birthDate"], mrn=mrn_of(p))
    >>> r = screen(s, ref, "phq-9", [1, 1, 2, 1, 1, 1, 1, 1, 1])
    >>> r.total, r.positive, r.task["priority"]
    (10, True, 'urgent')
    >>> screen(s, ref, "phq-2", [1])
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: QuestionnaireResponse (phq-2): item: expected 2 answers, each 0-3 (found [1]). Refused by rule history.screen-answers: a screening questionnaire is scored only when every item is answered within its scale [PHQ-9 (Kroenke 2001); PHQ-2 (Kroenke 2003); AUDIT-C (Bush 1998; USPSTF 2018)]
    """
    ref = require_identified(session, patient, "QuestionnaireResponse")
    spec = SCREEN.get(instrument)
    if spec is None:
        raise refuse(
            ANSWERS,
            "QuestionnaireResponse",
            "questionnaire",
            "one of " + ", ".join(SCREEN),
            instrument,
        )
    n, top = len(spec["items"]), spec["max"]
    if (
        not isinstance(answers, list | tuple)
        or len(answers) != n
        or any(isinstance(a, bool) or not isinstance(a, int) or not 0 <= a <= top for a in answers)
    ):
        raise refuse(
            ANSWERS,
            f"QuestionnaireResponse ({instrument})",
            "item",
            f"{n} answers, each 0-{top}",
            list(answers) if isinstance(answers, list | tuple) else answers,
        )
    chart = read_patient(session, ref)
    total = sum(answers)
    if instrument == "audit-c":
        positive = audit_c_positive(total, chart.get("gender", ""))
    else:
        positive = total >= spec["positive"]
    urgent = instrument == "phq-9" and answers[8] > 0
    when = now_text(session)
    qr = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{LOINC_QUESTION_WEB}{spec['panel']}",
        "status": "completed",
        "subject": {"reference": ref},
        "authored": when,
        "author": user_ref(session),
        "source": {"reference": ref},
        "item": [
            {
                "linkId": code,
                "definition": f"{LOINC_WEB}{code}",
                "answer": [{"valueInteger": a}],
            }
            for code, a in zip(spec["items"], answers, strict=True)
        ],
    }
    score: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": category("survey"),
        "code": loinc_concept(spec["total"]),
        "subject": {"reference": ref},
        "effectiveDateTime": when,
        "valueQuantity": {
            "value": total,
            "unit": "{score}",
            "system": UCUM,
            "code": "{score}",
        },
        "derivedFrom": [{"reference": "urn:uuid:00000000-0000-4000-8000-00000000a001"}],
    }
    if instrument == "phq-9":
        score["note"] = [{"text": f"Severity: {phq9_severity(total)}"}]
    entries: list[dict[str, Any]] = [
        {"fullUrl": "urn:uuid:00000000-0000-4000-8000-00000000a001", "resource": qr},
        score,
    ]
    task = None
    if positive or urgent:
        text = f"Positive {instrument.upper()} screen: total {total}"
        if urgent:
            text += "; item 9 (thoughts of self-harm) answered above 0: assess today"
        task = routed_task(
            session,
            ref,
            provider_of(chart, provider),
            text,
            focus="urn:uuid:00000000-0000-4000-8000-00000000a001",
            priority="urgent" if urgent else "routine",
        )
        entries.append(task)
    saved = write_entries(session, entries, operation=f"history.screen-{instrument}")
    return ScreenResult(
        response=saved[0],
        score=saved[1],
        total=total,
        positive=positive,
        task=saved[2] if task else None,
    )
