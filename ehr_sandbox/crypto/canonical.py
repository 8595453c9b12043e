"""Canonical JSON (RFC 8785, JCS): the exact bytes that get hashed and signed.

Two dicts with the same content always canonicalise to the same bytes, whatever their key
order or whitespace, so a hash or a signature over them is reproducible.

>>> canonical_json({"b": 1, "a": [True, None, "é"]})
b'{"a":[true,null,"\\xc3\\xa9"],"b":1}'
"""

from __future__ import annotations

from typing import Any

import rfc8785

from ehr_sandbox.errors import CryptoError

__all__ = ["canonical_json"]


def canonical_json(obj: Any) -> bytes:
    """Serialise ``obj`` as RFC 8785 canonical JSON (UTF-8 bytes).

    Raises :class:`CryptoError` for values JSON cannot hold exactly (NaN, integers beyond
    2**53, non-string keys), because signing an approximation would not verify later.

    >>> canonical_json({"z": 1.0, "y": 10})
    b'{"y":10,"z":1}'
    """
    try:
        return rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise CryptoError(
            f"canonical JSON: expected plain JSON values (str, int, float, bool, None, list, dict with str keys): {exc}"
        ) from None
