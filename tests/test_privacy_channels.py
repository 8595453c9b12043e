"""Every channel an insider can use says nothing about records they may not see.

Rules, each stated over roles and records (red-team probes of the newer surfaces):

1. **Nothing that names nobody reaches a patient.** A portal user (or a ``patient/`` token)
   sees their own compartment and shared reference data only: no record they can read points
   at another patient's data (payments name the claims they pay, not the patient).
2. **A record about a hidden record is hidden too.** A claim's response, a payment of a claim,
   a message about a result or a task on it inherits the labels of what it is about, so for a
   user who may not see the source, every channel (counts, Bundle totals, ids and their
   order, ``_sort``, type history, catalogue reports, ledger, day sheet, A/R aging,
   data-quality report, portal inbox) gives exactly the same output whether or not the hidden
   record and everything derived from it exist.
3. **Only real bookings and contacts make a relationship.** A cancelled, erroneous, proposed,
   pending or waitlisted Appointment (a portal request included), and a cancelled or erroneous
   Encounter, open no chart; a booked one does.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ehr_sandbox.access import patients_of
from ehr_sandbox.access.labels import CONFIDENTIALITY, CONFIDENTIALITY_ORDER, sensitivities_of
from ehr_sandbox.errors import SandboxError
from ehr_sandbox.references import references_in
from ehr_sandbox.relationships import schedule_window
from ehr_sandbox.sandbox import Sandbox
from ehr_sandbox.session import Session
from tests.privacy_support import channels

SLOW = settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
LEDGER_KIND = "http://ehr-sandbox.org/CodeSystem/ledger-kind"


def _owners(sb: Sandbox) -> dict[str, frozenset[str]]:
    """``Type/id`` -> the patients the record belongs to (the oracle reads as the system)."""
    system = sb.system_session()
    return {
        f"{t}/{r['id']}": patients_of(r)
        for t in system.readable_types()
        for r in system.resources(t)
    }


def _foreign(session: Session, owners: dict[str, frozenset[str]], me: str) -> list[str]:
    """Records ``session`` reads that belong to, or point at data of, a patient not ``me``."""
    bad = []
    for t in session.readable_types():
        for r in session.resources(t):
            own = patients_of(r)
            pointed = {
                p
                for ref in references_in(r)
                for p in owners.get(ref.split("/_history")[0], frozenset())
            }
            if (own | pointed) - {me}:
                bad.append(f"{t}/{r['id']}")
    return bad


@pytest.fixture(scope="module")
def clinic() -> Sandbox:
    return Sandbox.generate(patients=6, seed=5, years=1)


def test_a_patient_reads_nothing_about_another_patient(clinic: Sandbox) -> None:
    owners = _owners(clinic)
    pids = sorted(p for ps in owners.values() for p in ps if f"Patient/{p}" in owners)
    assert len(set(pids)) >= 2
    # the clinic has payments, the records that once leaked (they name claims, not patients)
    assert any(ref.startswith("PaymentReconciliation/") for ref in owners)
    for pid in sorted(set(pids)):
        assert _foreign(clinic.login_patient(pid), owners, pid) == [], pid


def test_a_patient_token_reaches_one_compartment_only(clinic: Sandbox) -> None:
    owners = _owners(clinic)
    pid = sorted(p for ps in owners.values() for p in ps)[0]
    # billing sees every payment; with a patient/ token it must see only that patient's data
    token = clinic.login("billing.davis", scopes="patient/*.rs", patient=pid)
    assert _foreign(token, owners, pid) == []


def _foreign_to(
    session: Session, owners: dict[str, frozenset[str]], allowed: set[str]
) -> list[str]:
    bad = []
    for t in session.readable_types():
        for r in session.resources(t):
            pointed = {
                p
                for ref in references_in(r)
                for p in owners.get(ref.split("/_history")[0], frozenset())
            }
            if (patients_of(r) | pointed) - allowed:
                bad.append(f"{t}/{r['id']}")
    return bad


def test_a_clinician_reads_nothing_about_a_patient_they_do_not_treat(clinic: Sandbox) -> None:
    """Care roles: nothing they can read belongs to, or points at data of, a patient outside
    their relationships (generated payments, tasks, messages, provenance included)."""
    owners = _owners(clinic)
    care = [
        u.username for u in clinic.users if u.role in ("medical_assistant", "nurse", "physician")
    ]
    assert care
    for username in care:
        s = clinic.login(username)
        assert _foreign_to(s, owners, set(s.context.treating)) == [], username


# ---------------------------------------------------------------------------- rule 2
def _sud_claim(sb: Sandbox, pid: str, amount: int) -> list[dict[str, Any]]:
    """An opioid-use-disorder claim of ``pid``, its response and a payment of it, written
    through the door (as the payer and the desk would)."""
    system = sb.system_session()
    claim = copy.deepcopy(system.search("Claim", patient=f"Patient/{pid}").first())
    for key in ("id", "meta", "text"):
        claim.pop(key, None)
    claim["diagnosis"] = [
        {
            "sequence": 1,
            "diagnosisCodeableConcept": {"coding": [{"system": ICD10, "code": "F11.20"}]},
        }
    ]
    claim = system.create(claim)
    ref = f"Claim/{claim['id']}"
    response = system.create(
        {
            "resourceType": "ClaimResponse",
            "status": "active",
            "type": claim["type"],
            "use": "claim",
            "patient": claim["patient"],
            "created": str(sb.reference_date),
            "insurer": claim.get("insurer", {"reference": "Organization/x"}),
            "request": {"reference": ref},
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
                    "request": {"reference": ref},
                    "response": {"reference": f"ClaimResponse/{response['id']}"},
                    "date": day,
                    "amount": {"value": amount, "currency": "USD"},
                }
            ],
        }
    )
    return [claim, response, payment]


def _hiv_result_notice(sb: Sandbox, pid: str, amount: int) -> list[dict[str, Any]]:
    """An HIV diagnosis of ``pid``, a portal notice about it and a task on the notice."""
    system = sb.system_session()
    condition = system.create(
        {
            "resourceType": "Condition",
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                        "code": "active",
                    }
                ]
            },
            "code": {"coding": [{"system": ICD10, "code": "B20"}]},
            "subject": {"reference": f"Patient/{pid}"},
            "recordedDate": f"2025-12-{amount % 28 + 1:02d}",
        }
    )
    notice = system.create(
        {
            "resourceType": "Communication",
            "status": "completed",
            "subject": {"reference": f"Patient/{pid}"},
            "about": [{"reference": f"Condition/{condition['id']}"}],
            "sent": f"{sb.reference_date}T08:00:00+00:00",
            "recipient": [{"reference": f"Patient/{pid}"}],
            "payload": [{"contentString": "A new result is available in your portal."}],
        }
    )
    task = system.create(
        {
            "resourceType": "Task",
            "status": "requested",
            "intent": "order",
            "for": {"reference": f"Patient/{pid}"},
            "focus": {"reference": f"Communication/{notice['id']}"},
            "authoredOn": f"{sb.reference_date}T08:00:00+00:00",
            "description": "Call the patient about the result",
        }
    )
    return [condition, notice, task]


# (observer, how the hidden records are made, whether the observer treats their patient)
SCENARIOS = [
    ("billing.davis", _sud_claim, False),  # 42 CFR Part 2: billing never sees SUD
    ("ma.garcia", _hiv_result_notice, True),  # ceiling N: no R data, even of a roomed patient
    ("rn.kim", _hiv_result_notice, True),
    ("dr.okafor", _sud_claim, False),  # the Provenance of a payment belongs to its patient
    ("rn.lopez", _sud_claim, False),
]


@SLOW
@given(scenario=st.sampled_from(SCENARIOS), pick=st.integers(0, 50), amount=st.integers(1, 500))
def test_hidden_records_and_what_derives_from_them_change_no_channel(
    scenario: tuple[str, Any, bool], pick: int, amount: int
) -> None:
    observer, make, treated = scenario
    sb = Sandbox.generate(patients=5, seed=5, years=1)
    system = sb.system_session()
    if treated:
        # book a patient with the observer's clinic this week so the observer rooms them
        pids = sorted(p["id"] for p in system.search("Patient").fetch_all())
        pid = pids[pick % len(pids)]
        start = schedule_window(sb.reference_date)[0]
        system.create(
            {
                "resourceType": "Appointment",
                "status": "booked",
                "start": f"{start}T09:00:00+00:00",
                "end": f"{start}T09:20:00+00:00",
                "participant": [
                    {"actor": {"reference": f"Patient/{pid}"}, "status": "accepted"},
                    {"actor": {"reference": "Practitioner/prac-dr.patel"}, "status": "accepted"},
                ],
            }
        )
        assert pid in sb.treating(observer)
    else:
        treats = sb.treating(observer)
        pids = sorted(
            {c["patient"]["reference"][8:] for c in system.search("Claim").fetch_all()} - treats
        )
        pid = pids[pick % len(pids)]
    day = str(sb.reference_date)
    before = channels(sb.login(observer), day)
    made = make(sb, pid, amount)
    # the source is labelled, and so is everything derived from it
    source_labels = sensitivities_of(made[0])
    assert source_labels
    for derived in made[1:]:
        assert source_labels <= sensitivities_of(derived), derived["resourceType"]
    after = channels(sb.login(observer), day)
    changed = {k: (before[k], after.get(k)) for k in before if before[k] != after.get(k)}
    assert changed == {}
    assert set(after) == set(before)


# ---------------------------------------------------------------------------- rule 3
REAL_BOOKINGS = {"booked", "arrived", "checked-in", "fulfilled", "noshow"}
NOT_BOOKINGS = {"proposed", "pending", "cancelled", "entered-in-error", "waitlist"}


def _untreated(sb: Sandbox, *usernames: str) -> str:
    pids = sorted(p["id"] for p in sb.system_session().search("Patient").fetch_all())
    seen = set().union(*(sb.treating(u) for u in usernames))
    return next(p for p in pids if p not in seen)


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(status=st.sampled_from(sorted(REAL_BOOKINGS | NOT_BOOKINGS)))
def test_only_a_real_booking_opens_a_chart(clinic: Sandbox, status: str) -> None:
    doctor, rooming = "dr.okafor", ("ma.chen", "rn.kim", "fd.smith")
    pid = _untreated(clinic, doctor, *rooming)
    start = schedule_window(clinic.reference_date)[0]
    appt = clinic.system_session().create(
        {
            "resourceType": "Appointment",
            "status": status,
            "start": f"{start}T11:00:00+00:00",
            "end": f"{start}T11:20:00+00:00",
            "participant": [
                {"actor": {"reference": f"Patient/{pid}"}, "status": "accepted"},
                {"actor": {"reference": "Practitioner/prac-dr.okafor"}, "status": "accepted"},
            ],
        }
    )
    try:
        expect = status in REAL_BOOKINGS
        for user in (doctor, *rooming):
            assert (pid in clinic.treating(user)) is expect, (user, status)
    finally:
        # leave the shared clinic as it was: the booking is withdrawn as an error
        clinic.system_session().update({**appt, "status": "entered-in-error"})
    assert all(pid not in clinic.treating(u) for u in (doctor, *rooming))


@pytest.mark.parametrize("status", ["cancelled", "entered-in-error", "finished"])
def test_only_a_real_encounter_opens_a_chart(clinic: Sandbox, status: str) -> None:
    pid = _untreated(clinic, "dr.okafor")
    enc = clinic.system_session().create(
        {
            "resourceType": "Encounter",
            "status": status,
            "class": {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "code": "AMB",
            },
            "subject": {"reference": f"Patient/{pid}"},
            "participant": [{"individual": {"reference": "Practitioner/prac-dr.okafor"}}],
            "period": {"start": "2025-12-01T09:00:00+00:00", "end": "2025-12-01T09:20:00+00:00"},
        }
    )
    try:
        assert (pid in clinic.treating("dr.okafor")) is (status == "finished")
    finally:
        clinic.system_session().update({**enc, "status": "entered-in-error"})
    assert pid not in clinic.treating("dr.okafor")


def test_a_portal_request_does_not_open_the_chart_to_staff(clinic: Sandbox) -> None:
    staff = ("dr.okafor", "ma.chen", "rn.kim")
    pid = _untreated(clinic, *staff)
    start = schedule_window(clinic.reference_date)[0]
    me = clinic.login_patient(pid)
    request = me.create(
        {
            "resourceType": "Appointment",
            "status": "proposed",
            "start": f"{start}T13:00:00+00:00",
            "end": f"{start}T13:20:00+00:00",
            "participant": [
                {"actor": {"reference": f"Patient/{pid}"}, "status": "accepted"},
                {"actor": {"reference": "Practitioner/prac-dr.okafor"}, "status": "needs-action"},
            ],
        }
    )
    try:
        for user in staff:
            assert pid not in clinic.treating(user), user
            s = clinic.login(user)
            assert s.search("Condition", patient=f"Patient/{pid}").count() == 0
    finally:
        clinic.system_session().update({**request, "status": "entered-in-error"})


def test_a_cancelled_booking_closes_the_chart_in_sessions_already_open(clinic: Sandbox) -> None:
    """Relationships follow the schedule for every open session, not only new logins: a
    booking grants access while it stands, its cancellation by the front desk takes it away."""
    staff = ("ma.chen", "rn.kim", "dr.okafor")
    pid = _untreated(clinic, *staff)
    open_sessions = {u: clinic.login(u) for u in staff}
    for s in open_sessions.values():
        assert s.search("Patient", _id=pid).count() == 0
    start = schedule_window(clinic.reference_date)[0]
    fd = clinic.login("fd.smith")
    appt = fd.create(_booking(start, "Practitioner/prac-dr.okafor", f"Patient/{pid}"))
    for user, s in open_sessions.items():
        assert s.search("Patient", _id=pid).count() == 1, user
    fd.update({**appt, "status": "cancelled"})
    for user, s in open_sessions.items():
        assert s.search("Patient", _id=pid).count() == 0, user


def _booking(day: str, practitioner: str, patient: str) -> dict[str, Any]:
    return {
        "resourceType": "Appointment",
        "status": "booked",
        "start": f"{day}T15:00:00+00:00",
        "end": f"{day}T15:20:00+00:00",
        "participant": [
            {"actor": {"reference": practitioner}, "status": "accepted"},
            {"actor": {"reference": patient}, "status": "accepted"},
        ],
    }


def test_staff_cannot_write_themselves_into_a_relationship(clinic: Sandbox) -> None:
    """Booking, charting an encounter with, or adding to a group visit a patient you do not
    treat is refused exactly as a reference to a patient that does not exist."""
    for user in ("ma.chen", "rn.kim", "dr.okafor"):
        s = clinic.login(user)
        pid = _untreated(clinic, user)
        me = f"Practitioner/{s.user.practitioner_id}"
        start = schedule_window(clinic.reference_date)[0]
        errors = []
        for patient in (f"Patient/{pid}", "Patient/no-such-patient"):
            try:
                s.create(_booking(start, me, patient))
            except SandboxError as exc:
                errors.append((type(exc).__name__, str(exc).replace(patient, "<p>")))
            else:
                errors.append(("written", patient))
        assert errors[0] == errors[1] and errors[0][0] != "written", (user, errors)
        assert pid not in clinic.treating(user)


# ---------------------------------------------------------------------------- rule 4
def test_the_write_counter_is_only_for_reviewers(clinic: Sandbox) -> None:
    """The change mark counts every write to any record: a user who cannot review the
    whole history must not be able to watch it move when a hidden record is written."""
    from ehr_sandbox.access.roles import may
    from ehr_sandbox.errors import AccessDenied

    users = [u.username for u in clinic.users]
    assert any(may(clinic.user(u).role, "review") for u in users)
    for username in users:
        s = clinic.login(username)
        if may(s.role, "review"):
            assert isinstance(s.change_mark(), int)
            continue
        with pytest.raises(AccessDenied):
            s.change_mark()
        with pytest.raises(AccessDenied):
            s.changes_since(0)


def test_the_change_feed_shows_a_reviewer_only_what_they_may_read(clinic: Sandbox) -> None:
    po = clinic.login("po.wilson")
    mark = po.change_mark()
    system = clinic.system_session()
    pid = sorted(p["id"] for p in system.search("Patient").fetch_all())[0]
    system.create(
        {
            "resourceType": "Condition",
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                        "code": "active",
                    }
                ]
            },
            "code": {"coding": [{"system": ICD10, "code": "F11.20"}]},
            "subject": {"reference": f"Patient/{pid}"},
        }
    )
    written = system.changes_since(mark)
    assert {v["resourceType"] for v in written} >= {"Condition", "Provenance"}
    seen = po.changes_since(mark)
    # every version the feed shows the privacy officer is one their role may read
    assert seen, "the Provenance of the write is the privacy officer's to see"
    for v in seen:
        assert po.can_read(v["resourceType"]), v["resourceType"]
        assert po.exists(f"{v['resourceType']}/{v['id']}")
    assert all(v["resourceType"] != "Condition" for v in seen)


# ---------------------------------------------------------------------------- rule 5
PENICILLIN = ("764146007", "Penicillin")


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(level=st.sampled_from(["V", "R"]), user=st.sampled_from(["dr.patel", "rn.kim"]))
def test_an_allergy_alert_never_names_an_allergy_the_user_may_not_see(
    clinic: Sandbox, level: str, user: str
) -> None:
    """The drug-allergy check still refuses (safety), but the refusal names the allergy
    (substance, id) only when the user may see it."""
    from ehr_sandbox.access.roles import ROLES
    from ehr_sandbox.errors import AllergyConflict
    from ehr_sandbox.records.allergy_check import RXNORM
    from synthetic.content import load_content

    sb = clinic.copy()
    system = sb.system_session()
    pid = sorted(sb.treating("dr.patel"))[0]
    start = schedule_window(sb.reference_date)[0]
    system.create(_booking(start, "Practitioner/prac-dr.patel", f"Patient/{pid}"))
    s = sb.login(user)
    assert pid in s.context.treating
    for a in system.search("AllergyIntolerance", patient=f"Patient/{pid}").fetch():
        system.mark_entered_in_error(f"AllergyIntolerance/{a['id']}", reason="test: clean slate")
    code, display = PENICILLIN
    allergy = system.create(
        {
            "resourceType": "AllergyIntolerance",
            "meta": {"security": [{"system": CONFIDENTIALITY, "code": level}]},
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                        "code": "active",
                    }
                ]
            },
            "type": "allergy",
            "category": ["medication"],
            "code": {
                "coding": [{"system": "http://snomed.info/sct", "code": code, "display": display}]
            },
            "patient": {"reference": f"Patient/{pid}"},
        }
    )
    hidden = not s.exists(f"AllergyIntolerance/{allergy['id']}")
    # V is above every staff ceiling here, R above the nurse's
    assert hidden is (
        CONFIDENTIALITY_ORDER.index(level) > CONFIDENTIALITY_ORDER.index(ROLES[s.role].ceiling)
    )
    drug = next(c for c in load_content().drug_classes if c.id == "penicillins").rxnorm[0]
    rtype = "MedicationRequest" if s.role == "physician" else "MedicationAdministration"
    write = {
        "resourceType": rtype,
        "status": "active" if rtype == "MedicationRequest" else "completed",
        "subject": {"reference": f"Patient/{pid}"},
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": drug}]},
    }
    if rtype == "MedicationRequest":
        write["intent"] = "order"
    else:
        write["effectiveDateTime"] = f"{sb.reference_date}T09:00:00+00:00"
    with pytest.raises(AllergyConflict) as info:
        s.create(write)
    told = " ".join(str(x) for x in (info.value, info.value.allergy, info.value.allergy_ref))
    assert (allergy["id"] in told) is not hidden
    assert (display in told) is not hidden
