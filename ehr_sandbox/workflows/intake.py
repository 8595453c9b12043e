"""Rooming and intake: chief complaint, allergies, medication reconciliation.

Identification comes first (:func:`~ehr_sandbox.workflows.care.identify`, two identifiers);
vitals are :mod:`ehr_sandbox.workflows.vitals`; history and screening questionnaires are
:mod:`ehr_sandbox.workflows.history`.

>>> s = demo_session()
>>> p = s.search("Patient").first()
>>> ref = identify(s, p["id"], birth_date=p["birthDate"], mrn=mrn_of(p))
>>> record_chief_complaint(s, ref, "sore throat and fever for two days")["valueString"]
'sore throat and fever for two days'
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ehr_sandbox.workflows.base import Rule, write
from ehr_sandbox.workflows.care import (
    SNOMED,
    category,
    coding,
    demo_session,
    display_name,
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
from ehr_sandbox.workflows.content import table
from synthetic.systems import ALLERGY_CLINICAL, ALLERGY_VERIFICATION, HCPCS, RXNORM

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

__all__ = [
    "ALLERGY_REACTION",
    "CHIEF_COMPLAINT",
    "MED_SOURCE",
    "ReconciliationResult",
    "classes_of",
    "demo_session",
    "display_name",
    "duplicate_classes",
    "identify",
    "mrn_of",
    "record_allergy",
    "record_chief_complaint",
    "reconcile_medications",
]

CHIEF_COMPLAINT = Rule(
    "intake.chief-complaint",
    "the chief complaint is the reason for the visit in the patient's own words (at least "
    "three words)",
    "documentation standards; MAERB I.P.1, X.P.3",
)
ALLERGY_REACTION = Rule(
    "intake.allergy-reaction",
    "an allergy is recorded with its substance, the reaction and its severity",
    "US Core AllergyIntolerance; The Joint Commission NPSG.03.06.01",
)
MED_SOURCE = Rule(
    "intake.med-source",
    "each reconciled medication has a status and the source of the information",
    "The Joint Commission NPSG.03.06.01 (medication reconciliation)",
)
MED_STATUSES = ("active", "completed", "stopped", "on-hold", "not-taken", "intended", "unknown")


def record_chief_complaint(
    session: Session, patient: str, text: str, *, encounter: str | None = None
) -> dict[str, Any]:
    """Record the chief complaint (LOINC 8661-1) in the patient's words.

    Raises
    ------
    RuleRefused
        ``care.two-identifiers``; ``intake.chief-complaint`` for empty or one-word text.

    Examples
    --------
    >>> s = demo_session()
    >>> p = s.search("Patient").first()
    >>> ref = identify(s, p["id"], birth_date=p["birthDate"], mrn=mrn_of(p))
    >>> record_chief_complaint(s, ref, "pain")
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Observation (8661-1): valueString: expected the reason for the visit in the patient's words (found 'pain'). Refused by rule intake.chief-complaint: the chief complaint is the reason for the visit in the patient's own words (at least three words) [documentation standards; MAERB I.P.1, X.P.3]
    """
    ref = require_identified(session, patient, "Observation")
    if not isinstance(text, str) or len(text.split()) < 3:
        raise refuse(
            CHIEF_COMPLAINT,
            "Observation (8661-1)",
            "valueString",
            "the reason for the visit in the patient's words",
            text,
        )
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": category("survey"),
        "code": loinc_concept("8661-1"),
        "subject": {"reference": ref},
        "effectiveDateTime": now_text(session),
        "performer": [user_ref(session)],
        "valueString": text.strip(),
    }
    if encounter:
        obs["encounter"] = {"reference": encounter}
    return write(session, obs, operation="intake.chief-complaint")


def record_allergy(
    session: Session,
    patient: str,
    *,
    substance: str,
    substance_display: str,
    reaction: str,
    reaction_display: str,
    severity: str,
    category_: str = "medication",
    criticality: str = "high",
    onset: str | None = None,
) -> dict[str, Any]:
    """Record an allergy with its substance (SNOMED), reaction (SNOMED) and severity.

    Parameters
    ----------
    substance, substance_display : str
        SNOMED CT substance code (IPS set, e.g. 764146007 Penicillin) and its display.
    reaction, reaction_display : str
        SNOMED CT manifestation (e.g. 126485001 Urticaria).
    severity : str
        ``mild``, ``moderate`` or ``severe``.

    Raises
    ------
    RuleRefused
        ``care.two-identifiers``; ``intake.allergy-reaction`` without reaction or a valid severity.

    Examples
    --------
    >>> s = demo_session()
    >>> p = s.search("Patient").first()
    >>> ref = identify(s, p["id"], birth_date=p["birthDate"], mrn=mrn_of(p))
    >>> a = record_allergy(s, ref, substance="387406002", substance_display="Sulfonamide",
    ...                    reaction="271807003", reaction_display="Eruption of skin", severity="moderate")
    >>> a["reaction"][0]["severity"], a["verificationStatus"]["coding"][0]["code"]
    ('moderate', 'unconfirmed')
    """
    ref = require_identified(session, patient, "AllergyIntolerance")
    if not reaction or not reaction_display:
        raise refuse(
            ALLERGY_REACTION,
            "AllergyIntolerance",
            "reaction.manifestation",
            "the reaction",
            reaction,
        )
    if severity not in ("mild", "moderate", "severe"):
        raise refuse(
            ALLERGY_REACTION,
            "AllergyIntolerance",
            "reaction.severity",
            "mild, moderate or severe",
            severity,
        )
    allergy: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": coding(ALLERGY_CLINICAL, "active", "Active"),
        # reported by the patient at intake: the provider confirms it
        "verificationStatus": coding(
            ALLERGY_VERIFICATION,
            "unconfirmed",
            "Unconfirmed",
        ),
        "type": "allergy",
        "category": [category_],
        "criticality": criticality,
        "code": coding(SNOMED, substance, substance_display),
        "patient": {"reference": ref},
        "recordedDate": now_text(session),
        "recorder": user_ref(session),
        "reaction": [
            {
                "manifestation": [coding(SNOMED, reaction, reaction_display)],
                "severity": severity,
            }
        ],
    }
    if onset:
        allergy["onsetDateTime"] = onset
    return write(session, allergy, operation="intake.allergy")


def classes_of(code: str) -> set[str]:
    """Drug classes (``data/medications.toml``) of an RxNorm or HCPCS drug code.

    Examples
    --------
    >>> sorted(classes_of("1049221"))
    ['acetaminophen', 'opioid']
    """
    return {name for name, codes in _class_members().items() if code in codes}


@functools.cache
def _class_members() -> dict[str, frozenset[str]]:
    """Workflow class -> its codes: the RxNorm products of the ``rules.toml`` classes it names
    (the project's one class table, ``synthetic/content/data/rules.toml``) and its HCPCS drugs."""
    from synthetic.content import load_content

    shared = load_content().rules.drug_classes
    return {
        name: frozenset(
            [c for rc in cls.get("rules_classes", []) for c in shared[rc]] + cls.get("hcpcs", [])
        )
        for name, cls in table("medications")["classes"].items()
    }


def duplicate_classes(codes: list[str]) -> dict[str, list[str]]:
    """Classes held by two or more of ``codes`` (duplicate therapy), class -> codes.

    Examples
    --------
    >>> duplicate_classes(["1049221", "198440", "314076"])
    {'acetaminophen': ['1049221', '198440']}
    """
    seen: dict[str, list[str]] = {}
    for code in dict.fromkeys(codes):
        for cls in classes_of(code):
            seen.setdefault(cls, []).append(code)
    return {k: v for k, v in sorted(seen.items()) if len(v) > 1}


@dataclass
class ReconciliationResult:
    """Statements written and, when duplicate therapy was found, the Task to the provider.

    Parameters
    ----------
    statements : list of dict
        The MedicationStatements written.
    duplicates : dict
        Drug class id to the RxNorm codes of that class taken together.
    task : dict, optional
        The Task asking the provider to review duplicate therapy.

    Examples
    --------
    >>> ReconciliationResult()
    ReconciliationResult(statements=[], duplicates={}, task=None)
    >>> r = ReconciliationResult(duplicates={"statins": ["617312", "314231"]})
    >>> r.duplicates["statins"], r.task is None
    (['617312', '314231'], True)
    """

    statements: list[dict[str, Any]] = field(default_factory=list)
    duplicates: dict[str, list[str]] = field(default_factory=dict)
    task: dict[str, Any] | None = None


def _code_of(concept: dict[str, Any]) -> str | None:
    for c in concept.get("coding", []):
        if c.get("system") in (RXNORM, HCPCS):
            return c.get("code")
    return None


def reconcile_medications(
    session: Session,
    patient: str,
    entries: list[dict[str, Any]],
    *,
    provider: str | None = None,
) -> ReconciliationResult:
    """Record the patient's medication history and route duplicate therapy to the provider.

    Each entry: ``rxnorm`` (code, from the shipped RxNorm set), ``display``, ``status`` (one of
    ``active``, ``stopped``, ``not-taken``, ...), ``source`` (who said so: ``patient``,
    ``caregiver``, ``pharmacy``, ``outside-record``) and optional ``dose_text``. Active
    entries are checked, with the chart's active prescriptions, for two drugs of one class
    (``data/medications.toml``); duplicates are listed in a Task to the provider (the MA
    does not stop a medication).

    Raises
    ------
    RuleRefused
        ``care.two-identifiers``; ``intake.med-source`` for an entry without status or source.

    Examples
    --------
    >>> s = demo_session()
    >>> p = s.search("Patient").first()
    >>> ref = identify(s, p["id"], birth_date=p["birthDate"], mrn=mrn_of(p))
    >>> out = reconcile_medications(s, ref, [
    ...     {"rxnorm": "1049221", "display": "acetaminophen 325 MG / oxycodone hydrochloride 5 MG Oral Tablet", "status": "active", "source": "patient"},
    ...     {"rxnorm": "198440", "display": "acetaminophen 500 MG Oral Tablet", "status": "active", "source": "patient"}])
    >>> sorted(out.duplicates), out.task["priority"]
    (['acetaminophen'], 'urgent')
    """
    ref = require_identified(session, patient, "MedicationStatement")
    chart = read_patient(session, ref)
    statements: list[dict[str, Any]] = []
    for i, e in enumerate(entries):
        if e.get("status") not in MED_STATUSES:
            raise refuse(
                MED_SOURCE,
                "MedicationStatement",
                f"entries[{i}].status",
                "one of " + ", ".join(MED_STATUSES),
                e.get("status"),
            )
        if not e.get("source"):
            raise refuse(
                MED_SOURCE,
                "MedicationStatement",
                f"entries[{i}].source",
                "who gave the information",
                None,
            )
        concept = (
            coding(RXNORM, e["rxnorm"], e.get("display"))
            if e.get("rxnorm")
            else {"text": str(e.get("display") or "")}
        )
        st: dict[str, Any] = {
            "resourceType": "MedicationStatement",
            "status": e["status"],
            "medicationCodeableConcept": concept,
            "subject": {"reference": ref},
            "dateAsserted": now_text(session),
            "informationSource": user_ref(session)
            if e["source"] in ("clinician", "staff")
            else {"display": str(e["source"])},
            "note": [{"text": f"Reconciled at intake; source: {e['source']}"}],
        }
        if e.get("dose_text"):
            st["dosage"] = [{"text": str(e["dose_text"])}]
        statements.append(st)
    active = [
        c
        for st in statements
        if st["status"] == "active" and (c := _code_of(st["medicationCodeableConcept"]))
    ]
    for mr in session.search("MedicationRequest", subject=ref, status="active").fetch():
        code = _code_of(mr.get("medicationCodeableConcept") or {})
        if code:
            active.append(code)
    dups = duplicate_classes(active)
    task = None
    if dups:
        text = "Possible duplicate therapy found at medication reconciliation: " + "; ".join(
            f"{table('medications')['classes'][cls]['display']}: {', '.join(codes)}"
            for cls, codes in dups.items()
        )
        task = routed_task(session, ref, provider_of(chart, provider), text, priority="urgent")
    saved = write_entries(
        session, [*statements, *([task] if task else [])], operation="intake.reconcile"
    )
    return ReconciliationResult(
        statements=saved[: len(statements)],
        duplicates=dups,
        task=saved[-1] if task else None,
    )
