"""The server's pages in a real browser (headless Chromium): sign in, the patient portal,
a message and an amendment request; a screenshot is kept as a test artifact."""

from __future__ import annotations

import pytest

from tests.browser_support import artifacts_dir, chromium_page
from tests.server_fixture import running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("server")) as app:
        yield app


def test_patient_signs_in_reads_their_record_and_writes_to_the_practice(server):
    system = server.state.sandbox.grader_session()
    patients = system.search("Patient").fetch()
    me, other = patients[0], patients[1]
    username = f"patient/{me['id']}"
    password = server.state.accounts.set_password(username)
    with chromium_page() as (page, errors):
        page.goto(f"{server.root}/login")
        page.fill("#username", username)
        page.fill("#password", "wrong")
        page.click("#sign-in")
        assert "wrong username or password" in page.inner_text("#error")
        page.fill("#username", username)
        page.fill("#password", password)
        page.click("#sign-in")
        page.wait_for_url(f"{server.root}/portal")
        shown = page.inner_text("#patient-name")
        assert me["name"][0]["family"] in shown
        assert other["name"][0]["family"] not in page.content()
        page.fill("#message-text", "Please renew my inhaler <b>soon</b>")
        page.click("#send-message")
        assert "sent to your care team" in page.inner_text("#notice")
        assert "Please renew my inhaler <b>soon</b>" in page.inner_text("#messages")
        assert page.locator("#messages b").count() == 0  # shown as text, never as markup
        page.fill("#amendment-text", "My birth date is wrong: it should be the 3rd.")
        page.click("#request-amendment")
        assert "within 60 days" in page.inner_text("#notice")
        page.screenshot(path=str(artifacts_dir() / "portal.png"), full_page=True)
        cookies = {c["name"]: c for c in page.context.cookies()}
        assert cookies["ehr_sid"]["httpOnly"] and cookies["ehr_sid"]["sameSite"] == "Strict"
        assert cookies["ehr_sid"]["secure"]
        page.goto(f"{server.root}/logout")
        page.goto(f"{server.root}/portal")
        assert page.url.endswith("/login")
        assert not errors, errors
    sent = system.search("Communication", subject=f"Patient/{me['id']}").fetch()
    texts = [m["payload"][0]["contentString"] for m in sent]
    assert any("renew my inhaler" in t for t in texts) and any("birth date" in t for t in texts)


def test_instructor_runs_a_course_from_the_dashboard(server):
    from ehr_sandbox import connect
    from ehr_sandbox.exercises.registry import get

    password = server.state.accounts.set_password("instructor:lee")
    with chromium_page() as (page, errors):
        page.goto(f"{server.root}/login")
        page.fill("#username", "instructor:lee")
        page.fill("#password", password)
        page.click("#sign-in")
        page.wait_for_url(f"{server.root}/dashboard")
        page.fill("#course-name", "MA 102 Spring")
        page.click("#create-course")
        course = page.locator("#course-ma-102-spring")
        course.locator(".enroll-id").fill("carol")
        course.locator(".enroll").click()
        creds = {
            "client_id": page.inner_text("#new-client-id"),
            "secret": page.inner_text("#new-secret"),
        }
        assert creds["secret"] and creds["secret"] not in (
            server.state.data / "server.db"
        ).read_text(errors="ignore")
        course = page.locator("#course-ma-102-spring")
        course.locator(".assign-exercise").select_option("records/correction")
        course.locator(".assign").click()
        # the student works through the API with the credentials the page showed once
        s = connect(server.root, client_id=creds["client_id"], secret=creds["secret"])
        att = s.start("records/correction", course="ma-102-spring")
        get("records/correction").solution.apply(att)
        graded = att.submit()
        assert graded.passed
        page.goto(f"{server.root}/dashboard")
        cell = page.locator("#course-ma-102-spring .grade").first.inner_text()
        assert f"{graded.score:g}" in cell
        page.locator("#course-ma-102-spring .grade a").first.click()
        assert "carol" in page.inner_text("#variant")
        timeline = page.inner_text("#timeline")
        assert "exercise-submit" in timeline
        assert any("Observation/" in line and "update" in line for line in timeline.splitlines())
        assert page.locator("#results tr").count() == 2  # header + one submission
        page.screenshot(path=str(artifacts_dir() / "dashboard-attempt.png"), full_page=True)
        page.goto(f"{server.root}/dashboard")
        page.screenshot(path=str(artifacts_dir() / "dashboard.png"), full_page=True)
        assert not errors, errors


def test_instructor_reviews_a_break_the_glass_use(server):
    import httpx

    from tests.server_fixture import token_for

    nurse = token_for(server, "rn.kim")
    pid = server.state.sandbox.grader_session().search("Patient").fetch()[-1]["id"]
    r = httpx.post(
        f"{server.root}/fhir/Patient/{pid}/$break-glass",
        headers={"Authorization": f"Bearer {nurse}"},
        json={
            "resourceType": "Parameters",
            "parameter": [
                {"name": "reason", "valueString": "unresponsive patient in the waiting room"}
            ],
        },
    )
    assert r.status_code == 200, r.text
    password = server.state.accounts.set_password("instructor:lee")
    with chromium_page() as (page, errors):
        page.goto(f"{server.root}/login")
        page.fill("#username", "instructor:lee")
        page.fill("#password", password)
        page.click("#sign-in")
        page.wait_for_url(f"{server.root}/dashboard")
        item = page.locator(".btg-item").filter(has_text="unresponsive patient")
        assert item.count() == 1
        item.locator("select").select_option("yes")
        item.locator(".btg-note").fill("Emergency confirmed with the charge nurse")
        item.locator(".btg-review").click()
        page.wait_for_url(f"{server.root}/dashboard")
        assert page.locator(".btg-item").filter(has_text="unresponsive patient").count() == 0
        assert not errors, errors
    # the review names the instructor who made it, in the queue and on the audit trail (not
    # only the system account the dashboard acts through)
    import json

    reviews = [
        json.loads(e["outcomeDesc"])
        for e in server.state.sandbox.audit.events()
        if any(c.get("code") == "btg-review" for c in e.get("subtype", []))
    ]
    assert reviews and reviews[-1]["reviewer"] == "instructor:lee"
    assert reviews[-1]["note"] == "Emergency confirmed with the charge nurse"
