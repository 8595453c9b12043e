"""Exam rooms as ``Location`` s with a status, and the turnover checklist between patients.

Status (``data/rooms.toml``) lives in ``Location.operationalStatus`` (HL7 v2-0116): ready
(``U``), in use (``O``), dirty (``H``, housekeeping), blocked (``C``, closed). Allowed moves:
ready -> in use (a patient is roomed) or blocked; in use -> dirty (the patient leaves); dirty ->
ready **only** through :func:`turnover`, which records the completed checklist as a ``Task``;
blocked needs a reason.

>>> STATUS_CODES["dirty"]
'H'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ehr_sandbox.workflows.base import Rule, write
from ehr_sandbox.workflows.care import (
    SANDBOX_OBS,
    coding,
    demo_session,
    identify,
    mrn_of,
    now_text,
    refuse,
    require_identified,
    user_ref,
    write_entries,
)
from ehr_sandbox.workflows.content import table
from synthetic.systems import LOCATION_PHYSICAL_TYPE, V2_0116

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

__all__ = [
    "RULES",
    "STATUS_CODES",
    "create_room",
    "demo_session",
    "discharge_room",
    "identify",
    "mrn_of",
    "room_patient",
    "set_status",
    "status_of",
    "turnover",
]

BED_STATUS = V2_0116
STATUS_CODES = {k: v["code"] for k, v in table("rooms")["status"].items()}
_SRC = "CDC Environmental Infection Control Guidelines (2003, upd. 2019); OSHA 29 CFR 1910.1030"
RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule("rooms.transition", "a room moves ready -> in use -> dirty -> (turnover) -> ready; blocked with a reason", _SRC),
        Rule("rooms.not-ready", "a patient is roomed only in a ready room", _SRC),
        Rule("rooms.checklist", "every turnover item is done before the room is ready again", _SRC),
    )
}  # fmt: skip


def status_of(location: dict[str, Any]) -> str:
    """The room's status name from ``operationalStatus``.

    Examples
    --------
    >>> status_of({"operationalStatus": {"system": BED_STATUS, "code": "O"}})
    'in-use'
    """
    code = (location.get("operationalStatus") or {}).get("code")
    for name, c in STATUS_CODES.items():
        if c == code:
            return name
    return "ready"


def _status_coding(name: str) -> dict[str, Any]:
    spec = table("rooms")["status"][name]
    return {"system": BED_STATUS, "code": spec["code"], "display": spec["display"]}


def create_room(session: Session, name: str, *, organization: str | None = None) -> dict[str, Any]:
    """A new exam room (ready); needs a role that may create Locations (admin, system).

    Examples
    --------
    >>> r = create_room(demo_session().sandbox.system_session(), "Exam 9")
    >>> status_of(r), r["physicalType"]["coding"][0]["code"]
    ('ready', 'ro')
    """
    loc: dict[str, Any] = {
        "resourceType": "Location",
        "status": "active",
        "name": name,
        "mode": "instance",
        "operationalStatus": _status_coding("ready"),
        "physicalType": coding(LOCATION_PHYSICAL_TYPE, "ro", "Room"),
        "description": "exam room",
    }
    if organization:
        loc["managingOrganization"] = {"reference": organization}
    return write(session, loc, operation="rooms.create")


def set_status(
    session: Session, room: str, status: str, *, reason: str | None = None
) -> dict[str, Any]:
    """Move a room to ``status`` along an allowed transition (blocked needs a reason).

    Raises
    ------
    RuleRefused
        ``rooms.transition`` (e.g. dirty -> ready without the checklist, or in use -> ready).

    Examples
    --------
    >>> sys = demo_session().sandbox.system_session()
    >>> r = create_room(sys, "Exam 10")
    >>> set_status(demo_session(), f"Location/{r['id']}", "dirty")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Location/...: operationalStatus: expected one of in-use, blocked (found 'ready -> dirty'). ...
    """
    loc = session.read(room)
    current = status_of(loc)
    allowed = table("rooms")["transitions"].get(current, [])
    if status not in allowed:
        raise refuse(
            RULES["rooms.transition"],
            room,
            "operationalStatus",
            "one of " + ", ".join(allowed) if allowed else "no move (use turnover)",
            f"{current} -> {status}",
        )
    if status == "blocked" and not (reason and len(reason.split()) >= 2):
        raise refuse(RULES["rooms.transition"], room, "reason", "why the room is blocked", reason)
    loc["operationalStatus"] = _status_coding(status)
    if status == "blocked":
        loc["description"] = f"exam room - blocked: {reason}"
    elif current == "blocked":
        loc["description"] = "exam room"
    return write(session, loc, operation=f"rooms.{status}", reason=reason)


def room_patient(session: Session, room: str, patient: str) -> dict[str, Any]:
    """Room an identified patient: the room must be ready; it becomes in use.

    Examples
    --------
    >>> s = demo_session()
    >>> r = create_room(s.sandbox.system_session(), "Exam 11")
    >>> p = s.search("Patient").first()
    >>> ref = identify(s, p["id"], birth_date=p["birthDate"], mrn=mrn_of(p))
    >>> status_of(room_patient(s, f"Location/{r['id']}", ref))
    'in-use'
    >>> room_patient(s, f"Location/{r['id']}", ref)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Location/...: operationalStatus: expected a ready room (found 'in-use'). ...
    """
    require_identified(session, patient, "Location")
    loc = session.read(room)
    if status_of(loc) != "ready":
        raise refuse(
            RULES["rooms.not-ready"], room, "operationalStatus", "a ready room", status_of(loc)
        )
    return set_status(session, room, "in-use")


def discharge_room(session: Session, room: str) -> dict[str, Any]:
    """The patient has left: in use -> dirty.

    Examples
    --------
    >>> s = demo_session()
    >>> r = create_room(s.sandbox.system_session(), "Exam 12")
    >>> discharge_room(s, f"Location/{r['id']}")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Location/...: operationalStatus: expected one of in-use, blocked (found 'ready -> dirty'). ...
    """
    return set_status(session, room, "dirty")


def turnover(session: Session, room: str, checklist: dict[str, bool]) -> dict[str, Any]:
    """Clean a dirty room: every checklist item done; records a Task and makes the room ready.

    Parameters
    ----------
    checklist : dict
        Item id of ``[[checklist]]`` in ``data/rooms.toml`` -> done (True).

    Returns
    -------
    dict
        The completed turnover Task (its ``output`` lists each item).

    Raises
    ------
    RuleRefused
        ``rooms.checklist`` (an item missing or not done), ``rooms.transition`` (room not dirty).

    Examples
    --------
    >>> s = demo_session()
    >>> r = create_room(s.sandbox.system_session(), "Exam 13")
    >>> turnover(s, f"Location/{r['id']}", {})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Location/...: operationalStatus: expected a dirty room (found 'ready'). ...
    """
    loc = session.read(room)
    if status_of(loc) != "dirty":
        raise refuse(
            RULES["rooms.transition"], room, "operationalStatus", "a dirty room", status_of(loc)
        )
    items = table("rooms")["checklist"]
    undone = [i["id"] for i in items if checklist.get(i["id"]) is not True]
    if undone:
        raise refuse(
            RULES["rooms.checklist"],
            "Task (turnover)",
            "output",
            "every checklist item done",
            f"not done: {', '.join(undone)}",
        )
    when = now_text(session)
    task = {
        "resourceType": "Task",
        "status": "completed",
        "intent": "order",
        "code": coding(SANDBOX_OBS, "room-turnover", "Exam room turnover"),
        "description": f"Turnover of {loc.get('name')}",
        "focus": {"reference": room},
        "authoredOn": when,
        "executionPeriod": {"start": when, "end": when},
        "requester": user_ref(session),
        "owner": user_ref(session),
        "output": [{"type": {"text": i["text"]}, "valueBoolean": True} for i in items],
    }
    loc["operationalStatus"] = _status_coding("ready")
    saved = write_entries(session, [task, loc], operation="rooms.turnover")
    return saved[0]
