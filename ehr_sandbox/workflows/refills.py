"""Prescription refill requests: the delegated protocol, routing to the provider, authorization.

The MA receives a pharmacy's refill request and runs :func:`review_request`: it records the
request (a ``Communication`` from the pharmacy), checks the protocol of ``data/refills.toml`` —
controlled substances are never refilled by protocol and Schedule II never refilled at all
(21 CFR 1306.12); a visit within the last year; the monitoring labs within their interval
(metformin -> A1c and eGFR, statin -> lipids, warfarin -> INR, ACE-I/ARB -> K and creatinine,
levothyroxine -> TSH); no more than 90 days — and always routes a ``Task`` to the provider with
the outcome (``businessStatus``): the MA never authorizes. The provider then calls
:func:`authorize` (a new ``MedicationRequest`` with ``priorPrescription`` = the old one; refused
for Schedule II, and refused when the protocol was not met unless the provider gives a reason)
or :func:`deny`.

>>> schedule_of("1049683"), schedule_of("314076")
('II', None)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ehr_sandbox.workflows.base import Rule, write
from ehr_sandbox.workflows.care import (
    demo_session,
    display_name,
    identify,
    mrn_of,
    now_text,
    provider_of,
    read_patient,
    refuse,
    require_identified,
    routed_task,
    today,
    user_ref,
    write_entries,
)
from ehr_sandbox.workflows.content import table
from synthetic.systems import LOINC, RXNORM, UCUM

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

__all__ = [
    "MET",
    "NOT_MET",
    "CONTROLLED",
    "RULES",
    "RefillReview",
    "authorize",
    "demo_session",
    "deny",
    "display_name",
    "identify",
    "mrn_of",
    "review_request",
    "schedule_of",
]

MET = "protocol met: approve by protocol"
NOT_MET = "protocol not met"
CONTROLLED = "controlled substance: provider must prescribe"
NOT_NEEDED = "refills remain: no new authorization needed"
RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule("refills.request", "a refill request names an existing prescription of this patient and the pharmacy", "clinic refill protocol"),
        Rule("refills.schedule-ii", "a Schedule II prescription is never refilled; the prescriber issues a new prescription", "21 CFR 1306.12"),
        Rule("refills.provider-only", "only the provider authorizes or denies a refill", "MAERB scope of practice; state medical practice acts"),
        Rule("refills.protocol", "a refill outside the protocol needs the provider's documented reason", "clinic refill protocol (data/refills.toml)"),
    )
}  # fmt: skip


def schedule_of(rxnorm: str) -> str | None:
    """DEA schedule of an RxNorm drug from the shipped code set (``None`` if not controlled).

    Examples
    --------
    >>> schedule_of("197591")
    'IV'
    """
    from synthetic.content import load_content

    attrs = load_content().codes["rxnorm"].attributes.get(rxnorm, {})
    return attrs.get("schedule") or None


def _rxnorm(mr: dict[str, Any]) -> str | None:
    for c in (mr.get("medicationCodeableConcept") or {}).get("coding", []):
        if c.get("system") == RXNORM:
            return c.get("code")
    return None


@dataclass
class RefillReview:
    """The outcome of a protocol review: the routed Task, the recorded pharmacy request, why.

    Parameters
    ----------
    task : dict
        The Task routed to the provider (or the nurse).
    request : dict
        The pharmacy's refill request as recorded.
    outcome : str
        The protocol's verdict (:data:`MET`, :data:`NOT_MET`, :data:`CONTROLLED` or
        :data:`NOT_NEEDED`).
    reasons : list of str
        Why (one line per protocol rule that applied).

    Examples
    --------
    >>> r = RefillReview({"resourceType": "Task"}, {"resourceType": "MedicationRequest"}, NOT_MET,
    ...                  ["no visit in the last 12 months"])
    >>> r.outcome, len(r.reasons)
    ('protocol not met', 1)
    """

    task: dict[str, Any]
    request: dict[str, Any]
    outcome: str
    reasons: list[str] = field(default_factory=list)


def _protocol(session: Session, ref: str, rxnorm: str, days: int) -> list[str]:
    spec = table("refills")
    on = today(session)
    reasons = []
    rule = next((r for r in spec["rule"] if rxnorm in r["rxnorm"]), None)
    if rule is None:
        return ["drug not covered by the refill protocol"]
    if days > spec["protocol"]["max_days_supply"]:
        reasons.append(
            f"{days} days requested (protocol allows {spec['protocol']['max_days_supply']})"
        )
    since = (on - timedelta(days=spec["protocol"]["visit_within_days"])).isoformat()
    visits = session.search("Encounter", subject=ref, status="finished", date=f"ge{since}").fetch()
    if not visits:
        reasons.append(f"no visit in the last {spec['protocol']['visit_within_days']} days")
    for lab in rule["labs"]:
        since = (on - timedelta(days=lab["within_days"])).isoformat()
        found = False
        for code in lab["loinc"]:
            for o in session.search(
                "Observation", subject=ref, code=f"{LOINC}|{code}", date=f"ge{since}"
            ).fetch():
                if o.get("status") in ("final", "amended", "corrected"):
                    found = True
        if not found:
            reasons.append(f"{lab['display']} overdue (needed within {lab['within_days']} days)")
    return reasons


def review_request(
    session: Session,
    patient: str,
    prescription: str,
    *,
    pharmacy: str,
    refills_remaining: int = 0,
    days_supply: int = 90,
    provider: str | None = None,
) -> RefillReview:
    """Record a pharmacy's refill request, run the protocol and route the outcome to the provider.

    Parameters
    ----------
    patient : str
        ``Patient/<id>``, identified with two identifiers from the request.
    prescription : str
        ``MedicationRequest/<id>`` the pharmacy asks to renew.
    pharmacy : str
        The requesting pharmacy (name, phone or NCPDP id).
    refills_remaining : int
        What the pharmacy reports left on the prescription.
    days_supply : int
        Days requested.

    Returns
    -------
    RefillReview
        ``outcome`` is :data:`MET`, :data:`NOT_MET` (with ``reasons``), :data:`CONTROLLED` or
        "refills remain"; the Task carries it in ``businessStatus`` and focuses the prescription.

    Examples
    --------
    >>> s = demo_session()
    >>> p = s.search("Patient").first()
    >>> ref = identify(s, p["id"], birth_date=p["birthDate"], mrn=mrn_of(p))
    >>> review_request(s, ref, "MedicationRequest/none", pharmacy="Main St Pharmacy")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.NotFound: ...
    """
    ref = require_identified(session, patient, "Task")
    if not pharmacy:
        raise refuse(RULES["refills.request"], "Communication", "sender", "the pharmacy", pharmacy)
    mr = session.read(prescription)
    if (
        mr.get("resourceType") != "MedicationRequest"
        or (mr.get("subject") or {}).get("reference") != ref
    ):
        raise refuse(
            RULES["refills.request"],
            "Task",
            "focus",
            "a prescription of this patient",
            prescription,
        )
    chart = read_patient(session, ref)
    rx = _rxnorm(mr) or ""
    drug = (mr.get("medicationCodeableConcept") or {}).get("text") or rx
    schedule = schedule_of(rx)
    reasons: list[str] = []
    if refills_remaining > 0:
        outcome = NOT_NEEDED
        reasons = [f"{refills_remaining} refill(s) remain at the pharmacy"]
    elif schedule == "II":
        outcome = CONTROLLED
        reasons = ["Schedule II: no refills (21 CFR 1306.12); a new prescription is needed"]
    elif schedule:
        outcome = CONTROLLED
        reasons = [f"Schedule {schedule}: controlled substances are not refilled by protocol"]
    else:
        reasons = _protocol(session, ref, rx, days_supply)
        outcome = NOT_MET if reasons else MET
    when = now_text(session)
    request = {
        "resourceType": "Communication",
        "status": "completed",
        "category": [{"text": "pharmacy refill request"}],
        "subject": {"reference": ref},
        "about": [{"reference": prescription}],
        "received": when,
        "sender": {"display": pharmacy},
        "recipient": [user_ref(session)],
        "payload": [
            {
                "contentString": f"Refill request from {pharmacy} for {drug}, {days_supply} days; "
                f"{refills_remaining} refill(s) remaining"
            }
        ],
    }
    text = f"Refill request: {drug} for {display_name(chart)} ({days_supply} days). {outcome}"
    if reasons:
        text += ": " + "; ".join(reasons)
    task = routed_task(
        session,
        ref,
        provider_of(chart, provider),
        text,
        focus=prescription,
        priority="routine",
        code="approve",
        business_status=outcome,
    )
    task["input"] = [
        {
            "type": {"text": "pharmacy request"},
            "valueReference": {"reference": "urn:uuid:00000000-0000-4000-8000-00000000e001"},
        },
        {"type": {"text": "days supply"}, "valueInteger": days_supply},
    ]
    if reasons:
        task["note"] = [{"text": r} for r in reasons]
    saved = write_entries(
        session,
        [{"fullUrl": "urn:uuid:00000000-0000-4000-8000-00000000e001", "resource": request}, task],
        operation="refills.review",
    )
    return RefillReview(task=saved[1], request=saved[0], outcome=outcome, reasons=reasons)


def authorize(session: Session, task: str, *, override_reason: str | None = None) -> dict[str, Any]:
    """The provider authorizes a reviewed refill: a new prescription linked to the old one.

    Raises
    ------
    RuleRefused
        ``refills.provider-only`` (not a physician), ``refills.schedule-ii``,
        ``refills.protocol`` (protocol not met and no reason given).

    Examples
    --------
    >>> authorize(demo_session(), "Task/x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Task/x: status: expected a decision by the provider ...
    """
    if session.role != "physician":
        raise refuse(
            RULES["refills.provider-only"],
            task,
            "status",
            "a decision by the provider",
            session.role,
        )
    t = session.read(task)
    old = session.read(t["focus"]["reference"])
    rx = _rxnorm(old) or ""
    if schedule_of(rx) == "II":
        raise refuse(
            RULES["refills.schedule-ii"],
            task,
            "focus",
            "a non-Schedule II prescription (write a new prescription instead)",
            rx,
        )
    outcome = (t.get("businessStatus") or {}).get("text", "")
    if not outcome.startswith(MET) and not (override_reason and len(override_reason.split()) >= 3):
        raise refuse(
            RULES["refills.protocol"],
            task,
            "businessStatus",
            "a met protocol, or the provider's reason to refill anyway",
            outcome,
        )
    days = next((i.get("valueInteger") for i in t.get("input", []) if "valueInteger" in i), 90)
    new = copy.deepcopy(old)
    for k in ("id", "meta", "encounter", "text"):
        new.pop(k, None)
    new["status"] = "active"
    new["authoredOn"] = now_text(session)
    new["requester"] = user_ref(session)
    new["priorPrescription"] = {"reference": f"MedicationRequest/{old['id']}"}
    disp = new.setdefault("dispenseRequest", {})
    disp["expectedSupplyDuration"] = {
        "value": days,
        "unit": "days",
        "system": UCUM,
        "code": "d",
    }
    if override_reason:
        new["note"] = [{"text": f"Refilled outside protocol: {override_reason}"}]
    saved = write(session, new, operation="refills.authorize", reason=override_reason)
    t["status"] = "completed"
    t["output"] = [
        {
            "type": {"text": "new prescription"},
            "valueReference": {"reference": f"MedicationRequest/{saved['id']}"},
        }
    ]
    write(session, t, operation="refills.authorize")
    return saved


def deny(session: Session, task: str, reason: str) -> dict[str, Any]:
    """The provider denies a refill request with the reason (the Task is rejected).

    Examples
    --------
    >>> deny(demo_session(), "Task/x", "needs a visit first")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Task/x: status: expected a decision by the provider ...
    """
    if session.role != "physician":
        raise refuse(
            RULES["refills.provider-only"],
            task,
            "status",
            "a decision by the provider",
            session.role,
        )
    t = session.read(task)
    t["status"] = "rejected"
    t["statusReason"] = {"text": reason}
    return write(session, t, operation="refills.deny", reason=reason)
