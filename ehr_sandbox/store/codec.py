"""The row codec protocol and the store's plaintext default.

A codec seals each stored row (``seal``/``open`` with associated data ``Type/id/_history/vid``)
and turns searchable values into blind-index values (``blind``). The AES-GCM codec lives in
:mod:`ehr_sandbox.crypto.rows`; the store only needs the protocol.

>>> c = IdentityCodec()
>>> c.open("Patient/1/_history/1", c.seal("Patient/1/_history/1", b"{}")), c.blind("x"), c.encrypting
(b'{}', 'x', False)
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class RowCodec(Protocol):
    """What the store needs from a row codec (see docs/contracts.md)."""

    encrypting: bool

    def seal(self, aad: str, data: bytes) -> bytes:
        """Protect ``data`` bound to ``aad``."""
        ...

    def open(self, aad: str, blob: bytes) -> bytes:
        """Recover the data sealed with ``aad`` (raises CryptoError when it fails)."""
        ...

    def blind(self, value: str) -> str:
        """The index form of a searchable value (a keyed hash when encrypting)."""
        ...


class IdentityCodec:
    """Plaintext rows and plaintext index values (the store's default).

    >>> IdentityCodec().seal("a", b"x")
    b'x'
    """

    encrypting = False
    key_id = "plain"

    def seal(self, aad: str, data: bytes) -> bytes:
        """Return ``data`` unchanged."""
        return data

    def open(self, aad: str, blob: bytes) -> bytes:
        """Return ``blob`` unchanged."""
        return bytes(blob)

    def blind(self, value: str) -> str:
        """Return ``value`` unchanged."""
        return value


def key_id_of(codec: RowCodec) -> str:
    """The ``key_id`` recorded next to each row (``plain`` for a codec that does not encrypt).

    >>> key_id_of(IdentityCodec())
    'plain'
    """
    kid = getattr(codec, "key_id", None)
    return str(kid) if kid else ("plain" if not codec.encrypting else "unknown")
