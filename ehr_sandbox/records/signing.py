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
    """The Ed25519 key of ``username`` in this sandbox (derived, never stored).

    Parameters
    ----------
    session : Session
        Any session of the sandbox (the key derives from its master key).
    username : str
        The signer.

    Returns
    -------
    Ed25519PrivateKey
        The same key every time for the same sandbox and user.

    Examples
    --------
    >>> from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> s = Sandbox.generate(patients=1, seed=1, years=1).system_session()
    >>> raw = lambda k: k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    >>> raw(signing_key(s, "dr.patel")) == raw(signing_key(s, "dr.patel")) != raw(signing_key(s, "dr.okafor"))
    True
    """
    seed = session.sandbox.master_key.derive(f"ehr-sandbox/sign/{username}")
    return Ed25519PrivateKey.from_private_bytes(seed)


def sign_note(session: Session, note_ref: str) -> dict[str, Any]:
    """Sign the current version of a note; returns the Provenance holding the signature.

    :meth:`Session.sign` calls this. The signature (Ed25519 over the note's canonical JSON)
    goes into a Provenance; the signer's public key is kept so the signature outlives key
    rotation.

    Parameters
    ----------
    session : Session
        The signer's session (a role that may sign: physicians).
    note_ref : str
        ``DocumentReference/id``.

    Returns
    -------
    dict
        The Provenance (activity ``sign``) with the signature.

    Raises
    ------
    AccessDenied
        The role may not sign (audited).
    ValidationError
        Not a DocumentReference, or already signed.
    NotFound
        The note is absent or hidden.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("dr.patel")
    >>> pid = s.search("Patient").first()["id"]
    >>> note = s.create({"resourceType": "DocumentReference", "status": "current",
    ...     "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3", "display": "Progress note"}]},
    ...     "subject": {"reference": f"Patient/{pid}"},
    ...     "content": [{"attachment": {"contentType": "text/plain", "data": "Tm90ZQ=="}}]})
    >>> ref = f"DocumentReference/{note['id']}"

    >>> prov = sign_note(s, ref)
    >>> prov["activity"]["coding"][0]["code"], len(prov["signature"])
    ('sign', 1)
    >>> sign_note(s, ref)
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ValidationError: DocumentReference/...: signature: expected an unsigned note (this one is already signed)
    """
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
    """True when the note's current content still verifies against its signature.

    Parameters
    ----------
    session : Session
        A session that may read the note.
    note_ref : str
        ``DocumentReference/id``.

    Returns
    -------
    bool
        False for an unsigned note, a missing Provenance, or content changed since signing.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("dr.patel")
    >>> pid = s.search("Patient").first()["id"]
    >>> note = s.create({"resourceType": "DocumentReference", "status": "current",
    ...     "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3", "display": "Progress note"}]},
    ...     "subject": {"reference": f"Patient/{pid}"},
    ...     "content": [{"attachment": {"contentType": "text/plain", "data": "Tm90ZQ=="}}]})
    >>> ref = f"DocumentReference/{note['id']}"

    >>> verify_note(s, ref)
    False
    >>> _ = sign_note(s, ref); verify_note(s, ref)
    True
    """
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
