"""Grading integrity on the classroom server, attacked over HTTP as the worst student: what a
student's requests cannot do to the course API, and what the server tells a student (and the
instructor) about checks and hand-ins."""

from __future__ import annotations

import itertools

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
