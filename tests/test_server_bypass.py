"""The bypass checklist (PRIVACY.md) through HTTP, stated as one rule: whatever a patient's
token asks, in whatever form, no response ever carries a record of another patient.

Patient A probes with every route and parameter form we know of (search with other subjects,
lists, encoded and absolute references, chains, ``_has``, wildcard and iterated includes,
sorting, huge counts, type history, vread of B's ids, batch bundles, operations, export,
reports); the test collects the ids of every resource in patient B's compartment and checks
that none of them appears in any response body.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from tests.server_fixture import running_server, token_for

TYPES = (
    "Observation",
    "Condition",
    "Encounter",
    "MedicationRequest",
    "Immunization",
    "AllergyIntolerance",
    "Procedure",
    "DiagnosticReport",
    "Claim",
    "Coverage",
    "Provenance",
    "AuditEvent",
    "DocumentReference",
    "Communication",
    "Patient",
)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("server"), patients=4, seed=11) as app:
        system = app.state.sandbox.grader_session()
        patients = system.search("Patient").fetch()
        a, b = patients[0], patients[1]
        b_ids: set[str] = {b["id"]}
        b_refs: dict[str, list[str]] = {}
        for rtype in TYPES:
            if rtype == "Patient":
                continue
            try:
                found = system.search(rtype, patient=f"Patient/{b['id']}").fetch()
            except Exception:  # noqa: BLE001 - types without a patient parameter
                continue
            b_ids |= {r["id"] for r in found}
            b_refs[rtype] = [r["id"] for r in found[:3]]
        token = token_for(app, f"patient/{a['id']}", "patient/*.rs")
        yield {"app": app, "a": a, "b": b, "b_ids": b_ids, "b_refs": b_refs, "token": token}


def probes(w: dict) -> list[tuple[str, str, dict | None, object]]:
    """(method, path, query params, json body) — every form of asking for B's data."""
    root = w["app"].root
    b, a = w["b"]["id"], w["a"]["id"]
    family = w["b"]["name"][0]["family"]
    out: list[tuple[str, str, dict | None, object]] = []
    for rtype in TYPES:
        base = f"/fhir/{rtype}"
        for params in (
            {},
            {"patient": f"Patient/{b}"},
            {"subject": f"Patient/{b}"},
            {"patient": b},
            {"subject": f"Patient/{a},Patient/{b}"},
            {"patient": f"{root}/fhir/Patient/{b}"},
            {"patient": quote(f"Patient/{b}", safe="")},
            {"patient": f"patient/{b}"},
            {"subject:Patient.name": family},
            {"patient.family": family},
            {"_include": "*"},
            {"_revinclude": "*"},
            {"_include:iterate": "*"},
            {"_sort": "-date", "_count": "1000"},
            {"_has:Observation:subject:status": "final"},
            {"_id": ",".join(w["b_refs"].get(rtype, [])) or "x"},
            {"_count": "0"},
            {"_offset": "1", "_count": "1"},
        ):
            out.append(("GET", base, params, None))
        out.append(("POST", f"{base}/_search", None, {"patient": f"Patient/{b}"}))
        out.append(("GET", f"{base}/_history", None, None))
        for rid in w["b_refs"].get(rtype, []):
            out += [
                ("GET", f"{base}/{rid}", None, None),
                ("GET", f"{base}/{rid}/_history", None, None),
                ("GET", f"{base}/{rid}/_history/1", None, None),
            ]
    out += [
        ("GET", f"/fhir/Patient/{b}", None, None),
        ("GET", f"/fhir/Patient/{b}/$everything", None, None),
        ("GET", "/fhir/$export", None, None),
        (
            "POST",
            "/fhir",
            None,
            {
                "resourceType": "Bundle",
                "type": "batch",
                "entry": [{"request": {"method": "GET", "url": f"Patient/{b}"}}]
                + [
                    {"request": {"method": "GET", "url": f"{t}/{i}"}}
                    for t, ids in w["b_refs"].items()
                    for i in ids
                ],
            },
        ),
        (
            "POST",
            "/fhir/$report",
            None,
            {
                "resourceType": "Parameters",
                "parameter": [{"name": "sql", "valueString": "SELECT * FROM patient"}],
            },
        ),
        (
            "POST",
            "/fhir/$report",
            None,
            {
                "resourceType": "Parameters",
                "parameter": [{"name": "sql", "valueString": "SELECT * FROM observation"}],
            },
        ),
        (
            "POST",
            f"/fhir/Patient/{b}/$break-glass",
            None,
            {
                "resourceType": "Parameters",
                "parameter": [{"name": "reason", "valueString": "emergency"}],
            },
        ),
    ]
    return out


def leaks(response: httpx.Response, b_ids: set[str]) -> set[str]:
    """Ids of B's records in a response: returned resources, references inside them, and
    report cells. The request's own words echoed back (a Bundle's ``link``, an
    OperationOutcome) are not data and are skipped."""
    try:
        body = response.json()
    except ValueError:
        return {i for i in b_ids if i in response.text}
    found: set[str] = set()

    def walk(node: object, in_links: bool = False) -> None:
        if isinstance(node, dict):
            if node.get("resourceType") == "OperationOutcome":
                return
            if node.get("id") in b_ids and node.get("resourceType") not in ("Bundle", None):
                found.add(str(node["id"]))
            ref = node.get("reference")
            if isinstance(ref, str) and ref.rsplit("/", 1)[-1] in b_ids:
                found.add(ref)
            for key, value in node.items():
                if key != "link":
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, str) and node in b_ids:
            found.add(node)

    walk(body)
    return found


def test_no_response_carries_another_patients_record(world):
    app, token = world["app"], world["token"]
    b_ids = world["b_ids"]
    assert len(b_ids) > 5, "the fixture must give patient B a record to protect"
    checked = 0
    with httpx.Client(
        base_url=app.root, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as c:
        for method, path, params, body in probes(world):
            if method == "GET":
                r = c.get(path, params=params)
            elif path.endswith("/_search"):
                r = c.post(path, data=body)
            else:
                r = c.post(path, json=body)
            assert r.status_code < 500, (method, path, params, r.text[:300])
            leaked = sorted(leaks(r, b_ids))
            assert not leaked, (method, path, params, leaked[:3])
            checked += 1
    assert checked > 300


def test_the_leak_detector_sees_b_records_when_b_asks(world):
    """Control: the same detector finds B's records in B's own answers, so the rule above can
    fail."""
    app = world["app"]
    token_b = token_for(app, f"patient/{world['b']['id']}", "patient/*.rs")
    with httpx.Client(base_url=app.root, headers={"Authorization": f"Bearer {token_b}"}) as c:
        seen = leaks(
            c.get("/fhir/Observation", params={"patient": f"Patient/{world['b']['id']}"}),
            world["b_ids"],
        )
        seen |= leaks(c.get(f"/fhir/Patient/{world['b']['id']}"), world["b_ids"])
    assert len(seen) > 3


def test_hidden_and_absent_answer_alike_for_every_type(world):
    app, token = world["app"], world["token"]
    with httpx.Client(base_url=app.root, headers={"Authorization": f"Bearer {token}"}) as c:
        for rtype, ids in world["b_refs"].items():
            for rid in ids:
                hidden = c.get(f"/fhir/{rtype}/{rid}")
                absent = c.get(f"/fhir/{rtype}/{rid[:-1]}z")
                assert hidden.status_code == absent.status_code == 404, (rtype, rid)
                assert hidden.json() == absent.json()
