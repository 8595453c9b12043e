"""Minimum necessary: what each role sees of a resource it may read."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ehr_sandbox.access import AccessContext, Policy, mask
from ehr_sandbox.access.masking import MASKS, REDACTED_SYSTEM

SECRET = "212"


def observation() -> dict:
    return {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "subject": {"reference": "Patient/A"},
        "code": {
            "coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}]
        },
        "valueQuantity": {
            "value": 212,
            "unit": "mg/dL",
            "system": "http://unitsofmeasure.org",
            "code": "mg/dL",
        },
        "interpretation": [{"coding": [{"code": "H"}]}],
        "referenceRange": [{"low": {"value": 70}, "high": {"value": 99}}],
        "note": [{"text": f"patient anxious, glucose {SECRET}"}],
        "text": {
            "status": "generated",
            "div": f'<div xmlns="http://www.w3.org/1999/xhtml">Glucose {SECRET} mg/dL</div>',
        },
    }


def blood_pressure() -> dict:
    return {
        "resourceType": "Observation",
        "id": "bp",
        "subject": {"reference": "Patient/A"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
        "component": [
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                "valueQuantity": {"value": 150},
            },
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                "valueQuantity": {"value": 95},
            },
        ],
    }


def has_redacted_tag(r: dict) -> bool:
    return any(
        c.get("system") == REDACTED_SYSTEM and c.get("code") == "REDACTED"
        for c in r["meta"]["security"]
    )


def test_billing_sees_codes_not_values_and_the_narrative_is_redacted() -> None:
    original = observation()
    snapshot = copy.deepcopy(original)
    m = mask("billing", original)
    assert m["code"] == original["code"] and m["status"] == "final"
    for gone in ("valueQuantity", "interpretation", "referenceRange", "note"):
        assert gone not in m
    assert SECRET not in str(m)  # neither in the value, the note, nor text.div
    assert "text" not in m
    assert has_redacted_tag(m)
    assert original == snapshot  # the stored resource is untouched


def test_billing_loses_component_values_but_keeps_component_codes() -> None:
    m = mask("billing", blood_pressure())
    assert [c["code"]["coding"][0]["code"] for c in m["component"]] == ["8480-6", "8462-4"]
    assert all("valueQuantity" not in c for c in m["component"])


def test_billing_condition_keeps_the_code_drops_notes() -> None:
    cond = {
        "resourceType": "Condition",
        "id": "c",
        "subject": {"reference": "Patient/A"},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.9"}]},
        "note": [{"text": "discussed at length"}],
    }
    m = mask("billing", cond)
    assert m["code"] == cond["code"] and "note" not in m


def test_notes_content_is_removed_for_billing() -> None:
    doc = {
        "resourceType": "DocumentReference",
        "id": "d",
        "subject": {"reference": "Patient/A"},
        "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3"}]},
        "content": [{"attachment": {"contentType": "text/plain", "data": "c2VjcmV0"}}],
    }
    m = mask("billing", doc)
    assert "content" not in m and m["type"] == doc["type"]


@pytest.mark.parametrize(
    "role", ["physician", "nurse", "medical_assistant", "patient", "front_desk"]
)
def test_roles_without_a_profile_see_everything_in_a_new_dict(role: str) -> None:
    original = observation()
    m = mask(role, original)
    assert m == original and m is not original
    assert role not in MASKS


def test_nothing_to_hide_means_no_redacted_tag() -> None:
    enc = {
        "resourceType": "Encounter",
        "id": "e",
        "subject": {"reference": "Patient/A"},
        "status": "finished",
    }
    assert mask("billing", enc) == enc


def test_contained_resources_of_another_patient_are_dropped_for_every_role() -> None:
    report = {
        "resourceType": "DiagnosticReport",
        "id": "r",
        "subject": {"reference": "Patient/A"},
        "contained": [
            {"resourceType": "Observation", "id": "mine", "subject": {"reference": "Patient/A"}},
            {"resourceType": "Observation", "id": "theirs", "subject": {"reference": "Patient/B"}},
            {"resourceType": "Practitioner", "id": "dr"},
        ],
        "text": {"status": "generated", "div": "<div>A and B results</div>"},
    }
    m = mask("physician", report)
    assert [c["id"] for c in m["contained"]] == ["mine", "dr"]
    assert "text" not in m and has_redacted_tag(m)
    assert len(report["contained"]) == 3


def test_policy_mask_uses_the_session_role() -> None:
    policy = Policy(consents=lambda pid: [])
    billing = AccessContext(
        username="billing.davis", role="billing", practitioner_id="b", patient_id=None, scopes=None
    )
    doctor = AccessContext(
        username="dr.patel", role="physician", practitioner_id="d", patient_id=None, scopes=None
    )
    assert "valueQuantity" not in policy.mask(billing, observation())
    assert policy.mask(doctor, observation())["valueQuantity"]["value"] == 212


_MASKED_TYPES = sorted(
    (role, rtype)
    for role, profile in MASKS.items()
    for rtype, paths in profile.items()
    if rtype != "*" and paths
)
_words = st.text(alphabet="abcdefgh XYZ0123456789", min_size=1, max_size=12)


@settings(max_examples=120, deadline=None)
@given(
    pair=st.sampled_from(_MASKED_TYPES),
    words=_words,
    status=st.sampled_from(["generated", "extensions", "additional", "empty"]),
    extra=st.dictionaries(st.sampled_from(["status", "id", "language"]), _words, max_size=2),
)
def test_a_type_seen_in_part_never_keeps_its_narrative(
    pair: tuple[str, str], words: str, status: str, extra: dict
) -> None:
    """A role that sees a type only in part (billing: Observation without values, Condition
    without notes ...) never gets the narrative of such a resource, whether or not a
    structured element was withheld: the narrative can carry what the role may not see on its
    own (a note typed only into ``text.div``), and the copy is marked REDACTED. (Before, the
    narrative went only when a structured element was removed.)"""
    role, rtype = pair
    resource = {
        "resourceType": rtype,
        **extra,
        "text": {
            "status": status,
            "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{words}</div>',
        },
    }
    out = mask(role, resource)
    assert "text" not in out
    assert any(c.get("code") == "REDACTED" for c in out["meta"]["security"])
    assert {k: v for k, v in out.items() if k != "meta"} == {
        k: v for k, v in resource.items() if k != "text"
    }
    assert resource["text"]["div"].endswith(f"{words}</div>")  # the input is untouched


def test_types_a_role_sees_whole_keep_their_narrative() -> None:
    enc = {
        "resourceType": "Encounter",
        "status": "finished",
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
    }
    assert mask("billing", enc) == enc
    assert mask("physician", observation()) == observation()
