"""Encryption at rest, end to end: a file sandbox with a key or passphrase leaks nothing."""

from __future__ import annotations

import os
import sqlite3
from itertools import islice
from pathlib import Path

import pytest

from ehr_sandbox.errors import CryptoError
from ehr_sandbox.sandbox import Sandbox

pytestmark = pytest.mark.slow  # AES-GCM file stores, a rotation and a tamper check


def _needles(sb: Sandbox, limit: int = 4000) -> set[str]:
    """Names, identifiers and values of the patients, as they would appear in plaintext."""
    found: set[str] = set()
    sys = sb.system_session()
    for p in sys.search("Patient").fetch():
        for n in p.get("name", []):
            found.update(x for x in [n.get("family"), *n.get("given", [])] if x)
        found.update(i["value"] for i in p.get("identifier", []) if len(i.get("value", "")) >= 5)
        found.update(t["value"] for t in p.get("telecom", []) if t.get("value"))
        for a in p.get("address", []):
            found.update(line for line in a.get("line", []) if len(line) >= 6)
    for o in islice(sb._store.iter_type("Observation"), limit):
        q = o.get("valueQuantity")
        if q and isinstance(q.get("value"), float):
            found.add(f'"value":{q["value"]}')
    # short strings turn up by chance in a large ciphertext (a 4-byte string: a few percent per
    # needle in 150 MB); six characters and more make a chance match negligible
    return {n for n in found if n and len(n) >= 6}


@pytest.fixture(scope="module")
def encrypted(tmp_path_factory) -> tuple[str, bytes]:
    path = str(tmp_path_factory.mktemp("enc") / "clinic.db")
    key = os.urandom(32)
    sb = Sandbox.generate(patients=12, seed=5, path=path, key=key, years=3)
    sb.login("dr.patel").search("Patient", name="a").fetch()  # the query lands in the audit trail
    sb.close()
    return path, key


def test_no_plaintext_identifiers_or_values_in_the_file(encrypted) -> None:
    path, key = encrypted
    sb = Sandbox.open(path, key=key)
    needles = _needles(sb)
    sb.close()
    assert len(needles) > 200
    raw = b"".join(Path(p).read_bytes() for p in (path, path + "-wal") if os.path.exists(p))
    leaked = sorted(n for n in needles if n.encode() in raw)
    assert leaked == []


def test_wrong_key_gives_one_clear_error(encrypted) -> None:
    path, _ = encrypted
    with pytest.raises(CryptoError, match="wrong key"):
        Sandbox.open(path, key=os.urandom(32))
    with pytest.raises(CryptoError, match="encrypted"):
        Sandbox.open(path)


def test_passphrase_round_trip_and_rotation(tmp_path) -> None:
    path = str(tmp_path / "p.db")
    sb = Sandbox.generate(patients=5, seed=2, path=path, passphrase="correct horse battery staple")
    n = sb._store.count("Observation")
    new_id = sb.rotate_key(passphrase="new passphrase for spring")
    sb.close()
    with pytest.raises(CryptoError):
        Sandbox.open(path, passphrase="correct horse battery staple")
    again = Sandbox.open(path, passphrase="new passphrase for spring")
    assert again._store.count("Observation") == n
    assert again._store.meta_get("encryption")["key_id"] == new_id
    assert again.audit.verify().ok
    again.close()


def test_ciphertext_swapped_onto_another_row_fails(tmp_path) -> None:
    path = str(tmp_path / "s.db")
    key = os.urandom(32)
    sb = Sandbox.generate(patients=3, seed=4, path=path, key=key)
    ids = [p["id"] for p in sb.system_session().search("Patient").fetch()]
    sb.close()
    conn = sqlite3.connect(path)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    assert "versions" in tables
    a = conn.execute(
        "SELECT blob FROM versions WHERE rtype='Patient' AND rid=?", (ids[0],)
    ).fetchone()[0]
    conn.execute("UPDATE versions SET blob=? WHERE rtype='Patient' AND rid=?", (a, ids[1]))
    conn.commit()
    conn.close()
    sb = Sandbox.open(path, key=key)
    with pytest.raises(CryptoError):
        sb._store.read("Patient", ids[1])
    sb.close()


def test_every_reference_resolves_and_the_practice_keeps_its_ids(tmp_path) -> None:
    # an encrypted sandbox gives patients' records random ids (generated ids embed the
    # patient's); the practice (staff, payers, rooms) keeps the ids that users, workflows and
    # exercises refer to, and no reference is left dangling either way
    from ehr_sandbox.references import iter_references

    plain = Sandbox.generate(patients=3, seed=9, years=1)
    enc = Sandbox.generate(patients=3, seed=9, years=1, path=str(tmp_path / "c.db"), key=bytes(32))
    for sb in (plain, enc):
        system = sb.system_session()
        known: set[str] = set()
        refs: set[str] = set()
        for rtype in ("Organization", "Location", "Practitioner", "PractitionerRole", "Schedule"):
            known |= {f"{rtype}/{r['id']}" for r in system.search(rtype).fetch_all()}
        for rtype in ("Patient", "Encounter", "Appointment", "Claim", "Coverage", "Observation"):
            for r in system.search(rtype).fetch_all():
                known.add(f"{rtype}/{r['id']}")
                refs |= {
                    node["reference"]
                    for _, node in iter_references(r)
                    if str(node.get("reference", "")).split("/")[0] in _LOCAL_TYPES
                }
        dangling = sorted(ref for ref in refs if ref not in known and not system.exists(ref))
        assert dangling == [], dangling[:5]
    practice = {
        "Practitioner/prac-dr.patel",
        "Organization/org-payer-medicare",
        "Location/loc-main",
    }
    assert all(enc.system_session().exists(ref) for ref in practice)
    assert enc.login("dr.patel").search("Patient").count() > 0
    enc.close()


_LOCAL_TYPES = {
    "Organization",
    "Location",
    "Practitioner",
    "PractitionerRole",
    "Schedule",
    "Slot",
    "Patient",
    "Encounter",
    "Coverage",
    "Condition",
}
