"""Browser sign-in: server-side sessions behind an HttpOnly cookie, and CSRF tokens.

A session id is random; the server keeps only its SHA-256 (in its own database, so every
worker process sees the same sessions) with the user and that session's CSRF token. Nothing
about the user is in the cookie. Forms carry the CSRF token in a hidden field, and a POST whose
token does not match is refused.

>>> import sqlite3
>>> sessions = BrowserSessions(sqlite3.connect(":memory:", check_same_thread=False))
>>> sid, csrf = sessions.start("patient/p1")
>>> sessions.user(sid), sessions.check_csrf(sid, csrf), sessions.check_csrf(sid, "forged")
('patient/p1', True, False)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass

COOKIE = "ehr_sid"
"""Name of the session cookie."""

PRE_COOKIE = "ehr_csrf"
"""Name of the cookie that pairs with the sign-in form's CSRF field (double submit)."""

SESSION_SECONDS = 3600
"""A browser session lasts an hour."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS browser_sessions (
    sid_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    csrf TEXT NOT NULL,
    expires REAL NOT NULL
);
"""


@dataclass
class BrowserSession:
    """One signed-in browser."""

    username: str
    csrf: str
    expires: float


def _digest(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8")).hexdigest()


class BrowserSessions:
    """The server's table of signed-in browsers.

    Parameters
    ----------
    con : sqlite3.Connection
        The server's own database (shared by its worker processes).
    """

    def __init__(self, con: sqlite3.Connection) -> None:
        self._con = con
        self._con.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def start(self, username: str) -> tuple[str, str]:
        """Sign ``username`` in; return ``(session id, csrf token)``."""
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        now = time.time()
        with self._lock:
            self._con.execute("DELETE FROM browser_sessions WHERE expires <= ?", (now,))
            self._con.execute(
                "INSERT INTO browser_sessions (sid_hash, username, csrf, expires) VALUES (?, ?, ?, ?)",
                (_digest(sid), username, csrf, now + SESSION_SECONDS),
            )
            self._con.commit()
        return sid, csrf

    def get(self, sid: str | None) -> BrowserSession | None:
        """The live session for a cookie value, or ``None``."""
        if not sid:
            return None
        with self._lock:
            row = self._con.execute(
                "SELECT username, csrf, expires FROM browser_sessions WHERE sid_hash = ?",
                (_digest(sid),),
            ).fetchone()
        if row is None or row[2] <= time.time():
            return None
        return BrowserSession(row[0], row[1], row[2])

    def user(self, sid: str | None) -> str | None:
        """The signed-in username, or ``None``."""
        item = self.get(sid)
        return item.username if item else None

    def check_csrf(self, sid: str | None, token: str | None) -> bool:
        """True when ``token`` is this session's CSRF token."""
        item = self.get(sid)
        return bool(item and token and hmac.compare_digest(item.csrf, str(token)))

    def end(self, sid: str | None) -> None:
        """Sign out."""
        if not sid:
            return
        with self._lock:
            self._con.execute("DELETE FROM browser_sessions WHERE sid_hash = ?", (_digest(sid),))
            self._con.commit()


def cookie_flags(secure: bool) -> dict[str, object]:
    """Cookie attributes: HttpOnly, SameSite=Strict, and Secure (always on HTTPS; on plain
    HTTP only loopback is served, which browsers treat as a secure context).

    >>> cookie_flags(True)["samesite"]
    'strict'
    """
    return {"httponly": True, "samesite": "strict", "secure": secure, "path": "/"}
