"""The hash chain of the audit trail: pure functions, no database.

For entry ``seq`` (1, 2, 3, ...) with record bytes ``r`` (the RFC 8785 canonical JSON of the
AuditEvent)::

    h_seq   = SHA-256(h_{seq-1} || seq as 8 bytes big-endian || r)      h_0 = 32 zero bytes
    mac_seq = HMAC-SHA256(K_audit, h_seq)

A checkpoint is an Ed25519 signature over ``CHECKPOINT_DOMAIN || seq (8 bytes) || h_seq``.
Editing, deleting or reordering entries breaks the chain at the first affected entry;
re-computing the hashes after an edit still fails the MAC without ``K_audit``; cutting off
the tail leaves a signed checkpoint pointing past the end.

>>> key = bytes(32)
>>> h1 = chain_hash(GENESIS, 1, b'{"a":1}'); h2 = chain_hash(h1, 2, b'{"a":2}')
>>> rows = [(1, b'{"a":1}', h1, chain_mac(key, h1)), (2, b'{"a":2}', h2, chain_mac(key, h2))]
>>> verify_rows(rows, key).ok
True
>>> verify_rows([rows[1], rows[0]], key).first_bad
1
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = [
    "CHECKPOINT_DOMAIN",
    "GENESIS",
    "VerifyResult",
    "chain_hash",
    "chain_mac",
    "checkpoint_message",
    "verify_rows",
]

GENESIS = bytes(32)
CHECKPOINT_DOMAIN = b"ehr-sandbox/audit-checkpoint/v1\x00"


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of verifying an audit trail.

    ``first_bad`` is the sequence number of the first entry that fails (None when ok);
    ``count`` is the number of entries that verified before it (all of them when ok).

    >>> VerifyResult(True, None, "ok", 3)
    VerifyResult(ok=True, first_bad=None, reason='ok', count=3)
    """

    ok: bool
    first_bad: int | None
    reason: str
    count: int

    def __bool__(self) -> bool:
        return self.ok


def chain_hash(prev: bytes, seq: int, record: bytes) -> bytes:
    """``SHA-256(prev || seq (8 bytes, big-endian) || record)``.

    >>> len(chain_hash(GENESIS, 1, b"{}"))
    32
    """
    return hashlib.sha256(prev + seq.to_bytes(8, "big") + record).digest()


def chain_mac(key: bytes, h: bytes) -> bytes:
    """``HMAC-SHA256(key, h)``: authenticates a chain hash with the audit key.

    >>> chain_mac(bytes(32), GENESIS) != chain_mac(bytes([1]) * 32, GENESIS)
    True
    """
    return hmac.digest(key, h, "sha256")


def checkpoint_message(seq: int, h: bytes) -> bytes:
    """The bytes a checkpoint signature covers.

    >>> checkpoint_message(1, GENESIS).startswith(CHECKPOINT_DOMAIN)
    True
    """
    return CHECKPOINT_DOMAIN + seq.to_bytes(8, "big") + h


def _checkpoint_ok(
    public_key: Ed25519PublicKey | None, seq: int, h: bytes, signature: bytes
) -> bool:
    if public_key is None:
        return True
    try:
        public_key.verify(signature, checkpoint_message(seq, h))
    except InvalidSignature:
        return False
    return True


def verify_rows(
    rows: Iterable[tuple[int, bytes, bytes | None, bytes]],
    mac_key: bytes,
    *,
    checkpoints: Mapping[int, tuple[bytes, bytes]] | None = None,
    public_key: Ed25519PublicKey | None = None,
    open_record: Callable[[int, bytes], bytes] | None = None,
) -> VerifyResult:
    """Walk ``rows`` (``(seq, record, stored_h_or_None, mac)`` in seq order) and check the chain.

    ``checkpoints`` maps seq -> (h, Ed25519 signature); each must be validly signed, match
    the chain at its seq and lie within the log (else the tail was cut off).
    ``open_record(seq, stored)`` turns a stored record into its canonical bytes (decryption);
    when it raises, that entry is the first bad one. Stored hashes, when given, are compared
    only to tell an edit from a re-hash in the reason; the MAC is what proves integrity.

    >>> verify_rows([], bytes(32), checkpoints={2: (GENESIS, b"")}).reason.startswith("the log ends")
    True
    """
    cps = dict(checkpoints or {})
    for cp_seq, (cp_h, cp_sig) in sorted(cps.items()):
        if not _checkpoint_ok(public_key, cp_seq, cp_h, cp_sig):
            return VerifyResult(
                False,
                cp_seq,
                f"checkpoint at entry {cp_seq}: the signature does not verify "
                "(the checkpoint was forged or edited)",
                0,
            )
    prev = GENESIS
    expected = 1
    digest = hmac.digest
    sha256 = hashlib.sha256
    compare = hmac.compare_digest
    # One tight loop: a few C calls per entry (sha256, hmac, compare) is what makes
    # verification run at hundreds of thousands of entries per second.
    for seq, stored, stored_h, mac in rows:
        if seq != expected:
            why = "deleted" if seq > expected else "duplicated or reordered"
            return VerifyResult(
                False,
                expected,
                f"entry {expected} is missing (the next entry is {seq}): entries were {why}",
                expected - 1,
            )
        if open_record is None:
            record = stored
        else:
            try:
                record = open_record(seq, stored)
            except Exception as exc:  # any decryption failure means this entry is bad
                return VerifyResult(
                    False, seq, f"entry {seq}: the record cannot be opened ({exc})", seq - 1
                )
        h = sha256(prev + seq.to_bytes(8, "big") + record).digest()
        if not compare(digest(mac_key, h, "sha256"), mac):
            if stored_h is not None and not compare(h, stored_h):
                reason = (
                    f"entry {seq}: the record does not match its chain hash "
                    "(it was edited, or an entry before it was removed or moved)"
                )
            elif stored_h is not None:
                reason = (
                    f"entry {seq}: the chain hash is not authenticated by the audit key "
                    "(the chain was re-computed without the key)"
                )
            else:
                reason = (
                    f"entry {seq}: the record or chain does not verify (edited, moved or re-hashed)"
                )
            return VerifyResult(False, seq, reason, seq - 1)
        if seq in cps and not compare(cps[seq][0], h):
            return VerifyResult(
                False,
                seq,
                f"entry {seq}: the chain differs from the signed checkpoint "
                "(entries up to here were altered and re-hashed)",
                seq - 1,
            )
        prev = h
        expected += 1
    last = expected - 1
    beyond = [s for s in cps if s > last]
    if beyond:
        return VerifyResult(
            False,
            last + 1,
            f"the log ends at entry {last} but a signed checkpoint covers "
            f"entry {max(beyond)}: the tail was cut off",
            last,
        )
    return VerifyResult(True, None, "ok", last)
