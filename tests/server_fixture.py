"""A real classroom server on loopback for tests: uvicorn in a thread, a small clinic."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from ehr_sandbox.server import ServerApp


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(
    data: Path, *, patients: int = 4, seed: int = 3, anchor: Path | None = None
) -> Iterator[ServerApp]:
    """Start a server on a free loopback port; stop it (and close its files) afterwards."""
    port = free_port()
    app = ServerApp(
        data, root=f"http://127.0.0.1:{port}", patients=patients, seed=seed, anchor=anchor
    )
    config = uvicorn.Config(app.asgi, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield app
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        app.close()


def token_for(app: ServerApp, username: str, scope: str = "") -> str:
    """An access token for ``username`` through the real token endpoint."""
    kind = "patient" if username.startswith("patient/") else "staff"
    cid, secret = app.state.accounts.issue(username, kind=kind)
    r = httpx.post(
        f"{app.root}/auth/token",
        data={"grant_type": "client_credentials", "scope": scope},
        auth=(cid, secret or ""),
    )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def serve_process(
    data: Path, port: int, *, workers: int = 1, patients: int = 3
) -> subprocess.Popen:
    """``ehr-sandbox serve`` as a real process on ``port`` (returns once it answers)."""
    repo = Path(__file__).resolve().parents[1]
    args = [sys.executable, "-m", "ehr_sandbox", "serve", "--data", str(data)]
    args += ["--port", str(port), "--patients", str(patients), "--seed", "2"]
    args += ["--workers", str(workers)]
    proc = subprocess.Popen(args, cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/fhir/metadata", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not start in time")


def cli_fields(*args: str) -> dict[str, str]:
    """Run the CLI; the ``name: value`` lines it prints."""
    repo = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-m", "ehr_sandbox", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


def course_with_students(
    app: ServerApp, data: Path, name: str, exercises: Iterable[str], students: Iterable[str]
) -> tuple[Any, str, list[Any]]:
    """An instructor (made with the CLI) opens course ``name``, assigns ``exercises`` and
    enrols ``students``: (the instructor's remote session, the course id, each student's remote
    session in order)."""
    from ehr_sandbox import connect

    teacher = cli_fields("server", "add-instructor", "--data", str(data), "--name", "teacher")
    admin = connect(app.root, client_id=teacher["client_id"], secret=teacher["secret"])
    course = admin.course_call("POST", "/course", {"name": name})["course"]
    for exercise in exercises:
        admin.course_call("POST", f"/course/{course}/assignments", {"exercise": exercise})
    sessions = []
    for sid in students:
        creds = admin.course_call("POST", f"/course/{course}/students", {"id": sid})
        sessions.append(connect(app.root, client_id=creds["client_id"], secret=creds["secret"]))
    return admin, course, sessions
