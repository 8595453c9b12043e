"""End to end: a research export of generated patients carries no identifier of theirs.

Goes through the only door (Sandbox -> privacy officer's Session -> deidentify), then scans
the NDJSON export against the sandbox's original records (tests/test_deid_scale.py scans an
export of 1,000 patients made without the store).
"""

from __future__ import annotations

import json

import pytest

from ehr_sandbox.deid import scan_for_identifiers
from synthetic.fhir import validate

PATIENTS = 12
ORIGINAL_TYPES = (
    "Patient",
    "Practitioner",
    "Organization",
    "RelatedPerson",
    "Coverage",
    "Claim",
    "Encounter",
    "Observation",
    "Condition",
    "DocumentReference",
    "Appointment",
    "Immunization",
    "AllergyIntolerance",
)


@pytest.fixture(scope="module")
def sandbox():
    from ehr_sandbox.sandbox import Sandbox

    sb = Sandbox.generate(patients=PATIENTS, seed=11, reference_date="2026-01-01")
    yield sb
    sb.close()


def test_generated_export_has_no_identifiers(sandbox, tmp_path):
    out = tmp_path / "research"
    counts = sandbox.login("po.wilson").deidentify(str(out))
    exported = [
        json.loads(line)
        for f in sorted(out.glob("*.ndjson"))
        for line in f.read_text().splitlines()
    ]
    assert exported and sum(counts.values()) == len(exported)
    originals = [r for t in ORIGINAL_TYPES for r in sandbox._store.iter_type(t)]
    assert sum(1 for r in originals if r["resourceType"] == "Patient") >= PATIENTS
    findings = scan_for_identifiers(exported, originals)
    assert findings == [], findings[:10]
    for res in exported[:300]:
        assert validate(res) == [], res["resourceType"]
        conf = [
            s["code"] for s in res["meta"]["security"] if s["system"].endswith("v3-Confidentiality")
        ]
        assert conf == ["L"]


def test_export_is_refused_to_clinical_roles(sandbox, tmp_path):
    from ehr_sandbox.errors import AccessDenied

    with pytest.raises(AccessDenied):
        sandbox.login("ma.garcia").deidentify(str(tmp_path / "nope"))


def test_generated_sandbox_audit_trail_verifies_and_detects_an_edit(sandbox):
    copy = sandbox.copy()
    result = copy.audit.verify()
    assert result.ok and result.count == copy.audit.count() > 0
    assert not copy.codec.encrypting  # generate() without a key makes a plaintext sandbox
    con = copy._store.connection
    seq = con.execute("SELECT MAX(seq) FROM audit_log").fetchone()[0] // 2 or 1
    record = json.loads(
        con.execute("SELECT record FROM audit_log WHERE seq = ?", (seq,)).fetchone()[0]
    )
    record["outcome"] = "12" if record.get("outcome") != "12" else "0"
    from ehr_sandbox.crypto import canonical_json

    con.execute("UPDATE audit_log SET record = ? WHERE seq = ?", (canonical_json(record), seq))
    broken = copy.audit.verify()
    assert not broken.ok and broken.first_bad == seq


def test_cli_audit_verify_and_deidentify_on_a_real_sandbox_file(sandbox, tmp_path, capsys):
    import sqlite3

    from ehr_sandbox.cli.app import main

    db = tmp_path / "clinic.db"
    sandbox.save(db)
    assert main(["audit", "verify", "--db", str(db)]) == 0
    assert "audit trail ok" in capsys.readouterr().out
    assert main(["deidentify", "--db", str(db), "--out", str(tmp_path / "research")]) == 0
    assert any((tmp_path / "research").glob("*.ndjson"))
    con = sqlite3.connect(db)
    con.execute("DELETE FROM audit_log WHERE seq = 3")
    con.commit()
    con.close()
    assert main(["audit", "verify", "--db", str(db)]) == 1
    assert "BROKEN at entry 3" in capsys.readouterr().out
