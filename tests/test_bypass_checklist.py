"""docs/privacy.md's bypass checklist: every item is tried against the Session, the only door."""

from __future__ import annotations

import pytest

from ehr_sandbox.access import patient_of
from ehr_sandbox.errors import AccessDenied, NotFound, SandboxError, SearchError, ValidationError
from ehr_sandbox.sandbox import Sandbox

LOINC = "http://loinc.org"
R_LABEL = {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}


@pytest.fixture(scope="module")
def sb() -> Sandbox:
    return Sandbox.generate(patients=30, seed=21)


@pytest.fixture()
def fresh(sb: Sandbox) -> Sandbox:
    return sb.copy()


def _two_patients(sb: Sandbox):
    """Patient A in context and patient B, both patients dr.patel treats (so only the scope
    and the patient context can tell them apart)."""
    treating = sorted(sb.login("dr.patel").context.treating)
    assert len(treating) >= 2, "dr.patel should treat several patients"
    return treating[0], treating[1]


def _patient_session(sb: Sandbox, scopes: str):
    a, b = _two_patients(sb)
    return sb.login("dr.patel", scopes=scopes, patient=a), a, b


def _obs_of(sb: Sandbox, pid: str) -> dict:
    found = sb.system_session().search("Observation", patient=f"Patient/{pid}").limit(1).fetch()
    assert found, "generated patients have observations"
    return found[0]


def _only_patient(resources, pid: str) -> bool:
    return all(patient_of(r) in (pid, None) for r in resources)


def test_bypass_01_includes_never_leak_another_patients_data(sb: Sandbox) -> None:
    s, a, b = _patient_session(sb, "patient/*.rs")
    for spec in ("Observation:subject", "Observation:performer", "Observation:*"):
        try:
            results = s.search("Observation", params={"_include": spec}).fetch_all()
        except SearchError:
            continue  # an unsupported wildcard is refused, never silently widened
        assert _only_patient(results, a)
    rev = s.search("Patient", params={"_revinclude": "Observation:subject"}).fetch_all()
    assert _only_patient(rev, a)


def test_bypass_02_replayed_search_is_reauthorised(sb: Sandbox) -> None:
    a, b = _two_patients(sb)
    mine = sb.login("dr.patel", scopes="patient/*.rs", patient=a).search(
        "Observation", patient=f"Patient/{b}"
    )
    other = sb.login("dr.patel", scopes="patient/*.rs", patient=a)
    replay = type(mine)(other, mine.resource_type, mine.params)  # a token handed to another session
    assert replay.fetch() == []
    front = sb.login("fd.smith")
    stolen = type(mine)(front, "Observation", [("patient", f"Patient/{a}")])
    assert stolen.fetch() == []


def test_bypass_03_chain_and_has_across_hidden_types_rejected(sb: Sandbox) -> None:
    s, a, _ = _patient_session(sb, "patient/Observation.rs")
    with pytest.raises(SandboxError):
        s.search("Observation", params={"subject:Patient.name": "a"}).fetch()
    with pytest.raises(SearchError):
        sb.login("fd.smith").search("Patient", params={"_has:Observation:patient:code": "1234-5"})


def test_bypass_04_counts_and_sorted_includes_hide_rows(sb: Sandbox) -> None:
    s, a, _ = _patient_session(sb, "patient/Observation.rs")
    bundle = s.search("Observation").sort("-date").include("Observation:subject").bundle()
    matches = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "match"]
    assert bundle["total"] == len(matches)
    assert _only_patient(matches, a)
    truth = sb.system_session().search("Observation", patient=f"Patient/{a}").count()
    assert bundle["total"] == truth


def test_bypass_05_hidden_and_absent_look_the_same(sb: Sandbox) -> None:
    s, a, b = _patient_session(sb, "patient/*.rs")
    obs_b = _obs_of(sb, b)
    with pytest.raises(NotFound) as hidden:
        s.read("Observation", obs_b["id"])
    with pytest.raises(NotFound) as absent:
        s.read("Observation", "no-such-id")
    assert type(hidden.value) is type(absent.value)
    assert str(hidden.value).replace(obs_b["id"], "?") == str(absent.value).replace(
        "no-such-id", "?"
    )


def test_bypass_06_vread_of_old_version_after_relabel(fresh: Sandbox) -> None:
    a, _ = _two_patients(fresh)
    obs = _obs_of(fresh, a)
    po = fresh.login("po.wilson")
    po.relabel(f"Observation/{obs['id']}", "R", reason="patient asked for restriction")
    ma = fresh.login("ma.garcia", patient=None)
    with pytest.raises(NotFound):
        ma.vread("Observation", obs["id"], "1")


def test_bypass_07_update_moving_to_another_patient_checked_before_and_after(sb: Sandbox) -> None:
    fresh = sb.copy()
    s, a, b = _patient_session(fresh, "patient/Observation.rus")
    obs = _obs_of(fresh, a)
    mine = s.read("Observation", obs["id"])
    mine["subject"] = {"reference": f"Patient/{b}"}
    with pytest.raises((AccessDenied, NotFound, ValidationError)):
        s.update(mine)
    assert fresh._store.read("Observation", obs["id"])["subject"]["reference"] == f"Patient/{a}"


def test_bypass_08_conditional_operations_are_not_existence_probes(sb: Sandbox) -> None:
    s, a, b = _patient_session(sb, "patient/*.cruds")
    hidden_ref_obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{b}"},
    }
    absent_ref_obs = {**hidden_ref_obs, "subject": {"reference": "Patient/does-not-exist"}}
    errors = []
    for res in (hidden_ref_obs, absent_ref_obs):
        with pytest.raises(SandboxError) as err:
            s.create(res)
        errors.append(
            (type(err.value), str(err.value).replace(b, "?").replace("does-not-exist", "?"))
        )
    assert errors[0] == errors[1]


def test_bypass_09_bundle_entries_each_checked(sb: Sandbox) -> None:
    fresh = sb.copy()
    s, a, b = _patient_session(fresh, "patient/Observation.rs")
    obs_a = _obs_of(fresh, a)
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": f"Observation/{obs_a['id']}"}},
            {
                "fullUrl": "urn:uuid:7f1a2c3e-0000-4000-8000-000000000001",
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"coding": [{"system": LOINC, "code": "8867-4"}]},
                    "subject": {"reference": f"Patient/{a}"},
                },
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    resp = s.transaction(batch)
    statuses = [e["response"]["status"] for e in resp["entry"]]
    assert statuses[0].startswith("200") and statuses[1].startswith("403")


def test_bypass_10_operations_need_their_own_rights(sb: Sandbox, tmp_path) -> None:
    s, a, _ = _patient_session(sb, "patient/*.rs")
    with pytest.raises(AccessDenied):
        s.export(str(tmp_path / "bulk"))
    ma = sb.copy().login("ma.garcia")
    obs = _obs_of(sb, a)
    with pytest.raises(AccessDenied):
        ma.relabel(f"Observation/{obs['id']}", "N", reason="remove label")


@pytest.mark.parametrize("trick", ["list", "absolute", "identifier", "case"])
def test_bypass_11_compartment_tricks(sb: Sandbox, trick: str) -> None:
    s, a, b = _patient_session(sb, "patient/Observation.rs")
    params = {
        "list": {"subject": f"Patient/{a},Patient/{b}"},
        "absolute": {"subject": f"http://example.org/fhir/Patient/{b}"},
        "identifier": {"subject:identifier": "http://ehr-sandbox.org/fhir/mrn|x"},
        "case": {"subject": f"patient/{b}"},
    }[trick]
    try:
        results = s.search("Observation", params=params).fetch()
    except SearchError:
        return  # refused outright is fine
    assert _only_patient(results, a)


def test_bypass_12_contained_and_narrative_redacted(sb: Sandbox) -> None:
    billing = sb.login("billing.davis")
    notes = billing.search("DocumentReference").limit(5).fetch()
    for n in notes:
        assert "div" not in n.get("text", {})
        assert all("data" not in c.get("attachment", {}) for c in n.get("content", []))


def test_bypass_13_reports_never_return_hidden_rows_or_columns(sb: Sandbox) -> None:
    s, a, _ = _patient_session(sb, "patient/*.rs")
    frame = s.reports.run("problem_list").to_pandas()
    if "patient_id" in frame.columns:
        assert set(frame["patient_id"]) <= {a}
    billing = sb.login("billing.davis")
    rows = billing.run_view(
        {
            "resourceType": "ViewDefinition",
            "resource": "Observation",
            "status": "active",
            "select": [
                {
                    "column": [
                        {"name": "id", "path": "id"},
                        {"name": "value", "path": "value.ofType(Quantity).value"},
                    ]
                }
            ],
        }
    )
    assert rows and all(r["value"] is None for r in rows)


def test_bypass_14_scope_filter_applies_to_read_by_id_and_writes(sb: Sandbox) -> None:
    a, _ = _two_patients(sb)
    labs_only = "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
    s = sb.login("dr.patel", scopes=labs_only, patient=a)
    vitals = (
        sb.system_session()
        .search(
            "Observation",
            patient=f"Patient/{a}",
            category="http://terminology.hl7.org/CodeSystem/observation-category|vital-signs",
        )
        .limit(1)
        .fetch()
    )
    assert vitals
    with pytest.raises(NotFound):
        s.read("Observation", vitals[0]["id"])
    assert all(
        any(c["code"] == "laboratory" for cat in o["category"] for c in cat["coding"])
        for o in s.search("Observation").fetch()
    )


def test_bypass_15_audit_tampering_is_detected(fresh: Sandbox) -> None:
    fresh.login("dr.patel").search("Patient").fetch()
    assert fresh.audit.verify().ok
    conn = fresh._store.connection
    seq = conn.execute("SELECT max(seq) FROM audit_log").fetchone()[0]
    conn.execute("DELETE FROM audit_log WHERE seq = ?", (seq - 1,))
    result = fresh.audit.verify()
    assert not result.ok and result.first_bad is not None
