"""The row codec protocol and the plaintext codec (the store's and the audit trail's default).

A codec seals each stored row (``seal``/``open`` with associated data ``Type/id/_history/vid``)
and turns searchable values into blind-index values (``blind``). The AES-GCM codec is
:mod:`ehr_sandbox.crypto.rows`; the store and the audit trail need only the protocol, which
lives here, outside the store (nothing but the Session reaches the store).

>>> c = IdentityCodec()
>>> c.open("Patient/1/_history/1", c.seal("Patient/1/_history/1", b"{}")), c.blind("x"), c.encrypting
(b'{}', 'x', False)
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class RowCodec(Protocol):
    """What the store needs from a row codec (see docs/contracts.md).

    A protocol: any object with ``encrypting``, ``seal``, ``open`` and ``blind`` will do.
    :class:`IdentityCodec` is the plaintext one, :class:`ehr_sandbox.crypto.AesGcmCodec` the
    encrypting one.

    Examples
    --------
    >>> isinstance(IdentityCodec(), RowCodec), isinstance(object(), RowCodec)
    (True, False)
    """

    encrypting: bool

    def seal(self, aad: str, data: bytes) -> bytes:
        """Protect ``data`` bound to ``aad``.

        Parameters
        ----------
        aad : str
            Associated data (``Type/id/_history/vid``): a sealed row only opens under it.
        data : bytes
            The row's bytes.

        Returns
        -------
        bytes
            The sealed row.

        Examples
        --------
        >>> codec: RowCodec = IdentityCodec()
        >>> codec.seal("Patient/1/_history/1", b"{}")
        b'{}'
        """
        ...

    def open(self, aad: str, blob: bytes) -> bytes:
        """Recover the data sealed with ``aad``.

        Parameters
        ----------
        aad : str
            The associated data it was sealed with.
        blob : bytes
            The sealed row.

        Returns
        -------
        bytes
            The row's bytes.

        Raises
        ------
        CryptoError
            The blob does not authenticate under this key and ``aad``.

        Examples
        --------
        >>> codec: RowCodec = IdentityCodec()
        >>> codec.open("Patient/1/_history/1", codec.seal("Patient/1/_history/1", b'{"a":1}'))
        b'{"a":1}'
        """
        ...

    def blind(self, value: str) -> str:
        """The index form of a searchable value (a keyed hash when encrypting).

        Parameters
        ----------
        value : str
            A normalised search value.

        Returns
        -------
        str
            What the search index stores and compares.

        Examples
        --------
        >>> codec: RowCodec = IdentityCodec()
        >>> codec.blind("smith")
        'smith'
        """
        ...


class IdentityCodec:
    """Plaintext rows and plaintext index values (the store's default).

    >>> IdentityCodec().seal("a", b"x")
    b'x'
    """

    encrypting = False
    key_id = "plain"

    def seal(self, aad: str, data: bytes) -> bytes:
        """Return ``data`` unchanged (as ``bytes``).

        Examples
        --------
        >>> IdentityCodec().seal("Patient/1/_history/1", b"row")
        b'row'
        """
        return bytes(data)

    def open(self, aad: str, blob: bytes) -> bytes:
        """Return ``blob`` unchanged (as ``bytes``).

        Examples
        --------
        >>> IdentityCodec().open("Patient/1/_history/1", bytearray(b"row"))
        b'row'
        """
        return bytes(blob)

    def blind(self, value: str) -> str:
        """Return ``value`` unchanged.

        Examples
        --------
        >>> IdentityCodec().blind("smith")
        'smith'
        """
        return value


def key_id_of(codec: RowCodec) -> str:
    """The ``key_id`` recorded next to each row (``plain`` for a codec that does not encrypt).

    >>> key_id_of(IdentityCodec())
    'plain'
    """
    kid = getattr(codec, "key_id", None)
    return str(kid) if kid else ("plain" if not codec.encrypting else "unknown")
