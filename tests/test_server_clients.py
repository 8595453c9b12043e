"""Clients of the classroom server: our remote Session (the same script runs locally and
remotely), a third-party FHIR client (fhirpy), raw HTTP, and the browser sign-in flow
(authorization code + PKCE) — all against a real server on loopback."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from ehr_sandbox import Sandbox, connect
from ehr_sandbox.errors import ConflictError, NotFound, ValidationError
from tests.server_fixture import running_server

VITALS = "http://terminology.hl7.org/CodeSystem/observation-category"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("server")) as app:
        yield app


def student_script(s) -> dict:
    """What a student writes against a local Session: no server-specific code anywhere."""
    patient = s.search("Patient").sort("family").first()
    pid = patient["id"]
    obs = s.create(
        {
            "resourceType": "Observation",
            "status": "final",
            "category": [{"coding": [{"system": VITALS, "code": "vital-signs"}]}],
            "code": {
                "coding": [
                    {"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}
                ]
            },
            "subject": {"reference": f"Patient/{pid}"},
            "effectiveDateTime": "2026-01-05T08:00:00+00:00",
            "valueQuantity": {
                "value": 118,
                "unit": "/min",
                "system": "http://unitsofmeasure.org",
                "code": "/min",
            },
        }
    )
    fixed = {**obs, "valueQuantity": {**obs["valueQuantity"], "value": 81}}
    corrected = s.correct(
        fixed, reason="heart rate 81 keyed as 118; corrected from the monitor reading"
    )
    latest = (
        s.search("Observation", patient=f"Patient/{pid}", code="http://loinc.org|8867-4")
        .sort("-date")
        .fetch()
    )
    errors = {}
    for name, call in {
        "missing": lambda: s.read("Observation", "no-such-id"),
        "stale": lambda: s.update(obs),
        "no_reason": lambda: s.mark_entered_in_error(f"Observation/{obs['id']}", ""),
    }.items():
        try:
            call()
        except (NotFound, ConflictError, ValidationError) as exc:
            errors[name] = type(exc).__name__
    history = s.history("Observation", obs["id"])
    return {
        "versions": [v["meta"]["versionId"] for v in history],
        "value": corrected["valueQuantity"]["value"],
        "status": corrected["status"],
        "found": obs["id"] in {o["id"] for o in latest},
        "errors": errors,
    }


def test_a_student_script_runs_unchanged_locally_and_against_the_server(server):
    cid, secret = server.state.accounts.issue("dr.patel", kind="staff")
    remote = connect(server.root, client_id=cid, secret=secret)
    try:
        remote_result = student_script(remote)
    finally:
        remote.close()
    local = Sandbox.generate(patients=4, seed=3).login("dr.patel")
    local_result = student_script(local)
    assert remote_result == local_result
    assert remote_result["errors"] == {
        "missing": "NotFound",
        "stale": "ConflictError",
        "no_reason": "ValidationError",
    }
    assert remote_result["versions"] == ["2", "1"] and remote_result["found"]


def test_wrong_credentials_raise_a_typed_error(server):
    from ehr_sandbox.errors import AccessDenied

    with pytest.raises(AccessDenied, match="refused the credentials"):
        connect(server.root, client_id="nobody", secret="wrong")


def test_fhirpy_reads_and_searches_like_any_fhir_client(server):
    from fhirpy import SyncFHIRClient

    cid, secret = server.state.accounts.issue("dr.patel", kind="staff")
    token = httpx.post(
        f"{server.root}/auth/token", data={"grant_type": "client_credentials"}, auth=(cid, secret)
    ).json()["access_token"]
    client = SyncFHIRClient(f"{server.root}/fhir", authorization=f"Bearer {token}")
    patients = client.resources("Patient").limit(2).fetch()
    assert patients and all(p["resourceType"] == "Patient" for p in patients)
    one = client.reference("Patient", patients[0]["id"]).to_resource()
    assert one["id"] == patients[0]["id"]
    obs = client.resources("Observation").search(patient=f"Patient/{one['id']}").limit(3).fetch()
    assert all(o["subject"]["reference"] == f"Patient/{one['id']}" for o in obs)


def _cookie(response: httpx.Response, name: str) -> str:
    """A cookie's value from Set-Cookie. Cookies are ``Secure``; browsers send them to
    loopback (a secure context), httpx does not, so the tests send them by hand."""
    for header in response.headers.get_list("set-cookie"):
        key, _, rest = header.partition("=")
        if key.strip() == name:
            return rest.split(";", 1)[0]
    raise AssertionError(f"no {name} cookie set")


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    return verifier, challenge


def test_authorization_code_with_pkce_signs_a_patient_in(server):
    pid = (
        server.state.sandbox.grader_session().search("Patient").first()["id"]
        if hasattr(server.state.sandbox, "grader_session")
        else server.state.sandbox.grader_session().search("Patient").first()["id"]
    )
    username = f"patient/{pid}"
    password = server.state.accounts.set_password(username)
    redirect = "http://127.0.0.1:9/callback"
    cid, _ = server.state.accounts.issue(username, kind="patient", redirect_uris=[redirect])
    verifier, challenge = _pkce()
    params = {
        "response_type": "code",
        "client_id": cid,
        "redirect_uri": redirect,
        "scope": "patient/*.rs openid fhirUser",
        "state": "xyz",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    with httpx.Client(base_url=server.root, follow_redirects=False) as client:
        page = client.get("/auth/authorize", params=params)
        assert page.status_code == 200 and "Sign in" in page.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        cookie = page.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie
        browser = httpx.Client(
            base_url=server.root, headers={"Cookie": f"ehr_csrf={_cookie(page, 'ehr_csrf')}"}
        )
        wrong = browser.post(
            "/auth/authorize",
            data={**params, "csrf": csrf, "username": username, "password": "nope"},
        )
        assert "wrong username or password" in wrong.text and "location" not in wrong.headers
        forged = httpx.post(
            f"{server.root}/auth/authorize",
            data={**params, "csrf": "forged", "username": username, "password": password},
        )
        assert forged.status_code == 403  # no matching CSRF cookie
        done = browser.post(
            "/auth/authorize",
            data={**params, "csrf": csrf, "username": username, "password": password},
        )
        assert done.status_code == 302
        query = parse_qs(urlparse(done.headers["location"]).query)
        assert query["state"] == ["xyz"]
        code = query["code"][0]
        bad = browser.post(
            "/auth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect,
                "client_id": cid,
                "code_verifier": "x" * 50,
            },
        )
        assert bad.status_code == 400
        # a failed exchange does not burn... a new code is needed anyway: codes are single use
        done = browser.post(
            "/auth/authorize",
            data={**params, "csrf": csrf, "username": username, "password": password},
        )
        code = parse_qs(urlparse(done.headers["location"]).query)["code"][0]
        tok = browser.post(
            "/auth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect,
                "client_id": cid,
                "code_verifier": verifier,
            },
        )
        assert tok.status_code == 200, tok.text
        body = tok.json()
        assert body["patient"] == pid and body["scope"].startswith("patient/")
        again = browser.post(
            "/auth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect,
                "client_id": cid,
                "code_verifier": verifier,
            },
        )
        assert again.status_code == 400  # single use
        browser.close()
    remote = connect(server.root, token=body["access_token"])
    assert remote.read("Patient", pid)["id"] == pid
    others = [p["id"] for p in remote.search("Patient").fetch()]
    assert others == [pid]


def test_authorization_without_pkce_is_refused(server):
    redirect = "http://127.0.0.1:9/cb"
    cid, _ = server.state.accounts.issue("dr.patel", kind="staff", redirect_uris=[redirect])
    r = httpx.get(
        f"{server.root}/auth/authorize",
        params={"response_type": "code", "client_id": cid, "redirect_uri": redirect},
    )
    assert r.status_code == 400 and "PKCE" in r.text
    _, challenge = _pkce()
    r = httpx.get(
        f"{server.root}/auth/authorize",
        params={
            "response_type": "code",
            "client_id": cid,
            "redirect_uri": "http://evil.example/cb",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    assert r.status_code == 400  # an unregistered redirect URI


def test_portal_pages_show_only_the_patients_own_record(server):
    system = server.state.sandbox.grader_session()
    ids = [p["id"] for p in system.search("Patient").fetch()]
    mine, other = ids[0], ids[1]
    other_name = system.read("Patient", other)["name"][0]["family"]
    password = server.state.accounts.set_password(f"patient/{mine}")
    with httpx.Client(base_url=server.root) as client:
        login = client.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)
        signed_in = client.post(
            "/login",
            data={"csrf": csrf, "username": f"patient/{mine}", "password": password},
            headers={"Cookie": f"ehr_csrf={_cookie(login, 'ehr_csrf')}"},
        )
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/portal"
        sid = _cookie(signed_in, "ehr_sid")
    with httpx.Client(base_url=server.root, headers={"Cookie": f"ehr_sid={sid}"}) as browser:
        page = browser.get("/portal")
        assert page.status_code == 200 and "My health record" in page.text
        assert other_name not in page.text
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        sent = browser.post(
            "/portal/message", data={"csrf": token, "text": "Can I get a flu shot on Friday?"}
        )
        assert "was sent" in sent.text and "flu shot on Friday" in sent.text
        refused = browser.post("/portal/message", data={"csrf": "forged", "text": "x"})
        assert refused.status_code == 403
        amend = browser.post(
            "/portal/amendment",
            data={"csrf": token, "text": "My allergy is to sulfa, not penicillin."},
        )
        assert "amendment request was sent" in amend.text
        escaped = browser.post(
            "/portal/message", data={"csrf": token, "text": "<script>alert(1)</script>"}
        )
        assert "<script>alert(1)</script>" not in escaped.text and "&lt;script&gt;" in escaped.text
    messages = system.search("Communication", subject=f"Patient/{mine}").fetch()
    assert any("flu shot" in m["payload"][0]["contentString"] for m in messages)
