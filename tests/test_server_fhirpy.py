"""``connect()`` speaks FHIR REST through fhirpy: reads, searches, creates, updates and the
``$`` operations go through it, with the same typed errors and lazy search sets as in-process;
OAuth, the course API and transactions stay on httpx (docs/server.md says why)."""

from __future__ import annotations

import pytest
import requests

from ehr_sandbox import Sandbox, connect
from ehr_sandbox.errors import ConflictError, NotFound, ValidationError
from tests.server_fixture import running_server

VITALS = "http://terminology.hl7.org/CodeSystem/observation-category"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("fhirpy")) as app:
        yield app


@pytest.fixture
def doctor(server):
    cid, secret = server.state.accounts.issue("dr.patel", kind="staff")
    s = connect(server.root, client_id=cid, secret=secret)
    yield s
    s.close()


@pytest.fixture
def through_fhirpy(monkeypatch):
    """Every request fhirpy sends (it sends with ``requests``; httpx does not)."""
    sent: list[tuple[str, str]] = []
    real = requests.request

    def spy(method, url, **kwargs):
        sent.append((method.upper(), url))
        return real(method, url, **kwargs)

    monkeypatch.setattr(requests, "request", spy)
    return sent


def pulse(pid: str, value: object = 70) -> dict:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": VITALS, "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": "2026-01-02T08:00:00+00:00",
        "valueQuantity": {
            "value": value,
            "unit": "/min",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
    }


def test_fhir_calls_go_through_fhirpy_and_search_sets_stay_lazy(doctor, through_fhirpy):
    search = doctor.search("Patient", _count=2)
    assert through_fhirpy == []  # nothing is sent until the search set is used
    first = search.first()
    assert (
        through_fhirpy
        and through_fhirpy[-1][0] == "GET"
        and "/fhir/Patient?" in through_fhirpy[-1][1]
    )
    pid = first["id"]
    assert list(first)[0] == "resourceType"  # plain dicts, shaped as in-process
    n = len(through_fhirpy)
    created = doctor.create(pulse(pid))
    read = doctor.read("Observation", created["id"])
    changed = doctor.update({**read, "valueQuantity": {**read["valueQuantity"], "value": 71}})
    assert changed["meta"]["versionId"] == "2"
    assert doctor.vread("Observation", created["id"], 1)["valueQuantity"]["value"] == 70
    assert [v["meta"]["versionId"] for v in doctor.history("Observation", created["id"])] == [
        "2",
        "1",
    ]
    methods = [m for m, _ in through_fhirpy[n:]]
    assert methods == ["POST", "GET", "PUT", "GET", "GET"]
    # a transaction is a POST to the base itself: httpx, not fhirpy
    n = len(through_fhirpy)
    doctor.transaction(
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {"resource": pulse(pid, 72), "request": {"method": "POST", "url": "Observation"}}
            ],
        }
    )
    assert len(through_fhirpy) == n


def test_typed_errors_through_fhirpy_match_in_process(server, doctor):
    local = Sandbox.generate(patients=4, seed=3).login("dr.patel")
    outcomes = {}
    for name, s in (("local", local), ("remote", doctor)):
        pid = s.search("Patient").first()["id"]
        obs = s.create(pulse(pid))
        seen = {}
        for case, call in {
            "absent": lambda s=s: s.read("Observation", "no-such-id"),
            "stale": lambda s=s, obs=obs: (
                s.update({**obs, "status": "amended"}),
                s.update({**obs, "status": "corrected"}),
            ),
            "empty value": lambda s=s, pid=pid: s.create(pulse(pid, None)),
            "wrong type": lambda s=s, pid=pid: s.create(pulse(pid, "seventy")),
        }.items():
            with pytest.raises((NotFound, ConflictError, ValidationError)) as info:
                call()
            seen[case] = type(info.value).__name__
        outcomes[name] = seen
    assert outcomes["remote"] == outcomes["local"]
    assert outcomes["remote"] == {
        "absent": "NotFound",
        "stale": "ConflictError",
        "empty value": "ValidationError",
        "wrong type": "ValidationError",
    }


def test_a_long_search_falls_back_to_post_search(doctor, through_fhirpy):
    ids = [f"id{n:04d}" for n in range(600)]  # a query longer than a GET carries
    found = doctor.search("Patient", _id=",".join(ids)).fetch()
    assert found == []
    assert not any("_id=" in url for _, url in through_fhirpy)
