"""Clinician SMART launch: a standalone launch with ``launch/patient`` shows a staff user a
patient picker listing only the patients their Session may see, and the token response
carries the chosen ``patient``; an EHR launch (``launch=<id>``) carries the patient the EHR
had open. Through HTTP and in headless Chromium."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import pytest

from ehr_sandbox import connect
from tests.browser_support import artifacts_dir, chromium_page
from tests.server_fixture import running_server, token_for

DOCTOR = "dr.okafor"  # a physician who treats some of the clinic's patients, not all
SCOPE = "launch/patient patient/*.rs openid fhirUser"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("launch")) as app:
        yield app


@pytest.fixture(scope="module")
def visibility(server):
    everyone = {p["id"] for p in server.state.sandbox.grader_session().search("Patient").fetch()}
    mine = {p["id"] for p in server.state.sandbox.login(DOCTOR).search("Patient").fetch()}
    assert mine and everyone - mine, "the test needs a doctor who sees some patients, not all"
    return mine, everyone - mine


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def cookie(response: httpx.Response, name: str) -> str:
    for header in response.headers.get_list("set-cookie"):
        key, _, rest = header.partition("=")
        if key.strip() == name:
            return rest.split(";", 1)[0]
    raise AssertionError(f"no {name} cookie set")


class App:
    """A public SMART app registered for the doctor, signing in through HTTP."""

    def __init__(self, server, username: str = DOCTOR, scope: str = SCOPE, **extra: str):
        self.server = server
        self.username = username
        self.password = server.state.accounts.set_password(username)
        self.redirect = f"{server.root}/favicon.ico"
        self.cid, _ = server.state.accounts.issue(
            username, kind="staff", redirect_uris=[self.redirect]
        )
        self.verifier, challenge = pkce()
        self.params = {
            "response_type": "code",
            "client_id": self.cid,
            "redirect_uri": self.redirect,
            "scope": scope,
            "state": "s1",
            "aud": f"{server.root}/fhir",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **extra,
        }

    def url(self) -> str:
        return f"{self.server.root}/auth/authorize?{urlencode(self.params)}"

    def sign_in(self, username: str | None = None) -> tuple[httpx.Client, str, httpx.Response]:
        page = httpx.get(self.url())
        assert page.status_code == 200, page.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        browser = httpx.Client(
            base_url=self.server.root,
            headers={"Cookie": f"ehr_csrf={cookie(page, 'ehr_csrf')}"},
            follow_redirects=False,
        )
        who = username or self.username
        password = (
            self.password if who == self.username else self.server.state.accounts.set_password(who)
        )
        answer = browser.post(
            "/auth/authorize",
            data={**self.params, "csrf": csrf, "username": who, "password": password},
        )
        return browser, csrf, answer

    def exchange(self, location: str) -> httpx.Response:
        query = parse_qs(urlparse(location).query)
        assert query["state"] == ["s1"]
        return httpx.post(
            f"{self.server.root}/auth/token",
            data={
                "grant_type": "authorization_code",
                "code": query["code"][0],
                "redirect_uri": self.redirect,
                "client_id": self.cid,
                "code_verifier": self.verifier,
            },
        )


def picker_ids(html: str) -> set[str]:
    return set(re.findall(r'id="pick-([^"]+)"', html))


def ticket_of(html: str) -> str:
    return re.search(r'name="ticket" value="([^"]+)"', html).group(1)


def test_standalone_launch_lists_only_visible_patients_and_returns_the_choice(server, visibility):
    mine, hidden = visibility
    app = App(server)
    browser, csrf, picker = app.sign_in()
    assert picker.status_code == 200 and "Choose a patient" in picker.text
    assert picker_ids(picker.text) == mine  # the Session's view, no more
    # a patient the doctor may not see cannot be forced into the form
    forged = browser.post(
        "/auth/authorize/patient",
        data={"csrf": csrf, "ticket": ticket_of(picker.text), "patient": sorted(hidden)[0]},
    )
    assert forged.status_code == 400 and "location" not in forged.headers
    # the ticket was used up: sign in again and choose properly
    browser, csrf, picker = app.sign_in()
    ticket = ticket_of(picker.text)
    assert (
        httpx.post(
            f"{server.root}/auth/authorize/patient",
            data={"csrf": "forged", "ticket": ticket, "patient": sorted(mine)[0]},
        ).status_code
        == 403
    )
    chosen = sorted(mine)[0]
    done = browser.post(
        "/auth/authorize/patient", data={"csrf": csrf, "ticket": ticket, "patient": chosen}
    )
    assert done.status_code == 302, done.text
    replay = browser.post(
        "/auth/authorize/patient", data={"csrf": csrf, "ticket": ticket, "patient": chosen}
    )
    assert replay.status_code == 400  # a ticket is single use
    token = app.exchange(done.headers["location"])
    assert token.status_code == 200, token.text
    body = token.json()
    assert body["patient"] == chosen and "launch/patient" in body["scope"]
    session = connect(server.root, token=body["access_token"])
    assert session.read("Patient", chosen)["id"] == chosen
    assert [p["id"] for p in session.search("Patient").fetch()] == [chosen]
    browser.close()


def test_a_patient_signing_in_gets_no_picker_and_their_own_context(server):
    pid = server.state.sandbox.grader_session().search("Patient").first()["id"]
    app = App(server, username=f"patient/{pid}", scope="launch/patient patient/*.rs")
    server.state.accounts.issue(f"patient/{pid}", kind="patient")
    _, _, answer = app.sign_in()
    assert answer.status_code == 302  # straight back to the app
    assert app.exchange(answer.headers["location"]).json()["patient"] == pid


def test_ehr_launch_carries_the_open_patient(server, visibility):
    mine, hidden = visibility
    ehr = {"Authorization": f"Bearer {token_for(server, DOCTOR)}"}
    open_patient = sorted(mine)[0]
    refused = httpx.post(
        f"{server.root}/auth/launch", data={"patient": sorted(hidden)[0]}, headers=ehr
    )
    assert refused.status_code == 404  # the EHR cannot launch on a patient it may not see
    assert (
        httpx.post(f"{server.root}/auth/launch", data={"patient": open_patient}).status_code == 401
    )
    made = httpx.post(f"{server.root}/auth/launch", data={"patient": open_patient}, headers=ehr)
    assert made.status_code == 200, made.text
    launch = made.json()["launch"]
    assert made.json()["iss"] == f"{server.root}/fhir"
    # another clinician cannot use this doctor's launch
    other = App(server, username="dr.patel", scope="launch patient/*.rs", launch=launch)
    _, _, answer = other.sign_in()
    assert answer.status_code == 400 and "launch" in answer.text
    made = httpx.post(f"{server.root}/auth/launch", data={"patient": open_patient}, headers=ehr)
    app = App(server, scope="launch patient/*.rs openid", launch=made.json()["launch"])
    _, _, answer = app.sign_in()
    assert answer.status_code == 302, answer.text  # no picker: the EHR said which patient
    body = app.exchange(answer.headers["location"]).json()
    assert body["patient"] == open_patient
    # the launch id is single use
    _, _, again = app.sign_in()
    assert again.status_code == 400


def test_discovery_announces_both_launches(server):
    smart = httpx.get(f"{server.root}/.well-known/smart-configuration").json()
    assert {"launch-standalone", "launch-ehr", "context-standalone-patient"} <= set(
        smart["capabilities"]
    )


def test_the_picker_in_a_real_browser(server, visibility):
    mine, hidden = visibility
    app = App(server)
    with chromium_page() as (page, errors):
        page.goto(app.url())
        page.fill("#username", DOCTOR)
        page.fill("#password", app.password)
        page.click("#sign-in")
        page.wait_for_selector("#patients")
        listed = {b.get_attribute("value") for b in page.locator("button.pick").element_handles()}
        assert listed == mine
        names = page.locator(".patient-name").all_inner_texts()
        assert len(names) == len(mine) and all(n.strip() for n in names)
        page.screenshot(path=str(artifacts_dir() / "patient-picker.png"), full_page=True)
        chosen = sorted(mine)[0]
        page.click(f"#pick-{chosen}")
        page.wait_for_url(re.compile(r".*/favicon\.ico\?.*code=.*"))
        location = page.url
        assert not errors, errors
    token = app.exchange(location)
    assert token.status_code == 200 and token.json()["patient"] == chosen
