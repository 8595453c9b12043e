"""A relabel is not an edit of what the author signed: a signed note whose labels rise (by a
privacy officer, or by the cascade from the visit it documents) still verifies; its content
does not change without voiding the signature."""

from __future__ import annotations

import base64

import pytest

from ehr_sandbox.sandbox import Sandbox

CONF = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


@pytest.fixture(scope="module")
def clinic() -> Sandbox:
    return Sandbox.generate(patients=3, seed=5, years=1)


def _signed_note(sb: Sandbox) -> tuple[str, str]:
    doc = sb.login("dr.patel")
    enc = doc.search("Encounter").first()
    note = doc.create(
        {
            "resourceType": "DocumentReference",
            "status": "current",
            "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3"}]},
            "subject": enc["subject"],
            "context": {"encounter": [{"reference": f"Encounter/{enc['id']}"}]},
            "content": [
                {
                    "attachment": {
                        "contentType": "text/plain",
                        "data": base64.b64encode(b"Seen for follow-up.").decode(),
                    }
                }
            ],
        }
    )
    ref = f"DocumentReference/{note['id']}"
    doc.sign(ref)
    return ref, f"Encounter/{enc['id']}"


def _levels(sb: Sandbox, ref: str) -> set[str]:
    meta = sb.system_session().read(ref).get("meta", {})
    return {c.get("code") for c in meta.get("security", []) if c.get("system") == CONF}


@pytest.mark.parametrize("relabelled", ["note", "encounter"])
def test_a_signed_note_still_verifies_after_its_labels_rise(clinic: Sandbox, relabelled: str):
    sb = clinic.copy()
    note, encounter = _signed_note(sb)
    system = sb.system_session()
    assert system.verify_signature(note)
    assert "R" not in _levels(sb, note)
    target = note if relabelled == "note" else encounter
    sb.login("po.wilson").relabel(target, "R", reason="test: the patient asked for restriction")
    assert "R" in _levels(sb, note)  # the note's labels did rise (directly or by the cascade)
    assert system.verify_signature(note)


def test_a_content_edit_still_voids_the_signature(clinic: Sandbox):
    from ehr_sandbox.crypto import verify_signature
    from ehr_sandbox.crypto.signatures import signed_bytes

    sb = clinic.copy()
    note, _ = _signed_note(sb)
    current = sb.system_session().read(note)
    prov = next(
        p
        for p in sb.system_session().search("Provenance").fetch_all()
        if any(t.get("reference", "").startswith(note) for t in p.get("target", []))
        and p.get("signature")
    )
    edited = {**current, "description": "added after signing"}
    relabelled = {
        **current,
        "meta": {**current["meta"], "security": [{"system": CONF, "code": "V"}]},
    }
    assert signed_bytes(relabelled) == signed_bytes(current)
    assert signed_bytes(edited) != signed_bytes(current)
    assert not verify_signature(edited, prov["signature"][0], _public(sb, note))


def _public(sb: Sandbox, note: str):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    info = sb.private.get("signed_notes", {})[note]
    return Ed25519PublicKey.from_public_bytes(bytes.fromhex(info["public_key"]))
