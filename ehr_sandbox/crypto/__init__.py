"""Cryptography of the sandbox: master key and derived keys, encrypted rows, signatures.

Pure module (no session/sandbox imports). See docs/privacy.md, "Encryption at rest" and
"Provenance and signatures".

>>> from ehr_sandbox.crypto import MasterKey, AesGcmCodec
>>> codec = AesGcmCodec(MasterKey.generate())
>>> codec.open("Patient/1/_history/1", codec.seal("Patient/1/_history/1", b"{}"))
b'{}'
"""

from ehr_sandbox.crypto.canonical import canonical_json
from ehr_sandbox.crypto.codec import IdentityCodec, RowCodec
from ehr_sandbox.crypto.keys import (
    AUDIT_MAC_INFO,
    AUDIT_SIGN_INFO,
    BLIND_INDEX_INFO,
    ROWS_INFO,
    MasterKey,
)
from ehr_sandbox.crypto.rows import AesGcmCodec
from ehr_sandbox.crypto.signatures import (
    generate_signing_key,
    sign_resource,
    signed_bytes,
    verify_signature,
)

__all__ = [
    "AUDIT_MAC_INFO",
    "AUDIT_SIGN_INFO",
    "BLIND_INDEX_INFO",
    "ROWS_INFO",
    "AesGcmCodec",
    "MasterKey",
    "IdentityCodec",
    "RowCodec",
    "canonical_json",
    "generate_signing_key",
    "sign_resource",
    "signed_bytes",
    "verify_signature",
]
