"""The exercise framework's bookkeeping in the audit trail (a hint taken, a hand-in, a login as
one of the exercise's people) is recorded by the framework only: the gradebook (attempts used,
hand-in time), the hint count and the collateral check trust it, so no user's session can
write one, locally or through the classroom server's FHIR API."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ehr_sandbox import connect, exercises
from ehr_sandbox.errors import ValidationError
from ehr_sandbox.exercises.attempt import LOGIN_KIND, hint_events
from ehr_sandbox.exercises.collateral import BOOKKEEPING
from ehr_sandbox.exercises.grading import event_detail, event_kind
from ehr_sandbox.sandbox import Sandbox
from ehr_sandbox.session import FRAMEWORK_AUDIT_KINDS
from tests.server_fixture import course_with_students, running_server

EXERCISE = "privacy/break-the-glass"


@pytest.fixture(scope="module")
def sb() -> Sandbox:
    return Sandbox.generate(patients=2, seed=5, years=1)


def test_collateral_skips_exactly_the_kinds_no_session_may_write() -> None:
    assert BOOKKEEPING == FRAMEWORK_AUDIT_KINDS
    assert {LOGIN_KIND, "exercise-hint", "exercise-submit", "exercise-check"} <= BOOKKEEPING


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from(sorted(FRAMEWORK_AUDIT_KINDS)),
    detail=st.one_of(st.none(), st.text(max_size=40)),
    patient=st.one_of(st.none(), st.just("Patient/p1")),
    user=st.integers(min_value=0, max_value=50),
)
def test_no_user_can_record_a_framework_kind_through_a_session(
    sb: Sandbox, kind: str, detail: str | None, patient: str | None, user: int
) -> None:
    account = sb.users[user % len(sb.users)]
    session = sb.login_patient(account.patient_id) if account.patient_id else None
    session = session or sb.login(account.username)
    before = sb.audit.count()
    with pytest.raises(ValidationError, match="kind: expected an action name that is not the"):
        session.audit_action(kind, patient=patient, detail=detail)
    assert sb.audit.count() == before  # nothing written


def test_the_framework_records_hints_logins_and_hand_ins_as_the_students_user() -> None:
    att = exercises.start(EXERCISE, student="bob")
    role = att.exercise.role
    assert hint_events(att.sandbox, role) == 0
    att.hint(accept_cost=True)
    assert hint_events(att.sandbox, role) == 1
    person = att.exercise.actors[0]
    att.login(person)
    result = att.submit()
    mine = [e for e in att.sandbox.audit.events(user=role) if event_kind(e) in BOOKKEEPING]
    assert [event_kind(e) for e in mine] == ["exercise-hint", LOGIN_KIND, "exercise-submit"]
    assert mine[1]["outcomeDesc"] == person
    assert event_detail(mine[2]) == {"attempt": result.attempt, "at": result.checked_at}
    with pytest.raises(ValidationError, match="kind: expected one of"):
        att.sandbox.record_framework_action(role, "disclose")


def test_a_student_cannot_forge_the_frameworks_events_through_the_server(tmp_path) -> None:
    with running_server(tmp_path, patients=3, seed=4) as app:
        _, course, (student,) = course_with_students(app, tmp_path, "c1", [EXERCISE], ["alice"])
        att = student.start(EXERCISE, course=course)
        hosted = app.state.courses.attempt(att.attempt_id, "alice")
        trail = hosted.handle.sandbox.audit
        role = hosted.attempt.exercise.role
        before = trail.count()
        forged = json.dumps({"attempt": 1, "at": "2000-01-01T00:00:00+00:00"})
        for kind in sorted(FRAMEWORK_AUDIT_KINDS):
            with pytest.raises(ValidationError, match="the framework records those itself"):
                att.session.audit_action(kind, detail=forged)
        officer = att.login(hosted.attempt.exercise.actors[0])
        with pytest.raises(ValidationError, match="the framework records those itself"):
            officer.audit_action("exercise-hint", detail="0")
        outsider = connect(app.root, token=_staff_token(app, role))
        with pytest.raises(ValidationError, match="the framework records those itself"):
            outsider.audit_action("exercise-submit", detail=forged)
        kinds = [event_kind(e) for e in trail.events()[before:]]
        assert kinds.count(LOGIN_KIND) == 1  # the server's own record of the login
        assert not {"exercise-hint", "exercise-submit", "exercise-check"} & set(kinds)
        att.submit()
        submits = [e for e in trail.events(user=role) if event_kind(e) == "exercise-submit"]
        assert len(submits) == 1 and event_detail(submits[0])["at"] != "2000-01-01T00:00:00+00:00"


def _staff_token(app, username: str) -> str:
    from tests.server_fixture import token_for

    return token_for(app, username)
