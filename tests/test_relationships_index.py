"""Whom a clinician treats, read from the search index (issue 17), is whom decoding says.

The rule: ``treating_patients`` equals the definition computed the slow way (decode every
matching Patient, Encounter and Appointment and take every patient it names, ``patients_of``),
for every staff user, on plain and encrypted stores, including Encounters and Appointments
whose patient the index cannot hold (absolute, versioned, ``urn:`` and Group references,
none at all) and Appointments naming several patients.
"""

from __future__ import annotations

from datetime import date

import pytest

from ehr_sandbox.access import patients_of
from ehr_sandbox.crypto import MasterKey
from ehr_sandbox.relationships import (
    ENCOUNTER_STATUSES,
    ROOMING_ROLES,
    SCHEDULED_STATUSES,
    schedule_window,
    treating_patients,
)
from ehr_sandbox.sandbox import Sandbox
from ehr_sandbox.search import parse


def _by_decoding(store, user, reference_date: date) -> set[str]:
    """The definition, decoding every match (what the code did before it read the index)."""
    if user.role == "patient":
        return {user.patient_id} if user.patient_id else set()
    start, end = schedule_window(reference_date)
    week = [("date", f"ge{start}"), ("date", f"le{end}")]
    out: set[str] = set()

    def pids(rtype: str, params: list) -> set[str]:
        statuses = SCHEDULED_STATUSES if rtype == "Appointment" else ENCOUNTER_STATUSES
        out: set[str] = set()
        for r in store.search(rtype, parse(rtype, params)):
            if r.get("status") not in statuses:
                continue
            if rtype == "Appointment":
                # a participant who declined is not in the booking
                kept = [x for x in r.get("participant", []) if x.get("status") != "declined"]
                if user.practitioner_id and ("actor", me) in params:
                    mine = [x for x in kept if (x.get("actor") or {}).get("reference") == me]
                    if not mine:
                        continue
                r = {**r, "participant": kept}
            out |= patients_of(r)
        return out

    me = f"Practitioner/{user.practitioner_id}"

    if user.practitioner_id:
        me = f"Practitioner/{user.practitioner_id}"
        out |= {
            p["id"]
            for p in store.search("Patient", parse("Patient", [("general-practitioner", me)]))
        }
        out |= pids("Encounter", [("participant", me)])
        out |= pids("Appointment", [("actor", me), *week])
    if user.role in ROOMING_ROLES:
        out |= pids("Appointment", week)
    return out


def _odd_encounters(sb: Sandbox) -> list[str]:
    """Encounters of dr.patel with subjects of every shape (some the index holds as a Patient
    row, some it cannot hold), written to the store directly (the door would refuse some)."""
    store = sb._store  # noqa: SLF001 - the fixture writes what the door would not
    pids = sorted(p["id"] for p in store.search("Patient", parse("Patient", {})))
    me = {"individual": {"reference": f"Practitioner/{sb.user('dr.patel').practitioner_id}"}}
    subjects = [
        {"reference": f"https://example.org/fhir/Patient/{pids[0]}"},
        {"reference": f"Patient/{pids[1]}/_history/1"},
        {"reference": "urn:uuid:7f3a0c1e-0000-4000-8000-000000000001"},
        {"reference": "Group/g1"},
        None,
        {"reference": "Patient/not-a-stored-patient"},
        {"reference": "Patient/no such id"},  # no index row; patient_of still reads it
    ]
    made = []
    for k, subject in enumerate(subjects):
        enc = {
            "resourceType": "Encounter",
            "id": f"odd-{k}",
            "status": "finished",
            "class": {"code": "AMB"},
            "participant": [me],
        }
        if subject is not None:
            enc["subject"] = subject
        made.append(store.create(enc)["id"])
    return made


@pytest.mark.parametrize("encrypted", [False, True])
def test_treating_patients_reads_the_index_and_agrees_with_decoding(encrypted: bool) -> None:
    key = MasterKey.generate() if encrypted else None
    sb = Sandbox.generate(patients=5, seed=11, years=1, key=key)
    _odd_encounters(sb)
    _odd_appointments(sb)
    store = sb._store  # noqa: SLF001 - the test's oracle reads the store
    for user in sb.users:
        got = treating_patients(store, user, sb.reference_date)
        assert got == _by_decoding(store, user, sb.reference_date), user.username
        assert sb.treating(user.username) == got  # what sessions use
    doctor = sb.treating("dr.patel")
    pids = sorted(p["id"] for p in store.search("Patient", parse("Patient", {})))
    # the absolute and versioned subjects still count (patient_of resolves them)
    assert {pids[0], pids[1], "not-a-stored-patient", "no such id"} <= doctor
    assert {pids[2], pids[3], "booked-a", "booked-b"} <= doctor  # this week's bookings
    assert {"booked-a", "booked-b"} <= sb.treating("ma.garcia")  # rooming sees the schedule


def _odd_appointments(sb: Sandbox) -> None:
    """This week's Appointments of dr.patel naming patients in every shape, and one naming
    two patients (a group visit books each of them)."""
    store = sb._store  # noqa: SLF001 - the fixture writes what the door would not
    pids = sorted(p["id"] for p in store.search("Patient", parse("Patient", {})))
    me = {"actor": {"reference": f"Practitioner/{sb.user('dr.patel').practitioner_id}"}}
    day = schedule_window(sb.reference_date)[0]
    patients = [
        [{"reference": f"https://example.org/fhir/Patient/{pids[2]}"}],
        [{"reference": f"Patient/{pids[3]}/_history/2"}],
        [{"reference": "Patient/booked-a"}, {"reference": "Patient/booked-b"}],
        [],
    ]
    for k, refs in enumerate(patients):
        store.create(
            {
                "resourceType": "Appointment",
                "id": f"odd-appt-{k}",
                "status": "booked",
                "start": f"{day}T09:{k:02d}:00Z",
                "end": f"{day}T09:{k + 10:02d}:00Z",
                "participant": [
                    {**me, "status": "accepted"},
                    *({"actor": ref, "status": "accepted"} for ref in refs),
                ],
            }
        )


def test_reference_values_are_the_decoded_references() -> None:
    """The rule for ``Store.reference_values``: its values are the matches' decoded subjects
    and the ids it calls unindexed are exactly the matches without a subject it can hold."""
    sb = Sandbox.generate(patients=2, seed=2, years=1)
    odd = set(_odd_encounters(sb))
    store = sb._store  # noqa: SLF001 - a store-level function under test
    query = parse("Encounter", {})
    values, unindexed = store.reference_values("Encounter", query, ("subject", "patient"))
    decoded = store.search("Encounter", query)
    plain = [e for e in decoded if e["id"] not in odd]
    assert {e["subject"]["reference"] for e in plain} <= values
    assert set(unindexed) <= odd and "odd-4" in unindexed  # no subject at all
    assert not set(unindexed) & {e["id"] for e in plain}
    # a narrower query answers for its own matches only
    one = plain[0]["id"]
    assert store.reference_values("Encounter", parse("Encounter", {"_id": one}), ["subject"]) == (
        {plain[0]["subject"]["reference"]},
        [],
    )


def test_reference_values_declines_what_the_index_cannot_answer() -> None:
    sb = Sandbox.generate(patients=1, seed=2, years=1, key=MasterKey.generate())
    store = sb._store  # noqa: SLF001 - a store-level function under test
    assert store.reference_values("Encounter", parse("Encounter", {}), ["subject"]) is None
