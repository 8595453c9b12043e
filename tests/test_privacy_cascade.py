"""Labels follow what a record is derived from, at all times (docs/privacy.md, "Records about
a record inherit its labels").

Rules, each stated over records, labels and users:

1. **The invariant.** After any writes, relabels included, every stored record carries at
   least the labels of every record it is derived from (``derived.DERIVED_FROM``), so through
   any chain of derivations: a claim's response, a payment of the claim, the claim of a visit,
   the visit of a diagnosis, a note of the visit, its addendum, a message about it, a task on
   the message, an order, its result, a specimen, an administration, an appointment booked
   for a diagnosis, the answer to it and the visit held for it, a care plan, goal,
   assessment, risk assessment, episode, care team or dispense for a diagnosis, a claim and
   explanation of benefit on a referral, and the Provenance of each (which links count:
   ``tests/test_derived_rule.py``). The oracle walks the derivation graph over every stored
   record, not the index. Generated clinics hold it too.
2. **A relabel hides everything derived, in every channel.** When the privacy officer
   relabels a record beyond what a user may see, the user learns through no channel (counts,
   totals, ids, ``_sort``, history, includes, chains, views, export, reports, ledger, inbox)
   anything that differs from the clinic where the record and everything derived from it
   were never written; reading any version of any of them answers like an absent id.
3. **Order does not matter.** A transaction that writes the derived record before its source
   leaves the derived record labelled as the source.
4. **Cycles end.** Records that derive from each other in a cycle are relabelled once each.
5. **A relabel cannot lower a derived record below its sources.**
6. **A Consent about a record covers what derives from it**, through any chain (a patient's
   restriction on a visit hides the visit's claim and the payer's response to it).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from ehr_sandbox.access.derived import DERIVED_FROM, derived_sources
from ehr_sandbox.access.labels import (
    CONFIDENTIALITY_RANK,
    confidentiality_of,
    sensitivities_of,
)
from ehr_sandbox.errors import SandboxError
from ehr_sandbox.relationships import schedule_window
from ehr_sandbox.sandbox import Sandbox
from ehr_sandbox.session import Session
from tests.privacy_support import channels

SLOW = settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=(Phase.explicit, Phase.reuse, Phase.generate),  # a clinic per example: no shrinking
)
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
LEDGER_KIND = "http://ehr-sandbox.org/CodeSystem/ledger-kind"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


@pytest.fixture(scope="module")
def clinic() -> Sandbox:
    return Sandbox.generate(patients=5, seed=5, years=1)


def _key(r: dict[str, Any]) -> tuple[str, str]:
    return str(r["resourceType"]), str(r["id"])


def _below(record: dict[str, Any], source: dict[str, Any]) -> bool:
    """True when ``record`` lacks some of ``source``'s labels."""
    mine = CONFIDENTIALITY_RANK.get(confidentiality_of(record) or "N", 0)
    theirs = CONFIDENTIALITY_RANK.get(confidentiality_of(source) or "N", 0)
    return theirs > mine or not sensitivities_of(source) <= sensitivities_of(record)


def _everything(sb: Sandbox) -> dict[tuple[str, str], dict[str, Any]]:
    system = sb.system_session()
    return {_key(r): r for t in system.readable_types() for r in system.resources(t)}


def _violations(sb: Sandbox) -> list[str]:
    """Records below one of their sources (the oracle: every record, decoded)."""
    stored = _everything(sb)
    bad = []
    for key, record in stored.items():
        if key[0] not in DERIVED_FROM:
            continue
        for src in derived_sources(record):
            source = stored.get(src)
            if source is not None and _below(record, source):
                bad.append(f"{key[0]}/{key[1]} below {src[0]}/{src[1]}")
    return bad


def _downstream(sb: Sandbox, start: tuple[str, str]) -> set[tuple[str, str]]:
    """Every stored record derived from ``start``, directly or not (graph walk, oracle)."""
    stored = _everything(sb)
    children: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for key, record in stored.items():
        for src in derived_sources(record):
            children.setdefault(src, set()).add(key)
    seen: set[tuple[str, str]] = set()
    todo = [start]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in seen and child != start:
                seen.add(child)
                todo.append(child)
    return seen


# ---------------------------------------------------------------------------- rule 1
SOURCE_TYPES = ["Condition", "Encounter", "Claim", "ServiceRequest", "ClaimResponse"]


@SLOW
@given(
    picks=st.lists(
        st.tuples(
            st.sampled_from(SOURCE_TYPES),
            st.integers(0, 200),
            st.sampled_from(["R", "V"]),
            st.sets(st.sampled_from(["HIV", "SUD", "SDV", "PSY"]), max_size=2),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_every_record_carries_the_labels_of_what_it_derives_from(
    clinic: Sandbox, picks: list[tuple[str, int, str, set[str]]]
) -> None:
    sb = clinic.copy()
    assert _violations(sb) == []  # the generated clinic holds the rule
    po = sb.login("po.wilson")
    system = sb.system_session()
    for rtype, pick, level, sens in picks:
        ids = sorted(r["id"] for r in system.search(rtype).fetch_all())
        rid = ids[pick % len(ids)]
        below = [
            k
            for k in _downstream(sb, (rtype, rid))
            if k[0] in DERIVED_FROM and system.read(*k) is not None
        ]
        po.relabel(f"{rtype}/{rid}", level, sensitivity=sorted(sens), reason="test: relabel")
        source = system.read(rtype, rid)
        assert _violations(sb) == [], (rtype, rid)
        # everything downstream now carries at least the new labels (transitively)
        for k in below:
            assert not _below(system.read(*k), source), (k, rtype, rid)
    # a relabel of a claim with a response reaches it (the rule is not vacuous here)
    assert any(_downstream(sb, ("Claim", r["id"])) for r in system.search("Claim").fetch_all())


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@example(seed=1)
@given(seed=st.integers(0, 10_000))
def test_a_generated_clinic_labels_every_record_like_its_sources(seed: int) -> None:
    # larger than the module's clinic: refill requests on restricted prescriptions, sensitive
    # screenings and visits booked from appointments all occur
    sb = Sandbox.generate(patients=40, seed=seed, years=2)
    assert _violations(sb) == []
    stored = _everything(sb)
    restricted = [k for k, r in stored.items() if confidentiality_of(r) in ("R", "V")]
    derived = [k for k, r in stored.items() if derived_sources(r)]
    assert restricted and len(derived) > 100  # the rule is not vacuous here


# ---------------------------------------------------------------------------- rule 2
def _condition(pid: str, code: str = "I10") -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{"system": CLINICAL, "code": "active"}]},
        "code": {"coding": [{"system": ICD10, "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
    }


def _encounter(pid: str, diagnosis: str | None = None) -> dict[str, Any]:
    enc: dict[str, Any] = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{pid}"},
        "period": {"start": "2025-11-03T09:00:00+00:00", "end": "2025-11-03T09:20:00+00:00"},
    }
    if diagnosis:
        enc["diagnosis"] = [{"condition": {"reference": diagnosis}}]
    return enc


def _claim_chain(sb: Sandbox, pid: str, amount: int) -> tuple[str, list[dict[str, Any]]]:
    """A diagnosis, the visit that addressed it, the visit's claim, the payer's response and
    a payment: each derived from the one before. The diagnosis is the source."""
    system = sb.system_session()
    condition = system.create(_condition(pid))
    encounter = system.create(_encounter(pid, f"Condition/{condition['id']}"))
    template = copy.deepcopy(system.search("Claim", patient=f"Patient/{pid}").first())
    for key in ("id", "meta", "text", "related"):
        template.pop(key, None)
    for item in template["item"]:
        item["encounter"] = [{"reference": f"Encounter/{encounter['id']}"}]
    claim = system.create(template)
    response = system.create(
        {
            "resourceType": "ClaimResponse",
            "status": "active",
            "type": claim["type"],
            "use": "claim",
            "patient": claim["patient"],
            "created": str(sb.reference_date),
            "insurer": claim.get("insurer", {"reference": "Organization/x"}),
            "request": {"reference": f"Claim/{claim['id']}"},
            "outcome": "complete",
        }
    )
    day = str(sb.reference_date)
    payment = system.create(
        {
            "resourceType": "PaymentReconciliation",
            "status": "active",
            "created": day,
            "paymentDate": day,
            "paymentAmount": {"value": amount, "currency": "USD"},
            "outcome": "complete",
            "detail": [
                {
                    "type": {"coding": [{"system": LEDGER_KIND, "code": "patient-payment"}]},
                    "request": {"reference": f"Claim/{claim['id']}"},
                    "response": {"reference": f"ClaimResponse/{response['id']}"},
                    "date": day,
                    "amount": {"value": amount, "currency": "USD"},
                }
            ],
        }
    )
    return f"Condition/{condition['id']}", [condition, encounter, claim, response, payment]


def _visit_documents(sb: Sandbox, pid: str, amount: int) -> tuple[str, list[dict[str, Any]]]:
    """A visit, its note, an addendum, a message about the note and a task on the message.
    The visit is the source."""
    system = sb.system_session()
    encounter = system.create(_encounter(pid))
    note_type = {"coding": [{"system": LOINC, "code": "11506-3", "display": "Progress note"}]}
    note = system.create(
        {
            "resourceType": "DocumentReference",
            "status": "current",
            "type": note_type,
            "subject": {"reference": f"Patient/{pid}"},
            "date": f"{sb.reference_date}T10:00:00+00:00",
            "content": [{"attachment": {"contentType": "text/plain", "data": "Tm90ZQ=="}}],
            "context": {"encounter": [{"reference": f"Encounter/{encounter['id']}"}]},
        }
    )
    addendum = system.addendum(f"DocumentReference/{note['id']}", f"Addendum {amount}")
    message = system.create(
        {
            "resourceType": "Communication",
            "status": "completed",
            "subject": {"reference": f"Patient/{pid}"},
            "about": [{"reference": f"DocumentReference/{note['id']}"}],
            "sent": f"{sb.reference_date}T11:00:00+00:00",
            "payload": [{"contentString": "Your visit note is ready."}],
        }
    )
    task = system.create(
        {
            "resourceType": "Task",
            "status": "requested",
            "intent": "order",
            "for": {"reference": f"Patient/{pid}"},
            "focus": {"reference": f"Communication/{message['id']}"},
            "authoredOn": f"{sb.reference_date}T11:00:00+00:00",
        }
    )
    return f"Encounter/{encounter['id']}", [encounter, note, addendum, message, task]


def _orders(sb: Sandbox, pid: str, amount: int) -> tuple[str, list[dict[str, Any]]]:
    """A diagnosis, a lab order for it, the specimen, the result and the report, and a
    prescription for it with an administration. The diagnosis is the source."""
    system = sb.system_session()
    condition = system.create(_condition(pid))
    reason = [{"reference": f"Condition/{condition['id']}"}]
    subject = {"reference": f"Patient/{pid}"}
    when = f"{sb.reference_date}T09:00:00+00:00"
    test = {"coding": [{"system": LOINC, "code": "2345-7", "display": "Glucose"}]}
    order = system.create(
        {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "code": test,
            "subject": subject,
            "reasonReference": reason,
        }
    )
    based_on = [{"reference": f"ServiceRequest/{order['id']}"}]
    specimen = system.create(
        {"resourceType": "Specimen", "status": "available", "subject": subject, "request": based_on}
    )
    result = system.create(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": test,
            "subject": subject,
            "effectiveDateTime": when,
            "basedOn": based_on,
            "valueQuantity": {
                "value": 90 + amount % 50,
                "unit": "mg/dL",
                "system": "http://unitsofmeasure.org",
                "code": "mg/dL",
            },
        }
    )
    report = system.create(
        {
            "resourceType": "DiagnosticReport",
            "status": "final",
            "code": test,
            "subject": subject,
            "effectiveDateTime": when,
            "basedOn": based_on,
            "result": [{"reference": f"Observation/{result['id']}"}],
        }
    )
    drug = {"coding": [{"system": RXNORM, "code": "197361", "display": "amlodipine 5 MG"}]}
    prescription = system.create(
        {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": drug,
            "subject": subject,
            "reasonReference": reason,
        }
    )
    given_ = system.create(
        {
            "resourceType": "MedicationAdministration",
            "status": "completed",
            "medicationCodeableConcept": drug,
            "subject": subject,
            "effectiveDateTime": when,
            "request": {"reference": f"MedicationRequest/{prescription['id']}"},
        }
    )
    written = [condition, order, specimen, result, report, prescription, given_]
    return f"Condition/{condition['id']}", written


def _scheduling(sb: Sandbox, pid: str, amount: int) -> tuple[str, list[dict[str, Any]]]:
    """A diagnosis, a referral for it, an appointment booked for it (its reason) and on the
    referral, the patient's answer to the appointment, and the visit that took place for the
    appointment. The diagnosis is the source (the review's finding: an Appointment whose reason
    is a restricted Condition stayed visible, with the reason's display text)."""
    system = sb.system_session()
    condition = system.create(_condition(pid))
    cref = f"Condition/{condition['id']}"
    referral = system.create(
        {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "code": {"text": "Referral to behavioral health"},
            "subject": {"reference": f"Patient/{pid}"},
            "reasonReference": [{"reference": cref}],
        }
    )
    appointment = system.create(
        {
            "resourceType": "Appointment",
            "status": "booked",
            "start": "2025-11-03T09:00:00+00:00",
            "end": "2025-11-03T09:20:00+00:00",
            "reasonReference": [{"reference": cref, "display": f"Follow-up {amount}"}],
            "basedOn": [{"reference": f"ServiceRequest/{referral['id']}"}],
            "participant": [
                {"actor": {"reference": f"Patient/{pid}"}, "status": "accepted"},
                {"actor": {"reference": "Practitioner/prac-dr.okafor"}, "status": "accepted"},
            ],
        }
    )
    answer = system.create(
        {
            "resourceType": "AppointmentResponse",
            "appointment": {"reference": f"Appointment/{appointment['id']}"},
            "actor": {"reference": f"Patient/{pid}"},
            "participantStatus": "accepted",
        }
    )
    visit = system.create(
        {
            **_encounter(pid),
            "appointment": [{"reference": f"Appointment/{appointment['id']}"}],
            "basedOn": [{"reference": f"ServiceRequest/{referral['id']}"}],
        }
    )
    return cref, [condition, referral, appointment, answer, visit]


def _care_planning(sb: Sandbox, pid: str, amount: int) -> tuple[str, list[dict[str, Any]]]:
    """A diagnosis and what plans, assesses, treats or asks about it: a care plan and a goal
    addressing it, an assessment of it, a risk assessment based on it, an episode of care for
    it, a family history and a care team for it, a medication statement, a device request,
    an imaging study for it, a clinical issue about it, a prescription for it and its
    dispense, a questionnaire on an order for it and the score taken from the answers, an
    observation about it, and a request for a message about it. The diagnosis is the source."""
    system = sb.system_session()
    condition = system.create(_condition(pid))
    cref = f"Condition/{condition['id']}"
    reason = [{"reference": cref}]
    subject = {"reference": f"Patient/{pid}"}
    when = f"{sb.reference_date}T09:00:00+00:00"
    drug = {"coding": [{"system": RXNORM, "code": "197361", "display": "amlodipine 5 MG"}]}
    goal = system.create(
        {
            "resourceType": "Goal",
            "lifecycleStatus": "active",
            "description": {"text": f"Goal {amount}"},
            "subject": subject,
            "addresses": reason,
        }
    )
    plan = system.create(
        {
            "resourceType": "CarePlan",
            "status": "active",
            "intent": "plan",
            "subject": subject,
            "addresses": reason,
            "goal": [{"reference": f"Goal/{goal['id']}"}],
        }
    )
    written = [condition, goal, plan]
    for resource in (
        {
            "resourceType": "ClinicalImpression",
            "status": "completed",
            "subject": subject,
            "problem": reason,
        },
        {"resourceType": "RiskAssessment", "status": "final", "subject": subject, "basis": reason},
        {
            "resourceType": "EpisodeOfCare",
            "status": "active",
            "patient": subject,
            "diagnosis": [{"condition": {"reference": cref}}],
        },
        {
            "resourceType": "FamilyMemberHistory",
            "status": "completed",
            "patient": subject,
            "relationship": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "MTH"}
                ]
            },
            "reasonReference": reason,
        },
        {
            "resourceType": "CareTeam",
            "status": "active",
            "subject": subject,
            "reasonReference": reason,
        },
        {
            "resourceType": "MedicationStatement",
            "status": "active",
            "medicationCodeableConcept": drug,
            "subject": subject,
            "reasonReference": reason,
        },
        {
            "resourceType": "DeviceRequest",
            "status": "active",
            "intent": "order",
            "codeCodeableConcept": {"text": "Glucose meter"},
            "subject": subject,
            "reasonReference": reason,
        },
        {
            "resourceType": "ImagingStudy",
            "status": "available",
            "subject": subject,
            "reasonReference": reason,
        },
        {
            "resourceType": "DetectedIssue",
            "status": "final",
            "patient": subject,
            "implicated": reason,
        },
        {
            "resourceType": "CommunicationRequest",
            "status": "active",
            "subject": subject,
            "reasonReference": reason,
            "payload": [{"contentString": "Please call about your results."}],
        },
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "Symptom severity"},
            "subject": subject,
            "focus": reason,
            "effectiveDateTime": when,
            "valueInteger": amount % 10,
        },
    ):
        written.append(system.create(resource))
    prescription = system.create(
        {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": drug,
            "subject": subject,
            "reasonReference": reason,
        }
    )
    dispense = system.create(
        {
            "resourceType": "MedicationDispense",
            "status": "completed",
            "medicationCodeableConcept": drug,
            "subject": subject,
            "authorizingPrescription": [{"reference": f"MedicationRequest/{prescription['id']}"}],
        }
    )
    order = system.create(
        {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "code": {"text": "Screening questionnaire"},
            "subject": subject,
            "reasonReference": reason,
        }
    )
    answers = system.create(
        {
            "resourceType": "QuestionnaireResponse",
            "status": "completed",
            "subject": subject,
            "basedOn": [{"reference": f"ServiceRequest/{order['id']}"}],
            "item": [{"linkId": "1", "answer": [{"valueInteger": amount % 4}]}],
        }
    )
    score = system.create(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "Screening score"},
            "subject": subject,
            "effectiveDateTime": when,
            "derivedFrom": [{"reference": f"QuestionnaireResponse/{answers['id']}"}],
            "valueInteger": amount % 4,
        }
    )
    based_on = [{"reference": f"ServiceRequest/{order['id']}"}]
    written += [prescription, dispense, order, answers, score]
    for resource in (
        {
            "resourceType": "Media",
            "status": "completed",
            "subject": subject,
            "basedOn": based_on,
            "content": {"contentType": "image/png", "data": "iVBORw0KGgo="},
        },
        {
            "resourceType": "Composition",
            "status": "final",
            "type": {"text": "Problem summary"},
            "subject": subject,
            "date": when,
            "author": [{"reference": "Practitioner/prac-dr.okafor"}],
            "title": f"Summary {amount}",
            "section": [{"title": "Problem", "focus": {"reference": cref}, "entry": reason}],
        },
        {
            "resourceType": "Communication",
            "status": "completed",
            "subject": subject,
            "reasonReference": reason,
            "payload": [{"contentString": "Please book a follow-up."}],
        },
        {
            "resourceType": "Task",
            "status": "requested",
            "intent": "order",
            "for": subject,
            "reasonReference": {"reference": cref},
            "authoredOn": when,
        },
    ):
        written.append(system.create(resource))
    return cref, written


def _adjudication(sb: Sandbox, pid: str, amount: int) -> tuple[str, list[dict[str, Any]]]:
    """A diagnosis, a referral for it, a claim for the referred service and the payer's
    explanation of benefit for the claim. The diagnosis is the source."""
    system = sb.system_session()
    condition = system.create(_condition(pid))
    referral = system.create(
        {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "code": {"text": "Referral"},
            "subject": {"reference": f"Patient/{pid}"},
            "reasonReference": [{"reference": f"Condition/{condition['id']}"}],
        }
    )
    referred = {"reference": f"ServiceRequest/{referral['id']}"}
    template = copy.deepcopy(system.search("Claim", patient=f"Patient/{pid}").first())
    for key in ("id", "meta", "text", "related"):
        template.pop(key, None)
    claim = system.create({**template, "referral": referred})
    benefit = system.create(
        {
            "resourceType": "ExplanationOfBenefit",
            "status": "active",
            "type": claim["type"],
            "use": "claim",
            "patient": claim["patient"],
            "created": str(sb.reference_date),
            "insurer": claim.get("insurer", {"reference": "Organization/x"}),
            "provider": claim["provider"],
            "outcome": "complete",
            "claim": {"reference": f"Claim/{claim['id']}"},
            "referral": referred,
            "insurance": [{"focal": True, "coverage": claim["insurance"][0]["coverage"]}],
            "total": [
                {
                    "category": {"text": "submitted"},
                    "amount": {"value": amount, "currency": "USD"},
                }
            ],
        }
    )
    return f"Condition/{condition['id']}", [condition, referral, claim, benefit]


def _eligibility(sb: Sandbox, pid: str, amount: int) -> tuple[str, list[dict[str, Any]]]:
    """An eligibility check and the payer's answer to it, copied with new ids from the
    clinic's own (the patient's, when they have one). The check is the source."""
    system = sb.system_session()
    answers = {
        r["request"]["reference"]: r
        for r in system.search("CoverageEligibilityResponse").fetch_all()
    }
    requests = [
        r
        for r in system.search("CoverageEligibilityRequest").fetch_all()
        if f"CoverageEligibilityRequest/{r['id']}" in answers
    ]
    mine = [r for r in requests if r["patient"]["reference"] == f"Patient/{pid}"]
    template = copy.deepcopy((mine or requests)[0])
    reply = copy.deepcopy(answers[f"CoverageEligibilityRequest/{template['id']}"])
    for record in (template, reply):
        for key in ("id", "meta", "text"):
            record.pop(key, None)
    request = system.create({**template, "created": f"2025-11-0{1 + amount % 9}"})
    answer = system.create(
        {**reply, "request": {"reference": f"CoverageEligibilityRequest/{request['id']}"}}
    )
    return f"CoverageEligibilityRequest/{request['id']}", [request, answer]


# (observer, what is written, the relabel that puts it beyond the observer, treated)
SCENARIOS = [
    ("billing.davis", _claim_chain, ("R", ["SUD"]), False),  # 42 CFR Part 2
    ("billing.davis", _claim_chain, ("V", []), False),
    ("ma.garcia", _visit_documents, ("R", ["SDV"]), True),  # ceiling N
    ("rn.kim", _visit_documents, ("R", []), True),  # reads the Provenances too
    ("dr.okafor", _orders, ("V", []), True),  # ceiling R
    ("rn.kim", _orders, ("R", ["HIV"]), True),
    ("fd.smith", _scheduling, ("R", []), False),  # ceiling N, reads the scheduling records
    ("billing.davis", _scheduling, ("R", ["SUD"]), False),  # reads Appointment, Encounter
    ("rn.kim", _care_planning, ("R", ["HIV"]), True),
    ("dr.okafor", _care_planning, ("V", []), True),
    ("billing.davis", _adjudication, ("R", ["SUD"]), False),
    ("fd.smith", _eligibility, ("R", []), False),
]


def _book(sb: Sandbox, pid: str) -> None:
    """Put ``pid`` on this week's schedule with dr.okafor (so the care roles see them)."""
    start = schedule_window(sb.reference_date)[0]
    sb.system_session().create(
        {
            "resourceType": "Appointment",
            "status": "booked",
            "start": f"{start}T09:00:00+00:00",
            "end": f"{start}T09:20:00+00:00",
            "participant": [
                {"actor": {"reference": f"Patient/{pid}"}, "status": "accepted"},
                {"actor": {"reference": "Practitioner/prac-dr.okafor"}, "status": "accepted"},
            ],
        }
    )


def _as_absent(s: Session, ref: str, vid: str) -> list[str]:
    """What ``s`` gets from every way of reading ``ref`` (version ``vid`` too), ids blanked."""
    rtype, rid = ref.split("/")
    out = []
    for f in (
        lambda: s.read(rtype, rid),
        lambda: s.vread(rtype, rid, vid),
        lambda: s.history(rtype, rid),
        lambda: s.provenance(ref),
    ):
        try:
            got = f()
        except SandboxError as exc:
            out.append(f"{type(exc).__name__}: {exc}".replace(rid, "<id>"))
        else:
            out.append(f"answered: {type(got).__name__}")
    out.append(str(s.exists(ref)))
    return out


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: f"{s[0]}-{s[1].__name__}")
@settings(SLOW, max_examples=2)
@given(pick=st.integers(0, 50), amount=st.integers(1, 500))
def test_a_relabel_hides_everything_derived_from_the_record_in_every_channel(
    clinic: Sandbox, scenario: tuple[str, Any, tuple[str, list[str]], bool], pick: int, amount: int
) -> None:
    observer, make, (level, sensitivity), treated = scenario
    sb = clinic.copy()
    system = sb.system_session()
    claimed = sorted({c["patient"]["reference"][8:] for c in system.search("Claim").fetch_all()})
    pid = claimed[pick % len(claimed)]
    if treated:
        _book(sb, pid)
        assert pid in sb.treating(observer)
    day = str(sb.reference_date)
    without = channels(sb.login(observer), day)
    source, written = make(sb, pid, amount)
    s = sb.login(observer)
    # the observer saw the records of the types it may read before the relabel (the
    # scenario is not vacuous)
    readable = set(s.readable_types())
    seen = [r for r in written if r["resourceType"] in readable]
    assert len(seen) >= 2
    assert all(s.exists(f"{r['resourceType']}/{r['id']}") for r in seen)
    sb.login("po.wilson").relabel(source, level, sensitivity=sensitivity, reason="test")
    # the relabel raised everything written after the source (each derives from it)
    relabelled = system.read(source)
    for r in written:
        assert not _below(system.read(r["resourceType"], r["id"]), relabelled), r["resourceType"]
    s = sb.login(observer)
    after = channels(s, day)
    changed = {k: (without[k], after.get(k)) for k in without if without[k] != after.get(k)}
    assert changed == {}
    assert set(after) == set(without)
    for r in written:
        rtype = r["resourceType"]
        absent = _as_absent(s, f"{rtype}/no-such-record", "1")
        assert _as_absent(s, f"{rtype}/{r['id']}", "1") == [
            a.replace("no-such-record", "<id>") for a in absent
        ], rtype


# ---------------------------------------------------------------------------- rule 3
@settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck))
@given(response_first=st.booleans())
def test_a_transaction_labels_a_derived_record_whatever_the_entry_order(
    clinic: Sandbox, response_first: bool
) -> None:
    sb = clinic.copy()
    system = sb.system_session()
    claim = copy.deepcopy(system.search("Claim").first())
    for key in ("id", "meta", "text", "related"):
        claim.pop(key, None)
    claim["diagnosis"] = [
        {"sequence": 1, "diagnosisCodeableConcept": {"coding": [{"system": ICD10, "code": "B20"}]}}
    ]
    claim_url = "urn:uuid:4b1f6c1e-0000-4000-8000-00000000c1a1"
    response = {
        "resourceType": "ClaimResponse",
        "status": "active",
        "type": claim["type"],
        "use": "claim",
        "patient": claim["patient"],
        "created": str(sb.reference_date),
        "insurer": claim.get("insurer", {"reference": "Organization/x"}),
        "request": {"reference": claim_url},
        "outcome": "complete",
    }
    entries = [
        {"fullUrl": claim_url, "resource": claim, "request": {"method": "POST", "url": "Claim"}},
        {"resource": response, "request": {"method": "POST", "url": "ClaimResponse"}},
    ]
    if response_first:
        entries.reverse()
    system.transaction({"resourceType": "Bundle", "type": "transaction", "entry": entries})
    stored = system.search("ClaimResponse", _sort="-_lastUpdated", _count="1").first()
    source = system.read(stored["request"]["reference"])
    assert "HIV" in sensitivities_of(source)
    assert not _below(stored, source)
    assert _violations(sb) == []


# ---------------------------------------------------------------------------- rule 4
def test_records_deriving_from_each_other_in_a_cycle_are_relabelled_once(clinic: Sandbox) -> None:
    sb = clinic.copy()
    system = sb.system_session()
    pid = sorted(p["id"] for p in system.search("Patient").fetch_all())[0]
    condition = system.create(_condition(pid))
    base = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "for": {"reference": f"Patient/{pid}"},
        "authoredOn": f"{sb.reference_date}T08:00:00+00:00",
    }
    first = system.create({**base, "focus": {"reference": f"Condition/{condition['id']}"}})
    second = system.create({**base, "focus": {"reference": f"Task/{first['id']}"}})
    # the first task is also based on the second: a cycle first -> second -> first
    first = system.update({**first, "basedOn": [{"reference": f"Task/{second['id']}"}]})
    versions = {
        t["id"]: int(system.read("Task", t["id"])["meta"]["versionId"]) for t in (first, second)
    }
    sb.login("po.wilson").relabel(
        f"Condition/{condition['id']}", "R", sensitivity=["PSY"], reason="test: cycle"
    )
    for task in (first, second):
        now = system.read("Task", task["id"])
        assert confidentiality_of(now) == "R" and "PSY" in sensitivities_of(now)
        assert int(now["meta"]["versionId"]) == versions[task["id"]] + 1
    assert _violations(sb) == []


# ---------------------------------------------------------------------------- rule 5
def test_a_relabel_cannot_lower_a_derived_record_below_its_source(clinic: Sandbox) -> None:
    sb = clinic.copy()
    system = sb.system_session()
    po = sb.login("po.wilson")
    response = system.search("ClaimResponse").first()
    claim_ref = response["request"]["reference"]
    po.relabel(claim_ref, "V", sensitivity=["SUD"], reason="test: restrict the claim")
    po.relabel(f"ClaimResponse/{response['id']}", "N", reason="test: try to lower the response")
    lowered = system.read("ClaimResponse", response["id"])
    assert not _below(lowered, system.read(claim_ref))
    # lowering the source first lets the derived record come down to what it inherits
    po.relabel(claim_ref, "N", reason="test: lift the claim")
    po.relabel(f"ClaimResponse/{response['id']}", "N", reason="test: lift the response")
    assert confidentiality_of(system.read("ClaimResponse", response["id"])) == "N"


# ---------------------------------------------------------------------------- rule 6
@settings(SLOW, max_examples=2)
@given(pick=st.integers(0, 50), source=st.sampled_from([0, 1]))
def test_a_consent_about_a_record_covers_what_derives_from_it(
    clinic: Sandbox, pick: int, source: int
) -> None:
    sb = clinic.copy()
    system = sb.system_session()
    claimed = sorted({c["patient"]["reference"][8:] for c in system.search("Claim").fetch_all()})
    pid = claimed[pick % len(claimed)]
    _, written = _claim_chain(sb, pid, 10)
    condition, encounter, claim, response = written[:4]
    named = (condition, encounter)[source]
    billing = sb.login("billing.davis")
    chain = written[source:4]  # the named record and what derives from it, patient-bound
    assert all(billing.exists(f"{r['resourceType']}/{r['id']}") for r in chain)
    system.create(
        {
            "resourceType": "Consent",
            "status": "active",
            "scope": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                        "code": "patient-privacy",
                    }
                ]
            },
            "policy": [{"uri": "https://www.ecfr.gov/current/title-45/section-164.522"}],
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                            "code": "INFA",
                        }
                    ]
                }
            ],
            "patient": {"reference": f"Patient/{pid}"},
            "provision": {
                "type": "permit",
                "provision": [
                    {
                        "type": "deny",
                        "purpose": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                                "code": "HPAYMT",
                            }
                        ],
                        "data": [
                            {
                                "meaning": "related",
                                "reference": {
                                    "reference": f"{named['resourceType']}/{named['id']}"
                                },
                            }
                        ],
                    }
                ],
            },
        }
    )
    billing = sb.login("billing.davis")
    for r in chain:
        assert not billing.exists(f"{r['resourceType']}/{r['id']}"), r["resourceType"]
    # records not derived from the named one stay visible
    other = system.search("Claim", patient=f"Patient/{pid}").fetch_all()
    unrelated = [c for c in other if c["id"] != claim["id"]]
    assert all(billing.exists(f"Claim/{c['id']}") for c in unrelated)
