"""The tamper-evident audit trail, kept in two tables of the sandbox's SQLite database.

``audit_log(seq, record, h, mac, patient, username, action)``: ``record`` is the RFC 8785
canonical JSON of the AuditEvent sealed with the row codec (associated data ``audit/{seq}``),
``h`` the chain hash (sealed too, aad ``audit/{seq}/h``, so an encrypted database shows no
hash of guessable content), ``mac`` its HMAC under the audit key, ``patient``/``username``
blind indexes for filtering. ``audit_checkpoint(seq, h, signature)`` holds an Ed25519
signature of ``(seq, h)`` every ``batch`` entries and whenever :meth:`AuditTrail.checkpoint`
is called (the sandbox does on close). See :mod:`ehr_sandbox.audit.chain` for the formulas.

The trail never commits on its own: each append runs in a SAVEPOINT, so it joins a
surrounding store transaction when there is one and commits by itself otherwise.

>>> import sqlite3
>>> from ehr_sandbox.crypto import MasterKey, IdentityCodec
>>> trail = AuditTrail(sqlite3.connect(":memory:"), MasterKey(bytes(32)), IdentityCodec())
>>> trail.append({"resourceType": "AuditEvent", "action": "R"}), trail.count(), trail.verify().ok
(1, 1, True)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ehr_sandbox.audit.batch import PreparedEvent, prepare_event
from ehr_sandbox.audit.chain import (
    GENESIS,
    VerifyResult,
    chain_hash,
    chain_mac,
    checkpoint_message,
    verify_rows,
)
from ehr_sandbox.audit.events import event_patient, event_username
from ehr_sandbox.crypto.codec import IdentityCodec, RowCodec
from ehr_sandbox.crypto.keys import AUDIT_MAC_INFO, AUDIT_SIGN_INFO, MasterKey
from ehr_sandbox.errors import AuditError, CryptoError, SandboxError

__all__ = ["DEFAULT_BATCH", "AuditTrail"]

DEFAULT_BATCH = 100

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS audit_log (
        seq INTEGER PRIMARY KEY, record BLOB NOT NULL, h BLOB NOT NULL, mac BLOB NOT NULL,
        patient TEXT, username TEXT, action TEXT)""",
    "CREATE INDEX IF NOT EXISTS audit_log_patient ON audit_log(patient)",
    "CREATE INDEX IF NOT EXISTS audit_log_username ON audit_log(username)",
    """CREATE TABLE IF NOT EXISTS audit_checkpoint (
        seq INTEGER PRIMARY KEY, h BLOB NOT NULL, signature BLOB NOT NULL)""",
)


def _record_aad(seq: int) -> str:
    return f"audit/{seq}"


def _hash_aad(seq: int) -> str:
    return f"audit/{seq}/h"


class AuditTrail:
    """Append-only, hash-chained, MAC'd and checkpoint-signed AuditEvents.

    ``master_key`` (a :class:`MasterKey` or its 32 raw bytes) gives the audit MAC key
    (HKDF ``ehr-sandbox/audit-mac``) and the checkpoint signing key (``ehr-sandbox/audit-sign``);
    ``codec`` seals the records (plain or AES-GCM).

    >>> import sqlite3
    >>> from ehr_sandbox.crypto import MasterKey, AesGcmCodec
    >>> mk = MasterKey(bytes(32)); con = sqlite3.connect(":memory:")
    >>> trail = AuditTrail(con, mk, AesGcmCodec(mk))
    >>> _ = trail.append({"resourceType": "AuditEvent", "action": "R", "outcomeDesc": "secret"})
    >>> b"secret" in con.execute("SELECT record FROM audit_log").fetchone()[0]
    False
    >>> trail.events()[0]["outcomeDesc"]
    'secret'
    """

    def __init__(
        self,
        connection: sqlite3.Connection,
        master_key: MasterKey | bytes,
        codec: RowCodec | None = None,
        *,
        batch: int = DEFAULT_BATCH,
    ) -> None:
        if not isinstance(connection, sqlite3.Connection):
            raise AuditError(
                f"connection: expected a sqlite3.Connection, got {type(connection).__name__}"
            )
        if not isinstance(batch, int) or batch < 1:
            raise AuditError(
                f"batch: expected a positive number of entries per checkpoint, got {batch!r}"
            )
        self._con = connection
        self._codec: Any = codec if codec is not None else IdentityCodec()
        self._set_keys(master_key if isinstance(master_key, MasterKey) else MasterKey(master_key))
        self.batch = batch
        for statement in _SCHEMA:
            self._con.execute(statement)

    def _set_keys(self, mk: MasterKey) -> None:
        self._mac_key = mk.derive(AUDIT_MAC_INFO)
        self._signing_key = Ed25519PrivateKey.from_private_bytes(mk.derive(AUDIT_SIGN_INFO))
        self._public_key = self._signing_key.public_key()

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The Ed25519 key that verifies this trail's checkpoints.

        >>> import sqlite3
        >>> t = AuditTrail(sqlite3.connect(":memory:"), bytes(32))
        >>> len(t.public_key.public_bytes_raw())
        32
        """
        return self._public_key

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        # Outside a transaction, take the write lock first (BEGIN IMMEDIATE): another process
        # on the same file (a second server worker) must not read the same chain end and then
        # fail to append after it. Inside one, a savepoint joins the caller's transaction.
        if not self._con.in_transaction:
            self._con.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
            self._con.execute("COMMIT")
            return
        self._con.execute("SAVEPOINT audit_trail")
        try:
            yield
        except BaseException:
            self._con.execute("ROLLBACK TO SAVEPOINT audit_trail")
            self._con.execute("RELEASE SAVEPOINT audit_trail")
            raise
        self._con.execute("RELEASE SAVEPOINT audit_trail")

    def _last(self) -> tuple[int, bytes]:
        row = self._con.execute("SELECT seq, h FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        if row is None:
            return 0, GENESIS
        return row[0], self._codec.open(_hash_aad(row[0]), row[1])

    # ------------------------------------------------------------------ writing
    def append(self, event: Mapping[str, Any]) -> int:
        """Add one AuditEvent; returns its sequence number (1, 2, ...).

        >>> import sqlite3
        >>> t = AuditTrail(sqlite3.connect(":memory:"), bytes(32))
        >>> [t.append({"resourceType": "AuditEvent", "action": a}) for a in "RE"]
        [1, 2]
        """
        return self.append_many([event])[0]

    def append_many(self, events: Sequence[Mapping[str, Any] | PreparedEvent]) -> list[int]:
        """Add AuditEvents in order, all or none, in one savepoint; returns their sequence numbers.

        Each item is an AuditEvent dict or a :class:`~ehr_sandbox.audit.batch.PreparedEvent`
        (its canonical bytes, from :func:`~ehr_sandbox.audit.batch.prepare_events`). The chain,
        MACs and checkpoints are exactly those of appending the events one by one.

        >>> import sqlite3
        >>> from ehr_sandbox.audit.batch import prepare_event
        >>> t = AuditTrail(sqlite3.connect(":memory:"), bytes(32), batch=2)
        >>> t.append_many([{"resourceType": "AuditEvent", "action": "R"},
        ...                prepare_event({"resourceType": "AuditEvent", "action": "E"})])
        [1, 2]
        >>> t.verify().ok, t.latest_checkpoint()["seq"]
        (True, 2)
        """
        prepared = [self._prepared(event) for event in events]
        if not prepared:
            return []
        codec, blinds = self._codec, {}

        def blind(value: str | None) -> str | None:
            if not value:
                return None
            if value not in blinds:
                blinds[value] = codec.blind(value)
            return blinds[value]

        with self._savepoint():
            last_seq, h = self._last()
            rows, signed = [], []
            for seq, p in enumerate(prepared, start=last_seq + 1):
                h = chain_hash(h, seq, p.record)
                rows.append(
                    (
                        seq,
                        codec.seal(_record_aad(seq), p.record),
                        codec.seal(_hash_aad(seq), h),
                        chain_mac(self._mac_key, h),
                        blind(p.patient),
                        blind(p.username),
                        p.action,
                    )
                )
                if seq % self.batch == 0:
                    signed.append((seq, h))
            self._con.executemany(
                "INSERT INTO audit_log (seq, record, h, mac, patient, username, action) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            for seq, h_at in signed:
                self._write_checkpoint(seq, h_at)
        return [row[0] for row in rows]

    @staticmethod
    def _prepared(event: Mapping[str, Any] | PreparedEvent) -> PreparedEvent:
        if isinstance(event, PreparedEvent):
            if not isinstance(event.record, bytes) or not event.record.startswith(b"{"):
                raise AuditError("event: expected the canonical JSON bytes of an AuditEvent")
            return event
        if not isinstance(event, Mapping) or event.get("resourceType") != "AuditEvent":
            found = (
                event.get("resourceType") if isinstance(event, Mapping) else type(event).__name__
            )
            raise AuditError(
                f"event: expected an AuditEvent dict (resourceType 'AuditEvent'), found {found!r}"
            )
        try:
            return prepare_event(event)
        except CryptoError as exc:
            raise AuditError(f"event: {exc}") from None

    def _write_checkpoint(self, seq: int, h: bytes) -> dict[str, Any]:
        signature = self._signing_key.sign(checkpoint_message(seq, h))
        self._con.execute(
            "INSERT OR REPLACE INTO audit_checkpoint (seq, h, signature) VALUES (?, ?, ?)",
            (seq, h, signature),
        )
        return {"seq": seq, "h": h.hex(), "signature": signature.hex()}

    def checkpoint(self) -> dict[str, Any] | None:
        """Sign the current end of the chain (if not signed yet); returns the checkpoint
        ``{"seq", "h", "signature"}`` (hex), which can also be kept outside the database as an
        anchor for :meth:`verify`. None for an empty trail.

        >>> import sqlite3
        >>> t = AuditTrail(sqlite3.connect(":memory:"), bytes(32))
        >>> t.checkpoint() is None
        True
        >>> _ = t.append({"resourceType": "AuditEvent"}); t.checkpoint()["seq"]
        1
        """
        with self._savepoint():
            seq, h = self._last()
            if seq == 0:
                return None
            stored_mac = self._con.execute(
                "SELECT mac FROM audit_log WHERE seq = ?", (seq,)
            ).fetchone()[0]
            if chain_mac(self._mac_key, h) != bytes(stored_mac):
                # Never vouch for a tail the audit key does not authenticate (forged or re-hashed).
                return None
            row = self._con.execute(
                "SELECT h, signature FROM audit_checkpoint WHERE seq = ?", (seq,)
            ).fetchone()
            if row is not None and row[0] == h:
                return {"seq": seq, "h": bytes(row[0]).hex(), "signature": bytes(row[1]).hex()}
            return self._write_checkpoint(seq, h)

    flush = checkpoint

    def latest_checkpoint(self) -> dict[str, Any] | None:
        """The newest stored checkpoint (hex fields), or None.

        >>> import sqlite3
        >>> AuditTrail(sqlite3.connect(":memory:"), bytes(32)).latest_checkpoint() is None
        True
        """
        row = self._con.execute(
            "SELECT seq, h, signature FROM audit_checkpoint ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return (
            None
            if row is None
            else {"seq": row[0], "h": bytes(row[1]).hex(), "signature": bytes(row[2]).hex()}
        )

    # ------------------------------------------------------------------ checking
    def verify(self, *, anchor: Mapping[str, Any] | None = None) -> VerifyResult:
        """Walk the whole chain: hashes, MACs, checkpoint signatures and the tail.

        ``anchor`` is an optional checkpoint kept elsewhere (the return value of
        :meth:`checkpoint`); it catches a cut-off tail even if the checkpoints stored in
        the database were deleted along with it.

        >>> import sqlite3
        >>> con = sqlite3.connect(":memory:"); t = AuditTrail(con, bytes(32))
        >>> for _ in range(3): _ = t.append({"resourceType": "AuditEvent"})
        >>> _ = con.execute("DELETE FROM audit_log WHERE seq = 2")
        >>> t.verify().first_bad
        2
        """
        checkpoints = {
            seq: (bytes(h), bytes(sig))
            for seq, h, sig in self._con.execute("SELECT seq, h, signature FROM audit_checkpoint")
        }
        if anchor is not None:
            try:
                checkpoints[int(anchor["seq"])] = (
                    bytes.fromhex(anchor["h"]),
                    bytes.fromhex(anchor["signature"]),
                )
            except (KeyError, TypeError, ValueError):
                raise AuditError(
                    "anchor: expected a checkpoint dict with seq, h and signature (hex)"
                ) from None
        rows = self._con.execute("SELECT seq, record, h, mac FROM audit_log ORDER BY seq")
        if self._codec.encrypting:
            codec = self._codec
            return verify_rows(
                ((seq, rec, None, mac) for seq, rec, _h, mac in rows),
                self._mac_key,
                checkpoints=checkpoints,
                public_key=self._public_key,
                open_record=lambda seq, blob: codec.open(_record_aad(seq), blob),
            )
        return verify_rows(
            rows, self._mac_key, checkpoints=checkpoints, public_key=self._public_key
        )

    def require_valid(self) -> None:
        """Raise :class:`AuditError` naming the first bad entry unless :meth:`verify` is ok.

        >>> import sqlite3
        >>> AuditTrail(sqlite3.connect(":memory:"), bytes(32)).require_valid()
        """
        result = self.verify()
        if not result.ok:
            raise AuditError(f"audit trail broken at entry {result.first_bad}: {result.reason}")

    # ------------------------------------------------------------------ reading
    def count(self) -> int:
        """Number of entries.

        >>> import sqlite3
        >>> AuditTrail(sqlite3.connect(":memory:"), bytes(32)).count()
        0
        """
        return int(self._con.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0])

    def events(
        self,
        *,
        patient: str | None = None,
        user: str | None = None,
        action: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> list[dict[str, Any]]:
        """The AuditEvents (oldest first, ``id`` = their sequence number), filtered by
        patient id, username, action code and ``recorded`` bounds (inclusive, ISO strings of
        the same form compare in time order). Reading is not audited here: the Session,
        which knows who is reading, audits it.

        >>> import sqlite3
        >>> from ehr_sandbox.audit.events import build_event
        >>> t = AuditTrail(sqlite3.connect(":memory:"), bytes(32))
        >>> u = {"username": "rn.kim", "role": "nurse", "practitioner_id": "p"}
        >>> for pid in ("a", "b"):
        ...     _ = t.append(build_event(action="R", interaction="read", outcome="0", user=u, purpose="TREAT",
        ...                              patient_id=pid, recorded="2026-01-01T09:00:00Z"))
        >>> [e["id"] for e in t.events(patient="b")], len(t.events(user="rn.kim", action="R"))
        (['2'], 2)
        """
        where, params = [], []
        if patient is not None:
            where.append("patient = ?")
            params.append(self._codec.blind(patient))
        if user is not None:
            where.append("username = ?")
            params.append(self._codec.blind(user))
        if action is not None:
            where.append("action = ?")
            params.append(action)
        sql = "SELECT seq, record FROM audit_log"
        if where:
            sql += " WHERE " + " AND ".join(where)
        out: list[dict[str, Any]] = []
        for seq, blob in self._con.execute(sql + " ORDER BY seq", params):
            event = orjson.loads(self._codec.open(_record_aad(seq), blob))
            recorded = event.get("recorded", "")
            if (since is not None and recorded < since) or (until is not None and recorded > until):
                continue
            event.setdefault("id", str(seq))
            out.append(event)
        return out

    # ------------------------------------------------------------------ key rotation
    def rekey(self, codec: RowCodec, master_key: MasterKey | None = None) -> None:
        """Re-seal every entry with ``codec`` and, when the master key changes, re-MAC the
        chain and re-sign the checkpoints with the new key. The chain must verify first
        (rotation never launders a tampered trail).

        ``master_key`` defaults to ``codec.master_key`` when the codec has one.

        >>> import sqlite3
        >>> from ehr_sandbox.crypto import MasterKey, AesGcmCodec
        >>> old, new = MasterKey(bytes(32)), MasterKey(bytes([7]) * 32)
        >>> t = AuditTrail(sqlite3.connect(":memory:"), old, AesGcmCodec(old))
        >>> _ = t.append({"resourceType": "AuditEvent"}); t.rekey(AesGcmCodec(new, previous=[old]))
        >>> t.verify().ok
        True
        """
        result = self.verify()
        if not result.ok:
            raise AuditError(
                f"cannot re-key a broken audit trail (entry {result.first_bad}: {result.reason})"
            )
        new_mk = master_key if master_key is not None else getattr(codec, "master_key", None)
        old_codec = self._codec
        old_keys = (self._mac_key, self._signing_key, self._public_key)
        try:
            if new_mk is not None:
                self._set_keys(new_mk)
            with self._savepoint():
                rows = self._con.execute(
                    "SELECT seq, record, h, patient, username FROM audit_log ORDER BY seq"
                ).fetchall()
                for seq, blob, hblob, _patient, _username in rows:
                    record = old_codec.open(_record_aad(seq), blob)
                    h = old_codec.open(_hash_aad(seq), hblob)
                    event = orjson.loads(record)
                    patient, username = event_patient(event), event_username(event)
                    self._con.execute(
                        "UPDATE audit_log SET record = ?, h = ?, mac = ?, patient = ?, username = ? WHERE seq = ?",
                        (
                            codec.seal(_record_aad(seq), record),
                            codec.seal(_hash_aad(seq), h),
                            chain_mac(self._mac_key, h),
                            codec.blind(patient) if patient else None,
                            codec.blind(username) if username else None,
                            seq,
                        ),
                    )
                for seq, h in self._con.execute("SELECT seq, h FROM audit_checkpoint").fetchall():
                    self._write_checkpoint(seq, bytes(h))
        except (SandboxError, sqlite3.Error):
            self._mac_key, self._signing_key, self._public_key = old_keys
            raise
        self._codec = codec
