"""CLI: ``audit verify`` exit codes and ``deidentify`` going through a Session.

The commands import ``ehr_sandbox.sandbox`` lazily; these tests put a small stand-in there
(a real AuditTrail and the real de-identifier behind the Sandbox/Session methods the
commands use) so the CLI is tested on its own.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import types
from pathlib import Path

import pytest

from ehr_sandbox.audit import AuditTrail, build_event
from ehr_sandbox.cli.app import main
from ehr_sandbox.crypto import IdentityCodec, MasterKey
from ehr_sandbox.deid import deidentify, scan_for_identifiers
from ehr_sandbox.errors import AccessDenied, CryptoError

KEY = MasterKey(bytes(range(32)))
PATIENT = {
    "resourceType": "Patient",
    "id": "pat-0001",
    "name": [{"family": "Okafor"}],
    "birthDate": "1961-07-14",
    "address": [{"line": ["1 Elm St"], "city": "Bexley", "state": "OH", "postalCode": "43209"}],
}


class _Session:
    def __init__(self, sandbox: _Sandbox, username: str) -> None:
        self.sandbox, self.username = sandbox, username

    def deidentify(self, out_dir: str) -> dict[str, int]:
        if self.username != "po.wilson":
            raise AccessDenied(f"{self.username} may not make a research export")
        self.sandbox.logins.append(self.username)
        result = deidentify([PATIENT], reference_date="2026-01-01")
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "Patient.ndjson").write_text("".join(json.dumps(r) + "\n" for r in result.resources))
        return {"Patient": len(result.resources)}


class _Sandbox:
    logins: list[str] = []

    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(path)
        self.audit = AuditTrail(self.connection, KEY, IdentityCodec(), batch=5)

    @classmethod
    def open(cls, path, key=None, passphrase=None):
        if passphrase is not None and passphrase != "right":
            raise CryptoError(
                "wrong key or passphrase for this sandbox (nothing was read or changed)"
            )
        return cls(Path(path))

    def login(self, username: str) -> _Session:
        return _Session(self, username)

    def close(self) -> None:
        self.audit.checkpoint()
        self.connection.commit()
        self.connection.close()


@pytest.fixture
def sandbox_db(tmp_path, monkeypatch):
    module = types.ModuleType("ehr_sandbox.sandbox")
    module.Sandbox = _Sandbox
    monkeypatch.setitem(sys.modules, "ehr_sandbox.sandbox", module)
    _Sandbox.logins = []
    db = tmp_path / "clinic.db"
    sb = _Sandbox(db)
    user = {"username": "rn.kim", "role": "nurse", "practitioner_id": "pr-rn-kim"}
    for i in range(12):
        sb.audit.append(
            build_event(
                action="R",
                interaction="read",
                outcome="0",
                user=user,
                purpose="TREAT",
                patient_id="pat-0001",
                entity_ref=f"Observation/o{i}",
                version="1",
                labels=[],
                query=None,
                recorded=f"2026-01-01T09:00:{i:02d}Z",
            )
        )
    sb.close()
    return db


def test_audit_verify_ok_exits_0(sandbox_db, capsys):
    assert main(["audit", "verify", "--db", str(sandbox_db)]) == 0
    assert "ok: 12 entries" in capsys.readouterr().out


def test_audit_verify_broken_exits_1_with_first_bad_entry(sandbox_db, capsys):
    con = sqlite3.connect(sandbox_db)
    con.execute("DELETE FROM audit_log WHERE seq = 8")
    con.commit()
    con.close()
    assert main(["audit", "verify", "--db", str(sandbox_db)]) == 1
    out = capsys.readouterr().out
    assert "BROKEN at entry 8" in out and "deleted" in out


def test_audit_verify_errors_are_one_line_exit_2(sandbox_db, tmp_path, capsys):
    assert main(["audit", "verify", "--db", str(tmp_path / "nope.db")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "nope.db" in err and "\n" not in err
    assert main(["audit", "verify", "--db", str(sandbox_db), "--passphrase", "wrong"]) == 2
    assert "wrong key or passphrase" in capsys.readouterr().err


def test_deidentify_runs_as_the_privacy_officer(sandbox_db, tmp_path, capsys):
    out = tmp_path / "research"
    assert main(["deidentify", "--db", str(sandbox_db), "--out", str(out)]) == 0
    assert _Sandbox.logins == ["po.wilson"]
    assert "Patient: 1" in capsys.readouterr().out
    exported = [json.loads(line) for line in (out / "Patient.ndjson").read_text().splitlines()]
    assert scan_for_identifiers(exported, [PATIENT]) == []


def test_deidentify_refuses_a_non_empty_directory_and_denied_users(sandbox_db, tmp_path, capsys):
    out = tmp_path / "full"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert main(["deidentify", "--db", str(sandbox_db), "--out", str(out)]) == 2
    assert "--out" in capsys.readouterr().err
    assert (
        main(
            [
                "deidentify",
                "--db",
                str(sandbox_db),
                "--out",
                str(tmp_path / "o2"),
                "--user",
                "ma.garcia",
            ]
        )
        == 2
    )
    assert "may not make a research export" in capsys.readouterr().err
