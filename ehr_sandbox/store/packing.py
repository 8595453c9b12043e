"""How a resource's JSON is packed into its stored row: zlib-compressed when that pays.

A row is either the JSON itself (it starts with ``{``) or a zlib stream (it starts with
``x``), so rows written before compression was introduced still read. Compression runs before
the row codec seals the bytes.

>>> doc = b'{"resourceType":"Patient","id":"p1","name":[{"family":"Smith"}]}' * 1
>>> unpack(pack(doc)) == doc and unpack(doc) == doc
True
>>> big = b'{"text":"' + b"a" * 500 + b'"}'
>>> len(pack(big)) < len(big)
True
"""

from __future__ import annotations

import zlib

MIN_SIZE = 160
"""Shorter documents are kept as they are (compression would barely help)."""

LEVEL = 1
"""zlib level: the fastest, about 45% of the JSON size on generated records."""


def pack(data: bytes) -> bytes:
    """The stored form of the JSON bytes ``data``.

    >>> pack(b"{}")
    b'{}'
    """
    if len(data) < MIN_SIZE:
        return data
    out = zlib.compress(data, LEVEL)
    return out if len(out) < len(data) else data


def unpack(data: bytes) -> bytes:
    """The JSON bytes of a stored row (compressed or not).

    >>> unpack(zlib.compress(b'{"a":1}'))
    b'{"a":1}'
    """
    if data[:1] == b"x":
        return zlib.decompress(data)
    return bytes(data)
