"""Authenticated current-version pointers.

The ``resources`` table says which version of each record is current. Whoever can edit the
file could point a relabelled record back at its unlabelled version 1 and make it readable
again; the audit trail would still verify, because nothing was appended. So every pointer has
an HMAC-SHA256 (key derived from the sandbox's master key) over ``Type/id/vid`` in its own
table, checked when the sandbox opens and on every read through the Session.

>>> import sqlite3
>>> con = sqlite3.connect(":memory:")
>>> _ = con.execute("CREATE TABLE resources (rtype TEXT, rid TEXT, vid INTEGER)")
>>> guard = PointerGuard(con, bytes(32))
>>> _ = con.execute("INSERT INTO resources VALUES ('Observation', 'o1', 2)")
>>> guard.record("Observation", "o1", 2); guard.check("Observation", "o1", 2)
>>> _ = con.execute("UPDATE resources SET vid = 1")
>>> guard.verify_all()
Traceback (most recent call last):
...
ehr_sandbox.errors.CryptoError: Observation/o1: its current-version pointer (version 1) fails its MAC: the database was changed outside the sandbox
"""

from __future__ import annotations

import hmac
import sqlite3
from collections.abc import Iterable

from ehr_sandbox.errors import CryptoError

POINTER_MAC_INFO = "ehr-sandbox/pointer-mac/v1"
"""HKDF ``info`` label of the pointer MAC key (distinct from every other derived key)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pointer_mac (
    rtype TEXT NOT NULL,
    rid TEXT NOT NULL,
    mac BLOB NOT NULL,
    PRIMARY KEY (rtype, rid)
) WITHOUT ROWID
"""


class PointerGuard:
    """MACs of the current-version pointers, kept beside the store's tables (one connection).

    Parameters
    ----------
    connection : sqlite3.Connection
        The store's connection; the guard keeps its ``pointer_mac`` table in it.
    key : bytes
        The MAC key (derived from the master key with :data:`POINTER_MAC_INFO`).

    Examples
    --------
    >>> import sqlite3
    >>> con = sqlite3.connect(":memory:")
    >>> _ = con.execute("CREATE TABLE resources (rtype TEXT, rid TEXT, vid INTEGER)")
    >>> guard = PointerGuard(con, bytes(32))
    >>> con.execute("SELECT name FROM sqlite_master WHERE name = 'pointer_mac'").fetchone()
    ('pointer_mac',)
    """

    def __init__(self, connection: sqlite3.Connection, key: bytes) -> None:
        self._con = connection
        self._key = bytes(key)
        self._verified: dict[tuple[str, str], int] = {}
        self._con.execute(_SCHEMA)

    def _mac(self, rtype: str, rid: str, vid: int) -> bytes:
        # the one-shot C implementation: the same HMAC-SHA256, without a Python HMAC object
        return hmac.digest(self._key, f"{rtype}/{rid}/{int(vid)}".encode(), "sha256")

    def record(self, rtype: str, rid: str, vid: int) -> None:
        """Authenticate the pointer of ``rtype/rid`` at version ``vid`` (after a write).

        Parameters
        ----------
        rtype, rid : str
            The resource.
        vid : int
            Its new current version.

        Examples
        --------
        >>> import sqlite3
        >>> con = sqlite3.connect(":memory:")
        >>> _ = con.execute("CREATE TABLE resources (rtype TEXT, rid TEXT, vid INTEGER)")
        >>> guard = PointerGuard(con, bytes(32))
        >>> guard.record("Patient", "p1", 3)
        >>> guard.check("Patient", "p1", 3)
        """
        self._con.execute(
            "INSERT OR REPLACE INTO pointer_mac (rtype, rid, mac) VALUES (?, ?, ?)",
            (rtype, rid, self._mac(rtype, rid, vid)),
        )
        self._verified[(rtype, rid)] = int(vid)

    def record_many(self, pointers: Iterable[tuple[str, str, int]], *, cache: bool = True) -> None:
        """:meth:`record` for many pointers (bulk loads).

        Parameters
        ----------
        pointers : iterable of (str, str, int)
            ``(rtype, rid, vid)`` triples.
        cache : bool, default True
            ``False`` does not remember them as verified (a bulk load of a whole clinic would
            otherwise keep one entry per resource in memory): the first :meth:`check` of each
            reads its MAC.

        Examples
        --------
        >>> import sqlite3
        >>> con = sqlite3.connect(":memory:")
        >>> _ = con.execute("CREATE TABLE resources (rtype TEXT, rid TEXT, vid INTEGER)")
        >>> guard = PointerGuard(con, bytes(32))
        >>> _ = con.executemany("INSERT INTO resources VALUES (?, ?, ?)", [("Patient", "a", 1), ("Patient", "b", 2)])
        >>> guard.record_many([("Patient", "a", 1), ("Patient", "b", 2)], cache=False)
        >>> guard.verify_all()
        2
        """
        items = [(t, i, int(v)) for t, i, v in pointers]
        rows = [(t, i, self._mac(t, i, v)) for t, i, v in items]
        self._con.executemany(
            "INSERT OR REPLACE INTO pointer_mac (rtype, rid, mac) VALUES (?, ?, ?)", rows
        )
        if cache:
            for t, i, v in items:
                self._verified[(t, i)] = v

    def check(self, rtype: str, rid: str, vid: int | str) -> None:
        """Raise :class:`CryptoError` unless ``vid`` is the authenticated current version.

        Parameters
        ----------
        rtype, rid : str
            The resource.
        vid : int or str
            The version the ``resources`` table points at.

        Raises
        ------
        CryptoError
            The pointer has no MAC or its MAC is for another version (the file was edited
            outside the sandbox).

        Examples
        --------
        >>> import sqlite3
        >>> con = sqlite3.connect(":memory:")
        >>> _ = con.execute("CREATE TABLE resources (rtype TEXT, rid TEXT, vid INTEGER)")
        >>> guard = PointerGuard(con, bytes(32))
        >>> guard.record("Observation", "o1", 2)
        >>> guard.check("Observation", "o1", 2)
        >>> guard.check("Observation", "o1", 1)
        Traceback (most recent call last):
        ...
        ehr_sandbox.errors.CryptoError: Observation/o1: its current-version pointer (version 1) fails its MAC: the database was changed outside the sandbox
        """
        v = int(vid)
        if self._verified.get((rtype, rid)) == v:
            return
        row = self._con.execute(
            "SELECT mac FROM pointer_mac WHERE rtype = ? AND rid = ?", (rtype, rid)
        ).fetchone()
        if row is None or not hmac.compare_digest(bytes(row[0]), self._mac(rtype, rid, v)):
            raise CryptoError(
                f"{rtype}/{rid}: its current-version pointer (version {v}) fails its MAC: "
                "the database was changed outside the sandbox"
            )
        self._verified[(rtype, rid)] = v

    def verify_all(self) -> int:
        """Check every pointer (on open); returns how many were checked.

        Returns
        -------
        int
            The number of pointers in the ``resources`` table, all verified.

        Raises
        ------
        CryptoError
            The first pointer whose MAC fails.

        Examples
        --------
        >>> import sqlite3
        >>> con = sqlite3.connect(":memory:")
        >>> _ = con.execute("CREATE TABLE resources (rtype TEXT, rid TEXT, vid INTEGER)")
        >>> guard = PointerGuard(con, bytes(32))
        >>> _ = con.execute("INSERT INTO resources VALUES ('Patient', 'p1', 1)")
        >>> guard.record("Patient", "p1", 1); guard.verify_all()
        1
        """
        n = 0
        macs = {
            (t, i): bytes(m)
            for t, i, m in self._con.execute("SELECT rtype, rid, mac FROM pointer_mac")
        }
        for rtype, rid, vid in self._con.execute("SELECT rtype, rid, vid FROM resources"):
            mac = macs.pop((rtype, rid), None)
            if mac is None or not hmac.compare_digest(mac, self._mac(rtype, rid, vid)):
                raise CryptoError(
                    f"{rtype}/{rid}: its current-version pointer (version {vid}) fails its MAC: "
                    "the database was changed outside the sandbox"
                )
            self._verified[(rtype, rid)] = int(vid)
            n += 1
        return n

    def rekey(self, key: bytes) -> None:
        """Re-authenticate every (verified) pointer under a new key (key rotation).

        Parameters
        ----------
        key : bytes
            The new MAC key.

        Examples
        --------
        >>> import sqlite3
        >>> con = sqlite3.connect(":memory:")
        >>> _ = con.execute("CREATE TABLE resources (rtype TEXT, rid TEXT, vid INTEGER)")
        >>> guard = PointerGuard(con, bytes(32))
        >>> _ = con.execute("INSERT INTO resources VALUES ('Patient', 'p1', 1)")
        >>> guard.record("Patient", "p1", 1); guard.rekey(bytes([7]) * 32)
        >>> PointerGuard(con, bytes([7]) * 32).verify_all()
        1
        >>> PointerGuard(con, bytes(32)).check("Patient", "p1", 1)
        Traceback (most recent call last):
        ...
        ehr_sandbox.errors.CryptoError: Patient/p1: its current-version pointer (version 1) fails its MAC: the database was changed outside the sandbox
        """
        self.verify_all()
        self._key = bytes(key)
        self.record_many(list(self._con.execute("SELECT rtype, rid, vid FROM resources")))
