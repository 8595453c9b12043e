"""Courses on the classroom server: the instructor's side, attempts graded on the server, and
the cheats that work in-process but cannot change a server-side grade."""

from __future__ import annotations

import csv
import io

import httpx
import pytest

from ehr_sandbox import connect
from ehr_sandbox.errors import AccessDenied, ExerciseError, NotFound
from ehr_sandbox.exercises.registry import get
from tests.server_fixture import running_server

EXERCISE = "records/correction"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("server")) as app:
        yield app


@pytest.fixture(scope="module")
def course(server):
    """A course with two students and one assignment, made through the instructor API."""
    cid, secret = server.state.accounts.issue("instructor:lee", kind="instructor")
    teacher = connect(server.root, client_id=cid, secret=secret)
    made = teacher.course_call("POST", "/course", {"name": "MA 101 Fall"})
    slug = made["course"]
    creds = {
        s: teacher.course_call("POST", f"/course/{slug}/students", {"id": s, "name": s.title()})
        for s in ("alice", "bob")
    }
    teacher.course_call(
        "POST", f"/course/{slug}/assignments", {"exercise": EXERCISE, "max_attempts": 2}
    )
    return {"slug": slug, "teacher": teacher, "creds": creds}


def student(server, course, name):
    c = course["creds"][name]
    return connect(server.root, client_id=c["client_id"], secret=c["secret"])


def test_credentials_are_shown_once_and_stored_hashed(server, course):
    alice = course["creds"]["alice"]
    raw = (server.state.data / "server.db").read_bytes()
    assert alice["secret"].encode() not in raw and alice["password"].encode() not in raw
    course_file = next((server.state.data / "courses").glob("*.json")).read_text()
    assert alice["secret"] not in course_file


def test_the_reference_solution_passes_unchanged_against_the_server(server, course):
    s = student(server, course, "alice")
    att = s.start(EXERCISE, course=course["slug"])
    assert "correct" in att.instructions.lower()
    practice = att.check()
    assert not practice.passed and practice.kind == "practice"
    get(EXERCISE).solution.apply(att)  # the shipped reference, written for the local API
    practice = att.check()
    assert practice.passed and practice.score == practice.max_score, practice.feedback
    graded = att.submit()
    assert graded.passed and graded.kind == "submission"
    book = course["teacher"]._http.get(
        f"{server.root}/course/{course['slug']}/gradebook",
        headers={"Authorization": f"Bearer {course['teacher']._token}"},
    )
    rows = list(csv.reader(io.StringIO(book.text)))
    header = rows[0]
    col = next(i for i, h in enumerate(header) if EXERCISE in h or "orrect" in h)
    alice_row = next(r for r in rows if r and r[0] in ("Alice", "alice"))
    assert float(alice_row[col]) == graded.score
    table = server.state.courses.course(course["slug"]).results_table()
    assert set(table["graded_by"]) == {"server"}


def test_wrong_solutions_fail_on_the_server_as_they_do_locally(server, course):
    s = student(server, course, "bob")
    att = s.start(EXERCISE, course=course["slug"])
    wrongs = get(EXERCISE).wrong_solutions
    assert len(wrongs) >= 3
    for name, wrong in wrongs.items():
        att.reset()
        wrong.apply(att)
        result = att.check()
        failed = {c.name for c in result.criteria if not c.passed}
        assert wrong.fails in failed, (name, result.feedback)
        assert not result.passed, name


def test_checks_do_not_count_but_submissions_do_and_are_limited(server, course):
    s = student(server, course, "bob")
    att = s.start(EXERCISE, course=course["slug"])
    for _ in range(4):
        att.check()
    first = att.submit()
    second = att.submit()
    assert (first.attempt, second.attempt) == (1, 2)
    with pytest.raises(ExerciseError, match="attempt limit"):
        att.submit()


def test_student_cheats_cannot_reach_grades_or_course_state(server, course):
    alice = student(server, course, "alice")
    bob = student(server, course, "bob")
    bob_att = bob.start(EXERCISE, course=course["slug"])
    # another student's attempt, with her own credentials
    with pytest.raises(NotFound):
        alice.course_call("POST", f"/course/{course['slug']}/attempts/{bob_att.attempt_id}/submit")
    # instructor-only endpoints
    for path, body in (
        (f"/course/{course['slug']}/students", {"id": "mallory"}),
        (f"/course/{course['slug']}/assignments", {"exercise": EXERCISE, "max_attempts": 99}),
        ("/course", {"name": "my own course"}),
    ):
        with pytest.raises(AccessDenied):
            alice.course_call("POST", path, body)
    r = httpx.get(
        f"{server.root}/course/{course['slug']}/gradebook",
        headers={"Authorization": f"Bearer {alice._token}"},
    )
    assert r.status_code == 403
    # a student account reaches no chart outside an attempt, and an attempt token only its sandbox
    with pytest.raises(AccessDenied):
        alice.search("Patient").fetch()
    with pytest.raises(AccessDenied):
        bob_att.session.course_call(
            "POST", f"/course/{course['slug']}/attempts", {"exercise": EXERCISE}
        )
    # monkeypatching the local objects changes nothing on the server
    alice_att = alice.start(EXERCISE, course=course["slug"])
    alice_att.facts = {"forged": True}  # type: ignore[misc]
    result = alice_att.check()
    assert "forged" not in str(result.to_dict())
    # the attempt's role cannot write outside its role, and nothing reaches the keys
    for path in ("/fhir/AuditEvent", "/fhir/Provenance"):
        assert httpx.get(
            server.root + path, headers={"Authorization": f"Bearer {alice._token}"}
        ).status_code in (401, 403, 404)


def test_the_class_cli_runs_a_course_on_the_server(server, tmp_path, capsys, monkeypatch):
    from ehr_sandbox.cli.app import main

    cid, secret = server.state.accounts.issue("instructor:cli", kind="instructor")
    monkeypatch.setenv("EHR_SANDBOX_CLIENT_ID", cid)
    monkeypatch.setenv("EHR_SANDBOX_SECRET", secret)
    url = ["--url", server.root]
    assert main(["class", "create", "--name", "CLI course", *url]) == 0
    slug = capsys.readouterr().out.split("course: ", 1)[1].strip()
    assert main(["class", "enroll", "--course", slug, "--student", "dana", *url]) == 0
    printed = capsys.readouterr().out
    fields = dict(line.split(": ", 1) for line in printed.splitlines() if ": " in line)
    assert fields["client_id"].startswith("c-") and fields["secret"]
    assert (
        main(
            [
                "class",
                "assign",
                "--course",
                slug,
                "--exercise",
                EXERCISE,
                "--max-attempts",
                "2",
                *url,
            ]
        )
        == 0
    )
    dana = connect(server.root, client_id=fields["client_id"], secret=fields["secret"])
    att = dana.start(EXERCISE, course=slug)
    get(EXERCISE).solution.apply(att)
    result = att.submit()
    out = tmp_path / "grades.csv"
    assert main(["class", "gradebook", "--course", slug, "--out", str(out), *url]) == 0
    rows = list(csv.reader(io.StringIO(out.read_text())))
    assert any(str(result.score).rstrip("0").rstrip(".") in ",".join(r) for r in rows[1:])
    monkeypatch.setenv("EHR_SANDBOX_SECRET", "wrong")
    assert main(["class", "create", "--name", "x", *url]) == 2
    assert "refused the credentials" in capsys.readouterr().err
