"""Row codecs: how the store (and the audit trail) turn row bytes into what goes on disk.

A codec has ``encrypting``, ``seal(aad, data)``, ``open(aad, blob)``, ``blind(value)`` and
``key_id`` (the :class:`~ehr_sandbox.crypto.codec.RowCodec` protocol, beside the plaintext
:class:`~ehr_sandbox.crypto.codec.IdentityCodec`).
:class:`AesGcmCodec` stores ``key_id (8 bytes) || nonce (12 bytes) || ciphertext+tag``
sealed with AES-256-GCM. The associated data names the row (``Type/id/_history/vid``), so a
ciphertext copied onto another row fails to open.

>>> codec = AesGcmCodec(MasterKey(bytes(32)))
>>> blob = codec.seal("Patient/1/_history/1", b'{"name":"Ana"}')
>>> b"Ana" in blob, codec.open("Patient/1/_history/1", blob)
(False, b'{"name":"Ana"}')
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ehr_sandbox.crypto.keys import BLIND_INDEX_INFO, ROWS_INFO, MasterKey
from ehr_sandbox.errors import CryptoError

__all__ = ["KEY_ID_BYTES", "NONCE_BYTES", "AesGcmCodec"]

KEY_ID_BYTES = 8
NONCE_BYTES = 12  # 96-bit random nonce: the GCM standard size; collisions stay negligible below ~2**32 writes per key
TAG_BYTES = 16


class AesGcmCodec:
    """AES-256-GCM row encryption with keyed HMAC blind indexes and key rotation.

    New rows are sealed with ``master_key``; rows sealed under any key in ``previous`` still
    open, which is what lets :meth:`Store.rekey` re-encrypt a database row by row.

    >>> old, new = MasterKey(bytes(32)), MasterKey(bytes([1]) * 32)
    >>> blob = AesGcmCodec(old).seal("a", b"x")
    >>> AesGcmCodec(new, previous=[old]).open("a", blob)
    b'x'
    """

    encrypting = True

    def __init__(self, master_key: MasterKey, previous: Iterable[MasterKey] = ()) -> None:
        if not isinstance(master_key, MasterKey):
            raise CryptoError(f"master_key: expected a MasterKey, got {type(master_key).__name__}")
        self.master_key = master_key
        self.previous = tuple(previous)
        self._kid = bytes.fromhex(master_key.key_id)
        self._aead = AESGCM(master_key.derive(ROWS_INFO))
        self._blind_key = master_key.derive(BLIND_INDEX_INFO)
        self._by_kid: dict[bytes, AESGCM] = {self._kid: self._aead}
        for mk in self.previous:
            if not isinstance(mk, MasterKey):
                raise CryptoError(f"previous: expected MasterKey items, got {type(mk).__name__}")
            self._by_kid.setdefault(bytes.fromhex(mk.key_id), AESGCM(mk.derive(ROWS_INFO)))

    @property
    def key_id(self) -> str:
        """The id of the key new rows are sealed with.

        >>> AesGcmCodec(MasterKey(bytes(32))).key_id == MasterKey(bytes(32)).key_id
        True
        """
        return self._kid.hex()

    def seal(self, aad: str, data: bytes) -> bytes:
        """Encrypt ``data`` bound to ``aad`` with a fresh random nonce.

        >>> c = AesGcmCodec(MasterKey(bytes(32)))
        >>> c.seal("r", b"same") != c.seal("r", b"same")
        True
        """
        nonce = os.urandom(NONCE_BYTES)
        return self._kid + nonce + self._aead.encrypt(nonce, bytes(data), aad.encode("utf-8"))

    def open(self, aad: str, blob: bytes) -> bytes:
        """Decrypt a blob sealed for ``aad``; any failure is one clear :class:`CryptoError`.

        >>> c = AesGcmCodec(MasterKey(bytes(32)))
        >>> c.open("Patient/2/_history/1", c.seal("Patient/1/_history/1", b"x"))
        Traceback (most recent call last):
        ...
        ehr_sandbox.errors.CryptoError: cannot decrypt Patient/2/_history/1: authentication failed (the data was changed, or it belongs to another row)
        """
        blob = bytes(blob)
        if len(blob) < KEY_ID_BYTES + NONCE_BYTES + TAG_BYTES:
            raise CryptoError(
                f"cannot decrypt {aad}: expected an AES-GCM blob of at least "
                f"{KEY_ID_BYTES + NONCE_BYTES + TAG_BYTES} bytes, found {len(blob)}"
            )
        kid = blob[:KEY_ID_BYTES]
        aead = self._by_kid.get(kid)
        if aead is None:
            raise CryptoError(
                f"cannot decrypt {aad}: it was sealed with key {kid.hex()}, which is not "
                f"the key given (key {self.key_id}): wrong key or passphrase"
            )
        nonce = blob[KEY_ID_BYTES : KEY_ID_BYTES + NONCE_BYTES]
        try:
            return aead.decrypt(nonce, blob[KEY_ID_BYTES + NONCE_BYTES :], aad.encode("utf-8"))
        except InvalidTag:
            # `from None`: the InvalidTag chain adds nothing a student can act on.
            raise CryptoError(
                f"cannot decrypt {aad}: authentication failed (the data was changed, "
                "or it belongs to another row)"
            ) from None

    def key_id_of(self, blob: bytes) -> str:
        """The key id a blob was sealed with (to find rows still under an old key).

        >>> c = AesGcmCodec(MasterKey(bytes(32)))
        >>> c.key_id_of(c.seal("a", b"")) == c.key_id
        True
        """
        return bytes(blob[:KEY_ID_BYTES]).hex()

    def blind(self, value: str) -> str:
        """Keyed HMAC-SHA256 blind index of ``value`` (hex): equal values give equal indexes,
        which is the one thing it leaks.

        >>> c = AesGcmCodec(MasterKey(bytes(32)))
        >>> c.blind("MRN1") == c.blind("MRN1") != c.blind("MRN2")
        True
        """
        return hmac.new(self._blind_key, value.encode("utf-8"), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return f"AesGcmCodec(key_id={self.key_id!r}, previous={len(self.previous)})"
