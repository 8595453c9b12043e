"""A real classroom server on loopback for tests: uvicorn in a thread, a small clinic."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
