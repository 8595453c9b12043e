"""An attempt logs in as the exercise's other people, and as nobody else.

``att.login(username)`` and ``att.login_patient(patient_id)`` (locally and on a classroom
server) reach only the people the exercise declares (``Exercise.actors``): never the
student's own role (that is ``att.session``), the instructor, an administrator, another user
of the sandbox or another patient. On the server the token for that person works in the
same attempt only, is issued to the attempt's owner only, and is checked again on every
request. What the other person does is theirs: it neither stands in for the student's own
work nor escapes the collateral-damage criterion.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ehr_sandbox import exercises
from ehr_sandbox.errors import AccessDenied, NotFound, SandboxError
from ehr_sandbox.exercises.people import declared_patients, declared_staff, person_login
from ehr_sandbox.exercises.registry import catalog, get
from ehr_sandbox.remote import RemoteSession
from ehr_sandbox.sandbox import Sandbox
from tests.server_fixture import course_with_students, running_server

EXERCISES = [get(row["id"]) for row in catalog()]
STAFF = [u.username for u in Sandbox.generate(patients=1, seed=1, years=1).users]
OUTSIDERS = ["admin", "root", "system", "instructor:teacher", "student:c:ana", "patient/p1", ""]


@settings(max_examples=200, deadline=None)
@given(
    ex=st.sampled_from(EXERCISES),
    name=st.sampled_from(STAFF + OUTSIDERS) | st.text(max_size=12),
)
def test_only_declared_staff_may_be_logged_in_as(ex, name):
    staff = declared_staff(ex)
    if name in staff:
        assert person_login(ex, {}, username=name) == name
        assert name != ex.role
    else:
        with pytest.raises(AccessDenied) as err:
            person_login(ex, {}, username=name)
        assert ex.id in str(err.value)
        assert "expected one of the exercise's people" in str(err.value)
        assert all(s in str(err.value) for s in staff)


@settings(max_examples=200, deadline=None)
@given(
    ex=st.sampled_from(EXERCISES),
    facts=st.dictionaries(
        st.sampled_from(["patient_id", "routine_id", "emergency_id", "other"]),
        st.sampled_from(["p1", "p2", "Patient/p3"]),
    ),
    pid=st.sampled_from(["p1", "p2", "p3", "Patient/p1", "Patient/p3", "patient/p2", ""]),
)
def test_only_the_patient_the_facts_name_may_be_logged_in_as(ex, facts, pid):
    allowed = declared_patients(ex, facts)
    bare = pid.split("/", 1)[-1]
    if bare and bare in allowed:
        assert person_login(ex, facts, patient=pid) == f"patient/{bare}"
    else:
        with pytest.raises(AccessDenied, match="login_patient: patient: expected"):
            person_login(ex, facts, patient=pid)


def test_exactly_one_of_username_and_patient():
    ex = EXERCISES[0]
    for kwargs in ({}, {"username": "x", "patient": "p1"}):
        with pytest.raises(AccessDenied, match="exactly one"):
            person_login(ex, {}, **kwargs)


# ------------------------------------------------------------------------------ locally
def test_role_policy_logs_in_as_the_front_desk_only():
    att = exercises.start("privacy/role-policy", "ana")
    fd = att.login(att.facts["fd_user"])
    assert fd.user.username == att.facts["fd_user"]
    assert fd.user.role == "front_desk"
    logins = [
        e
        for e in att.session.own_actions("exercise-login")
        if e.get("outcomeDesc") == att.facts["fd_user"]
    ]
    assert len(logins) == 1  # recorded as the student's user
    for name in (att.exercise.role, "dr.patel", "admin", "instructor:teacher", "system"):
        with pytest.raises(AccessDenied, match="fd.smith, fd.brown"):
            att.login(name)
    with pytest.raises(AccessDenied, match=r"\(none\)"):
        att.login_patient(att.facts["probes"][0])


def test_restriction_logs_in_as_its_patient_only():
    att = exercises.start("privacy/restriction", "ana")
    pid = att.facts["patient_id"]
    for given_id in (pid, f"Patient/{pid}"):
        kiosk = att.login_patient(given_id)
        assert kiosk.user.username == f"patient/{pid}"
        assert kiosk.user.role == "patient"
    other = next(p["id"] for p in att.session.search("Patient").fetch() if p["id"] != pid)
    with pytest.raises(AccessDenied, match=f"Patient/{pid}"):
        att.login_patient(other)
    with pytest.raises(AccessDenied):
        att.login("po.wilson")


def test_the_other_person_cannot_do_the_students_part():
    # break-the-glass: the privacy officer breaking the glass is not the physician's override
    att = exercises.start("privacy/break-the-glass", "ana")
    f = att.facts
    po = att.login("po.wilson")
    with contextlib.suppress(SandboxError):  # whether or not the policy lets the PO do it
        po.break_glass(f"Patient/{f['emergency_id']}", f"Emergency: {f['emergency_what']}")
        po.read("Patient", f["emergency_id"])
        po.end_break_glass(f["emergency_id"])
    result = att.check()
    assert not result.criterion("emergency override with a reason").passed
    assert not result.criterion("override ended").passed
    # and the student's own user cannot do the other person's part (the review)
    att.reset()
    att.exercise.solution.apply(att)
    with pytest.raises(AccessDenied):
        att.session.btg_review_queue()


def test_role_policy_probes_by_the_student_do_not_count():
    att = exercises.start("privacy/role-policy", "ben")
    from ehr_sandbox.exercises.builtin import privacy

    f = att.facts
    privacy.submit(att, {t: ("crus" if t in ("Patient",) else "") for t in f["matrix_types"]})
    for ref in f["probes"]:  # tried as the privacy officer, not as the front desk
        with contextlib.suppress(NotFound):
            att.session.read(ref)
    assert not att.check().criterion("policy checked as the front desk").passed


def test_the_other_persons_extra_writes_are_collateral_damage():
    att = exercises.start("privacy/restriction", "cy")
    att.exercise.solution.apply(att)
    assert att.check().passed
    from ehr_sandbox.exercises.builtin.privacy.restriction import restriction_consent

    restriction_consent(att)  # the patient signs the same restriction a second time
    result = att.check()
    assert not result.criterion("no collateral damage").passed


# ------------------------------------------------------------------------------ on a server
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(the server, the instructor's session, the course, ana's and ben's sessions)."""
    data = tmp_path_factory.mktemp("server")
    with running_server(data) as app:
        admin, course, (ana, ben) = course_with_students(
            app, data, "People", ("privacy/role-policy", "privacy/restriction"), ("ana", "ben")
        )
        yield app, admin, course, ana, ben


def test_server_issues_a_declared_persons_token_in_the_same_attempt(server):
    _app, _admin, course, ana, _ben = server
    att = ana.start("privacy/role-policy", course=course)
    fd = att.login(att.facts["fd_user"])
    assert isinstance(fd, RemoteSession)
    assert fd.user.username == att.facts["fd_user"]
    patient_ref = att.facts["probes"][0]
    assert fd.read(patient_ref)["resourceType"] == "Patient"
    clinical = att.facts["probes"][-1]
    with pytest.raises(NotFound):  # the front desk's policy, in this attempt's sandbox
        fd.read(clinical)
    assert att.session.user.username == att.exercise.role  # the student's token is unchanged


def test_server_refuses_anyone_not_declared(server):
    _app, _admin, course, ana, _ben = server
    att = ana.start("privacy/role-policy", course=course)
    for name in (att.exercise.role, "dr.patel", "admin", "instructor:teacher", "student:x:ben"):
        with pytest.raises(AccessDenied, match="fd.smith, fd.brown"):
            att.login(name)
    with pytest.raises(AccessDenied, match="login_patient"):
        att.login_patient(att.facts["probes"][0])
    kiosk_att = ana.start("privacy/restriction", course=course)
    pid = kiosk_att.facts["patient_id"]
    kiosk = kiosk_att.login_patient(pid)
    assert kiosk.user.username == f"patient/{pid}"
    assert kiosk.read("Patient", pid)["id"] == pid
    with pytest.raises(AccessDenied):
        kiosk_att.login_patient("not-" + pid)


def test_server_issues_person_tokens_to_the_attempts_owner_only(server):
    app, admin, course, ana, ben = server
    att = ana.start("privacy/role-policy", course=course)
    path = f"/course/{course}/attempts/{att.attempt_id}/login"
    body = {"username": att.facts["fd_user"]}
    with pytest.raises(NotFound):  # another student
        ben.course_call("POST", path, body)
    with pytest.raises(AccessDenied):  # the instructor
        admin.course_call("POST", path, body)
    for token_of in (att.session, att.login(att.facts["fd_user"])):  # attempt tokens
        with pytest.raises(AccessDenied):
            RemoteSession(app.root, token=token_of._token).course_call("POST", path, body)  # noqa: SLF001
    # a token naming someone the exercise does not declare is refused at every request
    forged = app.state.tokens.issue(
        username="dr.patel",
        role="physician",
        scope="user/*.cruds",
        client_id="x",
        attempt=att.attempt_id,
        student="ana",
    )
    with pytest.raises(AccessDenied):
        RemoteSession(app.root, token=forged.access_token).read(att.facts["probes"][0])
    # nor may a person's token act on the course (check, submit, hint, reset)
    fd = att.login(att.facts["fd_user"])
    with pytest.raises(AccessDenied):
        fd.course_call("POST", f"/course/{course}/attempts/{att.attempt_id}/submit", {})


def test_server_grades_the_other_persons_work_as_theirs(server):
    _app, _admin, course, _ana, ben = server
    att = ben.start("privacy/restriction", course=course)
    att.exercise.solution.apply(att)
    assert att.check().passed
    from ehr_sandbox.exercises.builtin.privacy.restriction import restriction_consent

    restriction_consent(att)  # the patient's second, identical Consent, made remotely
    assert not att.check().criterion("no collateral damage").passed
