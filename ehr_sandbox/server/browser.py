"""Browser sign-in: server-side sessions behind an HttpOnly cookie, and CSRF tokens.

A session id is random and maps, on the server only, to the user and that session's CSRF
token; nothing about the user is in the cookie. Forms carry the CSRF token in a hidden field,
and a POST whose token does not match is refused.

>>> sessions = BrowserSessions()
>>> sid, csrf = sessions.start("patient/p1")
>>> sessions.user(sid), sessions.check_csrf(sid, csrf), sessions.check_csrf(sid, "forged")
('patient/p1', True, False)
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass

COOKIE = "ehr_sid"
"""Name of the session cookie."""

PRE_COOKIE = "ehr_csrf"
"""Name of the cookie that pairs with the sign-in form's CSRF field (double submit)."""

SESSION_SECONDS = 3600
"""A browser session lasts an hour."""


@dataclass
class BrowserSession:
    """One signed-in browser."""

    username: str
    csrf: str
    expires: float


class BrowserSessions:
    """The server's table of signed-in browsers (in memory: a restart signs everyone out)."""

    def __init__(self) -> None:
        self._items: dict[str, BrowserSession] = {}
        self._lock = threading.Lock()

    def start(self, username: str) -> tuple[str, str]:
        """Sign ``username`` in; return ``(session id, csrf token)``."""
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        with self._lock:
            now = time.time()
            self._items = {k: v for k, v in self._items.items() if v.expires > now}
            self._items[sid] = BrowserSession(username, csrf, now + SESSION_SECONDS)
        return sid, csrf

    def get(self, sid: str | None) -> BrowserSession | None:
        """The live session for a cookie value, or ``None``."""
        if not sid:
            return None
        with self._lock:
            item = self._items.get(sid)
        if item is None or item.expires <= time.time():
            return None
        return item

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
        with self._lock:
            self._items.pop(sid or "", None)


def cookie_flags(secure: bool) -> dict[str, object]:
    """Cookie attributes: HttpOnly, SameSite=Strict, and Secure (always on HTTPS; on plain
    HTTP only loopback is served, which browsers treat as a secure context).

    >>> cookie_flags(True)["samesite"]
    'strict'
    """
    return {"httponly": True, "samesite": "strict", "secure": secure, "path": "/"}
