"""SMART launch state kept in the server database (so every worker process sees it):
authorization codes, the patient-picker tickets of a standalone launch, and EHR launch contexts.

Only SHA-256 digests of the random codes, tickets and launch ids are stored; each is single
use (taken with one ``DELETE ... RETURNING``) and short-lived.

>>> import tempfile, os
>>> store = LaunchStore(os.path.join(tempfile.mkdtemp(), "server.db"))
>>> launch = store.new_launch("dr.patel", "p1")
>>> store.take_launch(launch, "dr.patel"), store.take_launch(launch, "dr.patel")
('p1', None)
>>> store.close()
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

CODE_SECONDS = 120
"""How long an authorization code may be exchanged (single use)."""

TICKET_SECONDS = 600
"""How long a signed-in user has to pick a patient."""

LAUNCH_SECONDS = 600
"""How long an EHR launch id may start an app."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS auth_codes (
    digest TEXT PRIMARY KEY, body TEXT NOT NULL, expires REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS launch_tickets (
    digest TEXT PRIMARY KEY, username TEXT NOT NULL, request TEXT NOT NULL, expires REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS ehr_launches (
    digest TEXT PRIMARY KEY, username TEXT NOT NULL, patient TEXT NOT NULL, expires REAL NOT NULL
);
"""


def _digest(value: str) -> str:
    return hashlib.sha256(str(value).encode("utf-8")).hexdigest()


@dataclass
class PendingCode:
    """An issued authorization code waiting to be exchanged (Authlib's code object)."""

    code: str
    client_id: str
    redirect_uri: str
    scope: str
    username: str
    code_challenge: str | None
    code_challenge_method: str | None
    expires: float
    patient: str | None = None

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_code_challenge(self) -> str | None:
        return self.code_challenge

    def get_code_challenge_method(self) -> str | None:
        return self.code_challenge_method

    def is_expired(self) -> bool:
        return time.time() > self.expires


class LaunchStore:
    """Codes, picker tickets and launch contexts in the server database.

    Parameters
    ----------
    path : str or Path
        The server database (``server.db``).
    """

    def __init__(self, path: str | Path) -> None:
        self._con = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._con.execute("PRAGMA busy_timeout = 10000")
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def _put(self, table: str, digest: str, values: dict[str, Any]) -> None:
        cols = ", ".join(["digest", *values])
        marks = ", ".join("?" * (len(values) + 1))
        with self._lock:
            self._con.execute(f"DELETE FROM {table} WHERE expires <= ?", (time.time(),))
            self._con.execute(
                f"INSERT INTO {table} ({cols}) VALUES ({marks})", (digest, *values.values())
            )

    def _take(self, table: str, digest: str, cols: str) -> tuple[Any, ...] | None:
        with self._lock:
            row = self._con.execute(
                f"DELETE FROM {table} WHERE digest = ? RETURNING {cols}, expires", (digest,)
            ).fetchone()
        if row is None or row[-1] <= time.time():
            return None
        return tuple(row[:-1])

    # ------------------------------------------------------------------ codes
    def put_code(self, pending: PendingCode) -> None:
        """Keep an issued code (its digest) until it is exchanged or expires."""
        body = {k: v for k, v in asdict(pending).items() if k != "code"}
        self._put(
            "auth_codes",
            _digest(pending.code),
            {"body": json.dumps(body), "expires": pending.expires},
        )

    def take_code(self, code: str) -> PendingCode | None:
        """The code's grant, taken out (single use), or ``None`` if unknown or expired."""
        row = self._take("auth_codes", _digest(code), "body")
        return PendingCode(code=code, **json.loads(row[0])) if row else None

    # ------------------------------------------------------------------ patient picker
    def new_ticket(self, username: str, request: dict[str, str]) -> str:
        """A ticket for a signed-in user who still has to pick a patient."""
        ticket = secrets.token_urlsafe(32)
        self._put(
            "launch_tickets",
            _digest(ticket),
            {
                "username": username,
                "request": json.dumps(request),
                "expires": time.time() + TICKET_SECONDS,
            },
        )
        return ticket

    def take_ticket(self, ticket: str) -> tuple[str, dict[str, str]] | None:
        """``(username, authorization request)`` of a ticket, taken out (single use)."""
        row = self._take("launch_tickets", _digest(ticket), "username, request")
        return (str(row[0]), dict(json.loads(row[1]))) if row else None

    # ------------------------------------------------------------------ EHR launch
    def new_launch(self, username: str, patient: str) -> str:
        """A launch id for an app started from the EHR with ``patient`` open."""
        launch = secrets.token_urlsafe(24)
        self._put(
            "ehr_launches",
            _digest(launch),
            {"username": username, "patient": patient, "expires": time.time() + LAUNCH_SECONDS},
        )
        return launch

    def take_launch(self, launch: str, username: str) -> str | None:
        """The patient of a launch id made for ``username`` (single use), else ``None``."""
        row = self._take("ehr_launches", _digest(launch), "username, patient")
        if row is None or row[0] != username:
            return None
        return str(row[1])

    def close(self) -> None:
        """Close the database connection."""
        self._con.close()
