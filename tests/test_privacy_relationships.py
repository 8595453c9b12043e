"""Who is in a treatment relationship (rule 3 of the policy; docs/privacy.md).

Rules, each stated over participation statuses:

1. **A participant who declined is not in the booking** (FHIR participationstatus). A booked
   Appointment opens the patient's chart to a practitioner in it unless that practitioner
   declined; ``accepted``, ``tentative`` and ``needs-action`` (asked, not yet answered) all
   keep them in it. A patient who declined is not on the schedule for anybody. Declining
   closes the chart in sessions already open.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ehr_sandbox.relationships import schedule_window
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
