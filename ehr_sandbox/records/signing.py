"""Signing notes: Ed25519 over RFC 8785 canonical JSON, kept in a Provenance.

Each signer's key is derived from the sandbox master key and their username (HKDF), so a
signature can be verified later without storing private keys anywhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ehr_sandbox.clock import instant
from ehr_sandbox.errors import AccessDenied, NotFound, ValidationError

if TYPE_CHECKING:
    from ehr_sandbox.session import Session


def signing_key(session: Session, username: str) -> Ed25519PrivateKey:
    """The Ed25519 key of ``username`` in this sandbox (derived, never stored)."""
    seed = session.sandbox.master_key.derive(f"ehr-sandbox/sign/{username}")
    return Ed25519PrivateKey.from_private_bytes(seed)


def sign_note(session: Session, note_ref: str) -> dict[str, Any]:
    """Sign the current version of a note; returns the Provenance holding the signature."""
    from ehr_sandbox.access.roles import may
    from ehr_sandbox.crypto import sign_resource
    from ehr_sandbox.session import split_ref

    if not may(session.user.role, "sign"):
        session.audit_operation("sign", "4", entity_ref=str(note_ref), detail="role")
        raise AccessDenied(
            f"{session.user.role} may not sign notes: a physician signs (authenticates) the note"
        )
    rtype, rid = split_ref(note_ref)
    if rtype != "DocumentReference":
        raise ValidationError(
            note_ref, "resourceType", "a DocumentReference (notes are what gets signed)"
        )
    raw = session.read(rtype, rid)  # checked and audited read (signers see notes unmasked)
    signed = session.sandbox.private.get("signed_notes", {})
    if f"{rtype}/{rid}" in signed:
        raise ValidationError(
            note_ref, "signature", "an unsigned note (this one is already signed)"
        )
    when = instant(session.sandbox.clock.peek())
    key = signing_key(session, session.user.username)
    signature = sign_resource(raw, key, who=session.user.ref or "", when=when)
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    version = raw["meta"]["versionId"]
    with session.atomic():
        prov = session.record_provenance(
            [f"{rtype}/{rid}/_history/{version}"], "sign", signature=signature
        )
        signed[f"{rtype}/{rid}"] = {
            "version": version,
            "provenance": prov["id"],
            "signer": session.user.username,
            "public_key": public,
        }
        session.sandbox.private.set("signed_notes", signed)
    session.audit_operation("sign", "0", entity=raw)
    return prov


def verify_note(session: Session, note_ref: str) -> bool:
    """True when the note's current content still verifies against its signature."""
    from ehr_sandbox.crypto import verify_signature
    from ehr_sandbox.session import split_ref

    rtype, rid = split_ref(note_ref)
    info = session.sandbox.private.get("signed_notes", {}).get(f"{rtype}/{rid}")
    if info is None:
        return False
    raw = session.read(rtype, rid)
    try:
        prov = session.read("Provenance", info["provenance"])
    except NotFound:
        return False
    # the public key kept at signing time: signatures outlive key rotation
    public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(info["public_key"]))
    return bool(verify_signature(raw, prov["signature"][0], public))
