"""Security labels assigned at write time from code lists."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ehr_sandbox.access import (
    ACT_CODE,
    CONFIDENTIALITY,
    LabelRule,
    assign_labels,
    confidentiality_of,
    highest_confidentiality,
    sensitivities_of,
)
from ehr_sandbox.access.labels import active_rules

DEFAULT_RULES = active_rules()

ICD = "http://hl7.org/fhir/sid/icd-10-cm"


def condition(code: str, security: list | None = None) -> dict:
    r: dict = {
        "resourceType": "Condition",
        "code": {"coding": [{"system": ICD, "code": code}]},
        "subject": {"reference": "Patient/a"},
    }
    if security is not None:
        r["meta"] = {"security": security}
    return r


def labels(resource: dict, rules=DEFAULT_RULES) -> tuple[list[str], list[str]]:
    out = assign_labels(resource, rules)
    conf = [c["code"] for c in out if c["system"] == CONFIDENTIALITY]
    sens = [c["code"] for c in out if c["system"] == ACT_CODE]
    return conf, sens


@pytest.mark.parametrize(
    ("code", "conf", "must_have"),
    [
        ("F11.20", "R", {"SUD", "OPIOIDUD"}),
        ("F10.20", "R", {"SUD", "ETHUD"}),
        ("F14.10", "R", {"SUD"}),
        ("F19.90", "R", {"SUD"}),
        ("B20", "R", {"HIV"}),
        ("Z21", "R", {"HIV"}),
        ("F32.9", "R", {"MH"}),
        ("F41.1", "R", {"MH"}),
        ("F20.9", "R", {"MH", "PSY"}),
        ("A54.00", "R", {"STD"}),
        ("I10", "N", set()),
        ("E11.9", "N", set()),
        ("F17.210", "N", set()),  # nicotine dependence is deliberately not Part 2 SUD
    ],
)
def test_labels_from_icd10_code_lists(code: str, conf: str, must_have: set[str]) -> None:
    got_conf, got_sens = labels(condition(code))
    assert got_conf == [conf]
    assert set(got_sens) == must_have


def test_exactly_one_confidentiality_and_the_higher_one_wins() -> None:
    # Existing R on a non-sensitive code stays R (labels only go up here).
    assert labels(condition("I10", [{"system": CONFIDENTIALITY, "code": "R"}]))[0] == ["R"]
    # Existing N on a sensitive code becomes R; two wrong existing codes collapse to one.
    two = [{"system": CONFIDENTIALITY, "code": "N"}, {"system": CONFIDENTIALITY, "code": "L"}]
    assert labels(condition("B20", two))[0] == ["R"]
    # Existing L with nothing computed stays L (a de-identified output keeps its label).
    assert labels(condition("I10", [{"system": CONFIDENTIALITY, "code": "L"}]))[0] == ["L"]
    # Existing V beats a computed R.
    assert labels(condition("F11.20", [{"system": CONFIDENTIALITY, "code": "V"}]))[0] == ["V"]


def test_existing_sensitivity_and_other_codings_are_kept_without_duplicates() -> None:
    integrity = {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
        "code": "CRYTOHASH",
    }
    existing = [{"system": ACT_CODE, "code": "SUD"}, {"system": ACT_CODE, "code": "SUD"}, integrity]
    out = assign_labels(condition("F11.20", existing), DEFAULT_RULES)
    sens = [c["code"] for c in out if c["system"] == ACT_CODE]
    assert sorted(sens) == sorted(set(sens)) and {"SUD", "OPIOIDUD"} <= set(sens)
    assert integrity in out
    assert out[0]["system"] == CONFIDENTIALITY


def test_input_is_not_modified() -> None:
    r = condition("B20", [{"system": CONFIDENTIALITY, "code": "N"}])
    snapshot = copy.deepcopy(r)
    assign_labels(r)
    assert r == snapshot


def test_codes_anywhere_count_but_meta_does_not() -> None:
    claim = {
        "resourceType": "Claim",
        "patient": {"reference": "Patient/a"},
        "diagnosis": [
            {
                "sequence": 1,
                "diagnosisCodeableConcept": {"coding": [{"system": ICD, "code": "F11.20"}]},
            }
        ],
    }
    assert "SUD" in labels(claim)[1]
    contained = {"resourceType": "Observation", "contained": [condition("Z21")]}
    assert "HIV" in labels(contained)[1]
    meta_only = {"resourceType": "Observation", "meta": {"tag": [{"system": ICD, "code": "B20"}]}}
    assert labels(meta_only) == (["N"], [])


def test_hiv_lab_loinc_is_labelled() -> None:
    lab = {
        "resourceType": "Observation",
        "code": {"coding": [{"system": "http://loinc.org", "code": "56888-1"}]},
    }
    assert labels(lab) == (["R"], ["HIV"])


def test_custom_rules() -> None:
    rules = [LabelRule("http://example.org/cs", "X", "exact", ("ETH",), "V")]
    r = {
        "resourceType": "Observation",
        "code": {"coding": [{"system": "http://example.org/cs", "code": "X"}]},
    }
    assert labels(r, rules) == (["V"], ["ETH"])
    assert labels(condition("B20"), rules) == (["N"], [])


def test_default_rules_are_used_when_none_given() -> None:
    assert confidentiality_of({"meta": {"security": assign_labels(condition("B20"))}}) == "R"


def test_readers_and_bundle_level() -> None:
    r = {"meta": {"security": assign_labels(condition("F11.20"), DEFAULT_RULES)}}
    n = {"meta": {"security": assign_labels(condition("I10"), DEFAULT_RULES)}}
    assert confidentiality_of(r) == "R" and "SUD" in sensitivities_of(r)
    assert highest_confidentiality([n, r, {}]) == "R"
    assert highest_confidentiality([n]) == "N"
    assert confidentiality_of({"meta": {"security": "garbage"}}) is None


def _naive(resource: dict, rules) -> tuple[str | None, frozenset[str]]:
    from ehr_sandbox.access.labels import CONFIDENTIALITY_RANK, codings_in

    level, found = None, set()
    for system, code in codings_in(resource):
        for rule in rules:
            if rule.matches(system, code):
                found.update(rule.sensitivity)
                if (
                    level is None
                    or CONFIDENTIALITY_RANK[rule.confidentiality] > CONFIDENTIALITY_RANK[level]
                ):
                    level = rule.confidentiality
    return level, frozenset(found)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([ICD, "http://loinc.org", "http://example.org"]),
            st.from_regex(r"[ABFTZ][0-9]{2}(\.[0-9]{1,2})?|[0-9]{4,5}-[0-9]", fullmatch=True),
        ),
        max_size=6,
    )
)
def test_indexed_rule_lookup_matches_the_plain_scan(pairs: list[tuple[str, str]]) -> None:
    from ehr_sandbox.access.labels import computed_labels

    resource = {
        "resourceType": "Condition",
        "code": {"coding": [{"system": s, "code": c} for s, c in pairs]},
    }
    assert computed_labels(resource, DEFAULT_RULES) == _naive(resource, DEFAULT_RULES)
