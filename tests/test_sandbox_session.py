"""The Sandbox and its only door, the Session: versioned reads and writes, the legal-record
operations, Provenance and audit for every write."""

from __future__ import annotations

import base64

import pytest

from ehr_sandbox.errors import AccessDenied, ConflictError, NotFound, SearchError, ValidationError
from ehr_sandbox.sandbox import Sandbox

ROLES = {
    "front_desk",
    "medical_assistant",
    "nurse",
    "physician",
    "billing",
    "privacy_officer",
    "instructor",
    "admin",
}
LOINC = "http://loinc.org"


@pytest.fixture(scope="module")
def sb() -> Sandbox:
    return Sandbox.generate(patients=25, seed=11)


@pytest.fixture()
def fresh(sb: Sandbox) -> Sandbox:
    return sb.copy()


def _my_patient(session) -> dict:
    p = session.search("Patient").first()
    assert p is not None, "the physician should have at least one patient on the panel"
    return p


def _heart_rate(pid: str, value: float = 72) -> dict:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": "8867-4", "display": "Heart rate"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": "2026-01-01T09:00:00+00:00",
        "valueQuantity": {
            "value": value,
            "unit": "/min",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
    }


def test_every_role_has_an_account(sb: Sandbox) -> None:
    assert {u.role for u in sb.users} == ROLES
    assert "ma.garcia" in {u.username for u in sb.users}


def test_login_of_unknown_user_names_the_user(sb: Sandbox) -> None:
    with pytest.raises(NotFound, match="nobody"):
        sb.login("nobody")


def test_create_update_history_and_vread(fresh: Sandbox) -> None:
    s = fresh.login("dr.patel")
    pid = _my_patient(s)["id"]
    obs = s.create(_heart_rate(pid))
    assert obs["meta"]["versionId"] == "1"
    obs["valueQuantity"]["value"] = 75
    v2 = s.update(obs)
    assert v2["meta"]["versionId"] == "2"
    history = s.history("Observation", obs["id"])
    assert [h["meta"]["versionId"] for h in history] == ["2", "1"]
    assert s.vread("Observation", obs["id"], "1")["valueQuantity"]["value"] == 72


def test_stale_update_is_a_conflict_naming_both_versions(fresh: Sandbox) -> None:
    s = fresh.login("dr.patel")
    pid = _my_patient(s)["id"]
    obs = s.create(_heart_rate(pid))
    first = dict(obs)
    s.update({**obs, "valueQuantity": {**obs["valueQuantity"], "value": 80}})
    with pytest.raises(ConflictError) as err:
        s.update({**first, "valueQuantity": {**first["valueQuantity"], "value": 90}})
    assert err.value.expected == "1" and err.value.current == "2"
    assert s.read("Observation", obs["id"])["valueQuantity"]["value"] == 80


def test_update_without_version_is_refused(fresh: Sandbox) -> None:
    s = fresh.login("dr.patel")
    obs = s.create(_heart_rate(_my_patient(s)["id"]))
    obs["meta"].pop("versionId")
    with pytest.raises(ValidationError, match="meta.versionId"):
        s.update(obs)


def test_every_write_records_provenance_with_author(fresh: Sandbox) -> None:
    s = fresh.login("dr.patel")
    obs = s.create(_heart_rate(_my_patient(s)["id"]))
    provs = s.provenance(f"Observation/{obs['id']}")
    assert len(provs) == 1
    assert provs[0]["target"][0]["reference"] == f"Observation/{obs['id']}/_history/1"
    assert provs[0]["agent"][0]["who"]["reference"] == fresh.user("dr.patel").ref


def test_entered_in_error_keeps_the_original(fresh: Sandbox) -> None:
    s = fresh.login("dr.patel")
    obs = s.create(_heart_rate(_my_patient(s)["id"]))
    voided = s.mark_entered_in_error(
        f"Observation/{obs['id']}", reason="charted on the wrong patient"
    )
    assert voided["status"] == "entered-in-error"
    assert s.vread("Observation", obs["id"], "1")["status"] == "final"
    reasons = [
        p.get("reason", [{}])[0].get("text") for p in s.provenance(f"Observation/{obs['id']}")
    ]
    assert "charted on the wrong patient" in reasons


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_correction_without_reason_explains_why(fresh: Sandbox, reason) -> None:
    s = fresh.login("dr.patel")
    obs = s.create(_heart_rate(_my_patient(s)["id"]))
    obs["valueQuantity"]["value"] = 70
    with pytest.raises(ValidationError, match="reason is required"):
        s.correct(obs, reason)
    assert s.read("Observation", obs["id"])["meta"]["versionId"] == "1"


def test_correction_sets_status_and_keeps_old_value(fresh: Sandbox) -> None:
    s = fresh.login("dr.patel")
    obs = s.create(_heart_rate(_my_patient(s)["id"], 183))
    obs["valueQuantity"]["value"] = 138
    fixed = s.correct(obs, "183 keyed for 138")
    assert fixed["status"] == "corrected" and fixed["valueQuantity"]["value"] == 138
    assert s.vread("Observation", obs["id"], "1")["valueQuantity"]["value"] == 183


def test_signed_note_cannot_be_edited_but_takes_an_addendum(fresh: Sandbox) -> None:
    s = fresh.login("dr.patel")
    pid = _my_patient(s)["id"]
    note_type = fresh.system_session().search("DocumentReference").first()["type"]
    note = s.create(
        {
            "resourceType": "DocumentReference",
            "status": "current",
            "type": note_type,
            "subject": {"reference": f"Patient/{pid}"},
            "date": "2026-01-01T09:00:00+00:00",
            "content": [
                {
                    "attachment": {
                        "contentType": "text/plain",
                        "data": base64.b64encode(b"Well.").decode(),
                    }
                }
            ],
        }
    )
    ref = f"DocumentReference/{note['id']}"
    s.sign(ref)
    assert s.verify_signature(ref)
    with pytest.raises(AccessDenied, match="addendum"):
        s.update({**note, "description": "changed"})
    add = s.addendum(ref, "BP rechecked: 128/82.")
    assert add["relatesTo"][0] == {"code": "appends", "target": {"reference": ref}}
    assert s.read(ref)["meta"]["versionId"] == "1"
    assert s.verify_signature(ref)


def test_only_physicians_sign(fresh: Sandbox) -> None:
    s = fresh.login("rn.kim")
    notes = fresh.system_session().search("DocumentReference").limit(1).fetch()
    assert notes
    with pytest.raises(AccessDenied, match="physician"):
        s.sign(f"DocumentReference/{notes[0]['id']}")


def test_late_entry_keeps_event_and_recorded_times_apart(fresh: Sandbox) -> None:
    s = fresh.login("dr.patel")
    pid = _my_patient(s)["id"]
    res = s.late_entry(
        _heart_rate(pid), event_time="2025-12-31T15:30:00+00:00", reason="phone call yesterday"
    )
    assert res["effectiveDateTime"] == "2025-12-31T15:30:00+00:00"
    assert any(t["code"] == "late-entry" for t in res["meta"]["tag"])
    prov = s.provenance(f"Observation/{res['id']}")[0]
    assert prov["occurredDateTime"] == "2025-12-31T15:30:00+00:00"
    assert prov["recorded"] > prov["occurredDateTime"]


def test_registration_update_end_dates_the_old_address(fresh: Sandbox) -> None:
    s = fresh.login("fd.smith")
    patient = s.search("Patient").first()
    old_lines = [a.get("line") for a in patient.get("address", [])]
    new = s.update_address(
        f"Patient/{patient['id']}",
        {"line": ["9 New Street"], "city": "Springfield", "state": "MA", "postalCode": "01101"},
        reason="patient moved",
    )
    assert new["address"][-1]["line"] == ["9 New Street"]
    assert new["address"][-1]["period"]["start"] == fresh.reference_date.isoformat()
    ended = [a for a in new["address"][:-1] if a.get("period", {}).get("end")]
    assert [a.get("line") for a in new["address"][:-1]] == old_lines and ended


def test_unknown_search_parameter_is_an_error(sb: Sandbox) -> None:
    s = sb.login("dr.patel")
    with pytest.raises(SearchError, match="bogus"):
        s.search("Observation", bogus="1")


def test_lazy_search_sorts_and_limits(sb: Sandbox) -> None:
    s = sb.login("dr.patel")
    pid = _my_patient(s)["id"]
    found = s.search("Observation", patient=f"Patient/{pid}").sort("-date").limit(3).fetch()
    assert len(found) <= 3
    dates = [o.get("effectiveDateTime", "") for o in found]
    assert dates == sorted(dates, reverse=True)


def test_hidden_read_looks_like_absent(sb: Sandbox) -> None:
    front = sb.login("fd.smith")
    obs = sb.system_session().search("Observation").limit(1).fetch()[0]
    with pytest.raises(NotFound) as hidden:
        front.read("Observation", obs["id"])
    with pytest.raises(NotFound) as absent:
        front.read("Observation", "does-not-exist")
    assert str(hidden.value).replace(obs["id"], "X") == str(absent.value).replace(
        "does-not-exist", "X"
    )


def test_denials_are_audited_and_chain_verifies(fresh: Sandbox) -> None:
    front = fresh.login("fd.smith")
    obs = fresh.system_session().search("Observation").limit(1).fetch()[0]
    before = fresh.audit.count()
    with pytest.raises(NotFound):
        front.read("Observation", obs["id"])
    events = fresh.audit.events()
    assert fresh.audit.count() == before + 1
    assert events[-1]["outcome"] == "4"
    assert fresh.audit.verify().ok


def test_copy_is_independent(sb: Sandbox) -> None:
    a = sb.copy()
    s = a.login("dr.patel")
    s.create(_heart_rate(_my_patient(s)["id"]))
    assert a._store.count("Observation") == sb._store.count("Observation") + 1


def test_save_and_reopen(sb: Sandbox, tmp_path) -> None:
    path = tmp_path / "clinic.db"
    sb.copy().save(path)
    again = Sandbox.open(path)
    assert again._store.count("Patient") == sb._store.count("Patient")
    assert again.audit.verify().ok
    again.close()
