"""Audit trail: the five tamper cases, encryption, checkpoints, filters, events' FHIR validity."""

from __future__ import annotations

import base64
import sqlite3

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ehr_sandbox.audit import AuditTrail, build_event
from ehr_sandbox.audit.chain import chain_hash, chain_mac
from ehr_sandbox.crypto import AesGcmCodec, IdentityCodec, MasterKey, canonical_json
from ehr_sandbox.errors import AuditError, ValidationError
from synthetic.fhir import validate

USERS = [
    {"username": "ma.garcia", "role": "medical_assistant", "practitioner_id": "pr-ma-garcia"},
    {"username": "dr.patel", "role": "physician", "practitioner_id": "pr-dr-patel"},
]


def _event(i: int, **overrides):
    kwargs = dict(
        action="R",
        interaction="read",
        outcome="0",
        user=USERS[i % 2],
        purpose="TREAT",
        patient_id=f"pat-{i % 3}",
        entity_ref=f"Observation/obs-{i}",
        version="1",
        labels=[
            {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N"}
        ],
        query=None,
        recorded=f"2026-01-01T09:{i // 60 % 60:02d}:{i % 60:02d}Z",
    )
    kwargs.update(overrides)
    return build_event(**kwargs)


def _trail(n: int = 20, *, encrypted: bool = False, batch: int = 100):
    con = sqlite3.connect(":memory:", isolation_level=None)
    mk = MasterKey.generate()
    trail = AuditTrail(con, mk, AesGcmCodec(mk) if encrypted else IdentityCodec(), batch=batch)
    for i in range(n):
        trail.append(_event(i))
    return con, mk, trail


def _rows(con):
    return con.execute("SELECT seq, record, h, mac FROM audit_log ORDER BY seq").fetchall()


def test_intact_trail_verifies():
    _, _, trail = _trail(20)
    result = trail.verify()
    assert result.ok and result.first_bad is None and result.count == 20 == trail.count()


# ---------------------------------------------------------------- the five tamper cases
def test_tamper_edited_entry_is_detected():
    con, _, trail = _trail(20)
    record = orjson.loads(con.execute("SELECT record FROM audit_log WHERE seq = 7").fetchone()[0])
    record["outcome"] = "4"
    con.execute("UPDATE audit_log SET record = ? WHERE seq = 7", (canonical_json(record),))
    result = trail.verify()
    assert not result.ok and result.first_bad == 7 and result.count == 6
    assert "edited" in result.reason


def test_tamper_deleted_entry_is_detected():
    con, _, trail = _trail(20)
    con.execute("DELETE FROM audit_log WHERE seq = 12")
    result = trail.verify()
    assert not result.ok and result.first_bad == 12
    assert "deleted" in result.reason


def test_tamper_reordered_entries_are_detected():
    con, _, trail = _trail(20)
    rows = {seq: (rec, h, mac) for seq, rec, h, mac in _rows(con)}
    for seq, other in ((9, 10), (10, 9)):
        rec, h, mac = rows[other]
        con.execute(
            "UPDATE audit_log SET record = ?, h = ?, mac = ? WHERE seq = ?", (rec, h, mac, seq)
        )
    result = trail.verify()
    assert not result.ok and result.first_bad == 9


def test_tamper_truncated_tail_is_caught_by_checkpoint():
    con, _, trail = _trail(20)
    checkpoint = trail.checkpoint()
    assert checkpoint is not None and checkpoint["seq"] == 20
    con.execute("DELETE FROM audit_log WHERE seq > 16")
    result = trail.verify()
    assert not result.ok and result.first_bad == 17 and result.count == 16
    assert "tail was cut off" in result.reason


def test_tamper_rehashed_chain_without_mac_key_is_detected():
    con, _, trail = _trail(20)
    rows = _rows(con)
    record = orjson.loads(rows[4][1])
    record["agent"][0]["altId"] = "someone.else"
    rows[4] = (rows[4][0], canonical_json(record), rows[4][2], rows[4][3])
    forged_key = MasterKey.generate().derive("ehr-sandbox/audit-mac")
    prev = bytes(32)
    for (
        seq,
        rec,
        _h,
        _mac,
    ) in rows:  # the attacker recomputes every hash and forges MACs with a guessed key
        h = chain_hash(prev, seq, rec)
        con.execute(
            "UPDATE audit_log SET record = ?, h = ?, mac = ? WHERE seq = ?",
            (rec, h, chain_mac(forged_key, h) if seq >= 5 else _mac, seq),
        )
        prev = h
    result = trail.verify()
    assert not result.ok and result.first_bad == 5
    assert "without the key" in result.reason


# ---------------------------------------------------------------- more tampering
def test_forged_checkpoint_signature_is_detected():
    con, _, trail = _trail(10)
    trail.checkpoint()
    con.execute("UPDATE audit_checkpoint SET signature = ? WHERE seq = 10", (bytes(64),))
    result = trail.verify()
    assert not result.ok and "signature" in result.reason


def test_external_anchor_catches_truncation_with_checkpoints_deleted():
    con, _, trail = _trail(10)
    anchor = trail.checkpoint()
    con.execute("DELETE FROM audit_log WHERE seq > 6")
    con.execute("DELETE FROM audit_checkpoint")
    assert trail.verify().ok  # nothing left in the database proves the cut...
    result = trail.verify(anchor=anchor)  # ...but a checkpoint kept elsewhere does
    assert not result.ok and result.first_bad == 7


def test_batch_checkpoints_are_written_and_match_the_chain():
    con, _, trail = _trail(25, batch=10)
    seqs = [row[0] for row in con.execute("SELECT seq FROM audit_checkpoint ORDER BY seq")]
    assert seqs == [10, 20]
    assert trail.verify().ok
    con.execute("DELETE FROM audit_log WHERE seq > 15")
    assert trail.verify().first_bad == 16


def test_verification_needs_the_right_master_key():
    con, _, trail = _trail(5)
    other = AuditTrail(con, MasterKey.generate(), IdentityCodec())
    result = other.verify()
    assert not result.ok


# ---------------------------------------------------------------- encrypted mode
def test_encrypted_trail_leaks_nothing_readable():
    con, _, trail = _trail(10, encrypted=True)
    dump = b"".join(
        bytes(v) if isinstance(v, bytes) else str(v).encode()
        for row in con.execute("SELECT * FROM audit_log")
        for v in row
        if v is not None
    )
    for needle in (b"ma.garcia", b"pat-1", b"Observation", b"AuditEvent", b"TREAT"):
        assert needle not in dump
    assert trail.verify().ok
    assert [e["id"] for e in trail.events(patient="pat-1")] == ["2", "5", "8"]


def test_encrypted_trail_detects_edit_and_swap():
    con, _, trail = _trail(10, encrypted=True)
    blob = bytearray(con.execute("SELECT record FROM audit_log WHERE seq = 4").fetchone()[0])
    blob[-3] ^= 0x40
    con.execute("UPDATE audit_log SET record = ? WHERE seq = 4", (bytes(blob),))
    assert trail.verify().first_bad == 4

    con2, _, trail2 = _trail(10, encrypted=True)
    a = con2.execute("SELECT record FROM audit_log WHERE seq = 3").fetchone()[0]
    con2.execute("UPDATE audit_log SET record = ? WHERE seq = 6", (a,))
    assert trail2.verify().first_bad == 6


def test_rekey_rotates_and_still_verifies():
    con, old, trail = _trail(12, encrypted=True, batch=5)
    new = MasterKey.generate()
    codec = AesGcmCodec(new, previous=[old])
    trail.rekey(codec)
    assert trail.verify().ok
    reopened = AuditTrail(con, new, AesGcmCodec(new))
    assert reopened.verify().ok and len(reopened.events(user="dr.patel")) == 6
    assert not AuditTrail(con, old, AesGcmCodec(old)).verify().ok


def test_rekey_refuses_a_broken_trail():
    con, _, trail = _trail(5)
    con.execute("DELETE FROM audit_log WHERE seq = 2")
    with pytest.raises(AuditError, match="broken"):
        trail.rekey(IdentityCodec(), MasterKey.generate())


# ---------------------------------------------------------------- appends and transactions
def test_append_inside_rolled_back_transaction_keeps_chain_consistent():
    con, _, trail = _trail(3)
    con.execute("BEGIN")
    trail.append(_event(99))
    con.execute("ROLLBACK")
    assert trail.count() == 3
    assert trail.append(_event(100)) == 4
    assert trail.verify().ok


def test_append_rejects_non_events_without_writing():
    _, _, trail = _trail(2)
    with pytest.raises(AuditError, match="AuditEvent"):
        trail.append({"resourceType": "Patient"})
    with pytest.raises(AuditError):
        trail.append({"resourceType": "AuditEvent", "bad": float("inf")})
    assert trail.count() == 2 and trail.verify().ok


def test_events_filters():
    _, _, trail = _trail(30)
    by_patient = trail.events(patient="pat-0")
    assert by_patient and all(
        any(e.get("what", {}).get("reference") == "Patient/pat-0" for e in ev["entity"])
        for ev in by_patient
    )
    assert len(by_patient) == sum(1 for i in range(30) if i % 3 == 0)
    assert len(trail.events(user="ma.garcia")) == 15
    assert trail.events(action="C") == []
    window = trail.events(since="2026-01-01T09:00:10Z", until="2026-01-01T09:00:14Z")
    assert [e["recorded"][-3:-1] for e in window] == ["10", "11", "12", "13", "14"]


# ---------------------------------------------------------------- event builder
@pytest.mark.parametrize(
    ("action", "interaction", "outcome", "purpose"),
    [
        ("R", "read", "0", "TREAT"),
        ("R", "vread", "4", "TREAT"),
        ("E", "search", "0", "HPAYMT"),
        ("C", "create", "0", "TREAT"),
        ("U", "update", "8", "TREAT"),
        ("D", "delete", "12", "TREAT"),
        ("E", "transaction", "0", "TREAT"),
        ("R", "export", "0", "HRESCH"),
        ("E", "break-glass-start", "0", "BTG"),
        ("E", "break-glass-stop", "0", "BTG"),
        ("R", "audit-read", "4", "HOPERAT"),
    ],
)
def test_built_events_validate_as_fhir(action, interaction, outcome, purpose):
    event = _event(
        1,
        action=action,
        interaction=interaction,
        outcome=outcome,
        purpose=purpose,
        query="Observation?patient=pat-1&code=8480-6",
        detail="why",
    )
    assert validate(event) == []
    assert event["action"] == action and event["outcome"] == outcome
    user_agent = next(a for a in event["agent"] if a["requestor"])
    assert user_agent["who"]["reference"] == "Practitioner/pr-dr-patel"
    assert user_agent["purposeOfUse"][0]["coding"][0]["code"] == purpose
    roles = {e["role"]["code"]: e for e in event["entity"]}
    assert roles["1"]["what"]["reference"] == "Patient/pat-1"
    assert roles["4"]["what"]["reference"] == "Observation/obs-1/_history/1"
    assert roles["4"]["securityLabel"][0]["code"] == "N"
    assert (
        base64.b64decode(roles["24"]["query"]).decode() == "Observation?patient=pat-1&code=8480-6"
    )


def test_break_glass_events_use_dicom_security_alert_codes():
    start = _event(0, action="E", interaction="break-glass-start", purpose="BTG")
    stop = _event(0, action="E", interaction="break-glass-stop", purpose="BTG")
    dcm = "http://dicom.nema.org/resources/ontology/DCM"
    assert (
        start["type"]
        == stop["type"]
        == {"system": dcm, "code": "110113", "display": "Security Alert"}
    )
    assert start["subtype"][0]["code"] == "110127" and stop["subtype"][0]["code"] == "110138"
    read = _event(0)
    assert (
        read["type"]["code"] == "rest"
        and read["subtype"][0]["system"] == "http://hl7.org/fhir/restful-interaction"
    )


def test_patient_user_event_and_bad_input():
    event = _event(0, user={"username": "patient-pat-0", "role": "patient", "patient_id": "pat-0"})
    assert validate(event) == []
    assert event["agent"][0]["who"]["reference"] == "Patient/pat-0"
    for field, value in (
        ("action", "X"),
        ("outcome", "1"),
        ("recorded", "2026-01-01"),
        ("purpose", ""),
    ):
        with pytest.raises(ValidationError, match=field):
            _event(0, **{field: value})
    with pytest.raises(ValidationError, match="user.role"):
        _event(0, user={"username": "x"})


@settings(max_examples=60, deadline=None)
@given(n=st.integers(min_value=1, max_value=25), data=st.data())
def test_any_single_record_edit_is_found_at_that_entry(n, data):
    con, _, trail = _trail(n)
    seq = data.draw(st.integers(min_value=1, max_value=n))
    record = bytearray(
        con.execute("SELECT record FROM audit_log WHERE seq = ?", (seq,)).fetchone()[0]
    )
    pos = data.draw(st.integers(min_value=0, max_value=len(record) - 1))
    record[pos] ^= data.draw(st.integers(min_value=1, max_value=255))
    con.execute("UPDATE audit_log SET record = ? WHERE seq = ?", (bytes(record), seq))
    result = trail.verify()
    assert not result.ok and result.first_bad == seq and result.count == seq - 1
