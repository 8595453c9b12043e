"""Encounters and Appointments.

>>> import random
>>> from synthetic.context import RecordContext
>>> ctx = RecordContext("p", random.Random(0))
>>> e = encounter(ctx, start="2025-01-02T09:00:00-05:00", end="2025-01-02T09:20:00-05:00",
...               type_cc={"text": "Office visit"}, physician="Practitioner/d", assistant="Practitioner/m",
...               organization="Organization/o", location="Location/l", diagnoses=[], reason=None)
>>> e["status"], e["class"]["code"]
('finished', 'AMB')
"""

from __future__ import annotations

from typing import Any

from synthetic.builders.common import AMBULATORY, coding, shared_ref
from synthetic.context import RecordContext
from synthetic.frozen import freeze
from synthetic.labels import meta
from synthetic.systems import (
    DIAGNOSIS_ROLE,
    SANDBOX_APPOINTMENT_TYPE,
    V2_0276,
    V3_PARTICIPATION_TYPE,
)

PARTICIPATION = V3_PARTICIPATION_TYPE
APPOINTMENT_TYPE = V2_0276
# shared by many resources: frozen (see synthetic.frozen)
_PPRF = freeze([{"coding": [coding(PARTICIPATION, "PPRF", "primary performer")]}])
_ATND = freeze([{"coding": [coding(PARTICIPATION, "ATND", "attender")]}])
_BILLING = freeze({"coding": [coding(DIAGNOSIS_ROLE, "billing", "Billing")]})
_APPOINTMENT_META = meta("Appointment")  # shared by every Appointment (frozen, see labels.meta)


_SHARED: dict[tuple[Any, ...], Any] = {}
"""Participant and location entries (and lists of them) per clinician or room (practice-wide,
so bounded)."""


def _keep(key: tuple[Any, ...], value: Any) -> Any:
    if len(_SHARED) < 10_000:
        value = _SHARED[key] = freeze(value)
    return value


def _participant(type_: list[dict[str, Any]], who: str) -> dict[str, Any]:
    key = (id(type_), who)
    hit = _SHARED.get(key)
    if hit is None:
        hit = _keep(key, {"type": type_, "individual": shared_ref(who)})
    return hit


def _location(where: str) -> dict[str, Any]:
    key = ("location", where)
    hit = _SHARED.get(key)
    if hit is None:
        hit = _keep(key, {"location": shared_ref(where)})
    return hit


def _participants(physician: str, assistant: str) -> list[dict[str, Any]]:
    key = ("participants", physician, assistant)
    hit = _SHARED.get(key)
    if hit is None:
        hit = _keep(key, [_participant(_PPRF, physician), _participant(_ATND, assistant)])
    return hit


def _locations(where: str) -> list[dict[str, Any]]:
    key = ("locations", where)
    hit = _SHARED.get(key)
    if hit is None:
        hit = _keep(key, [_location(where)])
    return hit


def _actor(who: str, required: str) -> dict[str, Any]:
    key = ("actor", who, required)
    hit = _SHARED.get(key)
    if hit is None:
        hit = _keep(key, {"actor": shared_ref(who), "required": required, "status": "accepted"})
    return hit


def encounter(
    ctx: RecordContext,
    *,
    start: str,
    end: str,
    type_cc: dict[str, Any],
    physician: str,
    assistant: str,
    organization: str,
    location: str,
    diagnoses: list[str],
    reason: dict[str, Any] | None,
    appointment: str | None = None,
) -> dict[str, Any]:
    """A finished ambulatory Encounter; ``diagnoses`` are Condition references (rank order).

    >>> import random
    >>> c = RecordContext("p", random.Random(0))
    >>> e = encounter(c, start="s", end="e", type_cc={}, physician="Practitioner/d", assistant="Practitioner/m",
    ...               organization="Organization/o", location="Location/l", diagnoses=["Condition/c"], reason=None)
    >>> e["diagnosis"][0]["rank"]
    1
    """
    e: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": ctx.new_id("enc"),
        "meta": meta("Encounter", ctx.security),
        "status": "finished",
        "class": AMBULATORY,
        "type": [type_cc],
        "subject": ctx.subject,
        "participant": _participants(physician, assistant),
        "period": {"start": start, "end": end},
    }
    if appointment:
        e["appointment"] = [{"reference": appointment}]
    if reason is not None:
        e["reasonCode"] = [reason]
    if diagnoses:
        dx: list[dict[str, Any]] = []
        for ref in diagnoses:  # (a loop: a visit has a diagnosis or two)
            dx.append({"condition": {"reference": ref}, "use": _BILLING, "rank": len(dx) + 1})
        e["diagnosis"] = dx
    e["location"] = _locations(location)
    e["serviceProvider"] = shared_ref(organization)
    return e


V2_0276_CODES = frozenset({"CHECKUP", "EMERGENCY", "FOLLOWUP", "ROUTINE", "WALKIN"})


def appointment_type_cc(code: str, display: str) -> dict[str, Any]:
    """appointmentType concept: HL7 v2-0276 for its codes, the sandbox system for ours.

    >>> appointment_type_cc("WALKIN", "Walk-in")["coding"][0]["system"]
    'http://terminology.hl7.org/CodeSystem/v2-0276'
    """
    system = APPOINTMENT_TYPE if code in V2_0276_CODES else SANDBOX_APPOINTMENT_TYPE
    return {"coding": [coding(system, code, display)], "text": display}


def appointment(
    ctx: RecordContext,
    *,
    status: str,
    start: str,
    end: str,
    minutes: int,
    type_cc: dict[str, Any],
    practitioner: str,
    location: str,
    reason: str | None,
    created: str | None = None,
) -> dict[str, Any]:
    """An Appointment (booked/arrived/fulfilled/noshow/cancelled) with patient, clinician, room.

    >>> import random
    >>> from synthetic.context import RecordContext
    >>> a = appointment(RecordContext("p", random.Random(0)), status="noshow", start="s", end="e",
    ...     minutes=20, type_cc=appointment_type_cc("ROUTINE", "Routine"), practitioner="Practitioner/x",
    ...     location="Location/l", reason="cough")
    >>> a["status"], a["participant"][0]["actor"]["reference"]
    ('noshow', 'Patient/p')
    """
    pstatus = "declined" if status == "cancelled" else "accepted"
    a: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": ctx.new_id("apt"),
        "meta": _APPOINTMENT_META,
        "status": status,
        "appointmentType": type_cc,
    }
    if reason:
        a["reasonCode"] = [{"text": reason}]
    a["start"] = start
    a["end"] = end
    a["minutesDuration"] = minutes
    if created:
        a["created"] = created
    a["participant"] = [
        {"actor": ctx.subject, "required": "required", "status": pstatus},
        _actor(practitioner, "required"),
        _actor(location, "information-only"),
    ]
    return a
