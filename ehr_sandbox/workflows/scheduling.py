"""Scheduling: provider templates, slots, booking, rescheduling, no-shows, check-in/out, waitlist, recalls.

A provider's day is built from a template (``templates.toml``, shared with the generator):
stream, wave, modified wave or cluster, plus blocked time (lunch, meetings) and open-access (same-day) slots. An
Appointment always points at the Slot(s) it fills; booking marks them busy in the same
transaction. Every refusal names its rule.

>>> from ehr_sandbox.sandbox import Sandbox
>>> sb = Sandbox.generate(patients=3, seed=1, years=1)
>>> fd = sb.login("fd.smith")
>>> slots = build_day(fd, "Practitioner/prac-dr.patel", "2026-01-07", "modified-wave")
>>> sorted({s["status"] for s in slots})
['busy-unavailable', 'free']
>>> pid = fd.search("Patient").first()["id"]
>>> lunch = next(s for s in slots if s.get("comment") == "Lunch")
>>> book(fd, f"Patient/{pid}", f"Slot/{lunch['id']}", appointment_type="ROUTINE", reason="cough")
Traceback (most recent call last):
...
ehr_sandbox.workflows.base.RuleRefused: Slot/...: status: expected a free slot (found 'busy-unavailable'). Refused by rule scheduling.blocked-time: ...
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from ehr_sandbox.errors import NotFound, ValidationError
from ehr_sandbox.workflows.base import Rule, RuleRefused, now, ref_of, urn, write, write_all
from ehr_sandbox.workflows.content import table
from synthetic.systems import (
    APPOINTMENT_CANCELLATION_REASON,
    SANDBOX_PREP_SERVICE,
    SANDBOX_SLOT_CATEGORY,
    V2_0276,
)

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

__all__ = [
    "RULES",
    "SLOT_CATEGORY",
    "add_to_waitlist",
    "book",
    "build_day",
    "cancel",
    "check_in",
    "check_out",
    "double_book",
    "fill_from_waitlist",
    "free_slots",
    "no_show",
    "recall",
    "reschedule",
]

SLOT_CATEGORY = SANDBOX_SLOT_CATEGORY
APPT_TYPE = V2_0276
CANCEL_REASON = APPOINTMENT_CANCELLATION_REASON
SERVICE_SYSTEM = SANDBOX_PREP_SERVICE
UTC_OFFSET = "-05:00"
"""The practice's fixed UTC offset (synthetic/content/data/practice.toml)."""

_SRC = table("templates")["source"]
RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule(
            "scheduling.blocked-time",
            "no appointment goes into blocked time (lunch, meetings)",
            _SRC,
        ),
        Rule(
            "scheduling.slot-taken",
            "a slot holds one appointment unless double booking is allowed",
            _SRC,
        ),
        Rule("scheduling.cluster", "a clustered slot is reserved for its appointment type", _SRC),
        Rule("scheduling.open-access", "open-access slots are booked only on the day itself", _SRC),
        Rule(
            "scheduling.past",
            "an appointment cannot be booked into a slot that has already started",
            _SRC,
        ),
        Rule(
            "scheduling.patient-conflict",
            "a patient cannot have two appointments at the same time",
            _SRC,
        ),
        Rule(
            "scheduling.double-booking",
            "double booking only for brief visit types, one extra patient, with a reason",
            _SRC,
        ),
        Rule(
            "scheduling.prep",
            "a service that needs preparation is booked with its instructions and in its time window",
            table("prep")["source"],
        ),
        Rule(
            "scheduling.no-show",
            "a no-show is recorded only after the start time, for a patient who did not arrive",
            _SRC,
        ),
        Rule(
            "scheduling.check-in",
            "check in on the appointment's day, a booked appointment only",
            _SRC,
        ),
        Rule("scheduling.check-out", "check out only a patient who was checked in", _SRC),
        Rule(
            "scheduling.reason", "cancelling, rescheduling and double booking need a reason", _SRC
        ),
    )
}


def _local(day: date, hhmm: str) -> datetime:
    h, m = (int(x) for x in hhmm.split(":"))
    return datetime.fromisoformat(f"{day.isoformat()}T{h:02d}:{m:02d}:00{UTC_OFFSET}")


def _text(dt: datetime) -> str:
    return dt.isoformat()


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _template(template_id: str) -> dict[str, Any]:
    for t in table("templates")["template"]:
        if t["id"] == template_id:
            return t
    known = ", ".join(t["id"] for t in table("templates")["template"])
    raise ValidationError("template", "id", f"one of {known}", found=template_id)


def _category(code: str, display: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": SLOT_CATEGORY, "code": code, "display": display}]}]


def _appt_type(code: str) -> dict[str, Any]:
    return {"coding": [{"system": APPT_TYPE, "code": code}], "text": code}


def build_day(
    session: Session, practitioner: str, day: str | date, template_id: str
) -> list[dict[str, Any]]:
    """Build one provider day from a template: a Schedule and its Slots, in one transaction.

    Blocked time (lunch, the weekly staff meeting) becomes ``busy-unavailable`` slots with the
    block's label as comment; open-access times become same-day slots; a cluster template
    reserves its slots for one appointment type.

    Parameters
    ----------
    session : Session
        Front desk (or any role that may write scheduling resources).
    practitioner : str
        ``Practitioner/<id>`` whose day it is.
    day : str or date
        The date (ISO ``YYYY-MM-DD``).
    template_id : str
        A template id from ``data/templates.toml`` (``stream-20``, ``wave-hourly``,
        ``modified-wave``, ``cluster-well-child``).

    Returns
    -------
    list of dict
        The Slots created, in time order.

    Raises
    ------
    ValidationError
        Unknown template or practitioner.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> fd = Sandbox.generate(patients=1, seed=1, years=1).login("fd.smith")
    >>> slots = build_day(fd, "Practitioner/prac-dr.patel", "2026-01-07", "wave-hourly")
    >>> sum(1 for s in slots if s["start"].endswith("T09:00:00-05:00"))
    3
    """
    tpl = _template(template_id)
    d = date.fromisoformat(day) if isinstance(day, str) else day
    session.read(practitioner)
    weekday = d.strftime("%a").lower()
    blocks = [b for b in table("templates")["block"] if b.get("weekday") in (None, weekday)]
    open_access = table("templates")["open_access"]
    starts: list[tuple[datetime, datetime, str]] = []  # (start, end, kind)
    step = timedelta(minutes=int(tpl["slot_minutes"]))
    t = _local(d, tpl["start"])
    end_of_day = _local(d, tpl["end"])
    while t < end_of_day:
        if tpl["method"] == "modified-wave":
            length = timedelta(minutes=int(tpl["appointment_minutes"]))
            for offset, count in tpl["pattern"]:
                s = t + timedelta(minutes=int(offset))
                starts.extend((s, s + length, "") for _ in range(int(count)))
        else:
            starts.extend((t, t + step, "") for _ in range(int(tpl.get("per_slot", 1))))
        t += step
    schedule = {
        "resourceType": "Schedule",
        "active": True,
        "actor": [{"reference": practitioner}, {"reference": "Location/loc-main"}],
        "planningHorizon": {
            "start": _text(_local(d, tpl["start"])),
            "end": _text(end_of_day),
        },
        "comment": f"Template {tpl['id']} ({tpl['method']}): {tpl['description']}",
    }
    sched_url = urn(session, "Schedule", practitioner, d.isoformat(), template_id)
    entries: list[dict[str, Any]] = [{"fullUrl": sched_url, "resource": schedule}]
    open_times = {_local(d, hhmm) for hhmm in open_access["times"]}
    for s, e, _ in sorted(starts, key=lambda x: x[0]):
        slot: dict[str, Any] = {
            "resourceType": "Slot",
            "schedule": {"reference": sched_url},
            "status": "free",
            "start": _text(s),
            "end": _text(e),
        }
        block = next((b for b in blocks if _local(d, b["start"]) <= s < _local(d, b["end"])), None)
        if block is not None:
            slot["status"] = "busy-unavailable"
            slot["comment"] = block["label"]
            slot["serviceCategory"] = _category("blocked", block["label"])
        elif s in open_times:
            slot["comment"] = open_access["label"]
            slot["serviceCategory"] = _category("open-access", open_access["label"])
        else:
            for cl in tpl.get("clusters", []):
                if _local(d, cl["start"]) <= s < _local(d, cl["end"]):
                    slot["appointmentType"] = _appt_type(cl["appointment_type"])
                    slot["comment"] = cl["label"]
                    slot["serviceCategory"] = _category("cluster", cl["label"])
        entries.append(slot)
    written = write_all(session, entries, operation="scheduling.build-day")
    return [r for r in written if r["resourceType"] == "Slot"]


def _slot_category(slot: dict[str, Any]) -> str | None:
    for cat in slot.get("serviceCategory", []):
        for c in cat.get("coding", []):
            if c.get("system") == SLOT_CATEGORY:
                return c.get("code")
    return None


def free_slots(session: Session, schedule: str) -> list[dict[str, Any]]:
    """Free slots of a schedule, in time order.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> fd = Sandbox.generate(patients=1, seed=1, years=1).login("fd.smith")
    >>> slots = build_day(fd, "Practitioner/prac-dr.patel", "2026-01-07", "stream-20")
    >>> len(free_slots(fd, slots[0]["schedule"]["reference"])) < len(slots)
    True
    """
    found = session.search("Slot", schedule=schedule, status="free").fetch()
    return sorted(found, key=lambda s: s["start"])


def _patient_busy(
    session: Session, patient: str, start: datetime, end: datetime, ignore: str = ""
) -> str | None:
    for appt in session.search("Appointment", patient=patient).fetch():
        if ref_of(appt) == ignore:
            continue
        if appt.get("status") not in ("booked", "arrived", "checked-in", "pending"):
            continue
        if not appt.get("start") or not appt.get("end"):
            continue
        if _parse(appt["start"]) < end and start < _parse(appt["end"]):
            return ref_of(appt)
    return None


def _prep(service: str | None) -> dict[str, Any] | None:
    if not service:
        return None
    return next((p for p in table("prep")["prep"] if p["service"] == service), None)


def _check_bookable(
    session: Session,
    patient: str,
    slot: dict[str, Any],
    appointment_type: str,
    *,
    allow_taken: bool = False,
    ignore: str = "",
) -> None:
    label = ref_of(slot)
    status = slot.get("status")
    if status == "busy-unavailable":
        raise RuleRefused(
            RULES["scheduling.blocked-time"],
            resource=label,
            path="status",
            expected="a free slot",
            found=status,
        )
    if status != "free" and not allow_taken:
        raise RuleRefused(
            RULES["scheduling.slot-taken"],
            resource=label,
            path="status",
            expected="a free slot (or double_book() where the template allows it)",
            found=status,
        )
    start = _parse(slot["start"])
    if start <= now(session):
        raise RuleRefused(
            RULES["scheduling.past"],
            resource=label,
            path="start",
            expected="a slot that has not started yet",
            found=slot["start"],
        )
    cat = _slot_category(slot)
    if cat == "cluster":
        wanted = next(iter(c["code"] for c in slot["appointmentType"]["coding"]))
        if wanted != appointment_type:
            raise RuleRefused(
                RULES["scheduling.cluster"],
                resource=label,
                path="appointmentType",
                expected=f"appointment type {wanted} ({slot.get('comment')})",
                found=appointment_type,
            )
    if cat == "open-access" and start.astimezone(now(session).tzinfo).date() != now(session).date():
        raise RuleRefused(
            RULES["scheduling.open-access"],
            resource=label,
            path="start",
            expected=f"booking on {start.date().isoformat()} itself",
            found=now(session).date().isoformat(),
        )
    clash = _patient_busy(session, patient, start, _parse(slot["end"]), ignore)
    if clash:
        raise RuleRefused(
            RULES["scheduling.patient-conflict"],
            resource=patient,
            path="Appointment.start",
            expected="no other appointment at that time",
            found=clash,
        )


def _appointment(
    patient: str,
    slot: dict[str, Any],
    practitioner: str,
    appointment_type: str,
    reason: str,
    *,
    status: str = "booked",
    created: str,
) -> dict[str, Any]:
    start, end = _parse(slot["start"]), _parse(slot["end"])
    return {
        "resourceType": "Appointment",
        "status": status,
        "appointmentType": _appt_type(appointment_type),
        "reasonCode": [{"text": reason}],
        "start": slot["start"],
        "end": slot["end"],
        "minutesDuration": int((end - start).total_seconds() // 60),
        "slot": [{"reference": ref_of(slot)}],
        "created": created[:10],
        "participant": [
            {"actor": {"reference": patient}, "required": "required", "status": "accepted"},
            {"actor": {"reference": practitioner}, "required": "required", "status": "accepted"},
            {
                "actor": {"reference": "Location/loc-main"},
                "required": "information-only",
                "status": "accepted",
            },
        ],
    }


def _practitioner_of(session: Session, slot: dict[str, Any]) -> str:
    sched = session.read(slot["schedule"]["reference"])
    for actor in sched.get("actor", []):
        if actor.get("reference", "").startswith("Practitioner/"):
            return actor["reference"]
    raise ValidationError(ref_of(sched), "actor", "a Practitioner actor")


def _read_slot(session: Session, slot: str) -> dict[str, Any]:
    if not isinstance(slot, str) or not slot.startswith("Slot/"):
        raise ValidationError("Appointment", "slot", "a reference 'Slot/<id>'", found=slot)
    return session.read(slot)


def book(
    session: Session,
    patient: str,
    slot: str,
    *,
    appointment_type: str,
    reason: str,
    service: str | None = None,
    patient_instruction: str | None = None,
) -> dict[str, Any]:
    """Book a patient into a free slot (the Slot becomes busy in the same transaction).

    Parameters
    ----------
    session : Session
        The scheduler's session.
    patient : str
        ``Patient/<id>``.
    slot : str
        ``Slot/<id>``.
    appointment_type : str
        v2-0276 code (ROUTINE, FOLLOWUP, CHECKUP, WALKIN) or a specialty type.
    reason : str
        Reason for the visit.
    service : str, optional
        A service that needs preparation (``data/prep.toml``, e.g. ``FASTING-LAB``).
    patient_instruction : str, optional
        The preparation told to the patient (required when ``service`` needs preparation).

    Returns
    -------
    dict
        The booked Appointment.

    Raises
    ------
    RuleRefused
        Blocked time, taken slot, cluster mismatch, open access before the day, a slot in the
        past, a patient conflict, or missing preparation.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> fd = Sandbox.generate(patients=2, seed=1, years=1).login("fd.smith")
    >>> slots = build_day(fd, "Practitioner/prac-dr.patel", "2026-01-07", "stream-20")
    >>> pid = fd.search("Patient").first()["id"]
    >>> appt = book(fd, f"Patient/{pid}", f"Slot/{slots[5]['id']}", appointment_type="ROUTINE", reason="sore throat")
    >>> appt["status"], fd.read(appt["slot"][0]["reference"])["status"]
    ('booked', 'busy')
    """
    if not reason or not str(reason).strip():
        raise ValidationError("Appointment", "reasonCode", "the reason for the visit")
    s = _read_slot(session, slot)
    session.read(patient)
    _check_bookable(session, patient, s, appointment_type)
    appt = _appointment(
        patient,
        s,
        _practitioner_of(session, s),
        appointment_type,
        reason,
        created=now(session).isoformat(),
    )
    _apply_prep(s, appt, service, patient_instruction)
    s_busy = {**s, "status": "busy"}
    out = write_all(session, [appt, s_busy], operation="scheduling.book")
    return out[0]


def _apply_prep(
    slot: dict[str, Any], appt: dict[str, Any], service: str | None, instruction: str | None
) -> None:
    prep = _prep(service)
    if service and prep is None:
        known = ", ".join(p["service"] for p in table("prep")["prep"])
        raise ValidationError("Appointment", "serviceType", f"one of {known}", found=service)
    if prep is None:
        return
    if not instruction or len(instruction.strip()) < 10:
        raise RuleRefused(
            RULES["scheduling.prep"],
            resource="Appointment",
            path="patientInstruction",
            expected=f"the preparation for {prep['display']}: {prep['instructions']}",
            found=instruction,
        )
    if "fasting" in prep.get("requires", []) and "fast" not in instruction.lower():
        raise RuleRefused(
            RULES["scheduling.prep"],
            resource="Appointment",
            path="patientInstruction",
            expected="the fasting instruction",
            found=instruction,
        )
    start = _parse(slot["start"])
    local = start.strftime("%H:%M")
    if prep.get("earliest") and not (prep["earliest"] <= local <= prep["latest"]):
        raise RuleRefused(
            RULES["scheduling.prep"],
            resource="Appointment",
            path="start",
            expected=f"between {prep['earliest']} and {prep['latest']} (fasting)",
            found=local,
        )
    appt["serviceType"] = [
        {"coding": [{"system": SERVICE_SYSTEM, "code": service, "display": prep["display"]}]}
    ]
    appt["patientInstruction"] = instruction.strip()
    needs = [r for r in prep.get("requires", []) if ":" in r]
    if needs:
        appt["comment"] = "Hold: " + ", ".join(needs)


def double_book(
    session: Session,
    patient: str,
    slot: str,
    *,
    appointment_type: str,
    reason: str,
) -> dict[str, Any]:
    """Book a second patient into a taken slot, where the double-booking rules allow it.

    Only brief visit types (``data/templates.toml`` ``double_booking``), at most one extra
    patient per slot, never into blocked time, and always with a reason.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> fd = Sandbox.generate(patients=3, seed=1, years=1).login("fd.smith")
    >>> slots = build_day(fd, "Practitioner/prac-dr.patel", "2026-01-07", "stream-20")
    >>> p1, p2 = [p["id"] for p in fd.search("Patient").limit(2).fetch()]
    >>> _ = book(fd, f"Patient/{p1}", f"Slot/{slots[6]['id']}", appointment_type="ROUTINE", reason="cough")
    >>> double_book(fd, f"Patient/{p2}", f"Slot/{slots[6]['id']}", appointment_type="CHECKUP", reason="asked")
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Appointment: appointmentType: expected one of WALKIN, ROUTINE (found 'CHECKUP'). Refused by rule scheduling.double-booking: ...
    """
    rules = table("templates")["double_booking"]
    if not reason or not str(reason).strip():
        raise RuleRefused(
            RULES["scheduling.reason"],
            resource="Appointment",
            path="comment",
            expected="why the patient is double-booked",
        )
    if appointment_type not in rules["allowed_types"]:
        raise RuleRefused(
            RULES["scheduling.double-booking"],
            resource="Appointment",
            path="appointmentType",
            expected="one of " + ", ".join(rules["allowed_types"]),
            found=appointment_type,
        )
    s = _read_slot(session, slot)
    holders = [
        a
        for a in session.search("Appointment", slot=slot).fetch()
        if a.get("status") in ("booked", "arrived")
    ]
    if len(holders) > rules["max_extra"]:
        raise RuleRefused(
            RULES["scheduling.double-booking"],
            resource=slot,
            path="Appointment.count",
            expected=f"at most {rules['max_extra']} extra patient",
            found=len(holders),
        )
    _check_bookable(session, patient, s, appointment_type, allow_taken=True)
    appt = _appointment(
        patient,
        s,
        _practitioner_of(session, s),
        appointment_type,
        reason,
        created=now(session).isoformat(),
    )
    appt["comment"] = f"Double-booked: {reason}"
    writes: list[dict[str, Any]] = [appt]
    if s.get("status") == "free":
        writes.append({**s, "status": "busy"})
    else:
        writes.append({**s, "overbooked": True})
    return write_all(session, writes, operation="scheduling.double-book")[0]


def _read_appt(session: Session, appointment: str) -> dict[str, Any]:
    if not isinstance(appointment, str) or not appointment.startswith("Appointment/"):
        raise ValidationError("Appointment", "reference", "'Appointment/<id>'", found=appointment)
    return session.read(appointment)


def _free_slot_updates(session: Session, appt: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for s in appt.get("slot", []):
        try:
            slot = session.read(s["reference"])
        except NotFound:
            continue
        others = [
            a
            for a in session.search("Appointment", slot=s["reference"]).fetch()
            if a["id"] != appt["id"] and a.get("status") in ("booked", "arrived")
        ]
        if slot.get("status") == "busy" and not others:
            out.append({**slot, "status": "free"})
    return out


def cancel(session: Session, appointment: str, *, reason: str, by: str = "pat") -> dict[str, Any]:
    """Cancel an appointment with a reason; its slot is freed in the same transaction.

    ``by`` is an appointment-cancellation-reason code (``pat`` patient, ``prov`` provider,
    ``other``).

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> fd = Sandbox.generate(patients=2, seed=1, years=1).login("fd.smith")
    >>> slots = build_day(fd, "Practitioner/prac-dr.patel", "2026-01-07", "stream-20")
    >>> pid = fd.search("Patient").first()["id"]
    >>> a = book(fd, f"Patient/{pid}", f"Slot/{slots[5]['id']}", appointment_type="ROUTINE", reason="rash")
    >>> c = cancel(fd, f"Appointment/{a['id']}", reason="patient called: feeling better")
    >>> c["status"], fd.read(f"Slot/{slots[5]['id']}")["status"]
    ('cancelled', 'free')
    """
    if not reason or not str(reason).strip():
        raise RuleRefused(
            RULES["scheduling.reason"],
            resource=appointment,
            path="cancelationReason",
            expected="why the appointment is cancelled",
        )
    appt = _read_appt(session, appointment)
    if appt.get("status") not in ("booked", "pending", "proposed", "waitlist"):
        raise ValidationError(
            appointment, "status", "a booked appointment", found=appt.get("status")
        )
    new = {
        **appt,
        "status": "cancelled",
        "cancelationReason": {
            "coding": [{"system": CANCEL_REASON, "code": by}],
            "text": str(reason).strip(),
        },
    }
    out = write_all(
        session, [new, *_free_slot_updates(session, appt)], operation="scheduling.cancel"
    )
    return out[0]


def reschedule(session: Session, appointment: str, new_slot: str, *, reason: str) -> dict[str, Any]:
    """Move an appointment to another slot: the old one is cancelled (its slot freed), the new
    one is booked and points back at the old (``supportingInformation``), all at once.

    Also reschedules a no-show (the no-show stays on record).

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> fd = Sandbox.generate(patients=2, seed=1, years=1).login("fd.smith")
    >>> slots = build_day(fd, "Practitioner/prac-dr.patel", "2026-01-07", "stream-20")
    >>> pid = fd.search("Patient").first()["id"]
    >>> a = book(fd, f"Patient/{pid}", f"Slot/{slots[5]['id']}", appointment_type="ROUTINE", reason="rash")
    >>> b = reschedule(fd, f"Appointment/{a['id']}", f"Slot/{slots[10]['id']}", reason="work conflict")
    >>> b["supportingInformation"][0]["reference"] == f"Appointment/{a['id']}"
    True
    """
    if not reason or not str(reason).strip():
        raise RuleRefused(
            RULES["scheduling.reason"],
            resource=appointment,
            path="reason",
            expected="why the appointment is moved",
        )
    appt = _read_appt(session, appointment)
    if appt.get("status") not in ("booked", "noshow", "pending"):
        raise ValidationError(
            appointment, "status", "a booked appointment or a no-show", found=appt.get("status")
        )
    patient = next(
        p["actor"]["reference"]
        for p in appt["participant"]
        if p.get("actor", {}).get("reference", "").startswith("Patient/")
    )
    s = _read_slot(session, new_slot)
    type_code = (appt.get("appointmentType", {}).get("coding") or [{"code": "ROUTINE"}])[0]["code"]
    writes: list[dict[str, Any]] = []
    if appt["status"] != "noshow":
        writes.append(
            {
                **appt,
                "status": "cancelled",
                "cancelationReason": {
                    "coding": [{"system": CANCEL_REASON, "code": "pat"}],
                    "text": f"Rescheduled: {reason}",
                },
            }
        )
        writes.extend(_free_slot_updates(session, appt))
    _check_bookable(session, patient, s, type_code, ignore=appointment)
    reason_text = (appt.get("reasonCode") or [{"text": "follow-up"}])[0].get("text", "follow-up")
    new = _appointment(
        patient,
        s,
        _practitioner_of(session, s),
        type_code,
        reason_text,
        created=now(session).isoformat(),
    )
    new["supportingInformation"] = [{"reference": appointment}]
    new["comment"] = f"Rescheduled from {appointment}: {reason}"
    for key in ("serviceType", "patientInstruction"):
        if key in appt:
            new[key] = appt[key]
    writes.insert(0, new)
    writes.append({**s, "status": "busy"})
    return write_all(session, writes, operation="scheduling.reschedule")[0]


def no_show(session: Session, appointment: str, *, note: str = "") -> dict[str, Any]:
    """Record a no-show: only after the start time, for an appointment still ``booked``.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> fd = Sandbox.generate(patients=2, seed=1, years=1).login("fd.smith")
    >>> slots = build_day(fd, "Practitioner/prac-dr.patel", "2026-01-07", "stream-20")
    >>> pid = fd.search("Patient").first()["id"]
    >>> a = book(fd, f"Patient/{pid}", f"Slot/{slots[5]['id']}", appointment_type="ROUTINE", reason="rash")
    >>> no_show(fd, f"Appointment/{a['id']}")
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Appointment/...: start: expected a start time already past ... Refused by rule scheduling.no-show: ...
    """
    appt = _read_appt(session, appointment)
    if _parse(appt["start"]) > now(session):
        raise RuleRefused(
            RULES["scheduling.no-show"],
            resource=appointment,
            path="start",
            expected=f"a start time already past (now {now(session).isoformat()})",
            found=appt["start"],
        )
    if appt.get("status") != "booked":
        raise RuleRefused(
            RULES["scheduling.no-show"],
            resource=appointment,
            path="status",
            expected="a booked appointment the patient did not arrive for",
            found=appt.get("status"),
        )
    new = {**appt, "status": "noshow"}
    if note:
        new["comment"] = (appt.get("comment", "") + f" No-show: {note}").strip()
    return write(session, new, operation="scheduling.no-show")


def check_in(session: Session, appointment: str) -> dict[str, Any]:
    """Check a patient in (``arrived``) on the appointment's day.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> fd = Sandbox.generate(patients=2, seed=1, years=1).login("fd.smith")
    >>> slots = build_day(fd, "Practitioner/prac-dr.patel", "2026-01-07", "stream-20")
    >>> pid = fd.search("Patient").first()["id"]
    >>> a = book(fd, f"Patient/{pid}", f"Slot/{slots[5]['id']}", appointment_type="ROUTINE", reason="rash")
    >>> check_in(fd, f"Appointment/{a['id']}")["status"]
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Appointment/...: start: expected the appointment's day (2026-01-07) ... Refused by rule scheduling.check-in: ...
    """
    appt = _read_appt(session, appointment)
    start = _parse(appt["start"])
    day = start.date()
    today_local = now(session).astimezone(start.tzinfo).date()
    if today_local != day:
        raise RuleRefused(
            RULES["scheduling.check-in"],
            resource=appointment,
            path="start",
            expected=f"the appointment's day ({day.isoformat()})",
            found=today_local.isoformat(),
        )
    if appt.get("status") != "booked":
        raise RuleRefused(
            RULES["scheduling.check-in"],
            resource=appointment,
            path="status",
            expected="a booked appointment",
            found=appt.get("status"),
        )
    return write(session, {**appt, "status": "arrived"}, operation="scheduling.check-in")


def check_out(session: Session, appointment: str) -> dict[str, Any]:
    """Check a patient out (``fulfilled``); only a patient who was checked in.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> from ehr_sandbox.workflows.base import today
    >>> fd = Sandbox.generate(patients=2, seed=1, years=1).login("fd.smith")
    >>> slots = build_day(fd, "Practitioner/prac-dr.okafor", today(fd).isoformat(), "stream-20")
    >>> pid = fd.search("Patient").first()["id"]
    >>> a = book(fd, f"Patient/{pid}", f"Slot/{slots[-1]['id']}", appointment_type="ROUTINE", reason="rash")
    >>> check_out(fd, f"Appointment/{a['id']}")
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Appointment/...: status: expected arrived (checked in) (found 'booked'). Refused by rule scheduling.check-out: ...
    >>> _ = check_in(fd, f"Appointment/{a['id']}")
    >>> check_out(fd, f"Appointment/{a['id']}")["status"]
    'fulfilled'
    """
    appt = _read_appt(session, appointment)
    if appt.get("status") not in ("arrived", "checked-in"):
        raise RuleRefused(
            RULES["scheduling.check-out"],
            resource=appointment,
            path="status",
            expected="arrived (checked in)",
            found=appt.get("status"),
        )
    return write(session, {**appt, "status": "fulfilled"}, operation="scheduling.check-out")


def add_to_waitlist(
    session: Session,
    patient: str,
    practitioner: str,
    *,
    appointment_type: str,
    reason: str,
    earliest: str,
    latest: str,
) -> dict[str, Any]:
    """Put a patient on the waitlist for an earlier opening (Appointment ``waitlist`` with a
    requested period).

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> fd = Sandbox.generate(patients=1, seed=1, years=1).login("fd.smith")
    >>> pid = fd.search("Patient").first()["id"]
    >>> add_to_waitlist(fd, f"Patient/{pid}", "Practitioner/prac-dr.patel", appointment_type="FOLLOWUP",
    ...                 reason="BP recheck", earliest="2026-01-05", latest="2026-01-09")["status"]
    'waitlist'
    """
    session.read(patient)
    session.read(practitioner)
    if date.fromisoformat(latest) < date.fromisoformat(earliest):
        raise ValidationError(
            "Appointment", "requestedPeriod", "end on or after start", found=latest
        )
    appt = {
        "resourceType": "Appointment",
        "status": "waitlist",
        "appointmentType": _appt_type(appointment_type),
        "reasonCode": [{"text": reason}],
        "requestedPeriod": [{"start": earliest, "end": latest}],
        "created": now(session).date().isoformat(),
        "participant": [
            {"actor": {"reference": patient}, "status": "needs-action"},
            {"actor": {"reference": practitioner}, "status": "needs-action"},
        ],
    }
    return write(session, appt, operation="scheduling.waitlist")


def fill_from_waitlist(session: Session, waitlisted: str, slot: str) -> dict[str, Any]:
    """Book a waitlisted request into a slot that opened (inside its requested period).

    Examples
    --------
    >>> fill_from_waitlist.__name__
    'fill_from_waitlist'
    """
    appt = _read_appt(session, waitlisted)
    if appt.get("status") != "waitlist":
        raise ValidationError(waitlisted, "status", "a waitlist entry", found=appt.get("status"))
    s = _read_slot(session, slot)
    period = (appt.get("requestedPeriod") or [{}])[0]
    day = _parse(s["start"]).date().isoformat()
    if not (period.get("start", day) <= day <= period.get("end", day)):
        raise ValidationError(
            slot,
            "start",
            f"a slot between {period.get('start')} and {period.get('end')}",
            found=day,
        )
    patient = next(
        p["actor"]["reference"]
        for p in appt["participant"]
        if p["actor"]["reference"].startswith("Patient/")
    )
    type_code = appt["appointmentType"]["coding"][0]["code"]
    _check_bookable(session, patient, s, type_code)
    booked = _appointment(
        patient,
        s,
        _practitioner_of(session, s),
        type_code,
        appt["reasonCode"][0]["text"],
        created=now(session).isoformat(),
    )
    booked = {**booked, "id": appt["id"], "meta": {"versionId": appt["meta"]["versionId"]}}
    return write_all(
        session, [booked, {**s, "status": "busy"}], operation="scheduling.fill-waitlist"
    )[0]


def recall(
    session: Session, patient: str, practitioner: str, *, due: str, reason: str
) -> dict[str, Any]:
    """Record a recall: a proposed Appointment for the month it is due (the front desk calls
    the patient to book it).

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> fd = Sandbox.generate(patients=1, seed=1, years=1).login("fd.smith")
    >>> pid = fd.search("Patient").first()["id"]
    >>> r = recall(fd, f"Patient/{pid}", "Practitioner/prac-dr.patel", due="2026-04-01", reason="3-month BP recheck")
    >>> r["status"], r["requestedPeriod"][0]["start"]
    ('proposed', '2026-04-01')
    """
    d = date.fromisoformat(due)
    if d <= now(session).date():
        raise ValidationError(
            "Appointment", "requestedPeriod.start", "a due date in the future", found=due
        )
    if not reason or not str(reason).strip():
        raise ValidationError("Appointment", "reasonCode", "why the patient is recalled")
    session.read(patient)
    appt = {
        "resourceType": "Appointment",
        "status": "proposed",
        "serviceCategory": [
            {"coding": [{"system": SLOT_CATEGORY, "code": "recall", "display": "Recall"}]}
        ],
        "appointmentType": _appt_type("FOLLOWUP"),
        "reasonCode": [{"text": reason}],
        "requestedPeriod": [{"start": d.isoformat(), "end": (d + timedelta(days=30)).isoformat()}],
        "created": now(session).date().isoformat(),
        "participant": [
            {"actor": {"reference": patient}, "status": "needs-action"},
            {"actor": {"reference": practitioner}, "status": "needs-action"},
        ],
    }
    return write(session, appt, operation="scheduling.recall")


def local_time(value: str) -> time:
    """The local wall time of an instant text.

    >>> local_time("2026-01-07T08:20:00-05:00").isoformat()
    '08:20:00'
    """
    return _parse(value).time()


def appointment_patient(appointment: dict[str, Any]) -> str:
    """``Patient/<id>`` of an Appointment.

    >>> appointment_patient({"participant": [{"actor": {"reference": "Patient/p"}}]})
    'Patient/p'
    """
    for p in appointment.get("participant", []):
        r = (p.get("actor") or {}).get("reference", "")
        if r.startswith("Patient/"):
            return r
    raise ValidationError("Appointment", "participant", "a Patient participant")
