"""Row codecs: how the store (and the audit trail) turn row bytes into what goes on disk.

A codec has ``encrypting``, ``seal(aad, data)``, ``open(aad, blob)``, ``blind(value)`` and
``key_id`` (the RowCodec contract in docs/contracts.md). :class:`PlainCodec` stores bytes as
they are; :class:`AesGcmCodec` stores ``key_id (8 bytes) || nonce (12 bytes) || ciphertext+tag``
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
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ehr_sandbox.crypto.keys import BLIND_INDEX_INFO, ROWS_INFO, MasterKey
from ehr_sandbox.errors import CryptoError

__all__ = ["KEY_ID_BYTES", "NONCE_BYTES", "AesGcmCodec", "PlainCodec", "RowCodec"]

KEY_ID_BYTES = 8
NONCE_BYTES = 12  # 96-bit random nonce: the GCM standard size; collisions stay negligible below ~2**32 writes per key
TAG_BYTES = 16


@runtime_checkable
class RowCodec(Protocol):
    """What the store and the audit trail need from a codec.

    >>> isinstance(PlainCodec(), RowCodec)
    True
    """

    encrypting: bool

    def seal(self, aad: str, data: bytes) -> bytes:
        """Protect ``data`` bound to ``aad`` (the row's name, ``Type/id/_history/vid``).

        Examples
        --------
        >>> codec: RowCodec = AesGcmCodec(MasterKey(bytes(32)))
        >>> blob = codec.seal("Patient/1/_history/1", b"{}")
        >>> len(blob) == KEY_ID_BYTES + NONCE_BYTES + 2 + TAG_BYTES
        True
        """
        ...

    def open(self, aad: str, blob: bytes) -> bytes:
        """Recover the data sealed with ``aad``; :class:`CryptoError` when it does not authenticate.

        Examples
        --------
        >>> codec: RowCodec = AesGcmCodec(MasterKey(bytes(32)))
        >>> blob = codec.seal("Patient/1/_history/1", b"{}")
        >>> codec.open("Patient/1/_history/1", blob)
        b'{}'
        >>> codec.open("Patient/2/_history/1", blob)  # copied onto another row
        Traceback (most recent call last):
        ...
        ehr_sandbox.errors.CryptoError: cannot decrypt Patient/2/_history/1: authentication failed (the data was changed, or it belongs to another row)
        """
        ...

    def blind(self, value: str) -> str:
        """The index form of a searchable value (a keyed hash when encrypting).

        Examples
        --------
        >>> codec: RowCodec = AesGcmCodec(MasterKey(bytes(32)))
        >>> codec.blind("smith") == codec.blind("smith") != "smith"
        True
        """
        ...


class PlainCodec:
    """The identity codec: rows are stored as they are (``encrypting`` is False).

    >>> c = PlainCodec()
    >>> c.open("x", c.seal("x", b"abc")), c.blind("MRN1"), c.encrypting
    (b'abc', 'MRN1', False)
    """

    encrypting = False
    key_id: str | None = None

    def seal(self, aad: str, data: bytes) -> bytes:
        """Return ``data`` unchanged (as ``bytes``).

        Examples
        --------
        >>> PlainCodec().seal("Patient/1/_history/1", bytearray(b"row"))
        b'row'
        """
        return bytes(data)

    def open(self, aad: str, blob: bytes) -> bytes:
        """Return ``blob`` unchanged (as ``bytes``).

        Examples
        --------
        >>> PlainCodec().open("Patient/1/_history/1", b"row")
        b'row'
        """
        return bytes(blob)

    def blind(self, value: str) -> str:
        """Return ``value`` unchanged (plain stores index the value itself).

        Examples
        --------
        >>> PlainCodec().blind("MRN00000001")
        'MRN00000001'
        """
        return value

    def __repr__(self) -> str:
        return "PlainCodec()"


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
