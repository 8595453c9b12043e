"""Exercise attempts on the server live in its data directory, not in a process: a SIGKILL and
a restart keep every acknowledged write of an attempt in progress, and two worker processes
serve one student's attempt in turn with no update lost (one wins, the others get 412)."""

from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest

from ehr_sandbox import connect
from ehr_sandbox.exercises.registry import get
from tests.server_fixture import cli_fields, free_port, running_server, serve_process

EXERCISE = "records/correction"


def class_with_one_student(root: str, data: Path, student: str = "alice") -> tuple[str, dict]:
    """A course with one student and the exercise assigned; (course id, credentials)."""
    teacher = cli_fields("server", "add-instructor", "--data", str(data), "--name", "t")
    admin = connect(root, client_id=teacher["client_id"], secret=teacher["secret"])
    slug = admin.course_call("POST", "/course", {"name": "Restart course"})["course"]
    admin.course_call(
        "POST", f"/course/{slug}/assignments", {"exercise": EXERCISE, "max_attempts": 2}
    )
    creds = admin.course_call("POST", f"/course/{slug}/students", {"id": student})
    return slug, creds


def attempt_files(data: Path) -> list[Path]:
    return sorted((data / "attempts").glob("*.db"))


@pytest.mark.slow
def test_sigkill_mid_attempt_keeps_every_acknowledged_write_and_grades_right(tmp_path):
    data, port = tmp_path / "data", free_port()
    root = f"http://127.0.0.1:{port}"
    data.mkdir()
    proc = serve_process(data, port)
    try:
        slug, creds = class_with_one_student(root, data)
        s = connect(root, client_id=creds["client_id"], secret=creds["secret"])
        att = s.start(EXERCISE, course=slug)
        before = att.check()
        assert not before.passed
        get(EXERCISE).solution.apply(att)  # acknowledged: the correction is written
        corrected = att.session.read("Observation", att.facts["obs_id"])
        assert corrected["status"] == "corrected"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    # the attempt is a file under DATA, encrypted: no patient name in the clear
    files = attempt_files(data)
    assert files, "the attempt was not kept on disk"
    assert all(att.facts["patient_name"].encode() not in f.read_bytes() for f in files)
    proc = serve_process(data, port)
    try:
        # the same token still works (the attempt is found by any process), and the
        # acknowledged correction is there, version for version
        assert att.session.read("Observation", att.facts["obs_id"]) == corrected
        # signing in again resumes the same attempt, with the student's work in it
        s2 = connect(root, client_id=creds["client_id"], secret=creds["secret"])
        again = s2.start(EXERCISE, course=slug)
        assert again.attempt_id == att.attempt_id and dict(again.facts) == dict(att.facts)
        practice = again.check()
        assert practice.passed and practice.score == practice.max_score, practice.feedback
        graded = again.submit()
        assert graded.passed and graded.attempt == 1
        # no submission before the kill: the limit of 2 leaves exactly one more
        assert again.submit().attempt == 2
        teacher = cli_fields("server", "add-instructor", "--data", str(data), "--name", "t2")
        admin = connect(root, client_id=teacher["client_id"], secret=teacher["secret"])
        recorded = admin.course_call("GET", f"/course/{slug}/results")
        assert [(r["attempt"], r["graded_by"], r["passed"]) for r in recorded] == [
            (1, "server", True),
            (2, "server", True),
        ]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


@pytest.mark.slow
def test_two_workers_serve_one_attempt_in_turn_and_never_lose_an_update(tmp_path):
    data, port = tmp_path / "data", free_port()
    root = f"http://127.0.0.1:{port}"
    data.mkdir()
    proc = serve_process(data, port, workers=2)
    try:
        slug, creds = class_with_one_student(root, data)
        s = connect(root, client_id=creds["client_id"], secret=creds["secret"])
        token = s._token

        def start(_: int) -> str:  # new connections: the workers share them out
            with httpx.Client(timeout=120) as c:
                r = c.post(
                    f"{root}/course/{slug}/attempts",
                    json={"exercise": EXERCISE},
                    headers={"Authorization": f"Bearer {token}"},
                )
            assert r.status_code == 200, r.text
            return r.json()

        with ThreadPoolExecutor(max_workers=4) as pool:
            started = list(pool.map(start, range(4)))
        assert len({a["attempt"] for a in started}) == 1  # one attempt, however many starts
        first = started[0]
        auth = {"Authorization": f"Bearer {first['access_token']}"}
        obs_url = f"{root}/fhir/Observation/{first['facts']['obs_id']}"

        # requests on fresh connections land on both workers, until each has served it
        workers = [
            c
            for c in psutil.Process(proc.pid).children()
            if "resource_tracker" not in " ".join(c.cmdline())
        ]
        assert len(workers) == 2

        def holders() -> set[int]:
            names = {f.name for f in attempt_files(data)}
            held = set()
            for w in workers:
                if any(Path(f.path).name in names for f in w.open_files()):
                    held.add(w.pid)
            return held

        for _ in range(200):
            with httpx.Client(timeout=60) as c:
                assert c.get(obs_url, headers=auth).status_code == 200
            if len(holders()) == 2:
                break
        assert len(holders()) == 2, "one worker served every request"

        current = httpx.get(obs_url, headers=auth).json()
        version = current["meta"]["versionId"]

        def put(n: int) -> int:
            body = {**current, "note": [{"text": f"checked by writer {n}"}]}
            with httpx.Client(timeout=60) as c:
                r = c.put(obs_url, json=body, headers={**auth, "If-Match": f'W/"{version}"'})
            return r.status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            codes = list(pool.map(put, range(16)))
        assert codes.count(200) == 1 and set(codes) <= {200, 412}, codes
        after = httpx.get(obs_url, headers=auth).json()
        assert int(after["meta"]["versionId"]) == int(version) + 1
        assert after["note"][0]["text"] in {f"checked by writer {n}" for n in range(16)}

        # the reference solution through the student's API, spread over both workers
        att = s.start(EXERCISE, course=slug)
        assert att.attempt_id == first["attempt"]
        att.reset()  # back to the start: the racing updates above are gone
        assert httpx.get(obs_url, headers=auth).json()["meta"]["versionId"] == "1"
        get(EXERCISE).solution.apply(att)
        results = [att.check() for _ in range(4)]
        assert all(r.passed for r in results), [r.feedback for r in results]
        graded = att.submit()
        assert graded.passed and graded.attempt == 1
        assert att.submit().attempt == 2  # the count is shared: the next is refused
        with pytest.raises(Exception, match="attempt limit"):
            att.submit()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def test_attempt_files_are_server_named_and_never_served(tmp_path):
    import re

    from ehr_sandbox.errors import ExerciseError

    with running_server(tmp_path / "data", patients=2, seed=4) as app:
        cid, secret = app.state.accounts.issue("instructor:x", kind="instructor")
        admin = connect(app.root, client_id=cid, secret=secret)
        slug = admin.course_call("POST", "/course", {"name": "Files"})["course"]
        admin.course_call("POST", f"/course/{slug}/assignments", {"exercise": EXERCISE})
        with pytest.raises(ExerciseError, match="student id"):
            admin.course_call("POST", f"/course/{slug}/students", {"id": "../../etc"})
        creds = admin.course_call("POST", f"/course/{slug}/students", {"id": "dave"})
        s = connect(app.root, client_id=creds["client_id"], secret=creds["secret"])
        att = s.start(EXERCISE, course=slug)
        names = [f.name for f in attempt_files(app.state.data)]
        assert names and all(re.fullmatch(r"[0-9a-f]{32}\.db", n) for n in names)
        auth = {"Authorization": f"Bearer {att.session._token}"}
        for name in names:
            for path in (
                f"/attempts/{name}",
                f"/fhir/$export-file/x/..%2F..%2Fattempts%2F{name}",
                f"/course/{slug}/attempts/{name}/check",
            ):
                r = httpx.request(
                    "POST" if path.endswith("check") else "GET", app.root + path, headers=auth
                )
                assert r.status_code in (401, 403, 404, 405), (path, r.status_code)
                assert b"SQLite format" not in r.content


def test_attempts_resume_from_the_database_in_a_new_process_state(tmp_path):
    """A second ServerState on the same data (another worker) serves the same attempt."""
    from ehr_sandbox.server.state import ServerState

    data = tmp_path / "data"
    with running_server(data, patients=2, seed=4) as app:
        cid, secret = app.state.accounts.issue("instructor:x", kind="instructor")
        admin = connect(app.root, client_id=cid, secret=secret)
        slug = admin.course_call("POST", "/course", {"name": "Two states"})["course"]
        admin.course_call("POST", f"/course/{slug}/assignments", {"exercise": EXERCISE})
        creds = admin.course_call("POST", f"/course/{slug}/students", {"id": "carol"})
        s = connect(app.root, client_id=creds["client_id"], secret=creds["secret"])
        att = s.start(EXERCISE, course=slug)
        get(EXERCISE).solution.apply(att)
        other = ServerState(data, issuer=app.root)
        try:
            hosted = other.courses.attempt(att.attempt_id, "carol")
            assert hosted.attempt.check().passed  # the work done through the first process
            assert dict(hosted.attempt.facts) == dict(att.facts)
            with pytest.raises(Exception, match="no such attempt"):
                other.courses.attempt(att.attempt_id, "mallory")
            row = other.courses.attempt_files.find(att.attempt_id)
            assert row is not None and (data / "attempts" / row.file).is_file()
            assert slug in other.courses.courses  # the course made through the first one
        finally:
            other.close()
