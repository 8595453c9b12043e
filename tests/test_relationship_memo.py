"""A fresh login reuses whom its user treats only while the data is what it was worked out on.

The rule: whatever was written before (by a session, directly to the store, inside a
transaction later rolled back), ``Sandbox.treating`` and a fresh session's relationships equal
the definition (``treating_patients``) evaluated on the store as it is now, for every user.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ehr_sandbox.relationship_memo import RelationshipMemo
from ehr_sandbox.relationships import schedule_window, treating_patients
from ehr_sandbox.sandbox import Sandbox
from ehr_sandbox.search import parse
from ehr_sandbox.store import Store
from ehr_sandbox.users import User

APPOINTMENT_STATUSES = (
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
ENCOUNTER_ALL_STATUSES = (
    "planned",
    "arrived",
    "triaged",
    "in-progress",
    "onleave",
    "finished",
    "cancelled",
    "entered-in-error",
    "unknown",
)


@pytest.fixture(scope="module")
def base() -> Sandbox:
    return Sandbox.generate(patients=3, seed=5, years=1)


def _definition(sb: Sandbox, user: User) -> frozenset[str]:
    """The rule evaluated afresh on the store (no memo)."""
    store = sb._store  # noqa: SLF001 - the oracle reads the store as it is now
    return frozenset(treating_patients(store, user, sb.reference_date))


def _agrees(sb: Sandbox) -> None:
    for user in sb.users:
        want = _definition(sb, user)
        assert sb.treating(user.username) == want, user.username
        assert sb.login(user.username).context.treating == want, user.username


def _patients(sb: Sandbox) -> list[str]:
    store = sb._store  # noqa: SLF001 - the fixture reads the store
    return sorted(store.search_ids("Patient", parse("Patient", {})))


def _practitioners(sb: Sandbox) -> list[str]:
    return sorted({u.practitioner_id for u in sb.users if u.practitioner_id})


def _appointment(day: date, status: str, actor: str, patient: str, k: int) -> dict[str, Any]:
    return {
        "resourceType": "Appointment",
        "id": f"memo-appt-{k}",
        "status": status,
        "start": f"{day.isoformat()}T10:00:00Z",
        "end": f"{day.isoformat()}T10:20:00Z",
        "participant": [
            {"actor": {"reference": f"Practitioner/{actor}"}, "status": "accepted"},
            {"actor": {"reference": f"Patient/{patient}"}, "status": "accepted"},
        ],
    }


def _encounter(status: str, actor: str, patient: str, k: int) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": f"memo-enc-{k}",
        "status": status,
        "class": {"code": "AMB"},
        "subject": {"reference": f"Patient/{patient}"},
        "participant": [{"individual": {"reference": f"Practitioner/{actor}"}}],
    }


# one write: (kind, status index, actor index, patient index or a new id, day offset, rolled back)
WRITE = st.tuples(
    st.sampled_from(["appointment", "encounter", "panel"]),
    st.integers(0, 9),
    st.integers(0, 20),
    st.one_of(st.integers(0, 2), st.sampled_from(["new-a", "new-b"])),
    st.integers(-9, 9),
    st.booleans(),
)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(writes=st.lists(WRITE, min_size=1, max_size=6))
def test_every_login_sees_the_definition_on_the_current_data(
    base: Sandbox, writes: list[tuple[str, int, int, Any, int, bool]]
) -> None:
    sb = base.copy()
    store = sb._store  # noqa: SLF001 - writes by every path, the door's and around it
    patients, practitioners = _patients(sb), _practitioners(sb)
    monday = date.fromisoformat(schedule_window(sb.reference_date)[0])
    _agrees(sb)
    for k, (kind, status, actor, patient, offset, rolled_back) in enumerate(writes):
        pid = patients[patient] if isinstance(patient, int) else patient
        who = practitioners[actor % len(practitioners)]
        if kind == "appointment":
            status_code = APPOINTMENT_STATUSES[status % len(APPOINTMENT_STATUSES)]
            resource = _appointment(monday + timedelta(days=offset), status_code, who, pid, k)
        elif kind == "encounter":
            status_code = ENCOUNTER_ALL_STATUSES[status % len(ENCOUNTER_ALL_STATUSES)]
            resource = _encounter(status_code, who, pid, k)
        else:
            current = store.read("Patient", patients[actor % len(patients)])
            assert current is not None
            resource = {**current, "generalPractitioner": [{"reference": f"Practitioner/{who}"}]}
        if rolled_back:
            with pytest.raises(RuntimeError), store.transaction():
                store.update(resource)
                _agrees(sb)  # answers about uncommitted data are right, and not kept
                raise RuntimeError("roll back")
        else:
            store.update(resource)
        _agrees(sb)


def test_an_answer_about_a_rolled_back_write_is_never_reused(base: Sandbox) -> None:
    """A write rolled back frees its version row number; the next write takes it again. What
    was worked out while the rolled-back write stood must not be taken for the new data."""
    sb = base.copy()
    store = sb._store  # noqa: SLF001 - the scenario needs a transaction around the door
    doctor = sb.user("dr.patel")
    before = sb.treating("dr.patel")
    me = doctor.practitioner_id
    assert me is not None
    with pytest.raises(RuntimeError), store.transaction():
        store.create(_encounter("finished", me, "ghost-1", 1))
        inside = store.change_mark()
        assert "ghost-1" in sb.treating("dr.patel")
        raise RuntimeError("roll back")
    store.create(_encounter("cancelled", me, "ghost-2", 2))
    assert store.change_mark() == inside  # the same mark now names other data
    assert sb.treating("dr.patel") == _definition(sb, doctor) == before


def test_the_same_data_is_worked_out_once_per_kind_of_user() -> None:
    st_ = Store()
    _ = st_.create({"resourceType": "Patient", "id": "p"})
    seen: list[str] = []

    def work_out(user: User, day: date) -> set[str]:
        seen.append(f"{user.username}@{day}")
        return {user.practitioner_id or ""}

    memo = RelationshipMemo(st_.change_mark, lambda: st_.connection.in_transaction, work_out)
    a = User("dr.a", "physician", "Dr A", "prac-a")
    b = User("dr.b", "physician", "Dr B", "prac-b")
    day, later = date(2026, 1, 1), date(2026, 2, 1)
    asked = [(a, day), (b, day), (a, day), (a, later)]
    assert [memo.treating(u, d) for u, d in asked] == [
        {"prac-a"},
        {"prac-b"},
        {"prac-a"},
        {"prac-a"},
    ]
    assert seen == ["dr.a@2026-01-01", "dr.b@2026-01-01", "dr.a@2026-02-01"]
    _ = st_.create({"resourceType": "Patient", "id": "q"})  # any write: worked out again
    assert memo.treating(a, day) == {"prac-a"} and len(seen) == 4


def test_a_fresh_login_reusing_relationships_still_audits_every_patient(base: Sandbox) -> None:
    sb = base.copy()
    cold = sb.login("dr.patel")
    first = [p["id"] for p in cold.search("Patient").fetch()]
    warm = sb.login("dr.patel")
    before = sb.audit.count()
    again = [p["id"] for p in warm.search("Patient").fetch()]
    assert again == first and set(first) <= _definition(sb, sb.user("dr.patel"))
    assert sb.audit.count() - before == len(set(first))
    assert sb.audit.verify().ok


def test_a_rolled_back_booking_closes_the_chart_in_sessions_already_open(base: Sandbox) -> None:
    """A booking written inside an atomic block opens the chart while it stands (the same
    connection sees it); once the block is rolled back, every open session, and every fresh
    login, works its relationships out again without it."""
    sb = base.copy()
    doctor = sb.login("dr.okafor")
    pid = next(p for p in _patients(sb) if p not in doctor.context.treating)
    fd = sb.login("fd.smith")
    day = schedule_window(sb.reference_date)[0]
    booking = _appointment(date.fromisoformat(day), "booked", "prac-dr.okafor", pid, 0)
    del booking["id"]
    with pytest.raises(RuntimeError), fd.atomic():
        fd.create(booking)
        assert doctor.search("Patient", _id=pid).count() == 1
        raise RuntimeError("roll back")
    assert doctor.search("Patient", _id=pid).count() == 0
    assert pid not in doctor.context.treating
    assert pid not in sb.login("dr.okafor").context.treating
    assert doctor.context.treating == _definition(sb, sb.user("dr.okafor"))
