"""Whom a user treats, however the store works it out, is the rule read off the records.

The rules, for random clinics:

* ``treating_patients`` equals the definition evaluated in plain Python on every decoded
  record (the panel; encounters the user took part in that happened or are planned; this
  week's real bookings with the user, or all of them for rooming roles), for every role;
* ``Store.reference_values`` answers the same from the values' side (``per_value``) as from
  the matches' side, and ``skip`` only leaves values out.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ehr_sandbox.relationships import (
    ENCOUNTER_STATUSES,
    ROOMING_ROLES,
    SCHEDULED_STATUSES,
    schedule_window,
    treating_patients,
)
from ehr_sandbox.search import parse
from ehr_sandbox.store import Store
from ehr_sandbox.users import User

REFERENCE = date(2026, 1, 1)
PATIENTS = ("p0", "p1", "p2", "p3", "p4")
STAFF = ("a", "b", "c", "d")
APPOINTMENT_ALL = (
    "proposed",
    "pending",
    "booked",
    "arrived",
    "fulfilled",
    "cancelled",
    "noshow",
    "entered-in-error",
    "checked-in",
    "waitlist",
)
ENCOUNTER_ALL = (*ENCOUNTER_STATUSES, "cancelled", "entered-in-error")
PARTICIPATION = ("accepted", "declined", "tentative", "needs-action")

ENCOUNTER = st.fixed_dictionaries(
    {
        "status": st.one_of(st.none(), st.sampled_from(ENCOUNTER_ALL)),
        "staff": st.lists(st.sampled_from(STAFF), max_size=3, unique=True),
        "patient": st.one_of(st.none(), st.sampled_from(PATIENTS)),
    }
)
APPOINTMENT = st.fixed_dictionaries(
    {
        "status": st.sampled_from(APPOINTMENT_ALL),
        "staff": st.lists(st.sampled_from(STAFF), max_size=2, unique=True),
        "patients": st.lists(st.sampled_from(PATIENTS), max_size=2, unique=True),
        "day": st.one_of(st.none(), st.integers(-10, 10)),
        # each participant's answer, in order (staff, then patients); missing: accepted
        "answers": st.lists(st.sampled_from(PARTICIPATION), max_size=4),
    }
)
CLINIC = st.fixed_dictionaries(
    {
        "panel": st.lists(st.one_of(st.none(), st.sampled_from(STAFF)), min_size=5, max_size=5),
        "encounters": st.lists(ENCOUNTER, max_size=14),
        "appointments": st.lists(APPOINTMENT, max_size=10),
    }
)


def _monday() -> date:
    return date.fromisoformat(schedule_window(REFERENCE)[0])


def _records(clinic: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for pid, gp in zip(PATIENTS, clinic["panel"], strict=True):
        patient: dict[str, Any] = {"resourceType": "Patient", "id": pid}
        if gp is not None:
            patient["generalPractitioner"] = [{"reference": f"Practitioner/{gp}"}]
        out.append(patient)
    for k, e in enumerate(clinic["encounters"]):
        enc: dict[str, Any] = {
            "resourceType": "Encounter",
            "id": f"e{k}",
            "class": {"code": "AMB"},
            "participant": [{"individual": {"reference": f"Practitioner/{s}"}} for s in e["staff"]],
        }
        if e["status"] is not None:
            enc["status"] = e["status"]
        if e["patient"] is not None:
            enc["subject"] = {"reference": f"Patient/{e['patient']}"}
        out.append(enc)
    for k, a in enumerate(clinic["appointments"]):
        actors = [f"Practitioner/{s}" for s in a["staff"]] + [f"Patient/{p}" for p in a["patients"]]
        appt: dict[str, Any] = {
            "resourceType": "Appointment",
            "id": f"a{k}",
            "status": a["status"],
            "participant": [
                {"actor": {"reference": r}, "status": (a["answers"][i : i + 1] or ["accepted"])[0]}
                for i, r in enumerate(actors)
            ],
        }
        if a["day"] is not None:
            day = (_monday() + timedelta(days=a["day"])).isoformat()
            appt["start"], appt["end"] = f"{day}T10:00:00Z", f"{day}T10:20:00Z"
        out.append(appt)
    return out


def _by_hand(records: list[dict[str, Any]], user: User) -> set[str]:
    """The definition, read off the records in plain Python (no search, no index)."""
    if user.role == "patient":
        return {user.patient_id} if user.patient_id else set()
    me = f"Practitioner/{user.practitioner_id}"
    monday = _monday()
    out: set[str] = set()

    def this_week(r: dict[str, Any]) -> bool:
        start = r.get("start")
        return (
            r.get("status") in SCHEDULED_STATUSES
            and start is not None
            and monday <= date.fromisoformat(start[:10]) <= monday + timedelta(days=6)
        )

    def actors(r: dict[str, Any]) -> list[str]:  # who declined is not in the booking
        return [
            p["actor"]["reference"] for p in r.get("participant", []) if p["status"] != "declined"
        ]

    for r in records:
        kind = r["resourceType"]
        if kind == "Patient" and {"reference": me} in r.get("generalPractitioner", []):
            out.add(r["id"])
        elif kind == "Encounter" and r.get("status") in ENCOUNTER_STATUSES:
            staff = [p["individual"]["reference"] for p in r["participant"]]
            if me in staff and "subject" in r:
                out.add(r["subject"]["reference"].removeprefix("Patient/"))
        elif (
            kind == "Appointment"
            and this_week(r)
            and (me in actors(r) or user.role in ROOMING_ROLES)
        ):
            out |= {a[8:] for a in actors(r) if a.startswith("Patient/")}
    return out


USERS = (
    User("dr.a", "physician", "Dr A", "a"),
    User("rn.b", "nurse", "RN B", "b"),
    User("ma.c", "medical_assistant", "MA C", "c"),
    User("fd.d", "front_desk", "FD D", "d"),
    User("billing.x", "billing", "Billing X", "x"),
    User("patient/p0", "patient", "P0", None, "p0"),
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(clinic=CLINIC)
def test_treating_patients_is_the_rule_read_off_the_records(clinic: dict[str, Any]) -> None:
    records = _records(clinic)
    store = Store()
    store.create_many(records)
    for user in USERS:
        assert treating_patients(store, user, REFERENCE) == _by_hand(records, user), user


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    clinic=CLINIC,
    statuses=st.lists(st.sampled_from(ENCOUNTER_ALL), max_size=4, unique=True),
    skip=st.lists(st.sampled_from(PATIENTS), max_size=3, unique=True),
)
def test_reference_values_agree_from_either_side(
    clinic: dict[str, Any], statuses: list[str], skip: list[str]
) -> None:
    # "a" takes part in every encounter, so its candidates are the whole type and the
    # values' side answers; the others' few candidates take the matches' side
    for e in clinic["encounters"]:
        if "a" not in e["staff"]:
            e["staff"].append("a")
    store = Store()
    store.create_many(_records(clinic))
    refs = [f"Patient/{p}" for p in skip]
    for who in STAFF:
        params = [("participant", f"Practitioner/{who}")]
        if statuses:
            params.append(("status", ",".join(statuses)))
        query = parse("Encounter", params)
        subject = ("subject", "patient")
        plain = store.reference_values("Encounter", query, subject)
        fast = store.reference_values("Encounter", query, subject, per_value=True)
        fewer = store.reference_values("Encounter", query, subject, per_value=True, skip=refs)
        assert plain is not None and fast is not None and fewer is not None
        assert (fast[0], sorted(fast[1])) == (plain[0], sorted(plain[1])), who
        assert (fewer[0], sorted(fewer[1])) == (plain[0] - set(refs), sorted(plain[1])), who
        decoded = store.search("Encounter", query)
        assert plain[0] == {e["subject"]["reference"] for e in decoded if "subject" in e}
        assert sorted(plain[1]) == sorted(e["id"] for e in decoded if "subject" not in e)
