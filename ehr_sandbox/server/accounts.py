"""Client accounts of the classroom server: who may ask for a token, as whom.

A client is a credential (``client_id`` plus a secret, or a registered public key for SMART
Backend Services) bound to one sandbox user: a staff username, a patient, a student or the
instructor. Secrets are shown once when issued and stored only as scrypt hashes.

>>> import tempfile, os
>>> acc = Accounts(os.path.join(tempfile.mkdtemp(), "server.db"))
>>> client_id, secret = acc.issue("dr.patel", kind="staff")
>>> acc.verify_secret(client_id, secret).username
'dr.patel'
>>> acc.verify_secret(client_id, "wrong") is None
True
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ehr_sandbox.errors import NotFound, ValidationError

KINDS = ("staff", "patient", "student", "instructor")
"""What a client account stands for."""

_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS clients (
    client_id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    kind TEXT NOT NULL,
    secret_salt BLOB,
    secret_hash BLOB,
    jwks TEXT,
    redirect_uris TEXT NOT NULL DEFAULT '[]',
    active INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS passwords (
    username TEXT PRIMARY KEY,
    salt BLOB NOT NULL,
    hash BLOB NOT NULL
);
"""


@dataclass(frozen=True)
class Client:
    """One registered client (what a token request authenticates as)."""

    client_id: str
    username: str
    kind: str
    jwks: dict[str, Any] | None
    redirect_uris: tuple[str, ...]

    @property
    def patient_id(self) -> str | None:
        """The patient a ``patient`` client stands for (its username is ``patient/<id>``)."""
        if self.kind == "patient":
            return self.username.split("/", 1)[1]
        return None


def hash_secret(secret: str, salt: bytes) -> bytes:
    """The scrypt hash of a client secret.

    Parameters
    ----------
    secret : str
        The secret as issued.
    salt : bytes
        A random per-client salt.

    Returns
    -------
    bytes
        32 bytes.

    Examples
    --------
    >>> len(hash_secret("s", b"0" * 16))
    32
    """
    return hashlib.scrypt(secret.encode("utf-8"), salt=salt, **_SCRYPT)


class Accounts:
    """The server's client registry (a small SQLite file in the server's data directory)."""

    def __init__(self, path: str | Path) -> None:
        self._con = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def issue(
        self,
        username: str,
        *,
        kind: str,
        jwks: dict[str, Any] | None = None,
        redirect_uris: list[str] | None = None,
        client_id: str | None = None,
    ) -> tuple[str, str | None]:
        """Register a client; return ``(client_id, secret)``. The secret is shown only now.

        Parameters
        ----------
        username : str
            The sandbox user the client acts as (``patient/<id>`` for a patient).
        kind : str
            One of :data:`KINDS`.
        jwks : dict, optional
            A public JWK Set for ``private_key_jwt`` (SMART Backend Services); then no secret
            is issued.
        redirect_uris : list of str, optional
            Allowed redirect URIs for the authorization-code flow.
        client_id : str, optional
            A chosen id (default: random).

        Returns
        -------
        tuple
            ``(client_id, secret or None)``.

        Raises
        ------
        ValidationError
            Unknown ``kind``.

        Examples
        --------
        >>> import tempfile, os
        >>> acc = Accounts(os.path.join(tempfile.mkdtemp(), "s.db"))
        >>> acc.issue("x", kind="wizard")
        Traceback (most recent call last):
        ...
        ehr_sandbox.errors.ValidationError: client: kind: expected one of staff, patient, student, instructor (found 'wizard')
        """
        if kind not in KINDS:
            raise ValidationError("client", "kind", "one of " + ", ".join(KINDS), found=kind)
        cid = client_id or "c-" + secrets.token_urlsafe(12)
        secret = None if jwks else secrets.token_urlsafe(24)
        salt = secrets.token_bytes(16) if secret else None
        digest = hash_secret(secret, salt) if secret and salt else None
        with self._lock:
            self._con.execute(
                "INSERT INTO clients (client_id, username, kind, secret_salt, secret_hash, jwks,"
                " redirect_uris) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    cid,
                    username,
                    kind,
                    salt,
                    digest,
                    json.dumps(jwks) if jwks else None,
                    json.dumps(redirect_uris or []),
                ),
            )
        return cid, secret

    def get(self, client_id: str) -> Client | None:
        """The active client with this id, or ``None``.

        Examples
        --------
        >>> import tempfile, os
        >>> Accounts(os.path.join(tempfile.mkdtemp(), "s.db")).get("nobody") is None
        True
        """
        with self._lock:
            row = self._con.execute(
                "SELECT client_id, username, kind, jwks, redirect_uris FROM clients"
                " WHERE client_id = ? AND active = 1",
                (str(client_id),),
            ).fetchone()
        if row is None:
            return None
        return Client(
            row[0],
            row[1],
            row[2],
            json.loads(row[3]) if row[3] else None,
            tuple(json.loads(row[4])),
        )

    def verify_secret(self, client_id: str, secret: str) -> Client | None:
        """The client if ``secret`` is its secret (constant-time compare), else ``None``."""
        with self._lock:
            row = self._con.execute(
                "SELECT secret_salt, secret_hash FROM clients WHERE client_id = ? AND active = 1",
                (str(client_id),),
            ).fetchone()
        if row is None or row[0] is None:
            hash_secret(str(secret), b"\0" * 16)  # same cost either way
            return None
        if not hmac.compare_digest(hash_secret(str(secret), row[0]), row[1]):
            return None
        return self.get(client_id)

    def has_kind(self, kind: str) -> bool:
        """True when an active client of this kind exists (e.g. an instructor)."""
        with self._lock:
            row = self._con.execute(
                "SELECT 1 FROM clients WHERE kind = ? AND active = 1 LIMIT 1", (kind,)
            ).fetchone()
        return row is not None

    def for_user(self, username: str) -> list[str]:
        """Client ids bound to ``username``."""
        with self._lock:
            rows = self._con.execute(
                "SELECT client_id FROM clients WHERE username = ? AND active = 1", (username,)
            ).fetchall()
        return [r[0] for r in rows]

    def set_password(self, username: str) -> str:
        """Issue a new sign-in password for ``username`` (browser login); shown only now.

        Examples
        --------
        >>> import tempfile, os
        >>> acc = Accounts(os.path.join(tempfile.mkdtemp(), "s.db"))
        >>> pw = acc.set_password("patient/p1")
        >>> acc.check_password("patient/p1", pw), acc.check_password("patient/p1", "x")
        (True, False)
        """
        password = secrets.token_urlsafe(12)
        salt = secrets.token_bytes(16)
        with self._lock:
            self._con.execute(
                "INSERT OR REPLACE INTO passwords (username, salt, hash) VALUES (?, ?, ?)",
                (username, salt, hash_secret(password, salt)),
            )
        return password

    def check_password(self, username: str, password: str) -> bool:
        """True when ``password`` is ``username``'s sign-in password (constant time)."""
        with self._lock:
            row = self._con.execute(
                "SELECT salt, hash FROM passwords WHERE username = ?", (str(username),)
            ).fetchone()
        if row is None:
            hash_secret(str(password), b"\0" * 16)
            return False
        return hmac.compare_digest(hash_secret(str(password), row[0]), row[1])

    def revoke(self, client_id: str) -> None:
        """Deactivate a client (staff who leave, a leaked secret).

        Raises
        ------
        NotFound
            No such active client.
        """
        with self._lock:
            cur = self._con.execute(
                "UPDATE clients SET active = 0 WHERE client_id = ? AND active = 1", (client_id,)
            )
        if cur.rowcount == 0:
            raise NotFound(f"no active client {client_id!r}")

    @property
    def connection(self) -> sqlite3.Connection:
        """The registry's database connection (the server keeps its browser sessions there too)."""
        return self._con

    def close(self) -> None:
        """Close the registry file."""
        self._con.close()
