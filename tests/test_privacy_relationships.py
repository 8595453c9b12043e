"""Who is in a treatment relationship (rule 3 of the policy; docs/privacy.md).

Rules, each stated over participation statuses, roles and times:

1. **A participant who declined is not in the booking** (FHIR participationstatus). A booked
   Appointment opens the patient's chart to a practitioner in it unless that practitioner
   declined; ``accepted``, ``tentative`` and ``needs-action`` (asked, not yet answered) all
   keep them in it. A patient who declined is not on the schedule for anybody. Declining
   closes the chart in sessions already open.
2. **Rooming staff's contact through an Encounter is time-limited.** A physician who took
   part in an Encounter keeps the relationship (they follow the patient up); a medical
   assistant or nurse keeps it while the Encounter is open (arrived, triaged, in progress,
   on leave) or when it is this week, not forever.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ehr_sandbox.relationships import (
    ENCOUNTER_STATUSES,
    OPEN_ENCOUNTER_STATUSES,
    schedule_window,
)
from ehr_sandbox.sandbox import Sandbox

SETTINGS = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
)
PARTICIPATION = ["accepted", "tentative", "needs-action", "declined"]
DOCTOR, ROOMING = "dr.okafor", ("ma.chen", "rn.kim")


@pytest.fixture(scope="module")
def clinic() -> Sandbox:
    return Sandbox.generate(patients=6, seed=5, years=1)


def _untreated(sb: Sandbox, *usernames: str) -> str:
    pids = sorted(p["id"] for p in sb.system_session().search("Patient").fetch_all())
    seen = set().union(*(sb.treating(u) for u in usernames))
    return next(p for p in pids if p not in seen)


def _appointment(sb: Sandbox, pid: str, doctor: str, patient: str) -> dict[str, Any]:
    start = schedule_window(sb.reference_date)[0]
    return {
        "resourceType": "Appointment",
        "status": "booked",
        "start": f"{start}T14:00:00+00:00",
        "end": f"{start}T14:20:00+00:00",
        "participant": [
            {"actor": {"reference": f"Patient/{pid}"}, "status": patient},
            {
                "actor": {"reference": f"Practitioner/{sb.user(DOCTOR).practitioner_id}"},
                "status": doctor,
            },
        ],
    }


# ---------------------------------------------------------------------------- rule 1
@SETTINGS
@given(doctor=st.sampled_from(PARTICIPATION), patient=st.sampled_from(PARTICIPATION))
def test_a_participant_who_declined_is_not_in_the_booking(
    clinic: Sandbox, doctor: str, patient: str
) -> None:
    sb = clinic.copy()
    pid = _untreated(sb, DOCTOR, *ROOMING)
    sb.login("fd.smith").create(_appointment(sb, pid, doctor, patient))
    on_schedule = patient != "declined"
    assert (pid in sb.treating(DOCTOR)) is (on_schedule and doctor != "declined")
    for user in ROOMING:
        assert (pid in sb.treating(user)) is on_schedule, user
    s = sb.login(DOCTOR)
    assert (s.search("Patient", _id=pid).count() == 1) is (pid in sb.treating(DOCTOR))


def test_declining_closes_the_chart_in_a_session_already_open(clinic: Sandbox) -> None:
    sb = clinic.copy()
    pid = _untreated(sb, DOCTOR)
    doctor = sb.login(DOCTOR)
    fd = sb.login("fd.smith")
    appt = fd.create(_appointment(sb, pid, "needs-action", "accepted"))
    assert doctor.search("Patient", _id=pid).count() == 1
    appt["participant"][1]["status"] = "declined"
    fd.update(appt)
    assert doctor.search("Patient", _id=pid).count() == 0
    assert pid not in sb.treating(DOCTOR)


# ---------------------------------------------------------------------------- rule 2
def _encounter(sb: Sandbox, pid: str, user: str, status: str, day: date) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{pid}"},
        "participant": [
            {"individual": {"reference": f"Practitioner/{sb.user(user).practitioner_id}"}}
        ],
        "period": {"start": f"{day}T09:00:00+00:00", "end": f"{day}T09:30:00+00:00"},
    }


@SETTINGS
@given(
    user=st.sampled_from([DOCTOR, *ROOMING]),
    status=st.sampled_from(ENCOUNTER_STATUSES),
    weeks_ago=st.integers(0, 60),
)
def test_rooming_staff_relate_to_an_encounter_while_it_is_open_or_this_week(
    clinic: Sandbox, user: str, status: str, weeks_ago: int
) -> None:
    sb = clinic.copy()
    pid = _untreated(sb, DOCTOR, *ROOMING)
    monday = date.fromisoformat(schedule_window(sb.reference_date)[0])
    day = monday - timedelta(weeks=weeks_ago)
    sb.system_session().create(_encounter(sb, pid, user, status, day))
    if sb.user(user).role == "physician":
        expect = True  # the treating physician follows the patient up
    else:
        expect = status in OPEN_ENCOUNTER_STATUSES or weeks_ago == 0
    assert (pid in sb.treating(user)) is expect, (user, status, weeks_ago)
    # and nobody else took part in it
    others = [u for u in (DOCTOR, *ROOMING) if u != user]
    assert all(pid not in sb.treating(u) for u in others)
