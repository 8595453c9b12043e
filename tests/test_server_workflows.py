"""The workflow modules run unchanged against a remote session: the sandbox clock, the user,
bulk reads, the patient index, own audited actions and patient identification are server
operations, and the trusted parts (identification's comparison with the chart, its audit
event) run on the server. One real server on loopback for the module (server tests are slow).
"""

from __future__ import annotations

import json

import httpx
import pytest

from ehr_sandbox import connect, remote
from ehr_sandbox.audit import event_username
from ehr_sandbox.errors import AccessDenied, ValidationError
from ehr_sandbox.exercises.registry import get
from ehr_sandbox.workflows import care
from ehr_sandbox.workflows.base import RuleRefused, now
from tests.server_fixture import course_with_students, running_server, token_for

# new-patient-mpi registers a patient: in the server's encrypted attempt its id differs from
# the reference run's, and the collateral budget must count its records all the same
EXERCISES = [
    "front-office/no-show-recall",
    "clinical/rooming-abnormal-bp",
    "front-office/new-patient-mpi",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("server")
    with running_server(data) as app:
        app.data_dir = data
        yield app


@pytest.fixture(scope="module")
def student(server):
    """A student enrolled in a course that assigns :data:`EXERCISES`; (session, course)."""
    _admin, course, (ana,) = course_with_students(
        server, server.data_dir, "Workflows", EXERCISES, ["ana"]
    )
    return ana, course


def as_user(server, username: str):
    """(remote session, local session of the same user on the server's clinic)."""
    return connect(server.root, token=token_for(server, username)), server.state.sandbox.login(
        username
    )


@pytest.mark.parametrize("exercise", EXERCISES)
def test_reference_solution_scores_full_marks_remotely(server, student, exercise):
    s, course = student
    att = s.start(exercise, course=course)
    get(exercise).solution.apply(att)
    result = att.check()
    assert result.passed, result.feedback()
    assert result.score == result.max_score


def test_whoami_gives_the_user_and_the_servers_clock(server):
    r, local = as_user(server, "fd.smith")
    assert (r.user.username, r.role, r.user.practitioner_id) == (
        local.user.username,
        local.role,
        local.user.practitioner_id,
    )
    assert r.user.ref == local.user.ref
    assert now(r) == local.now() == server.state.sandbox.clock.peek()
    for rtype in ("Patient", "Observation", "Slot"):
        assert r.can_read(rtype) == local.can_read(rtype)
    assert r.readable_types() == local.readable_types()


def test_resources_pages_through_everything_the_user_may_see(server, monkeypatch):
    monkeypatch.setattr(remote, "RESOURCES_PAGE", 3)
    r, local = as_user(server, "fd.smith")
    got = [p["id"] for p in r.resources("Patient")]
    assert len(got) > 3  # more than one page
    assert sorted(got) == sorted(p["id"] for p in local.resources("Patient"))
    assert list(r.resources("Observation")) == list(local.resources("Observation")) == []


def test_find_patient_runs_the_sessions_method_on_the_server(server):
    r, local = as_user(server, "fd.smith")
    p = local.search("Patient").first()
    family, born = p["name"][0]["family"], p["birthDate"]
    found = r.find_patient(name=family, birthdate=born)
    assert [x["id"] for x in found] == [x["id"] for x in local.find_patient(family, born)]
    assert p["id"] in [x["id"] for x in found]
    with pytest.raises(ValidationError) as remote_err:
        r.find_patient()
    with pytest.raises(ValidationError) as local_err:
        local.find_patient()
    assert str(remote_err.value) == str(local_err.value)


def test_identify_compares_and_audits_on_the_server(server):
    r, local = as_user(server, "ma.garcia")
    p = local.search("Patient").first()
    ref = f"Patient/{p['id']}"
    name = f"{p['name'][0]['given'][0]} {p['name'][0]['family']}"
    before = len(r.own_actions(care.IDENTIFY_KIND, patient=ref))

    assert care.identify(r, ref, name=name, birth_date=p["birthDate"]) == ref
    events = r.own_actions(care.IDENTIFY_KIND, patient=ref)
    assert len(events) == before + 1
    assert care.identification(events[-1])["matched"] is True
    assert events == local.own_actions(care.IDENTIFY_KIND, patient=ref)
    assert care.is_identified(r, ref)

    with pytest.raises(RuleRefused) as wrong:
        care.identify(r, ref, name=name, birth_date="1900-01-01")
    assert (wrong.value.rule_id, wrong.value.path) == ("care.two-identifiers", "birth_date")
    latest = r.own_actions(care.IDENTIFY_KIND, patient=ref)[-1]
    assert care.identification(latest)["matched"] is False
    assert not care.is_identified(r, ref)

    # one identifier: the same typed refusal as in-process, and nothing audited
    count = len(r.own_actions(care.IDENTIFY_KIND, patient=ref))
    with pytest.raises(RuleRefused) as remote_one:
        care.identify(r, ref, name=name)
    with pytest.raises(RuleRefused) as local_one:
        care.identify(local, ref, name=name)
    assert str(remote_one.value) == str(local_one.value)
    assert remote_one.value.rule_id == local_one.value.rule_id
    assert len(r.own_actions(care.IDENTIFY_KIND, patient=ref)) == count


def test_identify_and_own_actions_refuse_bad_input(server):
    r = connect(server.root, token=token_for(server, "ma.garcia"))
    token = token_for(server, "ma.garcia")
    slot_target = f"{server.root}/fhir/Slot/s1/$identify"
    params = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "name", "valueString": "A B"},
            {"name": "birth-date", "valueString": "2000-01-01"},
        ],
    }
    reply = httpx.post(slot_target, json=params, headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 422
    assert "Patient" in reply.json()["issue"][0]["diagnostics"]
    with pytest.raises(ValidationError) as bad_kind:
        r.own_actions("read")
    assert "kind" in str(bad_kind.value)


def test_a_writes_reason_reaches_its_provenance(server):
    r, local = as_user(server, "dr.patel")
    pid = local.search("Patient").first()["id"]
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": "2026-01-05T08:00:00+00:00",
        "valueQuantity": {
            "value": 70,
            "unit": "/min",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
    }
    reason = "transcribed from the paper flowsheet"
    made = r.create(obs, reason=reason)
    assert reason in json.dumps(local.provenance(f"Observation/{made['id']}"))

    before = local.search("Observation", patient=f"Patient/{pid}").count()
    reply = httpx.post(
        f"{server.root}/fhir/Observation",
        json=obs,
        headers={
            "Authorization": f"Bearer {token_for(server, 'dr.patel')}",
            "X-Provenance": "a reason, not a Provenance",
        },
    )
    assert reply.status_code == 422
    assert reply.json()["issue"][0]["expression"] == ["X-Provenance.reason"]
    assert local.search("Observation", patient=f"Patient/{pid}").count() == before


def test_audit_trail_reads_go_through_the_sessions_policy(server):
    officer, local_officer = as_user(server, "po.wilson")
    events = officer.audit_events()
    # the server's trail, as the Session gives it (read afterwards, it only grew) ...
    assert local_officer.audit_events()[: len(events)] == events
    # ... and reading it was audited first, as this user
    assert event_username(events[-1]) == "po.wilson"
    desk, local_desk = as_user(server, "fd.smith")
    with pytest.raises(AccessDenied) as remote_err:
        desk.audit_events()
    with pytest.raises(AccessDenied) as local_err:
        local_desk.audit_events()
    assert str(remote_err.value) == str(local_err.value)
