"""Crypto: master key derivation, AES-GCM rows, rotation, blind indexes, signatures."""

from __future__ import annotations

import base64
import copy

import pytest
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ehr_sandbox.crypto import (
    AUDIT_MAC_INFO,
    AUDIT_SIGN_INFO,
    BLIND_INDEX_INFO,
    ROWS_INFO,
    AesGcmCodec,
    IdentityCodec,
    MasterKey,
    canonical_json,
    generate_signing_key,
    sign_resource,
    signed_bytes,
    verify_signature,
)
from ehr_sandbox.crypto import keys as keys_module
from ehr_sandbox.crypto.rows import KEY_ID_BYTES, NONCE_BYTES
from ehr_sandbox.errors import CryptoError, ValidationError
from synthetic.fhir import validate

AAD = "Patient/p1/_history/1"
ROW = b'{"resourceType":"Patient","id":"p1","name":[{"family":"Okonkwo"}]}'


def test_aes_gcm_round_trip_hides_plaintext():
    codec = AesGcmCodec(MasterKey.generate())
    blob = codec.seal(AAD, ROW)
    assert codec.open(AAD, blob) == ROW
    assert b"Okonkwo" not in blob
    assert blob[:KEY_ID_BYTES].hex() == codec.key_id
    assert codec.encrypting is True


def test_nonce_is_fresh_per_seal():
    codec = AesGcmCodec(MasterKey.generate())
    nonces = {codec.seal(AAD, ROW)[KEY_ID_BYTES : KEY_ID_BYTES + NONCE_BYTES] for _ in range(50)}
    assert len(nonces) == 50


def test_wrong_key_gives_one_clear_error():
    blob = AesGcmCodec(MasterKey.generate()).seal(AAD, ROW)
    with pytest.raises(CryptoError) as info:
        AesGcmCodec(MasterKey.generate()).open(AAD, blob)
    message = str(info.value)
    assert "wrong key" in message and AAD in message
    assert "\n" not in message
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__


def test_ciphertext_swapped_between_rows_fails():
    codec = AesGcmCodec(MasterKey.generate())
    blob_a = codec.seal("Patient/a/_history/1", b"A")
    with pytest.raises(CryptoError, match="another row"):
        codec.open("Patient/b/_history/1", blob_a)


def test_tampered_ciphertext_fails():
    codec = AesGcmCodec(MasterKey.generate())
    blob = bytearray(codec.seal(AAD, ROW))
    blob[-1] ^= 1
    with pytest.raises(CryptoError):
        codec.open(AAD, bytes(blob))
    with pytest.raises(CryptoError, match="at least"):
        codec.open(AAD, b"short")


def test_rotation_opens_old_rows_and_seals_with_new_key():
    old, new = MasterKey.generate(), MasterKey.generate()
    old_blob = AesGcmCodec(old).seal(AAD, ROW)
    rotated = AesGcmCodec(new, previous=[old])
    assert rotated.open(AAD, old_blob) == ROW
    new_blob = rotated.seal(AAD, ROW)
    assert rotated.key_id_of(new_blob) == new.key_id != old.key_id
    assert rotated.key_id_of(old_blob) == old.key_id
    with pytest.raises(CryptoError, match="wrong key"):
        AesGcmCodec(old).open(AAD, new_blob)


def test_blind_index_is_keyed_and_deterministic():
    mk = MasterKey.generate()
    codec = AesGcmCodec(mk)
    assert codec.blind("MRN001") == AesGcmCodec(mk).blind("MRN001")
    assert codec.blind("MRN001") != codec.blind("MRN002")
    assert codec.blind("MRN001") != AesGcmCodec(MasterKey.generate()).blind("MRN001")
    assert "MRN001" not in codec.blind("MRN001")


def test_plain_codec_is_identity():
    codec = IdentityCodec()
    assert codec.encrypting is False
    assert codec.open(AAD, codec.seal(AAD, ROW)) == ROW
    assert codec.blind("x") == "x"


def test_hkdf_labels_give_distinct_keys():
    mk = MasterKey.generate()
    labels = [
        ROWS_INFO,
        BLIND_INDEX_INFO,
        AUDIT_MAC_INFO,
        AUDIT_SIGN_INFO,
        "ehr-sandbox/sign/dr.patel",
    ]
    derived = [mk.derive(label) for label in labels]
    assert len(set(derived)) == len(labels)
    assert mk.raw not in derived
    assert len(mk.derive(ROWS_INFO, 16)) == 16
    assert MasterKey(mk.raw).derive(ROWS_INFO) == mk.derive(ROWS_INFO)
    with pytest.raises(CryptoError, match="info"):
        mk.derive("")


def test_passphrase_uses_scrypt_with_documented_parameters():
    assert keys_module.SCRYPT_N >= 2**15 and keys_module.SCRYPT_R == 8 and keys_module.SCRYPT_P == 1
    salt = bytes(range(16))
    mk = MasterKey.from_passphrase("correct horse battery", salt)
    expected = Scrypt(salt=salt, length=32, n=2**15, r=8, p=1).derive(b"correct horse battery")
    assert mk.raw == expected
    assert MasterKey.from_passphrase("correct horse battery", bytes(16)) != mk
    with pytest.raises(CryptoError, match="salt"):
        MasterKey.from_passphrase("x", b"short")
    with pytest.raises(CryptoError, match="passphrase"):
        MasterKey.from_passphrase("", salt)


def test_master_key_validation_and_repr():
    with pytest.raises(CryptoError, match="32 bytes"):
        MasterKey(b"too short")
    mk = MasterKey.generate()
    assert mk.raw.hex() not in repr(mk) and mk.key_id in repr(mk)


def test_key_file_round_trip_and_errors(tmp_path):
    mk = MasterKey.generate()
    path = tmp_path / "sandbox.key"
    mk.to_file(path)
    assert MasterKey.from_file(path) == mk
    assert (path.stat().st_mode & 0o077) == 0
    with pytest.raises(CryptoError, match="does not exist"):
        MasterKey.from_file(tmp_path / "missing.key")
    bad = tmp_path / "bad.key"
    bad.write_text("not a key\n")
    with pytest.raises(CryptoError, match="header"):
        MasterKey.from_file(bad)


def test_canonical_json_is_key_order_independent():
    a = {"b": [1, 2.5, "x"], "a": {"d": None, "c": True}}
    b = {"a": {"c": True, "d": None}, "b": [1, 2.5, "x"]}
    assert canonical_json(a) == canonical_json(b)
    with pytest.raises(CryptoError):
        canonical_json({"x": float("nan")})


NOTE = {
    "resourceType": "DocumentReference",
    "id": "note-1",
    "meta": {
        "versionId": "1",
        "lastUpdated": "2026-01-01T09:00:00Z",
        "security": [
            {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N"}
        ],
    },
    "status": "current",
    "subject": {"reference": "Patient/p1"},
    "content": [
        {
            "attachment": {
                "contentType": "text/plain",
                "data": base64.b64encode(b"Seen today.").decode(),
            }
        }
    ],
}


def _edits():
    def status(r):
        r["status"] = "superseded"

    def subject(r):
        r["subject"]["reference"] = "Patient/p2"

    def data(r):
        r["content"][0]["attachment"]["data"] = base64.b64encode(b"Not seen.").decode()

    def tag(r):
        r["meta"]["tag"] = [{"system": "http://ehr-sandbox.org/CodeSystem/tags", "code": "x"}]

    def identity(r):
        r["id"] = "note-2"

    def added(r):
        r["description"] = "added"

    return [status, subject, data, tag, identity, added]


@pytest.mark.parametrize("edit", _edits(), ids=lambda f: f.__name__)
def test_signature_fails_after_any_edit_of_signed_content(edit):
    key = generate_signing_key()
    sig = sign_resource(NOTE, key, who="Practitioner/dr-patel", when="2026-01-01T09:05:00Z")
    assert verify_signature(NOTE, sig, key.public_key())
    edited = copy.deepcopy(NOTE)
    edit(edited)
    assert not verify_signature(edited, sig, key.public_key())


def test_signature_ignores_store_assigned_meta_only():
    key = generate_signing_key()
    sig = sign_resource(NOTE, key, who="Practitioner/dr-patel", when="2026-01-01T09:05:00Z")
    restored = copy.deepcopy(NOTE)
    restored["meta"].update(versionId="7", lastUpdated="2027-02-02T00:00:00Z")
    assert verify_signature(restored, sig, key.public_key())
    assert b"versionId" not in signed_bytes(NOTE) and b"lastUpdated" not in signed_bytes(NOTE)


def test_signature_element_shape_and_fhir_validity():
    key = generate_signing_key(bytes(range(32)))
    sig = sign_resource(NOTE, key, who="Practitioner/dr-patel", when="2026-01-01T09:05:00Z")
    assert sig["type"][0] == {
        "system": "urn:iso-astm:E1762-95:2013",
        "code": "1.2.840.10065.1.12.1.1",
        "display": "Author's Signature",
    }
    assert sig["who"] == {"reference": "Practitioner/dr-patel"}
    assert sig["sigFormat"] in ("application/jose", "application/octet-stream")
    provenance = {
        "resourceType": "Provenance",
        "target": [{"reference": "DocumentReference/note-1/_history/1"}],
        "recorded": "2026-01-01T09:05:00Z",
        "agent": [{"who": {"reference": "Practitioner/dr-patel"}}],
        "signature": [sig],
    }
    assert validate(provenance) == []


def test_signature_wrong_key_and_bad_input():
    key, other = generate_signing_key(), generate_signing_key()
    sig = sign_resource(NOTE, key, who="Practitioner/dr-patel", when="2026-01-01T09:05:00Z")
    assert not verify_signature(NOTE, sig, other.public_key())
    assert verify_signature(NOTE, sig, key.public_key().public_bytes_raw())
    assert not verify_signature(NOTE, {**sig, "data": "@@"}, key.public_key())
    with pytest.raises(ValidationError, match="who"):
        sign_resource(NOTE, key, who="", when="2026-01-01T09:05:00Z")
    with pytest.raises(ValidationError, match="when"):
        sign_resource(NOTE, key, who="Practitioner/x", when="2026-01-01")


def test_canonical_fast_path_matches_rfc8785_exactly():
    import random

    import rfc8785

    rng = random.Random(8785)
    alphabet = [chr(i) for i in range(0x80)] + [
        "é",
        "€",
        "\u2028",
        "\u2029",
        "😀",
        "\ufeff",
        "\u0085",
        "/",
    ]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 10)))
        key = "".join(rng.choice(alphabet[:128]) for _ in range(rng.randint(0, 4)))
        obj = {
            key: text,
            "list": [text, True, None, rng.randint(-(2**53) + 1, 2**53 - 1)],
            "z": {"y": text},
        }
        assert canonical_json(obj) == rfc8785.dumps(obj)
    for obj in ({"é": 1, "e": 2, "😀": 3, "\uffff": 4}, {"f": 1.5e-7, "g": 10.0}, [2**53 - 1]):
        assert canonical_json(obj) == rfc8785.dumps(obj)
    with pytest.raises(CryptoError):
        canonical_json(2**53)
