"""De-identification by allowlist, every output string scanned, and a research export that
goes through per-record policy (issue 13, High 1 and 2)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ehr_sandbox.access import confidentiality_of, patient_of, sensitivities_of
from ehr_sandbox.deid import deidentify, scan_for_identifiers
from ehr_sandbox.deid.allowlist import ALLOWED_ELEMENTS, keeps
from ehr_sandbox.sandbox import Sandbox

REF_DATE = "2026-01-01"
PATIENT = {
    "resourceType": "Patient",
    "id": "pat-ada-000001",
    "name": [{"family": "Okafor", "given": ["Adaeze"]}],
    "telecom": [{"system": "phone", "value": "(614) 555-0101"}],
    "birthDate": "1930-03-14",
}
SECRETS = [
    "Adaeze Okafor",
    "call 614-555-0101",
    "ada.okafor@example.org",
    "see https://portal.example.org/ada",
    "seen 03/14/2025",
    "SSN 123-45-6789",
]
ENC = {
    "resourceType": "Encounter",
    "id": "enc-1",
    "status": "finished",
    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
    "subject": {"reference": "Patient/pat-ada-000001"},
}


def _carriers(secret: str) -> list[dict]:
    """Every free-text place the issue names, plus an element nobody listed."""
    subject = {"reference": "Patient/pat-ada-000001"}
    return [
        {
            "resourceType": "Observation",
            "id": "o1",
            "status": "final",
            "subject": subject,
            "code": {"text": secret},
            "valueString": secret,
        },
        {**ENC, "id": "enc-2", "reasonCode": [{"text": secret}]},
        {
            "resourceType": "MedicationRequest",
            "id": "m1",
            "status": "active",
            "intent": "order",
            "subject": subject,
            "medicationCodeableConcept": {"text": "x"},
            "dosageInstruction": [{"text": secret, "patientInstruction": secret}],
        },
        {
            "resourceType": "Condition",
            "id": "c1",
            "subject": subject,
            "code": {"text": "x"},
            "extension": [{"url": "http://example.org/anything", "valueString": secret}],
        },
        {
            "resourceType": "Procedure",
            "id": "p1",
            "status": "completed",
            "subject": subject,
            "code": {
                "coding": [{"system": "http://snomed.info/sct", "code": "1", "display": secret}]
            },
            "madeUpElement": secret,
        },
    ]


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(SECRETS), st.integers(min_value=0, max_value=4))
def test_free_text_never_survives(secret: str, which: int) -> None:
    carrier = _carriers(secret)[which]
    out = deidentify([PATIENT, ENC, carrier], seed_or_rng=1, reference_date=REF_DATE)
    text = json.dumps(out.resources)
    assert secret not in text
    for part in (
        "Okafor",
        "Adaeze",
        "555-0101",
        "@example.org",
        "https://portal",
        "03/14/2025",
        "123-45-6789",
    ):
        if part in secret:
            assert part not in text, part
    assert scan_for_identifiers(out.resources, [PATIENT, ENC, carrier]) == []


@given(
    st.text(
        alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=12
    )
)
def test_only_allowlisted_elements_leave(key: str) -> None:
    obs = {
        "resourceType": "Observation",
        "id": "o",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        key: {"coding": [{"code": "zzz"}]},
    }
    out = deidentify([obs], seed_or_rng=2, reference_date=REF_DATE).resources
    for res in out:
        assert all(k in ("resourceType", "id") or keeps(res["resourceType"], k) for k in res)


def test_every_exported_type_has_an_allowlist_and_unknown_types_are_left_out() -> None:
    from ehr_sandbox.records.research import EXPORT_TYPES

    assert set(EXPORT_TYPES) <= set(ALLOWED_ELEMENTS)
    out = deidentify(
        [{"resourceType": "Basic", "id": "b", "code": {"text": "x"}}],
        seed_or_rng=1,
        reference_date=REF_DATE,
    )
    assert out.resources == [] and out.dropped["Basic"] == 1


@pytest.mark.parametrize("age", [90, 95, 104])
@pytest.mark.parametrize("as_integer", [True, False])
def test_age_observations_over_89_are_capped(age: int, as_integer: bool) -> None:
    value = (
        {"valueInteger": age}
        if as_integer
        else {
            "valueQuantity": {
                "value": age,
                "unit": "a",
                "system": "http://unitsofmeasure.org",
                "code": "a",
            }
        }
    )
    obs = {
        "resourceType": "Observation",
        "id": "age",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "30525-0", "display": "Age"}]},
        "subject": {"reference": "Patient/pat-ada-000001"},
        **value,
    }
    out = [r for r in deidentify([obs], seed_or_rng=3, reference_date=REF_DATE).resources]
    assert out[0]["valueQuantity"]["value"] == 90 and out[0]["valueQuantity"]["comparator"] == ">="
    assert "valueInteger" not in out[0]


def test_lot_numbers_are_identifiers() -> None:
    imm = {
        "resourceType": "Immunization",
        "id": "i",
        "status": "completed",
        "lotNumber": "LOT-77Q1X9",
        "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "140"}]},
        "patient": {"reference": "Patient/pat-ada-000001"},
        "occurrenceDateTime": "2025-10-01",
    }
    out = deidentify([imm], seed_or_rng=4, reference_date=REF_DATE).resources
    assert "LOT-77Q1X9" not in json.dumps(out)
    leaked = {**out[0], "note": [{"text": "lot LOT-77Q1X9"}]}
    assert any(f.kind == "identifier" for f in scan_for_identifiers([leaked], [imm]))


# ------------------------------------------------------------------ the research export
@pytest.fixture(scope="module")
def clinic() -> Sandbox:
    return Sandbox.generate(patients=12, seed=31, years=2)


def _exported_refs(sandbox: Sandbox, out_dir) -> set[str]:
    """Original refs of the resources written to the export (through the surrogate map)."""
    back = {new: old for old, new in sandbox.private.get("deid_surrogates", {}).items()}
    refs = set()
    for f in sorted(out_dir.glob("*.ndjson")):
        for line in f.read_text().splitlines():
            r = json.loads(line)
            refs.add(back[f"{r['resourceType']}/{r['id']}"])
    return refs


@pytest.mark.parametrize("user", ["instructor.lee", "po.wilson"])
def test_research_export_goes_through_per_record_policy(
    clinic: Sandbox, user: str, tmp_path
) -> None:
    fresh = clinic.copy()
    obs = fresh.grader_session().search("Observation").first()
    fresh.login("po.wilson").relabel(
        f"Observation/{obs['id']}", "R", reason="x", sensitivity=["SUD"]
    )
    fresh.login(user).deidentify(str(tmp_path / "out"))
    exported = _exported_refs(fresh, tmp_path / "out")
    grader = fresh.grader_session()
    role = fresh.user(user).role
    from ehr_sandbox.access.roles import ROLES

    ceiling = ROLES[role].ceiling_rank
    assert exported, "the export is not empty"
    if ceiling < "ULMNRV".index("R"):
        assert f"Observation/{obs['id']}" not in exported
    for ref in exported:
        res = grader.read(ref)
        assert "ULMNRV".index(confidentiality_of(res) or "N") <= ceiling
        assert not (sensitivities_of(res) & ROLES[role].excluded_labels)


def test_a_research_opt_out_is_honoured(clinic: Sandbox, tmp_path) -> None:
    fresh = clinic.copy()
    pid = fresh.grader_session().search("Patient").first()["id"]
    fresh.login("po.wilson").create(
        {
            "resourceType": "Consent",
            "status": "active",
            "policy": [
                {"uri": "https://www.ecfr.gov/current/title-45/section-164.508"}
            ],  # R4B ppc-1
            "scope": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                        "code": "research",
                    }
                ]
            },
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                            "code": "INFA",
                        }
                    ]
                }
            ],
            "patient": {"reference": f"Patient/{pid}"},
            "policyRule": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}
                ]
            },
            "provision": {
                "type": "deny",
                "purpose": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                        "code": "HRESCH",
                    }
                ],
            },
        }
    )
    fresh.login("instructor.lee").deidentify(str(tmp_path / "out"))
    exported = _exported_refs(fresh, tmp_path / "out")
    grader = fresh.grader_session()
    assert exported, "other patients are still exported"
    assert all(patient_of(grader.read(ref)) != pid for ref in exported)
