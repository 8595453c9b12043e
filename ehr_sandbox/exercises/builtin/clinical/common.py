"""Scenario building blocks shared by the clinical MA exercises (and their tests).

Setups write through the sandbox's system session (setup-time writes are not graded): a patient
of a chosen age booked with the MA today, a provider's order, today's vitals. Names come from
the variant, so every student gets different patients with the same structure.

>>> from ehr_sandbox.sandbox import Sandbox
>>> sb = Sandbox.generate(patients=2, seed=3, years=1)
>>> import random
>>> p = add_patient(sb, random.Random(1), age_days=400, gender="female")
>>> sb.login(MA).read(p["ref"])["birthDate"] == p["dob"]
True
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from ehr_sandbox.clock import instant
from ehr_sandbox.exercises.builtin.common import WITHDRAWN_STATUSES, still_standing
from ehr_sandbox.workflows.care import coding, loinc_concept
from synthetic.systems import (
    MEDICATION_REQUEST_CATEGORY,
    MRN,
    OBSERVATION_CATEGORY,
    SANDBOX_TAGS,
    UCUM,
    V2_0203,
)

__all__ = [
    "DOCTOR",
    "GIVEN",
    "FAMILY",
    "MA",
    "add_patient",
    "now_text",
    "order_drug",
    "order_lab",
    "record_weight",
    "sandbox_today",
]

MA = "ma.garcia"
DOCTOR = "dr.patel"
DOCTOR_REF = "Practitioner/prac-dr.patel"
ANOTHER_PROVIDER = "Practitioner/prac-dr.nguyen"
"""A practitioner who is not the scenario patients' provider (their charts name dr.patel): the
wrong solutions that route a finding to someone else use it."""
GIVEN = {
    "female": ["Ava", "Mia", "Nora", "Lena", "Iris", "Zoe", "Ruth", "Ella", "Maya", "Cora", "Lucy", "Hana"],
    "male": ["Noah", "Liam", "Owen", "Eli", "Omar", "Ravi", "Jude", "Theo", "Luca", "Axel", "Hugo", "Sami"],
}  # fmt: skip
FAMILY = ["Alvarez", "Brooks", "Chen", "Dawson", "Ellis", "Fischer", "Grant", "Haddad", "Ibsen", "Jansen", "Kowalski", "Lindqvist", "Moreau", "Novak", "Okoro", "Petrov", "Quinn", "Rossi", "Sato", "Tanaka"]  # fmt: skip
SYNTHETIC_TAG = {
    "system": SANDBOX_TAGS,
    "code": "synthetic",
    "display": "Synthetic test data",
}


def sandbox_today(sandbox: Any) -> date:
    """The sandbox clock's date.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> sandbox_today(Sandbox.empty(reference_date="2026-01-05")).isoformat()
    '2026-01-05'
    """
    return sandbox.clock.peek().date()


def now_text(sandbox: Any) -> str:
    """The sandbox clock as FHIR instant text.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> now_text(Sandbox.empty(reference_date="2026-01-05"))[:10]
    '2026-01-05'
    """
    return instant(sandbox.clock.peek())


def add_patient(
    sandbox: Any,
    rng: random.Random,
    *,
    age_days: int,
    gender: str,
    given: str | None = None,
    family: str | None = None,
    gp: str = DOCTOR_REF,
    book: bool = True,
) -> dict[str, Any]:
    """Create a patient of ``age_days`` (booked today with the MA's clinic) and return its facts.

    Returns ``{"ref", "id", "name", "given", "family", "dob", "mrn"}``.
    """
    sys = sandbox.system_session()
    given = given or rng.choice(GIVEN[gender])
    family = family or rng.choice(FAMILY)
    dob = (sandbox_today(sandbox) - timedelta(days=age_days)).isoformat()
    mrn = f"MRN{rng.randint(10_000_000, 99_999_999)}"
    pat = sys.create(
        {
            "resourceType": "Patient",
            "meta": {"tag": [SYNTHETIC_TAG]},
            "identifier": [
                {
                    "use": "usual",
                    "type": coding(
                        V2_0203,
                        "MR",
                        "Medical record number",
                    ),
                    "system": MRN,
                    "value": mrn,
                }
            ],
            "name": [{"use": "official", "family": family, "given": [given]}],
            "gender": gender,
            "birthDate": dob,
            "generalPractitioner": [{"reference": gp}],
        }
    )
    ref = f"Patient/{pat['id']}"
    if book:
        start = sandbox.clock.peek() + timedelta(minutes=rng.randint(5, 120))
        sys.create(
            {
                "resourceType": "Appointment",
                "status": "booked",
                "start": instant(start),
                "end": instant(start + timedelta(minutes=20)),
                "participant": [
                    {"actor": {"reference": ref}, "status": "accepted"},
                    {"actor": {"reference": gp}, "status": "accepted"},
                ],
            }
        )
    return {
        "ref": ref,
        "id": pat["id"],
        "name": f"{given} {family}",
        "given": given,
        "family": family,
        "dob": dob,
        "mrn": mrn,
    }


def order_drug(
    sandbox: Any,
    patient: str,
    *,
    drug_key: str,
    dose_mg: float,
    route: str = "IM",
    reason: str = "",
    status: str = "active",
    minutes_ago: int = 10,
) -> dict[str, Any]:
    """A provider's in-office medication order (HCPCS-coded MedicationRequest)."""
    from ehr_sandbox.workflows.medication_administration import HCPCS, ROUTE, ROUTES, drug

    d = drug(drug_key)
    when = instant(sandbox.clock.peek() - timedelta(minutes=minutes_ago))
    mr: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "status": status,
        "intent": "order",
        "category": [
            coding(
                MEDICATION_REQUEST_CATEGORY,
                "outpatient",
                "Outpatient",
            )
        ],
        "medicationCodeableConcept": coding(HCPCS, d["hcpcs"], d["display"]),
        "subject": {"reference": patient},
        "authoredOn": when,
        "requester": {"reference": DOCTOR_REF},
        "dosageInstruction": [
            {
                "text": f"{dose_mg:g} mg {route} once now",
                "route": coding(ROUTE, route, ROUTES.get(route)),
                "doseAndRate": [
                    {
                        "doseQuantity": {
                            "value": dose_mg,
                            "unit": "mg",
                            "system": UCUM,
                            "code": "mg",
                        }
                    }
                ],
            }
        ],
    }
    if reason:
        mr["reasonCode"] = [{"text": reason}]
    return sandbox.system_session().create(mr)


def order_lab(sandbox: Any, patient: str, loinc: str) -> dict[str, Any]:
    """A provider's active lab order (ServiceRequest, LOINC-coded)."""
    return sandbox.system_session().create(
        {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "category": [{"text": "laboratory"}],
            "code": loinc_concept(loinc),
            "subject": {"reference": patient},
            "authoredOn": now_text(sandbox),
            "requester": {"reference": DOCTOR_REF},
        }
    )


def record_weight(sandbox: Any, patient: str, kg: float) -> dict[str, Any]:
    """Today's weight (as if measured at rooming)."""
    return sandbox.system_session().create(
        {
            "resourceType": "Observation",
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": OBSERVATION_CATEGORY,
                            "code": "vital-signs",
                        }
                    ]
                }
            ],
            "code": loinc_concept("29463-7"),
            "subject": {"reference": patient},
            "effectiveDateTime": instant(sandbox.clock.peek() - timedelta(minutes=5)),
            "valueQuantity": {
                "value": kg,
                "unit": "kg",
                "system": UCUM,
                "code": "kg",
            },
        }
    )


# ----------------------------------------------------------------------------- grading helpers
def written(
    ctx: Any, rtype: str, patient_id: str | None = None, operation: str | None = None
) -> list[dict[str, Any]]:
    """Versions of ``rtype`` written since setup (history, oldest first), optionally of one
    patient and by one workflow operation (prefix such as ``"rooms."``), as far as the record
    bears the operation out (:func:`ehr_sandbox.exercises.evidence.done_by`; a typed-in tag
    without the operation's effect does not count).

    Examples
    --------
    >>> written(type("Ctx", (), {"versions_since_setup": lambda self: []})(), "Observation")
    []
    """
    from ehr_sandbox.access import patient_of
    from ehr_sandbox.exercises.evidence import done_by

    out = []
    for v in ctx.versions_since_setup():
        if v.get("resourceType") != rtype:
            continue
        if patient_id is not None and patient_of(v) != patient_id:
            continue
        if operation is not None and not (done_by(ctx, v) or "").startswith(operation):
            continue
        out.append(v)
    return out


def code_of(resource: dict[str, Any], key: str = "code") -> str | None:
    """The first coding's code of ``resource[key]``; a code filed under the wrong code system
    (:func:`~ehr_sandbox.exercises.grading.misfiled`) is not that code.

    Examples
    --------
    >>> code_of({"code": {"coding": [{"code": "8867-4"}]}})
    '8867-4'
    >>> code_of({"code": {"coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "314076"}]}}) is None
    True
    """
    from ehr_sandbox.exercises.grading import misfiled

    codings = (resource.get(key) or {}).get("coding") or [{}]
    return None if misfiled(codings[0]) else codings[0].get("code")


def the_patients_provider(ctx: Any, patient_id: str, ref: str | None) -> bool:
    """True when ``ref`` is the patient's own provider (a ``generalPractitioner`` of the chart):
    an abnormal value or a safety concern routed to any other practitioner has not reached the
    one who sees the patient.

    Examples
    --------
    >>> chart = {"generalPractitioner": [{"reference": "Practitioner/prac-dr.patel"}]}
    >>> ctx = type("Ctx", (), {"read": lambda self, ref: chart})()
    >>> the_patients_provider(ctx, "p1", "Practitioner/prac-dr.patel")
    True
    >>> the_patients_provider(ctx, "p1", "Practitioner/prac-dr.nguyen")
    False
    """
    chart = ctx.read(f"Patient/{patient_id}") or {}
    own = {
        str(gp.get("reference", ""))
        for gp in chart.get("generalPractitioner", [])
        if str(gp.get("reference", "")).startswith("Practitioner/")
    }
    return bool(ref) and ref in own


def message_text(message: dict[str, Any]) -> str:
    """What a Task (its description) or a Communication (its payload text) says.

    Examples
    --------
    >>> message_text({"resourceType": "Task", "description": "BP 182/110"})
    'BP 182/110'
    >>> message_text({"resourceType": "Communication", "payload": [{"contentString": "K 6.8"}]})
    'K 6.8'
    """
    if message.get("resourceType") == "Task":
        return str(message.get("description", ""))
    return " ".join(str(p.get("contentString", "")) for p in message.get("payload", []))


def message_recipients(message: dict[str, Any]) -> list[str]:
    """Whom a Task (its owner) or a Communication (its recipients) reaches.

    Examples
    --------
    >>> message_recipients({"resourceType": "Task", "owner": {"reference": "Practitioner/a"}})
    ['Practitioner/a']
    >>> message_recipients({"resourceType": "Communication", "recipient": [{"reference": "Practitioner/b"}]})
    ['Practitioner/b']
    """
    if message.get("resourceType") == "Task":
        return [str((message.get("owner") or {}).get("reference", ""))]
    return [str(r.get("reference", "")) for r in message.get("recipient", [])]


WITHDRAWN = WITHDRAWN_STATUSES | {"draft", "rejected", "failed", "not-done", "stopped"}
"""Statuses of a Task, Communication or request that no longer asks anyone for anything: any
record taken back (:data:`~ehr_sandbox.exercises.builtin.common.WITHDRAWN_STATUSES`), or never
sent, refused, failed or stopped: a routing in one of them does not stand."""

TASK_OPEN = frozenset({"requested", "received", "accepted", "ready", "in-progress"})
"""Statuses of a routed Task still waiting for its owner: one the sender has put on hold or
marked completed has been taken off the provider's list without the provider acting on it, and
a ``draft`` was never sent (not yet ready to be acted on)."""


def standing(ctx: Any, messages: list[dict[str, Any]], patient_id: str) -> list[dict[str, Any]]:
    """The current version (at hand-in) of each message among ``messages`` (versions of Tasks or
    Communications, oldest first) that still stands: not deleted, not in a :data:`WITHDRAWN`
    status (a Task: still open for its owner, :data:`TASK_OPEN`), and still on
    ``patient_id``. A finding routed and then cancelled, closed, entered in error, rejected or
    moved to another chart has reached no one; an earlier version of it does not count. The
    shared reader :func:`~ehr_sandbox.exercises.builtin.common.still_standing` with this
    section's statuses.

    Examples
    --------
    >>> now = {"Task/t1": {"resourceType": "Task", "id": "t1", "status": "cancelled",
    ...                    "for": {"reference": "Patient/p1"}},
    ...        "Task/t2": {"resourceType": "Task", "id": "t2", "status": "requested",
    ...                    "for": {"reference": "Patient/p1"}}}
    >>> ctx = type("Ctx", (), {"read": lambda self, ref: now.get(ref)})()
    >>> sent = [{**now["Task/t1"], "status": "requested"}, now["Task/t2"], now["Task/t2"]]
    >>> [m["id"] for m in standing(ctx, sent, "p1")]
    ['t2']
    >>> standing(ctx, sent, "p2")
    []
    """
    return still_standing(
        ctx,
        messages,
        current=True,
        withdrawn=WITHDRAWN,
        open_tasks=TASK_OPEN,
        patient_id=patient_id,
    )


def routed_saying(
    ctx: Any,
    patient_id: str,
    messages: list[dict[str, Any]],
    required: dict[str, list[str]],
    forbidden: dict[str, list[str]],
    what: str,
    *,
    advice: str = "the message says what was found and that it is abnormal: a message that "
    "reassures, or only points to the chart, asks the provider for nothing",
) -> Any:
    """Grade the messages (Tasks or Communications already linked to the finding) that route a
    finding, each as it stands at hand-in (:func:`standing`: a message since cancelled,
    entered in error, rejected or moved off the chart routes nothing): the first that reaches the patient's own provider (:func:`the_patients_provider`)
    and says the finding (``required``, nothing ``forbidden``: :func:`rubric.check_text`) gives
    a passing Check; else a failing Check saying why the nearest does not count (it went to
    someone else; it does not say the finding, with ``advice``); None when there is none.

    A routed finding is graded on what it says as well as on whom it reaches: a message to the
    right provider that says 'see chart', or that the result is normal, asks for nothing.

    Examples
    --------
    >>> chart = {"generalPractitioner": [{"reference": "Practitioner/prac-dr.patel"}]}
    >>> task = {"resourceType": "Task", "id": "t1", "status": "requested",
    ...         "for": {"reference": "Patient/p1"},
    ...         "owner": {"reference": "Practitioner/prac-dr.patel"},
    ...         "description": "Positive rapid strep A for the provider's review"}
    >>> now = {"Patient/p1": chart, "Task/t1": task}
    >>> ctx = type("Ctx", (), {"read": lambda self, ref: now.get(ref)})()
    >>> routed_saying(ctx, "p1", [task], {"that it is positive": ["positive"]}, {}, "the task").passed
    True
    >>> now["Task/t1"] = {**task, "status": "cancelled"}
    >>> routed_saying(ctx, "p1", [task], {"that it is positive": ["positive"]}, {}, "the task").found
    'the task no longer stands (cancelled, closed, entered in error, rejected or moved)'
    >>> now["Task/t1"] = {**task, "description": "FYI: result in the chart, please see"}
    >>> routed_saying(ctx, "p1", [task], {"that it is positive": ["positive"]}, {}, "the task").found
    'the task does not say that it is positive'
    >>> routed_saying(ctx, "p1", [], {"that it is positive": ["positive"]}, {}, "the task") is None
    True
    """
    from ehr_sandbox.exercises import rubric
    from ehr_sandbox.exercises.model import Check

    current = standing(ctx, messages, patient_id)
    nearest = None
    if messages and not current:
        nearest = Check(
            False,
            f"{what} no longer stands (cancelled, closed, entered in error, rejected or moved)",
            "a routed message that is still open at hand-in",
            "leave the routed finding open for the provider: a cancelled or withdrawn message "
            "reaches no one",
        )
    for m in current:
        said = rubric.check_text(message_text(m), required, forbidden=forbidden, what=what)
        if not any(the_patients_provider(ctx, patient_id, r) for r in message_recipients(m)):
            if said.passed:
                nearest = Check(
                    False,
                    f"{what} went to someone other than the patient's provider",
                    said.expected,
                    "route the finding to the provider who sees this patient (the chart's "
                    "primary care provider), not to another practitioner",
                )
            continue
        if said.passed:
            return said
        nearest = nearest or Check(False, said.found, said.expected, advice)
    return nearest


def withdraw_messages(att: Any, rtype: str, status: str, patient: str) -> list[str]:
    """Set every ``rtype`` (Task or Communication) on ``patient`` that is not already withdrawn
    to ``status`` (``cancelled``, ``entered-in-error``, ``rejected``...) through the student's
    session: the undo of a routed finding a wrong solution does after routing it. Returns the
    references changed.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> sb = Sandbox.generate(patients=1, seed=3, years=1)
    >>> s = sb.login(MA)
    >>> pref = "Patient/" + s.search("Patient").first()["id"]
    >>> from ehr_sandbox.workflows.care import routed_task
    >>> t = s.create(routed_task(s, pref, DOCTOR_REF, "BP 182/110, above range"))
    >>> withdraw_messages(att=type("A", (), {"session": s})(), rtype="Task",
    ...                   status="cancelled", patient=pref) == [f"Task/{t['id']}"]
    True
    >>> s.read("Task", t["id"])["status"]
    'cancelled'
    """
    s = att.session
    changed = []
    for m in s.search(rtype, patient=patient).fetch():
        if m.get("status") in WITHDRAWN:
            continue
        s.update({**m, "status": status})
        changed.append(f"{rtype}/{m['id']}")
    return sorted(changed)


def administered_safely(ctx: Any, imm: dict[str, Any], cvx: str) -> bool:
    """True when an Immunization of ``cvx`` was given by a route the vaccine is licensed for,
    at a site that fits the route and the patient's age today (the scenario's ``patient_ref``),
    from a lot whose recorded expiry has not passed: what ``immunizations.give`` refuses
    otherwise, checked on a dose however it was written.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> chart = {"birthDate": "1990-01-01"}
    >>> ctx = type("Ctx", (), {"facts": {"patient_ref": "Patient/p"}, "read": lambda self, r: chart,
    ...                        "now": datetime(2026, 1, 5, tzinfo=timezone.utc)})()
    >>> dose = {"route": {"coding": [{"code": "IM"}]}, "site": {"coding": [{"code": "LD"}]},
    ...         "expirationDate": "2027-01-31"}
    >>> administered_safely(ctx, dose, "115")
    True
    >>> administered_safely(ctx, {**dose, "expirationDate": "2025-12-31"}, "115")
    False
    >>> administered_safely(ctx, {**dose, "route": {"coding": [{"code": "SC"}]}}, "115")
    False
    """
    from ehr_sandbox.workflows import immunizations
    from ehr_sandbox.workflows.care import age_months
    from ehr_sandbox.workflows.medication_administration import allowed_sites

    today = ctx.now.date()
    route = code_of(imm, "route")
    months = age_months(ctx.read(ctx.facts["patient_ref"]) or {}, today)
    expiry = str(imm.get("expirationDate") or "")
    return (
        route in immunizations.vaccine(cvx)["routes"]
        and code_of(imm, "site") in allowed_sites(str(route), months)
        and len(expiry) >= 10
        and expiry[:10] >= today.isoformat()
    )


def tamper(att: Any, ref: str) -> None:
    """The answer-key wrong solution: edit a record the expected answer depends on."""
    s = att.session
    res = s.read(ref)
    res.setdefault("note", []).append({"text": "updated to match what I charted"})
    if res["resourceType"] == "Location":
        res.pop("note")
        res["description"] = "exam room (edited)"
    s.update(res)


def ident(att: Any, key: str = "patient") -> str:
    """Identify the scenario's patient ``key`` with name and DOB in the attempt's session."""
    from ehr_sandbox.workflows.care import identify

    f = att.facts
    return identify(att.session, f[f"{key}_ref"], name=f[f"{key}_name"], birth_date=f[f"{key}_dob"])


def person_facts(prefix: str, p: dict[str, Any]) -> dict[str, Any]:
    """Facts for a patient: ``<prefix>_ref``, ``_id``, ``_name``, ``_dob``, ``_mrn``.

    Examples
    --------
    >>> sorted(person_facts("p", {"ref": "Patient/1", "id": "1", "name": "A B", "dob": "2000-01-01", "mrn": "M"}))
    ['p_dob', 'p_id', 'p_mrn', 'p_name', 'p_ref']
    """
    return {f"{prefix}_{k}": p[k] for k in ("ref", "id", "name", "dob", "mrn")}


def patient_facts(p: dict[str, Any]) -> dict[str, Any]:
    """The facts every single-patient clinical exercise gives: ``patient_ref``, ``patient_id``,
    ``name``, ``dob``, ``mrn``.

    Examples
    --------
    >>> patient_facts({"ref": "Patient/1", "id": "1", "name": "A B", "dob": "2000-01-01", "mrn": "M"})["patient_ref"]
    'Patient/1'
    """
    return {
        "patient_ref": p["ref"],
        "patient_id": p["id"],
        "name": p["name"],
        "dob": p["dob"],
        "mrn": p["mrn"],
    }


def identify_patient(att: Any) -> str:
    """Identify the exercise's patient with two identifiers (name and date of birth), as a
    reference solution does before any care; returns the patient reference."""
    from ehr_sandbox.workflows.care import identify

    f = att.facts
    return identify(att.session, f["patient_ref"], name=f["name"], birth_date=f["dob"])


IDENTIFIED = "patient identified first"
"""Name of the criterion every clinical exercise with hands-on care shares."""


def _identified_first(ctx: Any) -> Any:
    from ehr_sandbox.exercises.model import Check

    expected = (
        "the patient identified with two identifiers (care.identify) before the first entry "
        "on the chart"
    )
    if ctx.identified_before(str(ctx.value("patient_id"))):
        return Check(True, "identified before care", expected)
    return Check(
        False,
        "no matching two-identifier check in the audit trail before the first entry on the chart",
        expected,
        "identify the patient with two identifiers before any care",
    )


def identified_first() -> Any:
    """The criterion: the audit trail shows the scenario's patient (``patient_id`` in the answer
    or the facts) identified with two matching identifiers before the student's first write
    about them (:meth:`GradingContext.identified_before`).

    Examples
    --------
    >>> identified_first().name
    'patient identified first'
    """
    from ehr_sandbox.exercises.model import Criterion

    return Criterion(
        IDENTIFIED,
        1,
        _identified_first,
        "Two identifiers before any care; a mismatch stops care "
        "(The Joint Commission NPSG.01.01.01).",
    )


def skipped_identification(care_by_hand: Any) -> Any:
    """The wrong solution "skipped patient identification": ``care_by_hand(att)`` charts the
    care without any two-identifier check (by hand: the workflows refuse an unidentified
    patient), and must fail :func:`identified_first`.

    Examples
    --------
    >>> skipped_identification(lambda att: None).fails
    'patient identified first'
    """
    from ehr_sandbox.exercises.model import Solution

    return Solution(
        care_by_hand,
        fails=IDENTIFIED,
        message="identify the patient with two identifiers",
        description="skipped patient identification: the care charted by hand, nobody identified",
    )


__all__ += [
    "IDENTIFIED",
    "identified_first",
    "skipped_identification",
    "code_of",
    "ident",
    "identify_patient",
    "patient_facts",
    "person_facts",
    "tamper",
    "ANOTHER_PROVIDER",
    "administered_safely",
    "message_recipients",
    "message_text",
    "routed_saying",
    "standing",
    "TASK_OPEN",
    "WITHDRAWN",
    "withdraw_messages",
    "the_patients_provider",
    "written",
]
