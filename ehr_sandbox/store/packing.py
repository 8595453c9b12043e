"""How a resource's JSON is packed into its stored row: zstd with the store's dictionary.

Generated clinics hold many small documents that repeat the same keys, systems and codes, so
each row is compressed on its own (a row stays readable by itself) against a *dictionary*
trained once per store from a sample of its first bulk load, or of its first 2,000 writes
when it is filled one write at a time (about a tenth of the JSON size, against 45% for zlib
alone, and several times faster). The dictionary lives in the store's
``pack_dict`` table, sealed by the row codec like a row (it is made of patient data).

A stored row is one of:

- the JSON itself (it starts with ``{``): short documents;
- a zlib stream (it starts with ``x``): rows written by earlier versions, still read;
- a zstd frame (it starts with the zstd magic number), naming its dictionary by id when it
  was compressed with one.

Compression runs before the row codec seals the bytes.

>>> p = Packer()
>>> doc = b'{"resourceType":"Patient","id":"p1","name":[{"family":"Smith"}]}'
>>> p.unpack(p.pack(doc)) == doc and p.unpack(doc) == doc
True
>>> big = b'{"text":"' + b"a" * 500 + b'"}'
>>> len(p.pack(big)) < len(big)
True
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

import zstandard

MIN_SIZE = 160
"""Shorter documents are kept as they are (compression would barely help)."""

LEVEL = 3
"""zstd level: with a dictionary, level 3 is about as fast as level 1 and a little smaller."""

DICT_SIZE = 64 * 1024
"""Bytes of a trained dictionary (the size zstd suggests for small-document corpora)."""

MIN_SAMPLES = 500
"""A bulk load of fewer resources does not train a dictionary (too few samples)."""

MAX_SAMPLES = 4000
"""At most this many documents (evenly spread over the batch) train the dictionary."""

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def legacy_unpack(data: bytes) -> bytes | None:
    """The JSON of a plain or zlib row, or None for a zstd frame.

    >>> legacy_unpack(zlib.compress(b'{"a":1}')), legacy_unpack(b"{}")
    (b'{"a":1}', b'{}')
    """
    head = data[:1]
    if head == b"x":
        return zlib.decompress(data)
    if head == b"{":
        return bytes(data)
    return None


class Packer:
    """Packs and unpacks rows of one store (its dictionaries, by zstd dictionary id).

    ``load_dict(dict_id)`` returns the bytes of a dictionary the store keeps (or None); it is
    asked once per dictionary the first time a row compressed with it is read.

    >>> import random
    >>> rnd = random.Random(1)
    >>> docs = [b'{"resourceType":"Observation","id":"o%d","status":"%s","code":{"coding":'
    ...         b'[{"system":"http://loinc.org","code":"%d-%d","display":"%s"}]},"valueQuantity":'
    ...         b'{"value":%d,"unit":"mmHg"},"subject":{"reference":"Patient/p%d"}}'
    ...         % (i, rnd.choice([b"final", b"amended"]), rnd.randrange(9999), i % 7,
    ...            rnd.choice([b"Systolic", b"Diastolic", b"Heart rate"]), rnd.randrange(300), i % 50)
    ...         for i in range(2000)]
    >>> p = Packer()
    >>> d = p.train(docs)
    >>> p.dict_id is not None and p.unpack(p.pack(docs[3])) == docs[3]
    True
    >>> len(p.pack(docs[3])) < len(Packer().pack(docs[3])) < len(docs[3])
    True
    """

    def __init__(self, load_dict: Callable[[int], bytes | None] | None = None) -> None:
        self._load_dict = load_dict
        self._plain = zstandard.ZstdCompressor(level=LEVEL)
        self._compressor = self._plain
        self._decompressors: dict[int, zstandard.ZstdDecompressor] = {
            0: zstandard.ZstdDecompressor()
        }
        self.dict_id: int | None = None

    def use(self, dict_data: bytes) -> int:
        """Compress new rows with the dictionary ``dict_data``; returns its id.

        >>> Packer().use(b"not a trained dictionary")  # raw content dictionaries get id 0
        0
        """
        d = zstandard.ZstdCompressionDict(dict_data)
        self.dict_id = d.dict_id()
        self._compressor = zstandard.ZstdCompressor(level=LEVEL, dict_data=d)
        if self.dict_id:
            self._decompressors[self.dict_id] = zstandard.ZstdDecompressor(dict_data=d)
        return self.dict_id

    def train(self, samples: Sequence[bytes]) -> bytes | None:
        """Train a dictionary on (an even spread of) ``samples``, start using it, return it.

        The same samples give the same dictionary (zstd's trainer is deterministic). Too few
        or too uniform samples train nothing (None): rows are then compressed without one.

        >>> Packer().train([b"{}"] * 10) is None
        True
        """
        step = max(1, len(samples) // MAX_SAMPLES)
        chosen = [s for s in samples[::step] if len(s) >= MIN_SIZE][:MAX_SAMPLES]
        if len(chosen) < MIN_SAMPLES // 2:
            return None
        size = min(DICT_SIZE, sum(map(len, chosen)) // 8)
        try:
            data = zstandard.train_dictionary(size, chosen, level=LEVEL).as_bytes()
        except zstandard.ZstdError:
            return None
        self.use(data)
        return data

    def pack(self, data: bytes) -> bytes:
        """The stored form of the JSON bytes ``data``.

        >>> Packer().pack(b"{}")
        b'{}'
        """
        if len(data) < MIN_SIZE:
            return data
        out = self._compressor.compress(data)
        return out if len(out) < len(data) else data

    def unpack(self, data: bytes) -> bytes:
        """The JSON bytes of a stored row (plain, zlib or zstd).

        >>> Packer().unpack(zlib.compress(b'{"a":1}'))
        b'{"a":1}'
        """
        old = legacy_unpack(data)
        if old is not None:
            return old
        dict_id = zstandard.get_frame_parameters(data).dict_id
        dec = self._decompressors.get(dict_id)
        if dec is None:
            raw = self._load_dict(dict_id) if self._load_dict is not None else None
            if raw is None:
                raise ValueError(f"row packed with dictionary {dict_id}, which the store lacks")
            dec = self._decompressors[dict_id] = zstandard.ZstdDecompressor(
                dict_data=zstandard.ZstdCompressionDict(raw)
            )
        return dec.decompress(data)

    def forget(self) -> None:
        """Drop cached dictionaries (after the store's content was replaced).

        Examples
        --------
        >>> import random
        >>> rnd = random.Random(1)
        >>> docs = [b'{"resourceType":"Observation","id":"o%d","status":"%s","code":{"coding":'
        ...         b'[{"system":"http://loinc.org","code":"%d-%d","display":"%s"}]},"valueQuantity":'
        ...         b'{"value":%d,"unit":"mmHg"},"subject":{"reference":"Patient/p%d"}}'
        ...         % (i, rnd.choice([b"final", b"amended"]), rnd.randrange(9999), i % 7,
        ...            rnd.choice([b"Systolic", b"Diastolic", b"Heart rate"]), rnd.randrange(300), i % 50)
        ...         for i in range(2000)]
        >>> p = Packer(); _ = p.train(docs)
        >>> p.dict_id is not None
        True
        >>> p.forget(); p.dict_id is None
        True
        """
        self.__init__(self._load_dict)  # type: ignore[misc]


def pack(data: bytes) -> bytes:
    """:meth:`Packer.pack` without a dictionary.

    >>> unpack(pack(b'{"a":"' + b"b" * 300 + b'"}'))[:6]
    b'{"a":"'
    """
    return _DEFAULT.pack(data)


def unpack(data: bytes) -> bytes:
    """:meth:`Packer.unpack` of a row packed without a dictionary.

    >>> unpack(b'{"a":1}')
    b'{"a":1}'
    """
    return _DEFAULT.unpack(data)


_DEFAULT = Packer()
