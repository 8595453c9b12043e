"""Grading integrity on the classroom server, attacked over HTTP as the worst student: what a
student's requests cannot do to the course API, and what the server tells a student (and the
instructor) about checks and hand-ins."""

from __future__ import annotations

import itertools
import re

import httpx
import pytest

from tests.server_fixture import course_with_students, running_server

EXERCISE = "records/correction"
REPORT = "reports/immunizations-due"
NOT_OBJECTS = (b"[1]", b'"name"', b"null", b"3", b"true")


@pytest.fixture(scope="module")
def classroom(tmp_path_factory):
    data = tmp_path_factory.mktemp("integrity")
    with running_server(data) as app:
        admin, course, (ana, bob) = course_with_students(
            app, data, "Integrity", [EXERCISE, REPORT], ["ana", "bob"]
        )
        yield {"app": app, "admin": admin, "course": course, "ana": ana, "bob": bob}


def test_a_course_request_body_that_is_not_an_object_is_a_clear_400_never_a_500(classroom):
    course = classroom["course"]
    att = classroom["bob"].start(EXERCISE, course=course)
    routes = [
        ("bob", f"/course/{course}/attempts"),
        *(("bob", f"/course/{course}/attempts/{att.attempt_id}/{a}") for a in ("hint", "login")),
        ("admin", f"/course/{course}/students"),
        ("admin", f"/course/{course}/assignments"),
        ("admin", "/course"),
    ]
    for (who, path), body in itertools.product(routes, NOT_OBJECTS):
        token = classroom[who]._token
        r = httpx.post(
            classroom["app"].root + path,
            content=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        assert r.status_code == 400, (path, body, r.status_code, r.text)
        issue = r.json()["issue"][0]
        assert "request body" in issue["diagnostics"] and "object" in issue["diagnostics"]


def _course_action(classroom, who, attempt, action):
    token = classroom[who]._token
    path = f"/course/{classroom['course']}/attempts/{attempt}/{action}"
    return httpx.post(
        classroom["app"].root + path, headers={"Authorization": f"Bearer {token}"}, json={}
    )


def test_check_and_submit_never_confirm_a_hand_in_item_by_item(classroom):
    """The oracle cheat: hand in every patient, read which ones the feedback calls wrong (or
    right), drop them, check again. The server's answer names none of the handed-in patients;
    the instructor keeps the full feedback."""
    from ehr_sandbox.exercises.builtin.reports import hand_in

    att = classroom["ana"].start(REPORT, course=classroom["course"])
    patients = list(att.session.resources("Patient"))
    hand_in(att, {"patients": [p["id"] for p in patients]})
    words = {p["id"] for p in patients} | {
        n["family"] for p in patients for n in p.get("name", []) if n.get("family")
    }
    for action in ("check", "submit"):
        r = _course_action(classroom, "ana", att.attempt_id, action)
        assert r.status_code == 200, r.text
        body = r.json()
        assert not body["passed"]
        named = sorted(w for w in words if w in r.text)
        assert not named, (action, named, r.text)
        graded = [c for c in body["criteria"] if c["feedback"].startswith("your hand-in")]
        assert any(not c["passed"] for c in graded), body["criteria"]
    kept = classroom["app"].state.courses.course(classroom["course"]).results("ana", REPORT)
    assert len(kept) == 1
    assert any(w in kept[0].feedback for w in words)  # the instructor's copy names the items


def _instructor_page(classroom, path):
    """A dashboard page as the signed-in instructor (the sign-in form over HTTP; loopback
    cookies are Secure, which a browser sends to 127.0.0.1 and httpx does not, so they are
    passed on by hand)."""
    app = classroom["app"]
    password = app.state.accounts.set_password("instructor:teacher")
    with httpx.Client(base_url=app.root) as web:
        form = web.get("/login")
        csrf = form.cookies["ehr_csrf"]
        signed = web.post(
            "/login",
            data={"username": "instructor:teacher", "password": password, "csrf": csrf},
            headers={"Cookie": f"ehr_csrf={csrf}"},
        )
        assert signed.status_code == 303, signed.text
        page = web.get(path, headers={"Cookie": f"ehr_sid={signed.cookies['ehr_sid']}"})
    assert page.status_code == 200, page.text
    return page.text


def test_every_check_is_counted_shown_to_the_instructor_and_limited(classroom):
    """A check is practice (never a grade), but an unlimited, unrecorded check is a free
    oracle: every check is counted (a reset does not undo it), the count goes with each
    submission to the instructor, and an assignment's max_checks refuses more."""
    course, admin = classroom["course"], classroom["admin"]
    att = classroom["bob"].start(EXERCISE, course=course)
    hosted = classroom["app"].state.courses
    before = hosted.course(course).checks_used("bob", EXERCISE)
    for _ in range(3):
        r = _course_action(classroom, "bob", att.attempt_id, "check")
        assert r.status_code == 200, r.text
    assert r.json()["checks"] == before + 3
    att.reset()
    submitted = att.submit()
    assert submitted.checks == before + 3
    rows = admin.course_call("GET", f"/course/{course}/results")
    mine = [r for r in rows if (r["student"], r["exercise_id"]) == ("bob", EXERCISE)]
    assert mine[-1]["checks"] == before + 3
    att.session.search("Patient", name="<script>alert(1)</script>").fetch()
    page = _instructor_page(classroom, f"/dashboard/{course}/attempt/bob/{EXERCISE}")
    assert f"Practice checks: {before + 3}" in page
    # the student's own text reaches the instructor's page escaped (no stored XSS)
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    assert page.count("exercise-check") >= 1  # the attempt's audit trail has the checks
    home = _instructor_page(classroom, "/dashboard")
    assert f"({before + 3} checks)" in home
    limit = before + 4
    admin.course_call(
        "POST", f"/course/{course}/assignments", {"exercise": EXERCISE, "max_checks": limit}
    )
    assert _course_action(classroom, "bob", att.attempt_id, "check").status_code == 200
    refused = _course_action(classroom, "bob", att.attempt_id, "check")
    assert refused.status_code == 400 and "check limit" in refused.text, refused.text
    assert hosted.course(course).checks_used("bob", EXERCISE) == limit


def _same_clinic_as(app, course, student, exercise_id):
    """A new student id whose variant works in the same generated clinic as ``student``'s."""
    from ehr_sandbox.exercises.clinics import clinic_seed
    from ehr_sandbox.exercises.registry import get

    c, ex = app.state.courses.course(course), get(exercise_id)
    target = clinic_seed(ex, c.variant(student, exercise_id))
    return next(
        f"late{n}"
        for n in itertools.count()
        if clinic_seed(ex, c.variant(f"late{n}", exercise_id)) == target
    )


def test_work_handed_in_after_the_due_date_is_never_shown_as_the_grade(classroom):
    """Submit the reference solution after the due date: the result is kept and flagged late,
    and the dashboard's gradebook shows what counts (as its CSV does), marking the late score
    apart instead of showing it as the grade."""
    from ehr_sandbox import connect
    from ehr_sandbox.exercises.registry import get

    course, admin, app = classroom["course"], classroom["admin"], classroom["app"]
    admin.course_call(
        "POST", f"/course/{course}/assignments", {"exercise": EXERCISE, "due": "2020-01-01"}
    )
    classroom["bob"].start(EXERCISE, course=course)  # bob's clinic is built from here on
    sid = _same_clinic_as(app, course, "bob", EXERCISE)
    creds = admin.course_call("POST", f"/course/{course}/students", {"id": sid})
    late_student = connect(app.root, client_id=creds["client_id"], secret=creds["secret"])
    att = late_student.start(EXERCISE, course=course)
    get(EXERCISE).solution.apply(att)
    late = att.submit()
    assert late.passed and late.late and late.score == late.max_score
    home = _instructor_page(classroom, "/dashboard")
    row = re.search(rf"<tr><td>{sid}</td>.*?</tr>", home, re.S)
    assert row is not None, home
    cells = re.findall(r'<td class="grade">(.*?)</td>', row.group(0), re.S)
    exercise_cell = cells[list(app.state.courses.course(course).assignments).index(EXERCISE)]
    assert exercise_cell.startswith("—"), exercise_cell
    assert f"late: {late.score:g}" in exercise_cell


def test_malformed_fhir_bodies_are_a_clear_422_never_a_500(classroom):
    """A Bundle whose entries, or a Parameters whose parameters, are not lists of objects was
    an internal error; it is an OperationOutcome naming the element."""
    att = classroom["bob"].start(EXERCISE, course=classroom["course"])
    headers = {"Authorization": f"Bearer {att.session._token}"}
    bundles = [
        {"resourceType": "Bundle", "type": kind, "entry": entry}
        for kind in ("batch", "transaction")
        for entry in ("x", 3, {"request": {}}, [1], [{}, "x"])
    ]
    operations = [
        (path, {"resourceType": "Parameters", "parameter": parameter})
        for path in ("/fhir/Patient/$find", "/fhir/$audit-action", "/fhir/$report")
        for parameter in (3, "x", {"name": "kind"}, [1], [{"valueString": "x"}])
    ]
    for path, body in [("/fhir", b) for b in bundles] + operations:
        r = httpx.post(classroom["app"].root + path, headers=headers, json=body)
        assert r.status_code in (400, 422), (path, body, r.status_code, r.text)
        issue = r.json()["issue"][0]
        element = "Bundle: entry" if path == "/fhir" else "Parameters: parameter"
        assert issue["diagnostics"].startswith(element), (path, body, issue)


def test_a_student_acts_only_as_themselves_whatever_the_request_says(classroom):
    """Guards the documented claims (they held before this file): who a student is comes from
    the token alone; another student's attempt answers like one that does not exist."""
    course, root = classroom["course"], classroom["app"].root
    bob = classroom["bob"]
    ana_att = classroom["ana"].start(REPORT, course=course)
    bearer = {"Authorization": f"Bearer {bob._token}"}
    started = httpx.post(
        f"{root}/course/{course}/attempts",
        headers={**bearer, "X-Student": "ana"},
        json={"exercise": EXERCISE, "student": "ana", "course": course},
    )
    assert started.status_code == 200 and started.json()["student"] == "bob"
    assert started.json()["attempt"] == bob.start(EXERCISE, course=course).attempt_id
    absent = httpx.post(f"{root}/course/{course}/attempts/{'0' * 16}/check", headers=bearer)
    for action in ("check", "submit", "hint", "reset", "login"):
        r = httpx.post(
            f"{root}/course/{course}/attempts/{ana_att.attempt_id}/{action}",
            headers=bearer,
            json={"student": "ana"},
        )
        assert (r.status_code, r.text) == (absent.status_code, absent.text) == (404, absent.text)
    other = httpx.post(f"{root}/course/other/attempts", headers=bearer, json={"exercise": EXERCISE})
    assert other.status_code == 404
    attempt_token = {"Authorization": f"Bearer {started.json()['access_token']}"}
    for headers in (bearer, attempt_token):
        for path in ("results", "gradebook"):
            assert httpx.get(f"{root}/course/{course}/{path}", headers=headers).status_code == 403
        assert (
            httpx.get(f"{root}/dashboard", headers=headers, follow_redirects=False).status_code
            == 303
        )
