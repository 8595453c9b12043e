"""Deterministic resource ids.

An id is a pure function of (seed, patient index, resource kind, ordinal): the patient part is
a keyed BLAKE2b digest computed once per patient, and each resource appends its kind and
ordinal, so making an id on the hot path is one string format, not one hash.

>>> base = patient_base(7, 0)
>>> base == patient_base(7, 0) != patient_base(8, 0)
True
>>> resource_id(base, "obs", 3) == base + "-obs-3"
True
>>> valid_id(resource_id(base, "obs", 3))
True
"""

from __future__ import annotations

import re
import uuid
from hashlib import blake2b

_KEY = b"ehr-sandbox/ids/v1"
_ID_RE = re.compile(r"[A-Za-z0-9\-\.]{1,64}")


def patient_digest(seed: int, index: int) -> bytes:
    """16 bytes that identify patient ``index`` of a dataset made with ``seed``.

    >>> len(patient_digest(0, 0))
    16
    """
    return blake2b(f"{seed}:{index}".encode(), digest_size=16, key=_KEY).digest()


def patient_base(seed: int, index: int) -> str:
    """The 16-hex-digit prefix of every id in one patient's record (the Patient id itself).

    >>> len(patient_base(0, 5))
    16
    """
    return patient_digest(seed, index)[:8].hex()


def resource_id(base: str, kind: str, ordinal: int) -> str:
    """The id of the ``ordinal``-th resource of ``kind`` in the record whose prefix is ``base``.

    >>> resource_id("abc", "enc", 0)
    'abc-enc-0'
    """
    return f"{base}-{kind}-{ordinal}"


ORDINALS: tuple[str, ...] = tuple(str(i) for i in range(4096))
"""``str(i)`` of the small ordinals, built once (see :func:`numbered`)."""


def numbered(prefix: str, ordinal: int) -> str:
    """``prefix + str(ordinal)``, the small ordinals taken from a table built once: the id of
    a resource made on the hot path, ``prefix`` being ``f"{base}-{kind}-"`` (see
    :func:`resource_id`).

    >>> numbered("abc-obs-", 7) == resource_id("abc", "obs", 7), numbered("p-", 10**6)
    (True, 'p-1000000')
    """
    return prefix + (ORDINALS[ordinal] if ordinal < 4096 else str(ordinal))


def practice_id(kind: str, key: str) -> str:
    """Id of a shared practice resource (the same for every seed, so rosters can be named).

    >>> practice_id("prac", "dr.patel")
    'prac-dr.patel'
    """
    return f"{kind}-{key}"


def valid_id(value: str) -> bool:
    """True when ``value`` is a valid FHIR id (``[A-Za-z0-9-.]{1,64}``).

    >>> valid_id("a" * 65), valid_id("a_b"), valid_id("a-b.c")
    (False, False, True)
    """
    return _ID_RE.fullmatch(value) is not None


def urn_uuid(resource_type: str, resource_id_: str) -> str:
    """A deterministic ``urn:uuid:`` for a resource (used as a transaction Bundle fullUrl).

    >>> urn_uuid("Patient", "x") == urn_uuid("Patient", "x")
    True
    >>> urn_uuid("Patient", "x").startswith("urn:uuid:")
    True
    """
    digest = blake2b(f"{resource_type}/{resource_id_}".encode(), digest_size=16, key=_KEY).digest()
    return "urn:uuid:" + str(uuid.UUID(bytes=digest, version=4))
