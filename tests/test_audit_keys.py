"""Audit before data leaves the door, keys never beside the data, anchors outside the
database, sealed metadata and authenticated current-version pointers (issue 13, Medium)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from ehr_sandbox.access import patient_of
from ehr_sandbox.errors import AccessDenied, CryptoError, NotFound
from ehr_sandbox.sandbox import Sandbox


@pytest.fixture(scope="module")
def sb() -> Sandbox:
    return Sandbox.generate(patients=12, seed=13, years=1)


def _denials(sandbox: Sandbox, before: int, user: str) -> list[dict]:
    return [
        e
        for e in sandbox.audit.events()[before:]
        if str(e.get("outcome")) == "4" and user in str(e.get("agent"))
    ]


# ------------------------------------------------------------------ audit gaps
def test_exists_is_audited(sb: Sandbox) -> None:
    fresh = sb.copy()
    obs = fresh.grader_session().search("Observation").first()
    s = fresh.login("fd.smith")
    before = fresh.audit.count()
    assert s.exists(f"Observation/{obs['id']}") is False
    assert s.exists("Observation/never-there") is False
    assert len(_denials(fresh, before, "fd.smith")) == 2


@pytest.mark.parametrize("what", ["sign", "signed-edit", "btg-queue", "report-sql"])
def test_every_denial_leaves_an_audit_event(sb: Sandbox, what: str) -> None:
    fresh = sb.copy()
    pairs = [
        (d.username, n.username, sorted(fresh.treating(d.username) & fresh.treating(n.username)))
        for d in fresh.users
        if d.role == "physician"
        for n in fresh.users
        if n.role == "nurse"
    ]
    doctor, nurse_name, shared = next(p for p in pairs if p[2])
    doc = fresh.login(doctor)
    pid = shared[0]
    note = doc.create(
        {
            "resourceType": "DocumentReference",
            "status": "current",
            "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3"}]},
            "subject": {"reference": f"Patient/{pid}"},
            "content": [{"attachment": {"contentType": "text/plain", "data": "bm90ZQ=="}}],
        }
    )
    ref = f"DocumentReference/{note['id']}"
    nurse = fresh.login(nurse_name)
    before = fresh.audit.count()
    with pytest.raises(AccessDenied):
        if what == "sign":
            nurse.sign(ref)
        elif what == "signed-edit":
            doc.sign(ref)
            before = fresh.audit.count()
            current = nurse.read(ref)
            nurse.update({**current, "docStatus": "amended"})
        elif what == "btg-queue":
            fresh.btg_review_queue(nurse)
        else:
            nurse.reports.sql("SELECT count(*) AS n FROM audit_event")
    assert _denials(fresh, before, nurse_name), f"{what}: the denial was not audited"


# ------------------------------------------------------------------ keys
def test_no_key_file_is_written_beside_the_database(tmp_path: Path) -> None:
    db = tmp_path / "clinic.db"
    Sandbox.generate(patients=1, seed=2, years=1, path=db).close()
    Sandbox.empty(tmp_path / "empty.db").close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clinic.db", "empty.db"]
    with Sandbox.open(db) as again:  # the key comes from the user's key folder
        assert again.audit.verify().ok


def test_without_the_key_the_trail_cannot_be_resigned(tmp_path: Path, monkeypatch) -> None:
    db = tmp_path / "clinic.db"
    Sandbox.generate(patients=1, seed=2, years=1, path=db).close()
    monkeypatch.setenv("EHR_SANDBOX_KEY_DIR", str(tmp_path / "elsewhere"))
    with pytest.raises(CryptoError, match="not found"):
        Sandbox.open(db)
    with pytest.raises(CryptoError, match="wrong key"):
        Sandbox.open(db, key=os.urandom(32))


def test_the_key_can_come_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("EHR_SANDBOX_KEY", "ab" * 32)
    db = tmp_path / "clinic.db"
    Sandbox.generate(patients=1, seed=2, years=1, path=db).close()
    monkeypatch.setenv("EHR_SANDBOX_KEY_DIR", str(tmp_path / "empty-key-dir"))
    with Sandbox.open(db) as again:
        assert again.audit.verify().ok
    monkeypatch.delenv("EHR_SANDBOX_KEY")
    with pytest.raises(CryptoError):
        Sandbox.open(db)


def test_a_caller_named_key_file_beside_the_database_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CryptoError, match="beside the data"):
        Sandbox.empty(tmp_path / "x.db", key=tmp_path / "x.key")
    (tmp_path / "keys").mkdir()
    Sandbox.empty(tmp_path / "y.db", key=tmp_path / "keys" / "y.key").close()
    with Sandbox.open(tmp_path / "y.db", key=tmp_path / "keys" / "y.key") as again:
        assert again.audit.verify().ok


# ------------------------------------------------------------------ anchors
def test_a_deleted_tail_with_its_checkpoints_fails_against_an_anchor(tmp_path: Path) -> None:
    db = tmp_path / "clinic.db"
    anchor = tmp_path / "published" / "anchor.json"
    anchor.parent.mkdir()
    sandbox = Sandbox.generate(patients=2, seed=4, years=1, path=db)
    sandbox.login("dr.patel").search("Patient").fetch()
    sandbox.export_checkpoint(anchor)
    sandbox.close()
    con = sqlite3.connect(db)
    last = con.execute("SELECT max(seq) FROM audit_log").fetchone()[0]
    con.execute("DELETE FROM audit_log WHERE seq > ?", (last - 3,))
    con.execute("DELETE FROM audit_checkpoint WHERE seq > ?", (last - 3,))
    con.commit()
    con.close()
    with Sandbox.open(db) as again:
        assert again.audit.verify().ok  # without the anchor the cut is invisible
        import json

        assert not again.audit.verify(anchor=json.loads(anchor.read_text())).ok
    with pytest.raises(SystemExit) as out:
        from ehr_sandbox.cli.audit_cmds import verify

        verify(db, None, None, anchor)
    assert out.value.code == 1


# ------------------------------------------------------------------ sealed metadata, pointers, ids
def test_the_generation_seed_is_sealed(tmp_path: Path) -> None:
    db = tmp_path / "clinic.db"
    Sandbox.generate(
        patients=1, seed=987654, years=1, path=db, passphrase="pass phrase one"
    ).close()
    con = sqlite3.connect(db)
    rows = con.execute("SELECT key, value FROM sandbox_meta").fetchall()
    con.close()
    assert not any("987654" in str(v) or k == "generated" for k, v in rows)


def test_moving_a_current_version_pointer_back_is_detected(tmp_path: Path) -> None:
    db = tmp_path / "clinic.db"
    sandbox = Sandbox.generate(patients=2, seed=4, years=1, path=db)
    obs = sandbox.grader_session().search("Observation").first()
    sandbox.login("po.wilson").relabel(f"Observation/{obs['id']}", "R", reason="restricted")
    sandbox.close()
    con = sqlite3.connect(db)
    v1 = con.execute(
        "SELECT rowid FROM versions WHERE rtype='Observation' AND rid=? AND vid=1", (obs["id"],)
    ).fetchone()[0]
    con.execute(
        "UPDATE resources SET vid = 1, vrow = ? WHERE rtype='Observation' AND rid=?",
        (v1, obs["id"]),
    )
    con.commit()
    con.close()
    with pytest.raises(CryptoError, match="pointer"):
        Sandbox.open(db)


def test_a_pointer_moved_while_open_fails_on_read(sb: Sandbox) -> None:
    fresh = sb.copy()
    obs = fresh.grader_session().search("Observation").first()
    fresh.login("po.wilson").relabel(f"Observation/{obs['id']}", "R", reason="restricted")
    con = fresh._store.connection  # the attacker with the file
    v1 = con.execute(
        "SELECT rowid FROM versions WHERE rtype='Observation' AND rid=? AND vid=1", (obs["id"],)
    ).fetchone()[0]
    con.execute(
        "UPDATE resources SET vid = 1, vrow = ? WHERE rtype='Observation' AND rid=?",
        (v1, obs["id"]),
    )
    with pytest.raises(CryptoError):
        fresh.login("ma.garcia").read("Observation", obs["id"])


def test_encrypted_sandboxes_get_random_ids(tmp_path: Path) -> None:
    sandbox = Sandbox.generate(patients=3, seed=4, years=1, passphrase="long enough phrase")
    g = sandbox.grader_session()
    pids = [p["id"] for p in g.search("Patient").fetch()]
    for rtype in ("Observation", "Encounter", "Condition", "Provenance"):
        for r in g.search(rtype).fetch():
            assert not any(pid in r["id"] for pid in pids)
            assert patient_of(r) is None or patient_of(r) in pids
    with pytest.raises(NotFound):
        g.read("Patient", "pat-000001")


@pytest.mark.parametrize("kind", ["btg-review", "break-glass-stop", "label", "exists", "export"])
def test_nobody_can_post_an_event_that_poses_as_the_sandboxs_own(sb: Sandbox, kind: str) -> None:
    from ehr_sandbox.errors import ValidationError

    fresh = sb.copy()
    before = fresh.audit.count()
    with pytest.raises(ValidationError):
        fresh.login("po.wilson").audit_action(kind, detail="forged")
    assert fresh.audit.count() == before
