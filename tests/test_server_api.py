"""The classroom server through HTTP: FHIR REST semantics, errors as OperationOutcome, and the
security rules (tokens, hidden vs absent, limits, traversal) — against a real server on loopback."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest
from joserfc import jwk, jwt

from tests.server_fixture import running_server, token_for

VITALS = "http://terminology.hl7.org/CodeSystem/observation-category"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("server")) as app:
        yield app


@pytest.fixture(scope="module")
def doctor(server):
    return token_for(server, "dr.patel")


def get(server, path, token=None, **kw):
    headers = kw.pop("headers", {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.get(f"{server.root}{path}", headers=headers, **kw)


def post(server, path, token=None, **kw):
    headers = kw.pop("headers", {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(f"{server.root}{path}", headers=headers, **kw)


def heart_rate(pid: str, value: float = 72) -> dict:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": VITALS, "code": "vital-signs"}]}],
        "code": {
            "coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]
        },
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": "2026-01-05T08:00:00+00:00",
        "valueQuantity": {
            "value": value,
            "unit": "/min",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
    }


def treated_patient(server, token) -> str:
    bundle = get(server, "/fhir/Patient", token, params={"_count": "1"}).json()
    return bundle["entry"][0]["resource"]["id"]


def test_capability_statement_and_discovery_need_no_token(server):
    cs = get(server, "/fhir/metadata").json()
    assert cs["resourceType"] == "CapabilityStatement" and cs["fhirVersion"] == "4.0.1"
    types = {r["type"] for r in cs["rest"][0]["resource"]}
    assert {"Patient", "Observation", "Encounter"} <= types
    smart = get(server, "/.well-known/smart-configuration").json()
    assert smart["token_endpoint"] == f"{server.root}/auth/token"
    assert smart["code_challenge_methods_supported"] == ["S256"]


def test_no_token_is_401_with_operation_outcome(server):
    r = get(server, "/fhir/Patient")
    assert r.status_code == 401
    assert r.json()["resourceType"] == "OperationOutcome"
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_read_search_create_update_history(server, doctor):
    pid = treated_patient(server, doctor)
    assert get(server, f"/fhir/Patient/{pid}", doctor).json()["id"] == pid
    r = post(server, "/fhir/Observation", doctor, json={**heart_rate(pid), "id": "client-chosen"})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["id"] != "client-chosen"  # POST: the server assigns the id
    assert r.headers["location"].endswith(f"/Observation/{created['id']}/_history/1")
    assert r.headers["etag"] == 'W/"1"'
    changed = {**created, "valueQuantity": {**created["valueQuantity"], "value": 75}}
    r = httpx.put(
        f"{server.root}/fhir/Observation/{created['id']}",
        json=changed,
        headers={"Authorization": f"Bearer {doctor}", "If-Match": 'W/"1"'},
    )
    assert r.status_code == 200, r.text
    assert r.json()["meta"]["versionId"] == "2"
    hist = get(server, f"/fhir/Observation/{created['id']}/_history", doctor).json()
    assert [e["resource"]["meta"]["versionId"] for e in hist["entry"]] == ["2", "1"]
    v1 = get(server, f"/fhir/Observation/{created['id']}/_history/1", doctor).json()
    assert v1["valueQuantity"]["value"] == 72
    found = get(
        server,
        "/fhir/Observation",
        doctor,
        params={"patient": f"Patient/{pid}", "code": "http://loinc.org|8867-4"},
    ).json()
    assert created["id"] in {e["resource"]["id"] for e in found["entry"]}
    post_found = post(
        server, "/fhir/Observation/_search", doctor, data={"_id": created["id"]}
    ).json()
    assert [e["resource"]["id"] for e in post_found["entry"]] == [created["id"]]


def test_stale_if_match_is_412_and_changes_nothing(server, doctor):
    pid = treated_patient(server, doctor)
    created = post(server, "/fhir/Observation", doctor, json=heart_rate(pid)).json()
    url = f"{server.root}/fhir/Observation/{created['id']}"
    auth = {"Authorization": f"Bearer {doctor}"}
    first = httpx.put(
        url,
        json={**created, "valueQuantity": {**created["valueQuantity"], "value": 80}},
        headers={**auth, "If-Match": 'W/"1"'},
    )
    assert first.status_code == 200
    stale = httpx.put(
        url,
        json={**created, "valueQuantity": {**created["valueQuantity"], "value": 90}},
        headers={**auth, "If-Match": 'W/"1"'},
    )
    assert stale.status_code == 412
    assert stale.json()["issue"][0]["code"] == "conflict"
    assert (
        get(server, f"/fhir/Observation/{created['id']}", doctor).json()["valueQuantity"]["value"]
        == 80
    )


def test_invalid_resource_is_422_naming_the_element(server, doctor):
    pid = treated_patient(server, doctor)
    bad = heart_rate(pid)
    bad["valueQuantity"]["code"] = "bananas"
    bad["valueQuantity"]["unit"] = "bananas"
    r = post(server, "/fhir/Observation", doctor, json=bad)
    assert r.status_code in (400, 422)
    issue = r.json()["issue"][0]
    assert issue["code"] == "invalid" and "valueQuantity" in issue["expression"][0]


def test_hidden_and_absent_look_the_same(server):
    desk = token_for(server, "fd.smith")
    doctor = token_for(server, "dr.patel")
    pid = treated_patient(server, doctor)
    obs = get(
        server, "/fhir/Observation", doctor, params={"patient": f"Patient/{pid}", "_count": "1"}
    ).json()
    oid = obs["entry"][0]["resource"]["id"]
    hidden = get(server, f"/fhir/Observation/{oid}", desk)
    absent = get(server, "/fhir/Observation/does-not-exist", desk)
    assert hidden.status_code == absent.status_code == 404
    assert hidden.json() == absent.json()
    # and the type-level search shows nothing of it, with a total that reveals nothing
    listed = get(server, "/fhir/Observation", desk).json()
    assert listed.get("total", 0) == 0 and not listed.get("entry")


def test_legal_record_operations_need_a_reason(server, doctor):
    pid = treated_patient(server, doctor)
    created = post(server, "/fhir/Observation", doctor, json=heart_rate(pid)).json()
    ref = f"/fhir/Observation/{created['id']}"
    no_reason = post(
        server,
        f"{ref}/$entered-in-error",
        doctor,
        json={"resourceType": "Parameters", "parameter": []},
    )
    assert no_reason.status_code in (400, 422)
    assert "reason" in no_reason.json()["issue"][0]["diagnostics"]
    assert get(server, ref, doctor).json()["status"] == "final"
    done = post(
        server,
        f"{ref}/$entered-in-error",
        doctor,
        json={
            "resourceType": "Parameters",
            "parameter": [{"name": "reason", "valueString": "charted on the wrong patient"}],
        },
    )
    assert done.status_code == 200, done.text
    assert get(server, ref, doctor).json()["status"] == "entered-in-error"
    unknown = post(server, f"{ref}/$delete-everything", doctor, json={"resourceType": "Parameters"})
    assert unknown.status_code == 404


def test_break_the_glass_is_refused_for_front_desk(server):
    desk = token_for(server, "fd.smith")
    doctor = token_for(server, "dr.patel")
    pid = treated_patient(server, doctor)
    r = post(
        server,
        f"/fhir/Patient/{pid}/$break-glass",
        desk,
        json={
            "resourceType": "Parameters",
            "parameter": [{"name": "reason", "valueString": "emergency"}],
        },
    )
    assert r.status_code == 403
    assert r.json()["issue"][0]["code"] == "forbidden"


def _forge(claims: dict, header: dict, key=None) -> str:
    def b64(d: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    if key is None:
        return f"{b64(header)}.{b64(claims)}."
    return jwt.encode(header, claims, key, algorithms=[header["alg"]])


def test_forged_and_expired_tokens_fail(server, doctor):
    claims = server.state.tokens.verify(doctor)
    good_claims = {
        "iss": server.root,
        "aud": server.root + "/fhir",
        "sub": "dr.patel",
        "role": "physician",
        "scope": "user/*.cruds",
        "client_id": claims.client_id,
        "exp": int(time.time()) + 600,
        "iat": int(time.time()),
        "jti": "x",
    }
    forged = [
        _forge(good_claims, {"alg": "none", "typ": "JWT"}),
        _forge(good_claims, {"alg": "Ed25519"}, jwk.OKPKey.generate_key("Ed25519")),
        _forge(good_claims, {"alg": "HS256"}, jwk.OctKey.import_key(b"k" * 32)),
        _forge({**good_claims, "role": "privacy_officer"}, {"alg": "none"}),
        doctor[:-4] + "AAAA",
        "not-a-token",
    ]
    for token in forged:
        assert get(server, "/fhir/Patient", token).status_code == 401, token[:40]
    expired = server.state.tokens.issue(
        username="dr.patel",
        role="physician",
        scope="user/*.cruds",
        client_id="c",
        now=time.time() - 3600,
    )
    assert get(server, "/fhir/Patient", expired.access_token).status_code == 401


def test_patient_token_sees_only_their_own_record(server, doctor):
    bundle = get(server, "/fhir/Patient", doctor).json()
    ids = [e["resource"]["id"] for e in bundle["entry"]]
    assert len(ids) >= 2
    mine, other = ids[0], ids[1]
    token = token_for(server, f"patient/{mine}", "patient/*.rs")
    assert get(server, f"/fhir/Patient/{mine}", token).status_code == 200
    assert get(server, f"/fhir/Patient/{other}", token).status_code == 404
    listed = get(server, "/fhir/Observation", token).json()
    subjects = {e["resource"]["subject"]["reference"] for e in listed.get("entry", [])}
    assert subjects <= {f"Patient/{mine}"}
    chained = get(server, "/fhir/Observation", token, params={"patient": f"Patient/{other}"}).json()
    assert not chained.get("entry")


def test_scope_escalation_is_refused_at_the_token_endpoint(server, doctor):
    bundle = get(server, "/fhir/Patient", doctor).json()
    pid = bundle["entry"][0]["resource"]["id"]
    cid, secret = server.state.accounts.issue(f"patient/{pid}", kind="patient")
    for scope in (
        "user/*.cruds",
        "system/*.rs",
        "patient/*.cruds\u00a0user/*.cruds",
        "patient/Observation.dus",
    ):
        r = httpx.post(
            f"{server.root}/auth/token",
            data={"grant_type": "client_credentials", "scope": scope},
            auth=(cid, secret),
        )
        assert r.status_code == 400 and r.json()["error"] == "invalid_scope", scope
    wrong = httpx.post(
        f"{server.root}/auth/token", data={"grant_type": "client_credentials"}, auth=(cid, "wrong")
    )
    assert wrong.status_code in (400, 401) and wrong.json()["error"] == "invalid_client"


def test_path_traversal_and_odd_ids_are_not_found(server, doctor):
    for path in (
        "/fhir/Patient/..%2F..%2Fkeys%2Fsigning.jwk",
        "/fhir/Patient/%2e%2e",
        "/fhir/..%2Fkeys/x",
        "/fhir/$export-file/..%2F..%2Fkeys/signing.jwk",
        "/fhir/$export-status/..%2Fkeys",
        "/fhir/Patient/" + "a" * 65,
    ):
        r = get(server, path, doctor)
        assert r.status_code in (404, 405), path  # 405: no GET route of that shape at all
        assert "Ed25519" not in r.text and '"d"' not in r.text


def test_oversized_and_deeply_nested_bodies_are_refused(server, doctor):
    big = post(
        server,
        "/fhir/Observation",
        doctor,
        content=b"{" + b" " * 3_000_000 + b"}",
        headers={"Content-Type": "application/fhir+json"},
    )
    assert big.status_code == 413
    deep = b'{"resourceType": "Observation", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    r = post(
        server,
        "/fhir/Observation",
        doctor,
        content=deep,
        headers={"Content-Type": "application/fhir+json"},
    )
    assert r.status_code in (400, 422)
    assert "nested" in r.json()["issue"][0]["diagnostics"]


def test_token_endpoint_is_rate_limited(server):
    limiter = server.auth.token_limit
    try:
        codes = [
            httpx.post(
                f"{server.root}/auth/token",
                data={"grant_type": "client_credentials"},
                auth=("nobody", "x"),
            ).status_code
            for _ in range(25)
        ]
        assert 429 in codes
        assert codes.index(429) >= 5  # ordinary use is not throttled
    finally:
        server.auth.token_limit = type(limiter)(limiter.rate, limiter.per)


def test_transaction_is_all_or_nothing(server, doctor):
    pid = treated_patient(server, doctor)
    before = len(
        get(server, "/fhir/Observation", doctor, params={"patient": f"Patient/{pid}"})
        .json()
        .get("entry", [])
    )
    bad = heart_rate(pid)
    bad["status"] = "done"  # not in the required binding
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": heart_rate(pid), "request": {"method": "POST", "url": "Observation"}},
            {"resource": bad, "request": {"method": "POST", "url": "Observation"}},
        ],
    }
    r = post(server, "/fhir", doctor, json=bundle)
    after = len(
        get(server, "/fhir/Observation", doctor, params={"patient": f"Patient/{pid}"})
        .json()
        .get("entry", [])
    )
    if r.status_code == 200:  # the required binding check may not have landed here yet
        assert after == before + 2
    else:
        assert r.status_code in (400, 422) and after == before


def backend_token(server, username: str, scope: str, *, aud: str | None = None, jti: str = "j1"):
    key = jwk.RSAKey.generate_key(2048)
    public = {"keys": [{**key.as_dict(private=False), "alg": "RS384", "kid": "k1"}]}
    cid, _ = server.state.accounts.issue(username, kind="staff", jwks=public)
    token_url = f"{server.root}/auth/token"

    def ask(aud_value: str, jti_value: str, signer=key):
        assertion = jwt.encode(
            {"alg": "RS384", "kid": "k1"},
            {
                "iss": cid,
                "sub": cid,
                "aud": aud_value,
                "exp": int(time.time()) + 240,
                "jti": jti_value,
            },
            signer,
            algorithms=["RS384"],
        )
        return httpx.post(
            token_url,
            data={
                "grant_type": "client_credentials",
                "scope": scope,
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion,
            },
        )

    return ask, token_url, cid


def test_backend_services_private_key_jwt_and_bulk_export(server):
    ask, token_url, _ = backend_token(server, "dr.patel", "system/*.rs")
    first = ask(token_url, "jti-1")
    assert first.status_code == 200, first.text
    token = first.json()["access_token"]
    assert ask(token_url, "jti-1").json()["error"] == "invalid_client"  # replayed assertion
    assert ask("http://elsewhere/token", "jti-2").json()["error"] == "invalid_client"  # wrong aud
    forged = ask(token_url, "jti-3", signer=jwk.RSAKey.generate_key(2048))
    assert forged.json()["error"] == "invalid_client"  # a key that is not the registered one
    kick = get(server, "/fhir/$export", token)
    assert kick.status_code == 202, kick.text
    status_url = kick.headers["content-location"]
    manifest = httpx.get(status_url, headers={"Authorization": f"Bearer {token}"}).json()
    assert manifest["output"]
    lines = httpx.get(
        manifest["output"][0]["url"], headers={"Authorization": f"Bearer {token}"}
    ).text.splitlines()
    assert lines and all(json.loads(line)["resourceType"] for line in lines)
    # another user cannot read the job, and a class account (no key) cannot hold system/ scopes
    other = token_for(server, "rn.kim")
    assert httpx.get(status_url, headers={"Authorization": f"Bearer {other}"}).status_code == 404
    cid, secret = server.state.accounts.issue("dr.patel", kind="staff")
    r = httpx.post(
        token_url,
        data={"grant_type": "client_credentials", "scope": "system/*.rs"},
        auth=(cid, secret),
    )
    assert r.json()["error"] == "invalid_scope"
    # an interactive token may not bulk-export
    assert get(server, "/fhir/$export", other).status_code == 403


def test_backend_export_leaves_out_what_the_role_may_not_see(server):
    ask, token_url, _ = backend_token(server, "fd.smith", "system/*.rs")
    r = ask(token_url, "jti-fd")
    assert r.status_code == 200, r.text
    kick = get(server, "/fhir/$export", r.json()["access_token"], params={"_type": "Observation"})
    assert kick.status_code == 403  # the front desk's role has no clinical data to export


def test_reports_run_on_the_server_with_time_and_row_limits(server, doctor, monkeypatch):
    from ehr_sandbox.reports import runner

    def report(body_params):
        body = {"resourceType": "Parameters", "parameter": body_params}
        return post(server, "/fhir/$report", doctor, json=body)

    ok = report([{"name": "sql", "valueString": "SELECT count(*) AS n FROM patient"}])
    assert ok.status_code == 200, ok.text
    assert ok.json()["columns"] == ["n"] and ok.json()["rows"][0]["n"] >= 1
    monkeypatch.setattr(runner, "QUERY_SECONDS", 0.3)
    slow = report(
        [{"name": "sql", "valueString": "SELECT count(*) AS n FROM range(100000000000) a"}]
    )
    assert slow.status_code == 422 and "longer than" in slow.json()["issue"][0]["diagnostics"]
    monkeypatch.setattr(runner, "QUERY_SECONDS", 20.0)
    monkeypatch.setattr(runner, "QUERY_ROWS", 5)
    many = report([{"name": "sql", "valueString": "SELECT * FROM range(50) r"}])
    assert many.status_code == 422 and "at most 5 rows" in many.json()["issue"][0]["diagnostics"]
    escape = report([{"name": "sql", "valueString": "SELECT * FROM read_text('/etc/passwd')"}])
    assert escape.status_code == 422 and "root:" not in escape.text
