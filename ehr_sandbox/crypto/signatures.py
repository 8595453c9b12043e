"""Ed25519 signatures over FHIR resources, as FHIR ``Signature`` elements.

**What is signed.** The UTF-8 bytes of the RFC 8785 canonical JSON of the resource after
removing ``meta.versionId``, ``meta.lastUpdated`` and ``meta.security`` (and ``meta`` itself
if that leaves it empty). The store assigns the first two on every write, so leaving them out
makes the signature independent of *when* the content was stored. Security labels are what
the privacy officer and the access policy set (a relabel raises the labels of every record
derived from the one relabelled, signed notes included): they say who may read the note, not
what its author attested, so changing them does not void the author's signature. Every other
element (``id``, narrative, content, tags) is covered: any edit of the signed content makes
:func:`verify_signature` return False.

**The Signature element.** ``type`` = ASTM E1762 ``1.2.840.10065.1.12.1.1`` (author's
signature), ``when``, ``who`` (a reference to the signer), ``targetFormat``
``application/fhir+json``, ``sigFormat`` ``application/octet-stream`` (a raw 64-byte Ed25519
signature, not a JWS) and ``data`` = base64 of those 64 bytes.

>>> key = generate_signing_key(bytes(32))
>>> note = {"resourceType": "DocumentReference", "id": "n1", "status": "current"}
>>> sig = sign_resource(note, key, who="Practitioner/dr-patel", when="2026-01-01T09:00:00Z")
>>> verify_signature(note, sig, key.public_key())
True
>>> verify_signature({**note, "status": "superseded"}, sig, key.public_key())
False
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ehr_sandbox.crypto.canonical import canonical_json
from ehr_sandbox.errors import CryptoError, ValidationError

__all__ = [
    "AUTHOR_SIGNATURE_CODE",
    "SIGNATURE_TYPE_SYSTEM",
    "generate_signing_key",
    "sign_resource",
    "signed_bytes",
    "verify_signature",
]

SIGNATURE_TYPE_SYSTEM = "urn:iso-astm:E1762-95:2013"
AUTHOR_SIGNATURE_CODE = "1.2.840.10065.1.12.1.1"
SIG_FORMAT = "application/octet-stream"
TARGET_FORMAT = "application/fhir+json"
_VOLATILE_META = ("versionId", "lastUpdated", "security")


def generate_signing_key(seed: bytes | None = None) -> Ed25519PrivateKey:
    """A new Ed25519 private key, or the one determined by a 32-byte ``seed``
    (e.g. ``master_key.derive("ehr-sandbox/audit-sign")``).

    >>> generate_signing_key(bytes(32)).public_key() == generate_signing_key(bytes(32)).public_key()
    True
    """
    if seed is None:
        return Ed25519PrivateKey.generate()
    if not isinstance(seed, bytes | bytearray) or len(seed) != 32:
        raise CryptoError("seed: expected 32 bytes for an Ed25519 key")
    return Ed25519PrivateKey.from_private_bytes(bytes(seed))


def signed_bytes(resource: dict[str, Any]) -> bytes:
    """The exact bytes a signature covers (see the module docstring).

    >>> signed_bytes({"resourceType": "Basic", "id": "1", "meta": {"versionId": "3"}})
    b'{"id":"1","resourceType":"Basic"}'
    """
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        raise ValidationError(
            "resource", "resourceType", "a FHIR resource as a dict with a resourceType"
        )
    body = dict(resource)
    meta = body.get("meta")
    if isinstance(meta, dict):
        meta = {k: v for k, v in meta.items() if k not in _VOLATILE_META}
        if meta:
            body["meta"] = meta
        else:
            del body["meta"]
    return canonical_json(body)


def sign_resource(
    resource: dict[str, Any], private_key: Ed25519PrivateKey, *, who: str, when: str
) -> dict[str, Any]:
    """Sign ``resource`` and return a FHIR R4 ``Signature`` element (author's signature).

    ``who`` is a relative reference (``Practitioner/id``); ``when`` a FHIR instant.

    >>> sig = sign_resource({"resourceType": "Basic", "id": "1"}, generate_signing_key(bytes(32)),
    ...                     who="Practitioner/1", when="2026-01-01T00:00:00Z")
    >>> sig["type"][0]["code"], sig["sigFormat"], len(base64.b64decode(sig["data"]))
    ('1.2.840.10065.1.12.1.1', 'application/octet-stream', 64)
    """
    if not isinstance(private_key, Ed25519PrivateKey):
        raise CryptoError(
            f"private_key: expected an Ed25519PrivateKey, got {type(private_key).__name__}"
        )
    if not isinstance(who, str) or "/" not in who.strip("/"):
        raise ValidationError(
            "Signature",
            "who",
            "a reference to the signer such as 'Practitioner/dr-patel'",
            found=who,
        )
    if not isinstance(when, str) or len(when) < 20 or "T" not in when:
        raise ValidationError(
            "Signature", "when", "a FHIR instant such as '2026-01-01T09:00:00Z'", found=when
        )
    raw = private_key.sign(signed_bytes(resource))
    return {
        "type": [
            {
                "system": SIGNATURE_TYPE_SYSTEM,
                "code": AUTHOR_SIGNATURE_CODE,
                "display": "Author's Signature",
            }
        ],
        "when": when,
        "who": {"reference": who},
        "targetFormat": TARGET_FORMAT,
        "sigFormat": SIG_FORMAT,
        "data": base64.b64encode(raw).decode("ascii"),
    }


def verify_signature(
    resource: dict[str, Any], signature: dict[str, Any], public_key: Ed25519PublicKey | bytes
) -> bool:
    """True when ``signature`` (a Signature element) is valid for ``resource`` and the key.

    A malformed signature element is simply invalid (False), never an exception.

    >>> k = generate_signing_key(bytes(32))
    >>> verify_signature({"resourceType": "Basic"}, {"data": "!!"}, k.public_key())
    False
    """
    if isinstance(public_key, bytes | bytearray):
        try:
            public_key = Ed25519PublicKey.from_public_bytes(bytes(public_key))
        except ValueError:
            raise CryptoError("public_key: expected 32 bytes of an Ed25519 public key") from None
    if not isinstance(public_key, Ed25519PublicKey):
        raise CryptoError(
            f"public_key: expected an Ed25519PublicKey, got {type(public_key).__name__}"
        )
    if not isinstance(signature, dict) or signature.get("sigFormat", SIG_FORMAT) != SIG_FORMAT:
        return False
    try:
        raw = base64.b64decode(str(signature.get("data", "")), validate=True)
        public_key.verify(raw, signed_bytes(resource))
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True
