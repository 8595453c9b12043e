"""The EHR refuses unsafe orders: drug-allergy check with class cross-reactivity in the write path."""

from __future__ import annotations

import pytest

from ehr_sandbox import Sandbox
from ehr_sandbox.errors import AllergyConflict, ValidationError
from ehr_sandbox.records.allergy_check import RXNORM
from synthetic.content import load_content

SNOMED = "http://snomed.info/sct"
CLASSES = {c.id: c for c in load_content().drug_classes}


@pytest.fixture(scope="module")
def clinic():
    return Sandbox.generate(patients=4, seed=11, years=1)


def _patient(sb):
    return sb.login("dr.patel").search("Patient").first()["id"]


def _allergy(pid: str, code: str, display: str, status: str = "active") -> dict:
    return {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "code": status,
                }
            ]
        },
        "verificationStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                    "code": "confirmed",
                }
            ]
        },
        "type": "allergy",
        "category": ["medication"],
        "code": {"coding": [{"system": SNOMED, "code": code, "display": display}]},
        "patient": {"reference": f"Patient/{pid}"},
    }


def _order(pid: str, rxnorm: str) -> dict:
    display = load_content().codes["rxnorm"].display(rxnorm)
    return {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"Patient/{pid}"},
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": rxnorm, "display": display}]
        },
    }


def _fresh(clinic, allergy_code: str, display: str, status: str = "active"):
    sb = clinic.copy()
    pid = _patient(sb)
    doc = sb.login("dr.patel")
    for a in doc.search("AllergyIntolerance", patient=f"Patient/{pid}").fetch():
        doc.mark_entered_in_error(f"AllergyIntolerance/{a['id']}", reason="test setup: clean slate")
    doc.create(_allergy(pid, allergy_code, display, status))
    return sb, doc, pid


@pytest.mark.parametrize("rxnorm", CLASSES["penicillins"].rxnorm)
def test_every_penicillin_is_refused_for_a_penicillin_allergy(clinic, rxnorm):
    sb, doc, pid = _fresh(clinic, "764146007", "Penicillin")
    before = sb.audit.count()
    with pytest.raises(AllergyConflict, match="penicillins drug") as info:
        doc.create(_order(pid, rxnorm))
    assert info.value.patient == pid and "override_reason" in str(info.value)
    assert not doc.search(
        "MedicationRequest", patient=f"Patient/{pid}", code=f"{RXNORM}|{rxnorm}"
    ).fetch()
    refused = sb.audit.events()[before:]
    assert any(e.get("outcome") == "4" and "allergy" in e.get("outcomeDesc", "") for e in refused)


@pytest.mark.parametrize("rxnorm", CLASSES["cephalosporins"].rxnorm)
def test_cephalosporins_alert_on_a_penicillin_allergy(clinic, rxnorm):
    sb, doc, pid = _fresh(clinic, "764146007", "Penicillin")
    with pytest.raises(AllergyConflict, match="cross-reactive with Penicillins"):
        doc.create(_order(pid, rxnorm))


def test_sulfonamide_allergy_refuses_smx_tmp_but_not_a_penicillin(clinic):
    sb, doc, pid = _fresh(clinic, "387406002", "Sulfonamide")
    with pytest.raises(AllergyConflict, match="sulfonamide"):
        doc.create(_order(pid, CLASSES["sulfonamide-antibiotics"].rxnorm[0]))
    assert doc.create(_order(pid, CLASSES["penicillins"].rxnorm[0]))["status"] == "active"


def test_resolved_allergy_and_unrelated_drug_pass(clinic):
    sb, doc, pid = _fresh(clinic, "764146007", "Penicillin", status="resolved")
    assert doc.create(_order(pid, CLASSES["penicillins"].rxnorm[0]))["status"] == "active"
    sb, doc, pid = _fresh(clinic, "764146007", "Penicillin")
    # azithromycin: not a beta-lactam
    assert doc.create(_order(pid, "308460"))["status"] == "active"


def test_override_needs_a_reason_and_is_recorded(clinic):
    sb, doc, pid = _fresh(clinic, "764146007", "Penicillin")
    with pytest.raises(ValidationError, match="reason"):
        doc.create(_order(pid, "308192"), override_reason="  ")
    saved = doc.create(
        _order(pid, "308192"), override_reason="tolerated amoxicillin in 2024 per allergist"
    )
    prov = doc.provenance(f"MedicationRequest/{saved['id']}")[-1]
    assert "allergy alert overridden: tolerated amoxicillin" in str(prov.get("reason"))
    overrides = [e for e in sb.audit.events() if e["subtype"][0]["code"] == "allergy-override"]
    assert len(overrides) == 1 and "allergist" in overrides[0]["outcomeDesc"]


def test_changing_an_order_to_a_conflicting_drug_is_refused(clinic):
    sb, doc, pid = _fresh(clinic, "764146007", "Penicillin")
    order = doc.create(_order(pid, "308460"))
    order["medicationCodeableConcept"] = _order(pid, "562251")["medicationCodeableConcept"]
    with pytest.raises(AllergyConflict):
        doc.update(order)
    cancel = doc.read("MedicationRequest", order["id"])
    cancel["status"] = "cancelled"
    doc.update(cancel)  # stopping an order is never blocked
