"""The server as a real process (``ehr-sandbox serve``): killed with SIGKILL mid-run and
restarted, every acknowledged write is still there and the audit trail verifies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.server_fixture import free_port

REPO = Path(__file__).resolve().parents[1]
VITALS = "http://terminology.hl7.org/CodeSystem/observation-category"


def start(data: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ehr_sandbox",
            "serve",
            "--data",
            str(data),
            "--port",
            str(port),
            "--patients",
            "3",
            "--seed",
            "2",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stdout.read().decode() if proc.stdout else "server exited")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/fhir/metadata", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("server did not start in time")


def test_first_start_prints_the_instructor_credentials_once(tmp_path):
    from ehr_sandbox.cli.server_cmds import first_instructor
    from ehr_sandbox.server.accounts import Accounts

    first = first_instructor(tmp_path)
    assert first is not None and first["username"] == "instructor:admin"
    assert first_instructor(tmp_path) is None  # the second start shows nothing
    acc = Accounts(tmp_path / "server.db")
    try:
        assert acc.check_password("instructor:admin", first["password"])
        assert acc.verify_secret(first["client_id"], first["secret"]) is not None
    finally:
        acc.close()
    assert first["password"].encode() not in (tmp_path / "server.db").read_bytes()


def cli(*args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "ehr_sandbox", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


def credentials(data: Path, user: str) -> tuple[str, str]:
    text = cli("server", "add-client", "--data", str(data), "--user", user)
    fields = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
    return fields["client_id"], fields["secret"]


def heart_rate(pid: str, n: int) -> dict:
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
            "value": 60 + n % 40,
            "unit": "/min",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
    }


@pytest.mark.slow
def test_sigkill_mid_run_loses_no_acknowledged_write(tmp_path):
    data = tmp_path / "data"
    port = free_port()
    proc = start(data, port)
    root = f"http://127.0.0.1:{port}"
    acknowledged: list[str] = []
    try:
        cid, secret = credentials(data, "dr.patel")
        token = httpx.post(
            f"{root}/auth/token", data={"grant_type": "client_credentials"}, auth=(cid, secret)
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        pid = httpx.get(f"{root}/fhir/Patient", headers=auth, params={"_count": "1"}).json()[
            "entry"
        ][0]["resource"]["id"]
        stop = threading.Event()

        def writer() -> None:
            n = 0
            with httpx.Client(timeout=5) as client:
                while not stop.is_set() and n < 400:
                    try:
                        r = client.post(
                            f"{root}/fhir/Observation", json=heart_rate(pid, n), headers=auth
                        )
                    except httpx.HTTPError:
                        return  # the server died mid-request: not acknowledged
                    if r.status_code == 201:
                        acknowledged.append(r.json()["id"])
                    n += 1

        t = threading.Thread(target=writer)
        t.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 15 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        stop.set()
        t.join(timeout=10)
        assert len(acknowledged) >= 15
    finally:
        if proc.poll() is None:
            proc.kill()
    proc = start(data, port)
    try:
        token = httpx.post(
            f"{root}/auth/token", data={"grant_type": "client_credentials"}, auth=(cid, secret)
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        for oid in acknowledged:
            assert httpx.get(f"{root}/fhir/Observation/{oid}", headers=auth).status_code == 200, oid
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    from ehr_sandbox import Sandbox

    passphrase = (data / "keys" / "clinic.passphrase").read_text()
    sb = Sandbox.open(data / "clinic.db", passphrase=passphrase)
    try:
        verdict = sb.audit.verify()
        assert verdict.ok, verdict
    finally:
        sb.close()


def test_usage_errors_of_serve_are_one_line(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "ehr_sandbox", "serve", "--port", "99999"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr


@pytest.mark.slow
def test_two_workers_never_lose_an_update(tmp_path):
    """Concurrent updates of one record through two worker processes: exactly one wins, the
    rest get 412, and the audit trail still verifies."""
    from concurrent.futures import ThreadPoolExecutor

    data = tmp_path / "data"
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ehr_sandbox",
            "serve",
            "--data",
            str(data),
            "--port",
            str(port),
            "--patients",
            "3",
            "--seed",
            "2",
            "--workers",
            "2",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    root = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{root}/fhir/metadata", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "server did not start"
            time.sleep(0.2)
        cid, secret = credentials(data, "dr.patel")
        token = httpx.post(
            f"{root}/auth/token", data={"grant_type": "client_credentials"}, auth=(cid, secret)
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        pid = httpx.get(f"{root}/fhir/Patient", headers=auth, params={"_count": "1"}).json()[
            "entry"
        ][0]["resource"]["id"]
        created = httpx.post(
            f"{root}/fhir/Observation", json=heart_rate(pid, 1), headers=auth
        ).json()
        url = f"{root}/fhir/Observation/{created['id']}"

        def put(n: int) -> int:
            body = {**created, "valueQuantity": {**created["valueQuantity"], "value": 50 + n}}
            with httpx.Client(timeout=30) as c:
                return c.put(url, json=body, headers={**auth, "If-Match": 'W/"1"'}).status_code

        with ThreadPoolExecutor(max_workers=12) as pool:
            codes = list(pool.map(put, range(24)))
        assert codes.count(200) == 1, codes
        assert set(codes) <= {200, 412}, codes
        final = httpx.get(url, headers=auth).json()
        assert final["meta"]["versionId"] == "2"
        with ThreadPoolExecutor(max_workers=8) as pool:
            reads = list(
                pool.map(lambda _: httpx.get(url, headers=auth, timeout=30).status_code, range(40))
            )
        assert set(reads) == {200}, reads
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    from ehr_sandbox import Sandbox

    sb = Sandbox.open(
        data / "clinic.db", passphrase=(data / "keys" / "clinic.passphrase").read_text()
    )
    try:
        assert sb.audit.verify().ok
    finally:
        sb.close()


def test_anchors_catch_a_cut_off_tail_even_without_stored_checkpoints(tmp_path):
    """The server appends signed checkpoints to an anchor file outside its data; deleting the
    audit tail together with the checkpoint rows still fails ``audit verify --anchor``."""
    from ehr_sandbox import Sandbox
    from ehr_sandbox.cli.app import main
    from tests.server_fixture import running_server, token_for

    anchor = tmp_path / "instructor" / "anchors.jsonl"
    data = tmp_path / "data"
    with running_server(data, patients=2, seed=5, anchor=anchor) as app:
        token = token_for(app, "dr.patel")
        pid = httpx.get(
            f"{app.root}/fhir/Patient", headers={"Authorization": f"Bearer {token}"}
        ).json()["entry"][0]["resource"]["id"]
        for n in range(3):
            r = httpx.post(
                f"{app.root}/fhir/Observation",
                json=heart_rate(pid, n),
                headers={"Authorization": f"Bearer {token}"},
            )
            assert r.status_code == 201
    lines = anchor.read_text().splitlines()
    assert len(lines) >= 4  # at start, after each write, at shutdown
    passphrase = (data / "keys" / "clinic.passphrase").read_text()
    db = data / "clinic.db"
    assert (
        main(
            [
                "audit",
                "verify",
                "--db",
                str(db),
                "--passphrase",
                passphrase,
                "--anchor",
                str(anchor),
            ]
        )
        == 0
    )
    sb = Sandbox.open(db, passphrase=passphrase)
    con = sb._store.connection  # the attacker edits the file directly
    last = con.execute("SELECT max(seq) FROM audit_log").fetchone()[0]
    con.execute("DELETE FROM audit_log WHERE seq > ?", (last - 5,))
    con.execute("DELETE FROM audit_checkpoint WHERE seq > ?", (last - 5,))
    sb.release()
    assert main(["audit", "verify", "--db", str(db), "--passphrase", passphrase]) in (0, 1)
    assert (
        main(
            [
                "audit",
                "verify",
                "--db",
                str(db),
                "--passphrase",
                passphrase,
                "--anchor",
                str(anchor),
            ]
        )
        == 1
    )


def test_an_anchor_inside_the_data_directory_is_refused(tmp_path):
    from ehr_sandbox.errors import ArgumentError
    from ehr_sandbox.server.anchors import AnchorLog

    with pytest.raises(ArgumentError, match="outside the data directory"):
        AnchorLog(tmp_path / "data" / "anchors.jsonl", data=tmp_path / "data")
