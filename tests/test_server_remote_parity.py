"""What a remote session offers beyond REST runs the local Session's own method on the server,
as the token's user, and answers as that method does locally: the report catalogue (exact
types, never silently partial), ViewDefinitions, audited actions, registration updates and
label changes, with the same typed errors. One real server on loopback for the module.
"""

from __future__ import annotations

import json
import warnings

import pytest

from ehr_sandbox import connect
from ehr_sandbox.errors import AccessDenied, ExerciseError, SandboxError, ValidationError
from ehr_sandbox.exercises.builtin.reports.common import normalised
from ehr_sandbox.exercises.registry import get
from ehr_sandbox.reports import Report, load_view, wire
from ehr_sandbox.reports.remote import RemoteReport, ReportTruncated
from tests.server_fixture import course_with_students, running_server, token_for

EXERCISES = ["reports/day-schedule", "records/registration-update"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("server")
    with running_server(data) as app:
        app.data_dir = data
        yield app


def as_user(server, username: str):
    """(remote session, local session of the same user on the server's clinic)."""
    remote = connect(server.root, token=token_for(server, username))
    return remote, server.state.sandbox.login(username)


def raised(call):
    """The error a call raises (its type and message), or None."""
    try:
        call()
    except SandboxError as exc:
        return type(exc).__name__, str(exc)
    return None


@pytest.mark.parametrize(
    ("username", "name", "params"),
    [
        ("fd.smith", "day_schedule", {}),
        ("billing.davis", "ar_aging", {}),
        ("dr.patel", "bp_control", {"period_start": "2025-01-01"}),
    ],
)
def test_a_catalogue_report_runs_on_the_server_exactly_as_locally(server, username, name, params):
    remote, local = as_user(server, username)
    there = remote.reports.run(name, **params)
    here = local.reports.run(name, **params)
    assert isinstance(there, RemoteReport) and isinstance(there, Report)
    assert there.to_arrow().equals(here.to_arrow())  # same rows, same column types
    for attr in ("name", "title", "description", "sql", "columns", "plot_spec"):
        assert getattr(there, attr) == getattr(here, attr), attr
    assert {k: str(v) for k, v in there.params.items()} == {
        k: str(v) for k, v in here.params.items()
    }
    assert there.views == here.views and there.confidentiality == here.confidentiality
    assert there.truncated is False and there.total_rows == len(here)
    assert there.to_pylist() == here.to_pylist()


def test_the_catalogue_and_custom_sql_read_as_locally(server):
    remote, local = as_user(server, "dr.patel")
    assert remote.reports.reference_date == local.reports.reference_date
    assert remote.reports.catalog().equals(local.reports.catalog())
    query = "SELECT gender, count(*) AS n FROM patient GROUP BY gender ORDER BY gender"
    assert remote.reports.sql(query).to_arrow().equals(local.reports.sql(query).to_arrow())
    assert remote.reports.view_table("condition").equals(local.reports.view_table("condition"))


def test_reports_refuse_as_locally(server):
    remote, local = as_user(server, "fd.smith")
    for call in (
        lambda s: s.reports.run("day_schedule", when="2026-01-01"),  # unknown parameter
        lambda s: s.reports.run("bp_control"),  # the front desk may not read Observations
        lambda s: s.reports.sql("SELECT * FROM read_text('/etc/passwd')"),
    ):
        there = raised(lambda c=call: c(remote))
        assert there is not None and there == raised(lambda c=call: c(local))


def test_a_report_the_server_cuts_says_so_and_cannot_be_handed_in(server, monkeypatch):
    remote, _ = as_user(server, "dr.patel")
    monkeypatch.setattr(wire, "MAX_REPORT_ROWS", 3)
    with pytest.warns(ReportTruncated, match="3 of 7 rows"):
        rep = remote.reports.sql("SELECT * FROM range(7) r")
    assert rep.truncated and len(rep) == 3 and rep.total_rows == 7
    assert "truncated" in repr(rep)
    with pytest.raises(ExerciseError, match="in part"):
        normalised("reports/access-report", rep)
    with pytest.raises(ValidationError, match="at most 3 rows"):
        remote.reports.view_table("patient")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ReportTruncated)
        whole = remote.reports.sql("SELECT * FROM range(3) r")  # not cut: no warning
    assert not whole.truncated and len(whole) == 3


def test_run_view_runs_on_the_server_as_the_user(server, monkeypatch):
    remote, local = as_user(server, "dr.patel")
    view = load_view("patient")
    assert remote.run_view(view) == local.run_view(view)
    assert len(remote.run_view(view)) >= 1
    fd_remote, fd_local = as_user(server, "fd.smith")
    obs = load_view("observation")
    assert fd_remote.run_view(obs) == fd_local.run_view(obs)  # what the role may see: none
    monkeypatch.setattr(wire, "MAX_REPORT_ROWS", 1)
    with pytest.raises(ValidationError, match="at most 1 rows"):
        remote.run_view(view)


def test_audit_action_records_as_the_user_and_refuses_as_locally(server):
    remote, local = as_user(server, "ma.garcia")
    remote.audit_action("parity-demo", detail='{"n": 1}')
    assert [e["outcomeDesc"] for e in remote.own_actions("parity-demo")] == ['{"n": 1}']
    for kind in ("read", "label", "Not-Lower"):
        there = raised(lambda k=kind: remote.audit_action(k))
        assert there is not None and there == raised(lambda k=kind: local.audit_action(k))


def test_registration_updates_run_the_sessions_methods_on_the_server(server):
    remote, local = as_user(server, "fd.smith")
    pid = remote.search("Patient").first()["id"]
    address = {"use": "home", "line": ["12 Elm St"], "city": "Springfield", "postalCode": "01101"}
    coverage = {"payor": [{"display": "Acme Health"}], "subscriberId": "A-1"}
    for call in (
        lambda s: s.update_address(f"Patient/{pid}", address, reason=""),
        lambda s: s.update_coverage(f"Patient/{pid}", {"payor": []}, reason="new card"),
        lambda s: s.update_coverage(f"Patient/{pid}", coverage, reason="new card", order=7),
        lambda s: s.update_address(pid, address, reason="moved"),  # not a reference
    ):
        there = raised(lambda c=call: c(remote))
        assert there is not None and there == raised(lambda c=call: c(local))
    patient = remote.update_address(
        f"Patient/{pid}", address, reason="Patient moved", effective="2026-01-02"
    )
    homes = [a for a in patient["address"] if a.get("use") == "home"]
    assert homes[-1]["line"] == ["12 Elm St"]
    assert all((a.get("period") or {}).get("end") for a in homes[:-1])
    assert remote.provenance(f"Patient/{pid}") == local.provenance(f"Patient/{pid}")
    system = server.state.sandbox.system_session()
    assert "Patient moved" in json.dumps(system.provenance(f"Patient/{pid}")[-1])
    new = remote.update_coverage(f"Patient/{pid}", coverage, reason="New insurer", order=1)
    assert new["resourceType"] == "Coverage" and new["order"] == 1
    assert new["beneficiary"]["reference"] == f"Patient/{pid}"
    current = [
        c
        for c in remote.search("Coverage", beneficiary=f"Patient/{pid}").fetch()
        if int(c.get("order", 1)) == 1 and not (c.get("period") or {}).get("end")
    ]
    assert [c["id"] for c in current] == [new["id"]]  # the one it replaced is end-dated


def test_relabel_is_decided_by_the_servers_session(server):
    remote, local = as_user(server, "dr.patel")
    pid = remote.search("Patient").first()["id"]
    there = raised(lambda: remote.relabel(f"Patient/{pid}", "R", reason="asked"))
    assert there is not None and there[0] == "AccessDenied"
    assert there == raised(lambda: local.relabel(f"Patient/{pid}", "R", reason="asked"))
    assert remote.purpose == local.purpose
    officer, officer_here = as_user(server, "po.wilson")
    ref = f"Patient/{pid}"
    bad = raised(lambda: officer.relabel(ref, "Q", reason="asked"))  # not a confidentiality
    assert bad is not None and bad == raised(lambda: officer_here.relabel(ref, "Q", reason="asked"))
    done = officer.relabel(ref, "R", reason="patient asked")
    assert "R" in {c.get("code") for c in done["meta"]["security"]}
    with pytest.raises(AccessDenied):
        remote.relabel(ref, "N", reason="asked")


@pytest.fixture(scope="module")
def student(server):
    _admin, course, (ana,) = course_with_students(
        server, server.data_dir, "Parity", EXERCISES, ["ana"]
    )
    return ana, course


@pytest.mark.parametrize("exercise", EXERCISES)
def test_reference_solutions_that_read_the_attempt_score_full_marks_remotely(
    server, student, exercise
):
    s, course = student
    att = s.start(exercise, course=course)
    assert att.exercise is get(exercise)
    assert att.student == "ana"
    assert att.user.username == get(exercise).role
    assert not hasattr(att, "variant")  # its seed would rebuild the answer key
    get(exercise).solution.apply(att)
    result = att.check()
    assert result.passed and result.score == result.max_score, result.feedback()


def test_signature_checks_answer_as_locally(server):
    remote, local = as_user(server, "dr.patel")
    note = remote.search("DocumentReference").first()
    ref = f"DocumentReference/{note['id']}"
    assert remote.verify_signature(ref) == local.verify_signature(ref)
    remote.sign(ref)
    assert remote.verify_signature(ref) is True and local.verify_signature(ref) is True


def test_a_drug_allergy_override_reason_reaches_the_servers_session(server):
    from ehr_sandbox.errors import AllergyConflict
    from ehr_sandbox.records.allergy_check import RXNORM
    from synthetic.content import load_content

    remote, local = as_user(server, "dr.patel")
    pid = remote.search("Patient").first()["id"]
    allergy = {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "code": "active",
                }
            ]
        },
        "verificationStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                    "code": "confirmed",
                }
            ]
        },
        "type": "allergy",
        "category": ["medication"],
        "code": {
            "coding": [
                {"system": "http://snomed.info/sct", "code": "764146007", "display": "Penicillin"}
            ]
        },
        "patient": {"reference": f"Patient/{pid}"},
    }
    remote.create(allergy)
    order = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"Patient/{pid}"},
        "medicationCodeableConcept": {
            "coding": [
                {
                    "system": RXNORM,
                    "code": "308192",
                    "display": load_content().codes["rxnorm"].display("308192"),
                }
            ]
        },
    }
    with pytest.raises(AllergyConflict):
        remote.create(order)
    there = raised(lambda: remote.create(order, override_reason="  "))
    assert there is not None and there == raised(lambda: local.create(order, override_reason="  "))
    saved = remote.create(order, override_reason="tolerated amoxicillin in 2024 per allergist")
    prov = local.provenance(f"MedicationRequest/{saved['id']}")[-1]
    assert "allergy alert overridden: tolerated amoxicillin" in str(prov.get("reason"))
